//! The client-role connection state machine: [`Connection`], its events and
//! states. The parts it drives live beside it, one concern each:
//!
//! * [`head`]: the status line and field lines (httparse plus the checks it
//!   leaves to us);
//! * [`framing`]: message body length and the reuse verdict, one pure function
//!   of the head (RFC 9112 §6.3);
//! * [`chunked`]: [`ChunkedDecoder`], the chunked framing (RFC 9112 §7.1);
//! * [`trailers`]: the trailer section (RFC 9112 §7.1.2).
//!
//! The lexical rules they share with the request encoder are in
//! `crate::syntax`, the error locators in `crate::locate`.

use alloc::vec::Vec;

use bytes::{Buf, Bytes, BytesMut};

use crate::config::Config;
use crate::error::Error;
use crate::fields::Fields;
use crate::head::{MessageBodyLength, ResponseHead};
use crate::request::{self, method, SendFraming};

pub(crate) mod chunked;
pub(crate) mod framing;
pub(crate) mod head;
pub(crate) mod trailers;

pub use chunked::{ChunkedDecoder, ChunkedNext};
use framing::RequestKind;

/// What the connection hands out, in order, for each response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// An interim 1xx response (100 Continue, 103 Early Hints, …), fields
    /// included (RFC 9110 §15.2). The final response follows.
    Informational(ResponseHead),
    /// The final response head. For 101 and for a 2xx to CONNECT, `End`
    /// follows at once and the connection is handed over.
    Head(ResponseHead),
    /// Body bytes, at most [`Config::read_chunk_size`] of them, never empty,
    /// split out of the receive buffer without copying. One event never spans
    /// two chunks of a chunked body.
    Body(Bytes),
    /// The trailer section of a chunked body (RFC 9112 §7.1.2), only when it
    /// has at least one field.
    Trailers(Fields),
    /// The response is complete. See [`Connection::close_reason`] for whether
    /// the connection can carry another request.
    End,
}

/// Why a connection cannot carry another request. Not an error: the response
/// that ended was complete and valid (except for [`CloseReason::Error`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum CloseReason {
    /// An HTTP/1.0 response without a `keep-alive` connection option
    /// (RFC 9112 §9.3).
    Http10,
    /// The response carried the `close` connection option (RFC 9112 §9.6), in
    /// any case and any list position.
    ConnectionClose,
    /// The request carried the `close` connection option.
    RequestedClose,
    /// The body was close-delimited: it ended with the connection (RFC 9112
    /// §6.3 rules 4 and 8).
    CloseDelimited,
    /// A 101 response: the connection now speaks another protocol.
    SwitchingProtocols,
    /// A 2xx response to CONNECT: the connection is now a tunnel.
    Tunnel,
    /// The response had both Transfer-Encoding and Content-Length, accepted by
    /// [`Leniency::content_length_with_transfer_encoding`](crate::Leniency::content_length_with_transfer_encoding),
    /// which forces a close (RFC 9112 §6.3 rule 3).
    ContentLengthWithTransferEncoding,
    /// The final response arrived before the request body was fully sent.
    EarlyResponse,
    /// The peer closed the connection.
    PeerClosed,
    /// A protocol error occurred.
    Error,
}

/// The send side, internally.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tx {
    Idle,
    Length(u64),
    Chunked,
    Done,
}

/// The receive side, internally.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Rx {
    /// No request outstanding.
    Idle,
    /// Waiting for a (possibly interim) response head.
    Head,
    /// Inside a Content-Length body: bytes left.
    Length(u64),
    /// Inside a chunked body: see `Connection::chunked`.
    Chunked,
    /// After the last-chunk: the trailer section.
    Trailers,
    /// Inside a close-delimited body.
    Close,
    /// The response is complete; `End` not yet handed out.
    PendingEnd,
    /// `End` was handed out.
    Done,
}

/// How the input ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Eof {
    /// [`Connection::receive_eof`].
    Clean,
    /// [`Connection::receive_unclean_eof`].
    Unclean,
}

