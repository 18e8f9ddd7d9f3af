//! # pollhttp-proto
//!
//! A sans-IO HTTP/1.1 protocol state machine for the client role. It
//! serializes requests and parses responses — heads with
//! [httparse](https://docs.rs/httparse), bodies with its own decoders for
//! Content-Length, chunked and close-delimited framing (RFC 9112 §6–§7) — and
//! never touches a socket, a thread or a clock. Feed it bytes, take events out,
//! write the bytes it gives you: a mio loop, a game engine's sockets, a WASM
//! host or a fuzzer can all drive it.
//!
//! ```text
//!  send_request ─► send_body* ─► finish          (commands → transmit_buf)
//!        │
//!        ▼
//!  recv_buf/receive ─► poll_event: Informational* ─► Head ─► Body* ─► Trailers? ─► End
//!                                                                              │
//!                                              close_reason() == None ─► reset ┘
//! ```
//!
//! * Strict RFC 9112 by default; each relaxation some real servers need is a
//!   named, response-only [`Leniency`]. One robustness rule is always on, as in
//!   hyper and llhttp: empty lines (CRLF) before a status line — a stray CRLF
//!   after the previous body — are skipped, not part of the head.
//! * Every limit ([`Config`]) holds however the input is split: head bytes,
//!   field count, trailer bytes, chunk extensions, body size. So does the cost:
//!   a head fed one byte at a time is searched once and parsed once.
//! * The states are public ([`Connection::send_state`],
//!   [`Connection::recv_state`], [`Connection::wants_receive`]), so a driver
//!   projects them instead of keeping its own; the end of input is clean or
//!   not ([`Connection::receive_eof`], [`Connection::receive_unclean_eof`]).
//! * [`ChunkedDecoder`] is usable on its own.
//! * Body bytes come out of the receive buffer without copying
//!   ([`bytes::Bytes`]), at most [`Config::read_chunk_size`] per event.
//! * One error type, [`Error`], names the rule broken and the input offset.
//! * After each response, [`Connection::close_reason`] says exactly why the
//!   connection cannot be reused, or `None` when it can.
//!
//! See [`Connection`] for a complete example.
//!
//! # Features
//!
//! * `std` (default): `Fields` caches its index in a `std::sync::OnceLock`
//!   (so `Fields` and `ResponseHead` are `Sync`), and `bytes` and `httparse`
//!   get their `std` features. Without it the crate is `no_std` + `alloc`:
//!   it builds for targets without an OS (engines, WASM hosts, embedded
//!   runtimes); the only difference is that `Fields` then caches its index in
//!   a `core::cell::OnceCell` and is not `Sync`.
#![no_std]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

extern crate alloc;
#[cfg(feature = "std")]
extern crate std;

mod config;
mod conn;
mod error;
mod fields;
mod head;
mod locate;
mod read_size;
mod request;
mod syntax;

pub use bytes::Bytes;
pub use config::{Config, Leniency};
pub use conn::{ChunkedDecoder, ChunkedNext, CloseReason, Connection, Event, RecvState, SendState};
pub use error::Error;
pub use fields::{Field, Fields, FieldsIter};
pub use head::{MessageBodyLength, ResponseHead, Version};
pub use read_size::ReadSize;
pub use request::method;
pub use syntax::{is_field_value, is_token};
