//! pollhttp: an HTTP/1.1 client for programs that own their loop.
//!
//! The protocol core lives in [`pollhttp_proto`], re-exported here as [`proto`].
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