/// The request side of a [`Connection`], from
/// [`Connection::send_state`]: what the connection will accept from the
/// caller next (h11's `our_state`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SendState {
    /// No request outstanding: [`send_request`](Connection::send_request) may
    /// be called (when [`recv_state`](Connection::recv_state) is
    /// [`RecvState::Idle`] too, i.e. [`Connection::is_idle`]).
    Idle,
    /// The head is queued; a Content-Length body is being sent with
    /// [`send_body`](Connection::send_body) and `remaining` bytes are still
    /// owed.
    SendingLength {
        /// Body bytes still owed.
        remaining: u64,
    },
    /// The head is queued; a chunked body is being sent with
    /// [`send_body`](Connection::send_body) until
    /// [`finish`](Connection::finish).
    SendingChunked,
    /// The request is complete (its last bytes may still wait in
    /// [`transmit_buf`](Connection::transmit_buf)); after the response,
    /// [`reset`](Connection::reset) makes the side `Idle` again.
    Done,
    /// The request is complete (or none is outstanding) and no further request
    /// can go on this connection: [`close_reason`](Connection::close_reason)
    /// says why (h11's `MUST_CLOSE`).
    MustClose,
    /// The request is complete and a 101 or a 2xx to CONNECT was received:
    /// the connection now carries another protocol (see
    /// [`Connection::take_remaining`]). A request body still being sent stays
    /// `SendingLength` / `SendingChunked` until it is finished (RFC 9110 §7.8:
    /// the request is completed in HTTP/1.1 first).
    SwitchedProtocol,
    /// The connection is dead: [`error`](Connection::error) says why.
    Error,
}

/// The response side of a [`Connection`], from
/// [`Connection::recv_state`]: what [`poll_event`](Connection::poll_event)
/// is working on (h11's `their_state`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RecvState {
    /// No request outstanding, so no response expected.
    Idle,
    /// Waiting for a response head; [`Event::Informational`] heads may come
    /// before the final one.
    Head,
    /// The final head was handed out; body events until [`Event::End`] (a
    /// response without a body is here too, until its `End`).
    Body,
    /// The last-chunk of a chunked body arrived; waiting for the trailer
    /// section ([`Event::Trailers`], then [`Event::End`]).
    Trailers,
    /// [`Event::End`] was handed out and the connection can carry another
    /// request: call [`reset`](Connection::reset).
    Done,
    /// [`Event::End`] was handed out and the connection cannot be reused:
    /// [`close_reason`](Connection::close_reason) says why.
    MustClose,
    /// [`Event::End`] of a 101 or of a 2xx to CONNECT was handed out: take the
    /// bytes past the head with [`take_remaining`](Connection::take_remaining);
    /// the rest of the input belongs to the new protocol.
    SwitchedProtocol,
    /// No request outstanding and the input ended: nothing more will arrive.
    Closed,
    /// The connection is dead: [`error`](Connection::error) says why.
    Error,
}

/// One HTTP/1.1 connection in the client role, without I/O.
///
/// # Driving it
///
/// The methods come in four kinds (after quinn-proto's `Connection`):
///
/// * **Commands** queue output: [`send_request`](Self::send_request),
///   [`send_body`](Self::send_body), [`finish`](Self::finish),
///   [`reset`](Self::reset).
/// * **Input** hands in what the socket gave: [`recv_buf`](Self::recv_buf) +
///   [`receive_filled`](Self::receive_filled) (read straight into the
///   connection's buffer: the socket read is the only copy), or
///   [`receive`](Self::receive); and the end of input, clean
///   ([`receive_eof`](Self::receive_eof)) or not
///   ([`receive_unclean_eof`](Self::receive_unclean_eof)).
/// * **Output**: [`poll_event`](Self::poll_event) for response events and
///   [`transmit_buf`](Self::transmit_buf) + [`advance_transmit`](Self::advance_transmit)
///   for bytes to write.
/// * **Getters**: [`send_state`](Self::send_state) and
///   [`recv_state`](Self::recv_state) (the two sides' states, to project
///   instead of shadowing), [`wants_receive`](Self::wants_receive) ("give me
///   bytes"), [`close_reason`](Self::close_reason),
///   [`can_reuse`](Self::can_reuse), [`error`](Self::error), …
///
/// After any command, write out `transmit_buf()`; after any input, call
/// `poll_event()` until it returns `Ok(None)` (it needs more input) before
/// reading again. Nothing here blocks, allocates per body event, or reads a
/// clock: timeouts belong to the driver.
///
/// # Example
///
/// ```
/// use pollhttp_proto::{Connection, Config, Event, method};
///
/// let mut conn = Connection::new(Config::default());
/// conn.send_request(method::GET, "/", [("Host", "example.com")]).unwrap();
/// assert_eq!(conn.transmit_buf(), b"GET / HTTP/1.1\r\nHost: example.com\r\n\r\n");
/// let n = conn.transmit_buf().len();
/// conn.advance_transmit(n);
///
/// conn.receive(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello");
/// let Some(Event::Head(head)) = conn.poll_event().unwrap() else { panic!() };
/// assert_eq!(head.status(), 200);
/// assert_eq!(conn.poll_event().unwrap(), Some(Event::Body("hello".into())));
/// assert_eq!(conn.poll_event().unwrap(), Some(Event::End));
/// assert!(conn.can_reuse());
/// conn.reset().unwrap();
/// ```
pub struct Connection {
    config: Config,
    tx: Vec<u8>,
    tx_pos: usize,
    send: Tx,
    /// `rx[..filled]` is unconsumed input; `rx[filled..]` zeroed spare room.
    rx: BytesMut,
    filled: usize,
    /// Input offset of `rx[0]`.
    consumed: u64,
    /// How the input ended, once it has.
    eof: Option<Eof>,
    recv: Rx,
    req: RequestKind,
    /// Bytes of `rx` the head or trailer parser has examined and found
    /// incomplete (0: not scanned).
    scanned: usize,
    /// The chunked decoder of the current body.
    chunked: ChunkedDecoder,
    body_received: u64,
    close: Option<CloseReason>,
    error: Option<Error>,
    handed_over: bool,
}

