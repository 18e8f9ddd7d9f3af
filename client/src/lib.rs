//! # pollhttp
//!
//! An HTTP/1.1 client for programs that own their loop: games calling
//! `poll()` once per frame, engines with their own scheduler, tools that must
//! never stall. Nothing here blocks except the explicit `wait(timeout)` calls,
//! which sleep on the socket (mio) instead of spinning.
//!
//! * [`HttpRequest`]: one request at a time with Godot's HTTPRequest shape and
//!   results ([`RequestResult`]): redirects per RFC 9110, deadline and idle
//!   timeouts, gzip/deflate, body size limit, download to file, cancel,
//!   optional worker thread.
//! * [`HttpClient`]: one connection with Godot's HTTPClient shape and
//!   [`Status`] values; keep-alive, TLS via rustls ([`TlsOptions`]), HTTP and
//!   HTTPS proxies.
//! * [`proto`]: the sans-IO protocol core (`pollhttp-proto`), re-exported.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub use pollhttp_proto as proto;

mod client;
mod connect;
mod request;
mod resolve;
mod tls;

pub use client::{Failure, HttpClient, RequestError, Status, WakeHandle};
pub use pollhttp_proto::method;
pub use request::{Completed, HttpRequest, RequestResult, Settings, StartError};
pub use resolve::LookupFn;
pub use tls::{TlsConfigError, TlsError, TlsOptions};

/// The README's examples, compiled and run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
pub struct ReadmeDoctests;
