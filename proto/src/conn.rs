//! The client-role connection state machine.

use std::mem::MaybeUninit;

use bytes::{Buf, Bytes, BytesMut};

use crate::config::Config;
use crate::error::Error;
use crate::fields::{trim_ows, Fields};
use crate::head::{MessageBodyLength, ResponseHead, Version};
use crate::request::{self, method, SendFraming};

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
    /// Inside a chunked body.
    Chunked(Chunk),
    /// Inside a close-delimited body.
    Close,
    /// The response is complete; `End` not yet handed out.
    PendingEnd,
    /// `End` was handed out.
    Done,
}

/// States of the chunked decoder (RFC 9112 §7.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Chunk {
    /// Expecting the first HEXDIG of a chunk-size.
    Start,
    /// Inside the chunk-size digits.
    Size,
    /// Whitespace after the chunk-size (only `;` may follow).
    SizeBws,
    /// After `;`, before the extension name.
    ExtBws,
    ExtName,
    ExtNameBws,
    ExtValBws,
    ExtValToken,
    Quoted,
    QuotedEscape,
    /// Right after a quoted chunk-ext-val.
    ExtAfterValue,
    /// Whitespace after a value: only `;` may follow.
    ExtValueBws,
    /// Saw CR of the chunk line, expecting LF.
    LineLf,
    /// Inside chunk-data: bytes left.
    Data(u64),
    DataCr,
    DataLf,
    /// After the last-chunk: the trailer section.
    Trailers,
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
    /// A 101 or a 2xx to CONNECT was received: the connection now carries
    /// another protocol (see [`Connection::take_remaining`]).
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

#[derive(Debug, Clone, Copy)]
struct Outstanding {
    head: bool,
    connect: bool,
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
    req: Outstanding,
    /// Bytes of `rx` known to hold no end of head/trailers (0: not scanned).
    scanned: usize,
    chunk_size: u64,
    chunk_digits: u8,
    ext_bytes: usize,
    body_received: u64,
    close: Option<CloseReason>,
    error: Option<Error>,
    handed_over: bool,
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("send", &self.send)
            .field("recv", &self.recv)
            .field("buffered", &self.filled)
            .field("close", &self.close)
            .field("error", &self.error)
            .finish()
    }
}