impl core::fmt::Debug for Connection {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Connection")
            .field("send", &self.send)
            .field("recv", &self.recv)
            .field("buffered", &self.filled)
            .field("close", &self.close)
            .field("error", &self.error)
            .finish()
    }
}

impl Connection {
    /// A fresh connection, ready for [`send_request`](Self::send_request).
    pub fn new(config: Config) -> Connection {
        Connection {
            config,
            tx: Vec::new(),
            tx_pos: 0,
            send: Tx::Idle,
            rx: BytesMut::new(),
            filled: 0,
            consumed: 0,
            eof: None,
            recv: Rx::Idle,
            req: RequestKind::default(),
            scanned: 0,
            chunked: ChunkedDecoder::new(0),
            body_received: 0,
            close: None,
            error: None,
            handed_over: false,
        }
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    // ------------------------------------------------------------ commands

    /// Queue a request head: `method` (any token; see [`method`]), a
    /// request-target in origin-form (`/path?q`), absolute-form
    /// (`http://host/path`, for proxies), authority-form (`host:port`, CONNECT
    /// only) or asterisk-form (`*`, OPTIONS only), and the field lines in the
    /// caller's order. Exactly one `Host` field is required (RFC 9112 §3.2).
    ///
    /// The body framing follows the fields: `Transfer-Encoding: chunked`
    /// (streamed with [`send_body`](Self::send_body), each call a chunk),
    /// `Content-Length: N`, or neither (no body; the request is complete).
    ///
    /// # Errors
    /// Caller errors, raised before any byte is queued (the connection stays
    /// usable): [`Error::InvalidMethod`], [`Error::InvalidRequestTarget`],
    /// [`Error::InvalidRequestFieldName`], [`Error::InvalidRequestFieldValue`]
    /// (CR, LF, NUL or another control: no header injection),
    /// [`Error::MissingHost`], [`Error::InvalidRequestFraming`],
    /// [`Error::InvalidState`] (a request is already outstanding). Also
    /// [`Error::ClosedByPeer`] after `receive_eof`, and the connection's error
    /// if it is dead.
    pub fn send_request<I, N, V>(
        &mut self,
        method: &str,
        target: &str,
        fields: I,
    ) -> Result<(), Error>
    where
        I: IntoIterator<Item = (N, V)>,
        N: AsRef<str>,
        V: AsRef<[u8]>,
    {
        if let Some(e) = &self.error {
            return Err(e.clone());
        }
        if self.eof.is_some() || self.handed_over {
            return Err(Error::ClosedByPeer);
        }
        if self.send != Tx::Idle || self.recv != Rx::Idle {
            return Err(Error::InvalidState {
                expected: "the current response to finish and reset()",
            });
        }
        self.compact_tx();
        let head = request::encode_head(&mut self.tx, method, target, fields)?;
        self.req = RequestKind {
            head: method == method::HEAD,
            connect: method == method::CONNECT,
        };
        self.send = match head.framing {
            SendFraming::None => Tx::Done,
            SendFraming::Length(n) => Tx::Length(n),
            SendFraming::Chunked => Tx::Chunked,
        };
        self.recv = Rx::Head;
        if head.close {
            self.close = Some(CloseReason::RequestedClose);
        }
        Ok(())
    }

    /// Queue request body bytes: with chunked framing, one chunk (an empty
    /// `data` queues nothing); with Content-Length, the bytes as they are.
    ///
    /// # Errors
    /// [`Error::RequestBodyTooLong`] when `data` passes the Content-Length
    /// (nothing queued); [`Error::InvalidState`] when the request has no body
    /// or it was finished.
    pub fn send_body(&mut self, data: &[u8]) -> Result<(), Error> {
        if let Some(e) = &self.error {
            return Err(e.clone());
        }
        match self.send {
            Tx::Length(remaining) => {
                if data.len() as u64 > remaining {
                    return Err(Error::RequestBodyTooLong { remaining });
                }
                self.compact_tx();
                self.tx.extend_from_slice(data);
                let left = remaining - data.len() as u64;
                // The request is complete with its last Content-Length byte.
                self.send = if left == 0 {
                    Tx::Done
                } else {
                    Tx::Length(left)
                };
            }
            Tx::Chunked => {
                if !data.is_empty() {
                    self.compact_tx();
                    request::encode_chunk(&mut self.tx, data);
                }
            }
            Tx::Idle | Tx::Done => {
                return Err(Error::InvalidState {
                    expected: "no request body",
                })
            }
        }
        Ok(())
    }

    /// End the request body: with chunked framing, queue the last-chunk and an
    /// empty trailer section. A Content-Length body ends by itself with its
    /// last byte; calling `finish` then is a no-op.
    ///
    /// # Errors
    /// [`Error::RequestBodyTooShort`] when Content-Length bytes are still owed;
    /// [`Error::InvalidState`] before any request was sent. On a request
    /// whose body is already complete (or that has none) it does nothing.
    pub fn finish(&mut self) -> Result<(), Error> {
        self.finish_with_trailers(core::iter::empty::<(&str, &str)>())
    }

    /// End a chunked request body with a trailer section (RFC 9112 §7.1.2).
    /// With Content-Length framing `trailers` must be empty.
    ///
    /// # Errors
    /// As [`finish`](Self::finish), plus [`Error::InvalidRequestFieldName`] /
    /// [`Error::InvalidRequestFieldValue`] for a bad trailer field.
    pub fn finish_with_trailers<I, N, V>(&mut self, trailers: I) -> Result<(), Error>
    where
        I: IntoIterator<Item = (N, V)>,
        N: AsRef<str>,
        V: AsRef<[u8]>,
    {
        if let Some(e) = &self.error {
            return Err(e.clone());
        }
        match self.send {
            Tx::Length(remaining) => return Err(Error::RequestBodyTooShort { remaining }),
            Tx::Chunked => {
                self.compact_tx();
                request::encode_last_chunk(&mut self.tx, trailers)?;
            }
            // A Content-Length body is complete with its last byte: nothing to do.
            Tx::Done if trailers.into_iter().next().is_none() => return Ok(()),
            Tx::Idle | Tx::Done => {
                return Err(Error::InvalidState {
                    expected: "no request body being sent",
                })
            }
        }
        self.send = Tx::Done;
        Ok(())
    }

    /// Ready the connection for the next request after [`Event::End`], keeping
    /// any bytes that already arrived: they belong to the next response.
    ///
    /// # Errors
    /// [`Error::InvalidState`] before `End` or when
    /// [`close_reason`](Self::close_reason) says the connection cannot be
    /// reused; the connection's error if it is dead.
    pub fn reset(&mut self) -> Result<(), Error> {
        if let Some(e) = &self.error {
            return Err(e.clone());
        }
        if self.recv != Rx::Done || self.close_reason().is_some() {
            return Err(Error::InvalidState {
                expected: "a completed response on a reusable connection",
            });
        }
        self.recv = Rx::Idle;
        self.send = Tx::Idle;
        self.body_received = 0;
        self.scanned = 0;
        Ok(())
    }

    // ------------------------------------------------------------ output

    /// Bytes queued for the socket. Write them and call
    /// [`advance_transmit`](Self::advance_transmit) with the count written.
    #[must_use]
    pub fn transmit_buf(&self) -> &[u8] {
        &self.tx[self.tx_pos..]
    }

    /// Whether bytes are queued for the socket.
    #[must_use]
    pub fn wants_transmit(&self) -> bool {
        self.tx_pos < self.tx.len()
    }

    /// Mark `n` bytes of [`transmit_buf`](Self::transmit_buf) as written.
    /// `n` larger than what is queued is clamped.
    pub fn advance_transmit(&mut self, n: usize) {
        self.tx_pos = (self.tx_pos + n).min(self.tx.len());
        if self.tx_pos == self.tx.len() {
            self.tx.clear();
            self.tx_pos = 0;
        }
    }

    fn compact_tx(&mut self) {
        if self.tx_pos > 0 {
            self.tx.drain(..self.tx_pos);
            self.tx_pos = 0;
        }
    }

    /// The next response event, `Ok(None)` when more input is needed (or no
    /// request is outstanding).
    ///
    /// # Errors
    /// Any protocol error in the input (each variant names the rule and
    /// offset). After an error the connection is dead and returns the same
    /// error from every later call; events handed out before stay valid.
    #[must_use = "an event not handled is lost"]
    pub fn poll_event(&mut self) -> Result<Option<Event>, Error> {
        if let Some(e) = &self.error {
            return Err(e.clone());
        }
        match self.poll_inner() {
            Ok(ev) => Ok(ev),
            Err(e) => {
                self.error = Some(e.clone());
                self.close = Some(CloseReason::Error);
                Err(e)
            }
        }
    }

    // ------------------------------------------------------------ input

    /// Spare room of the receive buffer, at most
    /// [`Config::recv_buf_size`] bytes: read from the socket straight into it,
    /// then call [`receive_filled`](Self::receive_filled). Empty when enough
    /// unprocessed input is buffered: call [`poll_event`](Self::poll_event)
    /// first (this bounds memory whatever the peer sends).
    #[must_use]
    pub fn recv_buf(&mut self) -> &mut [u8] {
        let want = self.config.recv_buf_size.max(1);
        // Room for a whole over-limit head or trailer section (so the limit,
        // not the buffer, decides), and at least a CR and its LF.
        let cap = want
            .max(self.config.max_head_bytes.saturating_add(1))
            .max(self.config.max_trailer_bytes.saturating_add(1))
            .max(2);
        if self.filled >= cap {
            return &mut [];
        }
        let spare = self.rx.len() - self.filled;
        if spare < want / 2 || spare == 0 {
            self.rx.truncate(self.filled);
            self.rx.reserve(want);
            self.rx.resize(self.filled + want, 0);
        }
        let end = self.rx.len().min(self.filled + want);
        &mut self.rx[self.filled..end]
    }

    /// Record that `n` bytes were written at the start of
    /// [`recv_buf`](Self::recv_buf). `n` past the lent room is clamped.
    pub fn receive_filled(&mut self, n: usize) {
        self.filled = (self.filled + n).min(self.rx.len());
    }

    /// Hand in bytes read from the socket (one copy into the receive buffer).
    pub fn receive(&mut self, data: &[u8]) {
        if data.is_empty() {
            return;
        }
        self.rx.truncate(self.filled);
        if self.rx.capacity() - self.rx.len() < data.len() {
            // Room for a whole receive buffer, not just this slice: one
            // allocation per refill even when the consumer keeps body bytes.
            self.rx.reserve(data.len().max(self.config.recv_buf_size));
        }
        self.rx.extend_from_slice(data);
        self.filled = self.rx.len();
    }

    /// The input ended cleanly: a TCP FIN on a plain connection, a TLS
    /// `close_notify` alert. Ends a close-delimited body ([`Event::End`]); a
    /// cut-off head or body becomes an error at the next
    /// [`poll_event`](Self::poll_event) ([`Error::IncompleteHead`],
    /// [`Error::IncompleteBody`], [`Error::IncompleteChunkedBody`]). Bytes
    /// already buffered are still processed first.
    ///
    /// Only the first report of the end of input counts: a later
    /// `receive_eof` or [`receive_unclean_eof`](Self::receive_unclean_eof)
    /// changes nothing.
    pub fn receive_eof(&mut self) {
        self.eof.get_or_insert(Eof::Clean);
    }

    /// The input ended without proof that it was complete: a TLS connection
    /// that ended without `close_notify`, or a read error such as
    /// `ECONNRESET`.
    ///
    /// For a close-delimited body (RFC 9112 §6.3 rule 8) this is an error:
    /// such a body is complete only if the connection closed cleanly (RFC 9112
    /// §8, §9.8), so once the buffered bytes are handed out the next
    /// [`poll_event`](Self::poll_event) returns [`Error::UncleanClose`]
    /// instead of [`Event::End`]. Body bytes handed out before stay handed
    /// out; the caller must treat them as possibly truncated. In every other
    /// state it behaves exactly like [`receive_eof`](Self::receive_eof).
    ///
    /// Only the first report of the end of input counts.
    pub fn receive_unclean_eof(&mut self) {
        self.eof.get_or_insert(Eof::Unclean);
    }

    // ------------------------------------------------------------ getters

    /// Why the connection cannot carry another request, or `None` when it can
    /// (so far: the verdict is final once [`Event::End`] was handed out).
    #[must_use]
    pub fn close_reason(&self) -> Option<CloseReason> {
        if self.error.is_some() {
            return Some(CloseReason::Error);
        }
        if self.close.is_none() && self.eof.is_some() {
            return Some(CloseReason::PeerClosed);
        }
        self.close
    }

    /// Whether the response ended ([`Event::End`] was handed out) and the
    /// connection can carry another request after [`reset`](Self::reset).
    pub fn can_reuse(&self) -> bool {
        self.recv == Rx::Done && self.close_reason().is_none()
    }

    /// Whether no request is outstanding and one may be sent now.
    pub fn is_idle(&self) -> bool {
        self.recv == Rx::Idle && self.send == Tx::Idle && self.error.is_none()
    }

    /// Whether the current response is complete ([`Event::End`] was handed out).
    pub fn is_response_complete(&self) -> bool {
        self.recv == Rx::Done
    }

    /// Whether the request body is still being sent (more
    /// [`send_body`](Self::send_body) or [`finish`](Self::finish) expected).
    pub fn is_sending_body(&self) -> bool {
        matches!(self.send, Tx::Length(_) | Tx::Chunked)
    }

    /// Whether [`poll_event`](Self::poll_event) cannot make progress without
    /// more input: a response is outstanding, every buffered byte has been
    /// looked at, and the input has not ended (rustls' `wants_read`). A driver
    /// that sees `true` reads the socket (or waits for it); `false` means
    /// either `poll_event` has something to do or nothing more is expected:
    /// no request outstanding, the response complete, the connection dead or
    /// handed over, or the input ended.
    ///
    /// Derived from the state, not remembered: it is `true` exactly when the
    /// next `poll_event` would return `Ok(None)` with a response outstanding.
    #[must_use]
    pub fn wants_receive(&self) -> bool {
        self.error.is_none() && self.eof.is_none() && !self.handed_over && self.starved()
    }

    /// The request side's state (h11's `our_state`). See [`SendState`].
    #[must_use]
    pub fn send_state(&self) -> SendState {
        if self.error.is_some() {
            return SendState::Error;
        }
        match self.send {
            Tx::Idle if self.recv == Rx::Idle && self.eof.is_some() => SendState::MustClose,
            Tx::Idle => SendState::Idle,
            // A request body is finished in HTTP/1.1 framing even when the
            // response switches protocols (RFC 9110 §7.8).
            Tx::Length(remaining) => SendState::SendingLength { remaining },
            Tx::Chunked => SendState::SendingChunked,
            Tx::Done if self.is_switched() => SendState::SwitchedProtocol,
            Tx::Done if self.close_reason().is_some() => SendState::MustClose,
            Tx::Done => SendState::Done,
        }
    }

    /// The response side's state (h11's `their_state`). See [`RecvState`].
    #[must_use]
    pub fn recv_state(&self) -> RecvState {
        if self.error.is_some() {
            return RecvState::Error;
        }
        match self.recv {
            Rx::Idle if self.eof.is_some() => RecvState::Closed,
            Rx::Idle => RecvState::Idle,
            Rx::Head => RecvState::Head,
            Rx::Trailers => RecvState::Trailers,
            Rx::Length(_) | Rx::Chunked | Rx::Close | Rx::PendingEnd => RecvState::Body,
            Rx::Done if self.is_switched() => RecvState::SwitchedProtocol,
            Rx::Done if self.close_reason().is_some() => RecvState::MustClose,
            Rx::Done => RecvState::Done,
        }
    }

    /// The error that killed the connection, if any.
    pub fn error(&self) -> Option<&Error> {
        self.error.as_ref()
    }

    /// Body bytes handed out for the current response.
    pub fn body_received(&self) -> u64 {
        self.body_received
    }

    /// Total bytes of input consumed so far (the offset errors count from).
    pub fn input_offset(&self) -> u64 {
        self.consumed
    }

    /// Bytes received but not yet consumed by events.
    pub fn buffered(&self) -> usize {
        self.filled
    }

    /// After a 101 or a 2xx to CONNECT ended, take the bytes that arrived past
    /// the head: they belong to the new protocol or the tunnel. Later input is
    /// the caller's to handle directly. Empty in any other state.
    #[must_use = "the bytes taken belong to the new protocol and are gone from the connection"]
    pub fn take_remaining(&mut self) -> Bytes {
        if self.recv == Rx::Done
            && matches!(
                self.close,
                Some(CloseReason::SwitchingProtocols | CloseReason::Tunnel)
            )
        {
            self.handed_over = true;
            let n = self.filled;
            self.consumed += n as u64;
            self.filled = 0;
            return self.rx.split_to(n).freeze();
        }
        Bytes::new()
    }

    // ------------------------------------------------------------ internals

    /// A 101 or a 2xx to CONNECT: the connection speaks another protocol.
    fn is_switched(&self) -> bool {
        matches!(
            self.close,
            Some(CloseReason::SwitchingProtocols | CloseReason::Tunnel)
        ) && self.error.is_none()
    }

    /// Whether the receive side has looked at every buffered byte and needs
    /// more (ignoring the end of input). Each arm mirrors where
    /// `poll_inner` returns `Ok(None)`: the body decoders consume every
    /// buffered byte before they ask for more; the head and trailer parsers
    /// record in `scanned` how much of the buffer they examined.
    fn starved(&self) -> bool {
        match self.recv {
            Rx::Idle | Rx::Done | Rx::PendingEnd | Rx::Length(0) => false,
            Rx::Head | Rx::Trailers => self.scanned == self.filled,
            Rx::Length(_) | Rx::Close | Rx::Chunked => self.filled == 0,
        }
    }

    fn take(&mut self, n: usize) -> Bytes {
        self.filled -= n;
        self.consumed += n as u64;
        self.rx.split_to(n).freeze()
    }

    fn skip(&mut self, n: usize) {
        self.filled -= n;
        self.consumed += n as u64;
        self.rx.advance(n);
    }

    fn read_chunk(&self) -> usize {
        self.config.read_chunk_size.max(1)
    }

    fn set_close(&mut self, reason: CloseReason) {
        if self.close.is_none() {
            self.close = Some(reason);
        }
    }

    fn poll_inner(&mut self) -> Result<Option<Event>, Error> {
        loop {
            match self.recv {
                Rx::Idle | Rx::Done => return Ok(None),
                Rx::Head => return self.poll_head(),
                Rx::Length(remaining) => {
                    if remaining == 0 {
                        self.recv = Rx::PendingEnd;
                        continue;
                    }
                    if self.filled == 0 {
                        if self.eof.is_some() {
                            return Err(Error::IncompleteBody {
                                offset: self.consumed,
                                expected: self.body_received + remaining,
                                received: self.body_received,
                            });
                        }
                        return Ok(None);
                    }
                    let n = (self.filled as u64)
                        .min(remaining)
                        .min(self.read_chunk() as u64) as usize;
                    self.recv = Rx::Length(remaining - n as u64);
                    self.body_received += n as u64;
                    return Ok(Some(Event::Body(self.take(n))));
                }
                Rx::Close => {
                    if self.filled == 0 {
                        match self.eof {
                            // RFC 9112 §8, §9.8: a close-delimited body is
                            // complete only when the connection closed cleanly.
                            Some(Eof::Unclean) => {
                                return Err(Error::UncleanClose {
                                    offset: self.consumed,
                                })
                            }
                            Some(Eof::Clean) => {
                                self.recv = Rx::PendingEnd;
                                continue;
                            }
                            None => return Ok(None),
                        }
                    }
                    let mut n = self.filled.min(self.read_chunk()) as u64;
                    if let Some(limit) = self.config.body_size_limit {
                        if self.body_received >= limit {
                            return Err(Error::BodyTooLarge {
                                offset: self.consumed,
                                limit,
                            });
                        }
                        n = n.min(limit - self.body_received);
                    }
                    self.body_received += n;
                    return Ok(Some(Event::Body(self.take(n as usize))));
                }
                Rx::Chunked => {
                    let (used, next) = self
                        .chunked
                        .decode(&self.rx[..self.filled], self.consumed)?;
                    self.skip(used);
                    match next {
                        ChunkedNext::Data(remaining) => {
                            if let Some(limit) = self.config.body_size_limit {
                                // At the chunk-size that would pass the limit
                                // (offset: its data start); nothing of that
                                // chunk is handed out.
                                if self.body_received.saturating_add(remaining) > limit {
                                    return Err(Error::BodyTooLarge {
                                        offset: self.consumed,
                                        limit,
                                    });
                                }
                            }
                            if self.filled == 0 {
                                return self.chunked_eof().map(|()| None);
                            }
                            let n = (self.filled as u64)
                                .min(remaining)
                                .min(self.read_chunk() as u64);
                            self.chunked.consume_data(n);
                            self.body_received += n;
                            return Ok(Some(Event::Body(self.take(n as usize))));
                        }
                        ChunkedNext::Trailers => {
                            self.recv = Rx::Trailers;
                            continue;
                        }
                        ChunkedNext::NeedInput => return self.chunked_eof().map(|()| None),
                    }
                }
                Rx::Trailers => {
                    if let Some(ev) = self.poll_trailers()? {
                        return Ok(Some(ev));
                    }
                    if self.recv == Rx::PendingEnd {
                        continue;
                    }
                    return Ok(None);
                }
                Rx::PendingEnd => {
                    self.recv = Rx::Done;
                    if self.send != Tx::Done && self.close.is_none() {
                        self.close = Some(CloseReason::EarlyResponse);
                    }
                    return Ok(Some(Event::End));
                }
            }
        }
    }

    /// The response head: skip empty lines before it, parse it, apply the
    /// framing verdict.
    fn poll_head(&mut self) -> Result<Option<Event>, Error> {
        // Empty lines before a status line (a server that sent a stray CRLF
        // after the previous body) are skipped, as hyper and llhttp do; they
        // are not part of the head. A bare LF line only with `bare_lf`.
        loop {
            match self.rx[..self.filled] {
                [b'\r', b'\n', ..] => self.skip(2),
                [b'\n', ..] if self.config.lenient.bare_lf => self.skip(1),
                [b'\n', ..] => {
                    return Err(Error::BareLineFeed {
                        offset: self.consumed,
                    })
                }
                [b'\r'] if self.eof.is_none() => {
                    // All buffered input examined: see `starved`.
                    self.scanned = self.filled;
                    return Ok(None);
                }
                _ => break,
            }
            self.scanned = 0;
        }
        let filled = self.filled;
        if filled == 0 {
            return self.head_eof();
        }
        // Re-parse only when bytes arrived since the last partial parse. Each
        // parse costs at most `max_head_bytes`, so the work per read is bounded
        // (httparse reports errors at the offending byte, so skipping parses
        // until a blank line arrives would make errors depend on the splits).
        if self.scanned == filled && self.eof.is_none() {
            return Ok(None);
        }
        let max = self.config.max_head_bytes;
        let base = self.consumed;
        let limit = filled.min(max.saturating_add(1));
        let Some(parsed) = head::parse_head(&self.rx[..limit], base, &self.config)? else {
            self.scanned = filled;
            if filled > max {
                return Err(Error::HeadTooLarge {
                    offset: base + max as u64,
                    limit: max,
                });
            }
            return self.head_eof();
        };
        self.scanned = 0;
        let framing = framing::message_body_length(
            parsed.status,
            parsed.version,
            self.req,
            &parsed.framing,
            &self.config.lenient,
            base,
        )?;
        if let (MessageBodyLength::ContentLength(n), Some(limit)) =
            (framing.body, self.config.body_size_limit)
        {
            if n > limit {
                return Err(Error::BodyTooLarge {
                    offset: base + parsed.len as u64,
                    limit,
                });
            }
        }
        if self.config.lenient.obs_fold {
            head::unfold_obs_fold(
                &mut self.rx[..parsed.len],
                parsed.fields_at,
                base,
                self.config.lenient.bare_lf,
            )?;
        }
        let raw = self.take(parsed.len);
        let head = ResponseHead {
            version: parsed.version,
            status: parsed.status,
            reason: parsed.reason,
            fields: Fields::new(raw, parsed.fields_at, parsed.field_count),
            body: framing.body,
        };
        if head.is_informational() && head.status != 101 {
            return Ok(Some(Event::Informational(head)));
        }
        if let Some(reason) = framing.close {
            self.set_close(reason);
        }
        self.recv = match framing.body {
            MessageBodyLength::None | MessageBodyLength::ContentLength(0) => Rx::PendingEnd,
            MessageBodyLength::ContentLength(n) => Rx::Length(n),
            MessageBodyLength::Chunked => {
                self.chunked = ChunkedDecoder::new(self.config.max_chunk_extension_bytes);
                Rx::Chunked
            }
            MessageBodyLength::CloseDelimited => Rx::Close,
        };
        Ok(Some(Event::Head(head)))
    }

    /// A head is incomplete: an error at the end of input.
    fn head_eof(&self) -> Result<Option<Event>, Error> {
        if self.eof.is_some() {
            return Err(Error::IncompleteHead {
                offset: self.consumed + self.filled as u64,
                received: self.filled,
            });
        }
        Ok(None)
    }

    /// At the end of input inside a chunked body: an error unless the
    /// last-chunk arrived and the leniency accepts a missing final CRLF.
    fn chunked_eof(&mut self) -> Result<(), Error> {
        if self.eof.is_none() {
            return Ok(());
        }
        if self.recv == Rx::Trailers && self.filled == 0 && self.config.lenient.last_chunk_then_eof
        {
            self.recv = Rx::PendingEnd;
            return Ok(());
        }
        Err(Error::IncompleteChunkedBody {
            offset: self.consumed + self.filled as u64,
            received: self.body_received,
        })
    }

    /// The trailer section after the last-chunk.
    fn poll_trailers(&mut self) -> Result<Option<Event>, Error> {
        let filled = self.filled;
        if self.scanned == filled && filled > 0 && self.eof.is_none() {
            return Ok(None);
        }
        let max = self.config.max_trailer_bytes;
        let base = self.consumed;
        let Some(parsed) = trailers::parse_trailers(&self.rx[..filled], base, &self.config)? else {
            // All buffered input examined: see `starved`.
            self.scanned = filled;
            // (A lone CR may still become the empty section, which no limit
            // counts.)
            if filled > max && self.rx[..filled] != *b"\r" {
                return Err(Error::TrailerTooLarge {
                    offset: base + max as u64,
                    limit: max,
                });
            }
            return self.chunked_eof().map(|()| None);
        };
        self.scanned = 0;
        self.recv = Rx::PendingEnd;
        if parsed.field_count == 0 {
            self.skip(parsed.len);
            return Ok(None);
        }
        let raw = self.take(parsed.len);
        Ok(Some(Event::Trailers(Fields::new(
            raw,
            0,
            parsed.field_count,
        ))))
    }
}
