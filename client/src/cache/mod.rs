//! An HTTP cache for a game's assets and a tool's downloads (RFC 9111, a
//! private cache as a browser's): the rules ([`policy`]) and where entries
//! live ([`store`]). Built in steps (issue 17): the rules and the stores
//! come first, each tested on its own; the request layer consults them
//! next.

#![allow(dead_code)] // wired into the request layer in the next step

pub(crate) mod policy;
pub(crate) mod store;