const STACK_FIELDS: usize = 128;

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
            req: Outstanding {
                head: false,
                connect: false,
            },
            scanned: 0,
            chunk_size: 0,
            chunk_digits: 0,
            ext_bytes: 0,
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
        self.req = Outstanding {
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
        self.finish_with_trailers(std::iter::empty::<(&str, &str)>())
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
        self.ext_bytes = 0;
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
        if self.is_switched() {
            return SendState::SwitchedProtocol;
        }
        match self.send {
            Tx::Idle if self.recv == Rx::Idle && self.eof.is_some() => SendState::MustClose,
            Tx::Idle => SendState::Idle,
            Tx::Length(remaining) => SendState::SendingLength { remaining },
            Tx::Chunked => SendState::SendingChunked,
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
            Rx::Chunked(Chunk::Trailers) => RecvState::Trailers,
            Rx::Length(_) | Rx::Chunked(_) | Rx::Close | Rx::PendingEnd => RecvState::Body,
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
            Rx::Head | Rx::Chunked(Chunk::Trailers) => self.scanned == self.filled,
            Rx::Length(_) | Rx::Close | Rx::Chunked(_) => self.filled == 0,
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

    fn poll_inner(&mut self) -> Result<Option<Event>, Error> {
        loop {
            match self.recv {
                Rx::Idle | Rx::Done => return Ok(None),
                Rx::Head => {
                    let Some(head) = self.parse_head()? else {
                        if self.eof.is_some() {
                            return Err(Error::IncompleteHead {
                                offset: self.consumed + self.filled as u64,
                                received: self.filled,
                            });
                        }
                        return Ok(None);
                    };
                    return Ok(Some(head));
                }
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
                Rx::Chunked(state) => {
                    if let Some(ev) = self.poll_chunked(state)? {
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

    fn read_chunk(&self) -> usize {
        self.config.read_chunk_size.max(1)
    }

    fn set_close(&mut self, reason: CloseReason) {
        if self.close.is_none() {
            self.close = Some(reason);
        }
    }

    /// Parse a response head from the buffer. `Ok(None)`: incomplete.
    fn parse_head(&mut self) -> Result<Option<Event>, Error> {
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
            return Ok(None);
        }
        let max = self.config.max_head_bytes;
        // Re-parse only when bytes arrived since the last partial parse. Each
        // parse costs at most `max_head_bytes`, so the work per read is bounded
        // (httparse reports errors at the offending byte, so skipping parses
        // until a blank line arrives would make errors depend on the splits).
        if self.scanned == filled && self.eof.is_none() {
            return Ok(None);
        }
        let mut parser = httparse::ParserConfig::default();
        parser.allow_obsolete_multiline_headers_in_responses(self.config.lenient.obs_fold);
        let max_fields = self.config.max_fields;
        let mut stack: [MaybeUninit<httparse::Header<'_>>; STACK_FIELDS] =
            [const { MaybeUninit::uninit() }; STACK_FIELDS];
        let mut heap: Vec<MaybeUninit<httparse::Header<'_>>> = Vec::new();
        let headers: &mut [MaybeUninit<httparse::Header<'_>>] = if max_fields <= STACK_FIELDS {
            &mut stack[..max_fields]
        } else {
            heap.resize_with(max_fields, MaybeUninit::uninit);
            &mut heap[..]
        };
        // Never look past the limit: what lies beyond it cannot decide the
        // outcome, whatever the read sizes.
        let buf = &self.rx[..filled.min(max.saturating_add(1))];
        let mut resp = httparse::Response::new(&mut []);
        let head_len = match parser.parse_response_with_uninit_headers(&mut resp, buf, headers) {
            Ok(httparse::Status::Complete(n)) => n,
            Ok(httparse::Status::Partial) => {
                self.scanned = filled;
                return self.check_partial_head(filled, max).map(|()| None);
            }
            Err(httparse::Error::TooManyHeaders) => {
                return Err(Error::TooManyFields {
                    offset: self.consumed,
                    limit: max_fields,
                })
            }
            Err(e) => {
                let limit = filled.min(max + 1);
                return Err(head_error(
                    &parser,
                    &self.rx[..limit],
                    e,
                    self.consumed,
                    max_fields,
                ));
            }
        };
        if head_len > max {
            return Err(Error::HeadTooLarge {
                offset: self.consumed + max as u64,
                limit: max,
            });
        }
        self.scanned = 0;
        let base = self.consumed;
        let head = &buf[..head_len];
        let status = resp.code.unwrap_or(0);
        let version = if resp.version == Some(0) {
            Version::Http10
        } else {
            Version::Http11
        };
        // Status line: find its end, check the code range and CRLF.
        let line_end = find_lf(head, 0).unwrap_or(head_len - 1);
        let code_at = head[..line_end]
            .iter()
            .position(|&b| b == b' ')
            .map_or(0, |p| p + 1);
        if status < 100 {
            return Err(Error::InvalidStatusCode {
                offset: base + code_at as u64,
            });
        }
        let lenient_lf = self.config.lenient.bare_lf;
        if !lenient_lf && (line_end == 0 || head[line_end - 1] != b'\r') {
            return Err(Error::BareLineFeed {
                offset: base + line_end as u64,
            });
        }
        // The reason phrase from the raw line (httparse drops one holding
        // obs-text): after "HTTP/1.x SP 3DIGIT SP", up to the line end.
        let line_stop = if head[line_end - 1] == b'\r' {
            line_end - 1
        } else {
            line_end
        };
        let reason_start = (code_at + 4).min(line_stop);
        let reason = (reason_start as u32, line_stop as u32);
        if !lenient_lf && head_len >= 2 && head[head_len - 2] != b'\r' {
            return Err(Error::BareLineFeed {
                offset: base + head_len as u64 - 1,
            });
        }

        // Field lines: index them, check line endings, pick out framing fields.
        let mut content_length: Option<u64> = None;
        let mut te: Option<(bool, usize)> = None; // (final coding chunked, offset)
        let mut te_chunked = 0usize;
        let mut te_bad: Option<usize> = None;
        let mut conn_close = false;
        let mut conn_keep_alive = false;
        for h in resp.headers.iter() {
            let name_at = || offset_in(head, h.name.as_bytes()).unwrap_or(0);
            let v1 = match offset_in(head, h.value) {
                Some(v0) => v0 + h.value.len(),
                None => name_at() + h.name.len(),
            };
            // httparse accepts a CR only as part of CRLF, so a CR right after
            // the value settles it; otherwise (trailing whitespace, bare LF)
            // look for the LF.
            if !lenient_lf && head.get(v1) != Some(&b'\r') {
                let lf = find_lf(head, v1).unwrap_or(head_len - 1);
                if head[lf - 1] != b'\r' {
                    return Err(Error::BareLineFeed {
                        offset: base + lf as u64,
                    });
                }
            }
            let name = h.name.as_bytes();
            match name.len() {
                14 if token_eq_lower(name, b"content-length") => {
                    let at = base + name_at() as u64;
                    for el in h.value.split(|&b| b == b',') {
                        let el = trim_ows(el);
                        if el.is_empty() || !el.iter().all(u8::is_ascii_digit) {
                            return Err(Error::InvalidContentLength { offset: at });
                        }
                        let Some(n) = request::parse_decimal(el) else {
                            return Err(Error::InvalidContentLength { offset: at });
                        };
                        if content_length.is_some_and(|c| c != n) {
                            return Err(Error::ConflictingContentLength { offset: at });
                        }
                        content_length = Some(n);
                    }
                }
                17 if token_eq_lower(name, b"transfer-encoding") => {
                    // One list across all fields; chunked at most once (RFC 9112 §6.1).
                    match request::transfer_codings(h.value) {
                        Some((count, last)) if te_chunked + count <= 1 => {
                            te_chunked += count;
                            te = Some((last, name_at()));
                        }
                        _ => te_bad = Some(name_at()),
                    }
                }
                10 if token_eq_lower(name, b"connection") => {
                    for el in h.value.split(|&b| b == b',') {
                        let el = trim_ows(el);
                        conn_close |= el.eq_ignore_ascii_case(b"close");
                        conn_keep_alive |= el.eq_ignore_ascii_case(b"keep-alive");
                    }
                }
                _ => {}
            }
        }
        let field_count = resp.headers.len();

        // Message body length, RFC 9112 §6.3, in the RFC's order.
        let body = if (100..200).contains(&status) && status != 101 {
            MessageBodyLength::None
        } else if status == 101 {
            self.set_close(CloseReason::SwitchingProtocols);
            MessageBodyLength::None
        } else if self.req.head || status == 204 || status == 304 {
            MessageBodyLength::None
        } else if self.req.connect && (200..300).contains(&status) {
            self.set_close(CloseReason::Tunnel);
            MessageBodyLength::None
        } else if let Some(at) = te_bad {
            return Err(Error::InvalidTransferEncoding {
                offset: base + at as u64,
            });
        } else if let Some((chunked, at)) = te {
            if version == Version::Http10 {
                return Err(Error::TransferEncodingInHttp10 {
                    offset: base + at as u64,
                });
            }
            if content_length.is_some() {
                if !self.config.lenient.content_length_with_transfer_encoding {
                    return Err(Error::ContentLengthWithTransferEncoding { offset: base });
                }
                self.set_close(CloseReason::ContentLengthWithTransferEncoding);
            }
            if chunked {
                MessageBodyLength::Chunked
            } else {
                MessageBodyLength::CloseDelimited
            }
        } else if let Some(n) = content_length {
            MessageBodyLength::ContentLength(n)
        } else {
            MessageBodyLength::CloseDelimited
        };
        if let (MessageBodyLength::ContentLength(n), Some(limit)) =
            (body, self.config.body_size_limit)
        {
            if n > limit {
                return Err(Error::BodyTooLarge {
                    offset: base + head_len as u64,
                    limit,
                });
            }
        }

        // Unfold obs-fold in place: the line break of every continuation line
        // becomes SP, as RFC 9112 §5.2 allows ("replace each received obs-fold
        // with one or more SP octets"), wherever in the field line it is.
        if self.config.lenient.obs_fold {
            let fields_at = line_end + 1;
            // Folded lines hide LFs from the per-line checks above: check
            // every LF of the field section once.
            if !lenient_lf {
                if let Some(i) = bare_lf_in(&self.rx[fields_at..head_len]) {
                    return Err(Error::BareLineFeed {
                        offset: base + (fields_at + i) as u64,
                    });
                }
            }
            let folds = (fields_at..head_len - 1)
                .any(|i| self.rx[i] == b'\n' && matches!(self.rx[i + 1], b' ' | b'\t'));
            if folds {
                for i in fields_at..head_len - 1 {
                    if self.rx[i] == b'\n' && matches!(self.rx[i + 1], b' ' | b'\t') {
                        self.rx[i] = b' ';
                        if self.rx[i - 1] == b'\r' {
                            self.rx[i - 1] = b' ';
                        }
                    }
                }
            }
        }

        let raw = self.take(head_len);
        let fields = Fields::new(raw, line_end + 1, field_count);
        let head = ResponseHead {
            version,
            status,
            reason,
            fields,
            body,
        };
        if head.is_informational() && status != 101 {
            return Ok(Some(Event::Informational(head)));
        }

        // Reuse verdict from the final head.
        if version == Version::Http10 && !conn_keep_alive {
            self.set_close(CloseReason::Http10);
        }
        if conn_close {
            self.set_close(CloseReason::ConnectionClose);
        }
        self.recv = match body {
            MessageBodyLength::None | MessageBodyLength::ContentLength(0) => Rx::PendingEnd,
            MessageBodyLength::ContentLength(n) => Rx::Length(n),
            MessageBodyLength::Chunked => Rx::Chunked(Chunk::Start),
            MessageBodyLength::CloseDelimited => {
                self.set_close(CloseReason::CloseDelimited);
                Rx::Close
            }
        };
        Ok(Some(Event::Head(head)))
    }

    fn check_partial_head(&self, filled: usize, max: usize) -> Result<(), Error> {
        if filled > max {
            return Err(Error::HeadTooLarge {
                offset: self.consumed + max as u64,
                limit: max,
            });
        }
        Ok(())
    }

    /// Advance the chunked decoder. `Ok(None)` with `recv == PendingEnd` means
    /// the message ended; otherwise more input is needed.
    fn poll_chunked(&mut self, mut state: Chunk) -> Result<Option<Event>, Error> {
        loop {
            match state {
                Chunk::Data(remaining) => {
                    if self.filled == 0 {
                        self.recv = Rx::Chunked(state);
                        return self.chunked_eof().map(|()| None);
                    }
                    let n = (self.filled as u64)
                        .min(remaining)
                        .min(self.read_chunk() as u64) as usize;
                    let left = remaining - n as u64;
                    self.recv = Rx::Chunked(if left == 0 {
                        Chunk::DataCr
                    } else {
                        Chunk::Data(left)
                    });
                    self.body_received += n as u64;
                    return Ok(Some(Event::Body(self.take(n))));
                }
                Chunk::Trailers => {
                    self.recv = Rx::Chunked(state);
                    return self.poll_trailers();
                }
                _ => {}
            }
            // Framing bytes: run the line state machine over what is buffered.
            let base = self.consumed;
            let max_ext = self.config.max_chunk_extension_bytes;
            let mut i = 0;
            let buf = &self.rx[..self.filled];
            let mut next: Option<Chunk> = None;
            while i < buf.len() {
                let b = buf[i];
                let at = base + i as u64;
                if !matches!(
                    state,
                    Chunk::Start | Chunk::Size | Chunk::LineLf | Chunk::DataCr | Chunk::DataLf
                ) {
                    // Everything between the chunk-size and CR counts as extension.
                    if b != b'\r' {
                        self.ext_bytes += 1;
                        if self.ext_bytes > max_ext {
                            return Err(Error::ChunkExtensionTooLarge {
                                offset: at,
                                limit: max_ext,
                            });
                        }
                    }
                }
                state = match state {
                    Chunk::Start => match hex_val(b) {
                        Some(v) => {
                            self.chunk_size = u64::from(v);
                            self.chunk_digits = 1;
                            Chunk::Size
                        }
                        None => return Err(Error::InvalidChunkSize { offset: at }),
                    },
                    Chunk::Size => match hex_val(b) {
                        Some(v) => {
                            if self.chunk_digits >= 16 {
                                return Err(Error::ChunkSizeOverflow { offset: at });
                            }
                            self.chunk_digits += 1;
                            self.chunk_size = self.chunk_size << 4 | u64::from(v);
                            Chunk::Size
                        }
                        None => match b {
                            b'\r' => Chunk::LineLf,
                            b';' => {
                                self.ext_bytes += 1;
                                if self.ext_bytes > max_ext {
                                    return Err(Error::ChunkExtensionTooLarge {
                                        offset: at,
                                        limit: max_ext,
                                    });
                                }
                                Chunk::ExtBws
                            }
                            b' ' | b'\t' => {
                                self.ext_bytes += 1;
                                if self.ext_bytes > max_ext {
                                    return Err(Error::ChunkExtensionTooLarge {
                                        offset: at,
                                        limit: max_ext,
                                    });
                                }
                                Chunk::SizeBws
                            }
                            b'\n' => return Err(Error::InvalidChunkLineEnding { offset: at }),
                            _ => return Err(Error::InvalidChunkSize { offset: at }),
                        },
                    },
                    Chunk::SizeBws => match b {
                        b' ' | b'\t' => Chunk::SizeBws,
                        b';' => Chunk::ExtBws,
                        _ => return Err(Error::InvalidChunkSize { offset: at }),
                    },
                    Chunk::ExtBws => match b {
                        b' ' | b'\t' => Chunk::ExtBws,
                        b if request::is_tchar(b) => Chunk::ExtName,
                        _ => return Err(Error::InvalidChunkExtension { offset: at }),
                    },
                    Chunk::ExtName => match b {
                        b if request::is_tchar(b) => Chunk::ExtName,
                        b' ' | b'\t' => Chunk::ExtNameBws,
                        b'=' => Chunk::ExtValBws,
                        b';' => Chunk::ExtBws,
                        b'\r' => Chunk::LineLf,
                        _ => return Err(Error::InvalidChunkExtension { offset: at }),
                    },
                    // BWS only before ";" or "=", never before the CRLF.
                    Chunk::ExtNameBws => match b {
                        b' ' | b'\t' => Chunk::ExtNameBws,
                        b'=' => Chunk::ExtValBws,
                        b';' => Chunk::ExtBws,
                        _ => return Err(Error::InvalidChunkExtension { offset: at }),
                    },
                    Chunk::ExtValBws => match b {
                        b' ' | b'\t' => Chunk::ExtValBws,
                        b'"' => Chunk::Quoted,
                        b if request::is_tchar(b) => Chunk::ExtValToken,
                        _ => return Err(Error::InvalidChunkExtension { offset: at }),
                    },
                    Chunk::ExtValToken => match b {
                        b if request::is_tchar(b) => Chunk::ExtValToken,
                        b' ' | b'\t' => Chunk::ExtValueBws,
                        b';' => Chunk::ExtBws,
                        b'\r' => Chunk::LineLf,
                        _ => return Err(Error::InvalidChunkExtension { offset: at }),
                    },
                    Chunk::Quoted => match b {
                        b'"' => Chunk::ExtAfterValue,
                        b'\\' => Chunk::QuotedEscape,
                        b'\t' | b' ' | 0x21 | 0x23..=0x5b | 0x5d..=0x7e | 0x80..=0xff => {
                            Chunk::Quoted
                        }
                        _ => return Err(Error::InvalidChunkExtension { offset: at }),
                    },
                    Chunk::QuotedEscape => match b {
                        b'\t' | b' ' | 0x21..=0x7e | 0x80..=0xff => Chunk::Quoted,
                        _ => return Err(Error::InvalidChunkExtension { offset: at }),
                    },
                    Chunk::ExtAfterValue => match b {
                        b' ' | b'\t' => Chunk::ExtValueBws,
                        b';' => Chunk::ExtBws,
                        b'\r' => Chunk::LineLf,
                        _ => return Err(Error::InvalidChunkExtension { offset: at }),
                    },
                    Chunk::ExtValueBws => match b {
                        b' ' | b'\t' => Chunk::ExtValueBws,
                        b';' => Chunk::ExtBws,
                        _ => return Err(Error::InvalidChunkExtension { offset: at }),
                    },
                    Chunk::LineLf => {
                        if b != b'\n' {
                            return Err(Error::InvalidChunkLineEnding { offset: at });
                        }
                        i += 1;
                        if self.chunk_size == 0 {
                            next = Some(Chunk::Trailers);
                        } else {
                            if let Some(limit) = self.config.body_size_limit {
                                if self.body_received.saturating_add(self.chunk_size) > limit {
                                    // Offset: the start of the chunk-data that would pass it.
                                    return Err(Error::BodyTooLarge {
                                        offset: base + i as u64,
                                        limit,
                                    });
                                }
                            }
                            next = Some(Chunk::Data(self.chunk_size));
                        }
                        break;
                    }
                    Chunk::DataCr => {
                        if b != b'\r' {
                            return Err(Error::MissingChunkDataCrlf { offset: at });
                        }
                        Chunk::DataLf
                    }
                    Chunk::DataLf => {
                        if b != b'\n' {
                            return Err(Error::MissingChunkDataCrlf { offset: at });
                        }
                        Chunk::Start
                    }
                    Chunk::Data(_) | Chunk::Trailers => unreachable!("handled above"),
                };
                i += 1;
            }
            self.skip(i);
            match next {
                Some(s) => state = s,
                None => {
                    self.recv = Rx::Chunked(state);
                    return self.chunked_eof().map(|()| None);
                }
            }
        }
    }

    /// At EOF inside a chunked body: an error unless the last-chunk arrived and
    /// the leniency accepts a missing final CRLF.
    fn chunked_eof(&mut self) -> Result<(), Error> {
        if self.eof.is_none() || self.filled > 0 {
            return Ok(());
        }
        if self.recv == Rx::Chunked(Chunk::Trailers) && self.config.lenient.last_chunk_then_eof {
            self.recv = Rx::PendingEnd;
            return Ok(());
        }
        Err(Error::IncompleteChunkedBody {
            offset: self.consumed,
            received: self.body_received,
        })
    }

    /// The trailer section after the last-chunk.
    fn poll_trailers(&mut self) -> Result<Option<Event>, Error> {
        let filled = self.filled;
        if filled == 0 {
            return self.chunked_eof().map(|()| None);
        }
        let base = self.consumed;
        let lenient_lf = self.config.lenient.bare_lf;
        // Empty trailer section: just CRLF.
        match self.rx[0] {
            b'\r' => {
                if filled < 2 {
                    // All buffered input examined: see `starved`.
                    self.scanned = filled;
                    return self.trailer_eof().map(|()| None);
                }
                if self.rx[1] != b'\n' {
                    return Err(Error::InvalidChunkLineEnding { offset: base + 1 });
                }
                self.skip(2);
                self.recv = Rx::PendingEnd;
                return Ok(None);
            }
            b'\n' => {
                if !lenient_lf {
                    return Err(Error::BareLineFeed { offset: base });
                }
                self.skip(1);
                self.recv = Rx::PendingEnd;
                return Ok(None);
            }
            _ => {}
        }
        let max = self.config.max_trailer_bytes;
        if self.scanned == filled && self.eof.is_none() {
            return Ok(None);
        }
        let max_fields = self.config.max_trailer_fields;
        let mut stack: [httparse::Header<'_>; 32] = [httparse::EMPTY_HEADER; 32];
        let mut heap: Vec<httparse::Header<'_>> = Vec::new();
        let headers: &mut [httparse::Header<'_>] = if max_fields <= 32 {
            &mut stack[..max_fields]
        } else {
            heap.resize(max_fields, httparse::EMPTY_HEADER);
            &mut heap[..]
        };
        let buf = &self.rx[..filled.min(max.saturating_add(1))];
        let (len, parsed) = match httparse::parse_headers(buf, headers) {
            Ok(httparse::Status::Complete((len, parsed))) => (len, parsed),
            Ok(httparse::Status::Partial) => {
                self.scanned = filled;
                return self.check_partial_trailers(filled, max);
            }
            Err(httparse::Error::TooManyHeaders) => {
                return Err(Error::TooManyTrailerFields {
                    offset: base,
                    limit: max_fields,
                })
            }
            Err(_) => {
                let limit = filled.min(max + 1);
                let at = trailer_error_offset(&self.rx[..limit], max_fields);
                return Err(Error::InvalidTrailerField {
                    offset: base + at as u64,
                });
            }
        };
        if len > max {
            return Err(Error::TrailerTooLarge {
                offset: base + max as u64,
                limit: max,
            });
        }
        let sect = &buf[..len];
        if !lenient_lf {
            if let Some(i) = bare_lf_in(sect) {
                return Err(Error::BareLineFeed {
                    offset: base + i as u64,
                });
            }
        }
        let field_count = parsed.len();
        self.scanned = 0;
        let raw = self.take(len);
        self.recv = Rx::PendingEnd;
        Ok(Some(Event::Trailers(Fields::new(raw, 0, field_count))))
    }

    fn trailer_eof(&mut self) -> Result<(), Error> {
        if self.eof.is_some() {
            return Err(Error::IncompleteChunkedBody {
                offset: self.consumed + self.filled as u64,
                received: self.body_received,
            });
        }
        Ok(())
    }

    fn check_partial_trailers(
        &mut self,
        filled: usize,
        max: usize,
    ) -> Result<Option<Event>, Error> {
        if filled > max {
            return Err(Error::TrailerTooLarge {
                offset: self.consumed + max as u64,
                limit: max,
            });
        }
        self.trailer_eof().map(|()| None)
    }
}

/// ASCII case-insensitive comparison of a token (a field name the parser
/// accepted) with a lowercase name. `b | 0x20` lowercases letters and leaves
/// every other tchar unchanged; the only non-tchar it could confuse (CR with
/// `-`) never occurs in a token.
fn token_eq_lower(token: &[u8], lower: &[u8]) -> bool {
    token.len() == lower.len() && token.iter().zip(lower).all(|(&a, &b)| a | 0x20 == b)
}

fn hex_val(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Offset of `part` inside `whole`, when `part` is a subslice of it.
fn offset_in(whole: &[u8], part: &[u8]) -> Option<usize> {
    let start = (part.as_ptr() as usize).wrapping_sub(whole.as_ptr() as usize);
    (start <= whole.len() && part.len() <= whole.len() - start).then_some(start)
}

fn find_lf(buf: &[u8], from: usize) -> Option<usize> {
    buf.get(from..)?
        .iter()
        .position(|&b| b == b'\n')
        .map(|p| p + from)
}

/// Index of the first LF not preceded by CR.
fn bare_lf_in(buf: &[u8]) -> Option<usize> {
    let mut from = 0;
    while let Some(i) = find_lf(buf, from) {
        if i == 0 || buf[i - 1] != b'\r' {
            return Some(i);
        }
        from = i + 1;
    }
    None
}

/// Map an httparse error to ours, locating the offending byte: the shortest
/// prefix of the head that httparse rejects ends at it (partial input is never
/// an error for httparse).
fn head_error(
    parser: &httparse::ParserConfig,
    buf: &[u8],
    err: httparse::Error,
    base: u64,
    max_fields: usize,
) -> Error {
    let mut headers = vec![httparse::EMPTY_HEADER; max_fields.min(STACK_FIELDS * 8)];
    let mut fails = |len: usize| {
        let mut resp = httparse::Response::new(&mut headers);
        parser.parse_response(&mut resp, &buf[..len]).is_err()
    };
    let (mut lo, mut hi) = (1, buf.len());
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        if fails(mid) {
            hi = mid;
        } else {
            lo = mid + 1;
        }
    }
    let at = lo.saturating_sub(1).min(buf.len().saturating_sub(1));
    let offset = base + at as u64;
    let byte = buf.get(at).copied().unwrap_or(0);
    if at > 0 && buf[at - 1] == b'\r' && byte != b'\n' {
        return Error::BareCarriageReturn { offset };
    }
    match err {
        httparse::Error::Version => Error::InvalidVersion { offset },
        httparse::Error::Status => {
            if byte.is_ascii_digit() || at < 12 {
                Error::InvalidStatusCode { offset }
            } else {
                Error::InvalidStatusLine { offset }
            }
        }
        httparse::Error::NewLine => Error::BareCarriageReturn { offset },
        httparse::Error::HeaderValue => Error::InvalidFieldValue { offset },
        httparse::Error::HeaderName if byte == b' ' || byte == b'\t' => {
            if at > 0 && buf[at - 1] == b'\n' {
                Error::ObsFold { offset }
            } else {
                Error::WhitespaceBeforeColon { offset }
            }
        }
        httparse::Error::HeaderName => Error::InvalidFieldName { offset },
        httparse::Error::TooManyHeaders => Error::TooManyFields {
            offset: base,
            limit: max_fields,
        },
        httparse::Error::Token => Error::InvalidStatusLine { offset },
    }
}

fn trailer_error_offset(buf: &[u8], max_fields: usize) -> usize {
    let mut headers = vec![httparse::EMPTY_HEADER; max_fields.min(1024)];
    let mut fails = |len: usize| httparse::parse_headers(&buf[..len], &mut headers).is_err();
    let (mut lo, mut hi) = (1, buf.len());
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        if fails(mid) {
            hi = mid;
        } else {
            lo = mid + 1;
        }
    }
    lo.saturating_sub(1)
}
