//! # pollhttp
//!
//! An HTTP/1.1 client for programs that own their loop: games calling
//! `poll()` once per frame, engines with their own scheduler, tools that must
//! never stall. Nothing here blocks except the explicit `wait(timeout)` calls,
//! which sleep on the socket (mio) instead of spinning.
//!
//! * [`HttpRequest`]: one request at a time with Godot's HTTPRequest shape and
//!   results ([`RequestResult`]): redirects per RFC 9110, deadline and idle
//!   timeouts, gzip/deflate, body size limit, download to file, upload from
//!   memory, a file or a reader, cancel, optional worker thread, and the
//!   connection kept for the next request to the same origin.
//! * [`HttpClient`]: one connection with Godot's HTTPClient shape and
//!   [`Status`] values; keep-alive, TLS via rustls ([`TlsOptions`]), HTTP and
//!   HTTPS proxies.
//! * [`RequestPool`]: many requests under one `poll()` with a frame budget
//!   (time and bytes), per-origin keep-alive, connection limits and a FIFO
//!   queue; the same per-request logic as `HttpRequest`.
//! * [`proto`]: the sans-IO protocol core (`pollhttp-proto`), re-exported.
//!
//! Errors answer two questions, one type each: [`RequestError`] (a call was
//! refused at once, nothing was sent) and [`Failure`] (why a connection
//! failed), carried in [`Completed::failure`] with the request-level causes
//! ([`RequestFailure`]).
//!
//! Inside, layers whose imports point down (the test command checks it):
//! a transport (plain or TLS, which says whether the end of input was
//! clean), a reactor (one mio `Poll` for any number of connections) and a
//! resolver (worker threads behind a DNS cache), connections (establish,
//! then exchange: proto's `Connection` and one I/O pump), the request logic
//! (one request's mechanism, a pure decision table after each response head
//! and failure, the redirect, retry, auth and proxy policies, the body
//! sink), the front ends, and the web conveniences on top.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub use pollhttp_proto as proto;

mod body;
mod budget;
mod cache;
mod client;
mod conn;
mod connect;
mod error;
#[cfg(fuzzing)]
#[doc(hidden)]
pub mod fuzzing;
mod http_request;
mod pool;
mod reactor;
mod request;
mod resolve;
mod status;
mod time;
mod tls_options;
mod transport;
pub mod web;

pub use body::{BodyPart, RequestBody};
pub use budget::{FrameBudget, PollBudget};
pub use cache::{Cache, CacheMode, CacheSettings, CacheStatus, StoreLimits, WallClock};
pub use client::HttpClient;
pub use error::{Failure, RequestError};
pub use http_request::HttpRequest;
pub use pollhttp_proto::{method, Leniency};
pub use pool::{Clock, PoolSettings, RequestId, RequestPool, RequestProgress};
pub use request::{
    sha256_from_hex, BodySettings, Completed, ContentCoding, CookieStore, DigestAlgorithm,
    DigestCheck, IntoUrl, ProxySettings, Redirects, Refusal, RequestFailure, RequestResult,
    Settings, Timeouts,
};
pub use resolve::LookupFn;
pub use status::{Status, WakeHandle};
pub use tls_options::{TlsConfigError, TlsOptions};
pub use transport::TransportError;

/// A response head parsed by proto from `raw` (a request for it is sent
/// first): for unit tests, which cannot build a `ResponseHead` otherwise.
#[cfg(test)]
pub(crate) fn parsed_head(raw: &str) -> proto::ResponseHead {
    use proto::{Config, Connection, Event};
    let mut c = Connection::new(Config::default());
    c.send_request("GET", "/", [("Host", "h")]).unwrap();
    c.receive(raw.as_bytes());
    loop {
        match c.poll_event().unwrap() {
            Some(Event::Head(h)) => return h,
            Some(_) => {}
            None => panic!("no head in {raw:?}"),
        }
    }
}

/// The README's examples, compiled and run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
pub struct ReadmeDoctests;
