//! The client-role connection state machine: [`Connection`], its events and
//! states. The parts it drives live beside it, one concern each:
//!
//! * [`head`]: the status line and field lines (httparse plus the checks it
//!   leaves to us);
//! * [`framing`]: message body length and the reuse verdict, one pure function
//!   of the head (RFC 9112 §6.3);
//! * [`chunked`]: [`ChunkedDecoder`], the chunked framing (RFC 9112 §7.1);
//! * [`trailers`]: the trailer section (RFC 9112 §7.1.2);
//! * [`scan`]: when to parse a head or trailer section that arrives in pieces
//!   (linear cost and the same outcome for any split).
//!
//! The lexical rules they share with the request encoder are in
//! `crate::syntax`, the error locators in `crate::locate`.

use alloc::vec::Vec;

use bytes::{Buf, Bytes, BytesMut};

use crate::config::{Config, Leniency};
use crate::error::Error;
use crate::fields::Fields;
use crate::head::{MessageBodyLength, ResponseHead};
use crate::read_size::ReadSize;
use crate::request::{self, method, SendFraming};

pub(crate) mod chunked;
pub(crate) mod framing;
pub(crate) mod head;
pub(crate) mod scan;
pub(crate) mod trailers;

pub use chunked::{ChunkedDecoder, ChunkedNext};
use framing::RequestKind;
use scan::SectionScan;

/// The receive room a response starts with (hyper's first read buffer):
/// [`Connection::recv_buf`] doubles it after each read that filled it, up
/// to [`Config::recv_buf_size`], and halves it after two short ones.
const FIRST_RECV_ROOM: usize = 8 * 1024;

/// A receive buffer allocated larger than this is "grown" (a download's,
/// allocated at exactly the size needed): [`Connection::reset`] gives it
/// back, and a head or trailer section taken out of it is copied so that it
/// does not keep it alive. Smaller buffers are kept and shared.
const GROWN_RECV_ROOM: usize = 64 * 1024;

/// The adaptive room of a connection under `config`.
fn recv_room(config: &Config) -> ReadSize {
    let most = config.recv_buf_size.max(1);
    ReadSize::new(FIRST_RECV_ROOM.min(most), most)
}

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
    /// Bytes arrived that answer no request: past the end of a response
    /// (buffered when its [`Event::End`] was handed out, or arriving before
    /// [`reset`](Connection::reset)), or while no request was outstanding.
    /// Each response answers the one request outstanding, in order (RFC 9112
    /// §9.3, §9.3.2; this crate never pipelines), so such bytes come from a
    /// desynchronised or hostile peer and would be taken for the answer to
    /// the next request: the connection must not carry another. Every byte
    /// counts, empty lines too (hyper likewise refuses a connection with
    /// unread bytes once idle). The response before stays complete and valid.
    UnsolicitedData,
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
    /// No request outstanding and one may be sent:
    /// [`send_request`](Connection::send_request) may be called. Exactly when
    /// [`Connection::is_idle`] (and [`recv_state`](Connection::recv_state) is
    /// [`RecvState::Idle`]).
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
    /// No request outstanding, so no response expected, and one may be sent:
    /// exactly when [`Connection::is_idle`].
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
    /// [`close_reason`](Connection::close_reason) says why. Also with no
    /// request outstanding once bytes arrived that answer none
    /// ([`CloseReason::UnsolicitedData`]).
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
/// * **Getters** say where the connection is and never change it:
///   [`send_state`](Self::send_state) and [`recv_state`](Self::recv_state)
///   (the two sides' states: project them instead of keeping a copy),
///   [`wants_receive`](Self::wants_receive) ("give me bytes", rustls'
///   `wants_read`), [`wants_transmit`](Self::wants_transmit),
///   [`close_reason`](Self::close_reason), [`can_reuse`](Self::can_reuse),
///   [`error`](Self::error), [`is_idle`](Self::is_idle),
///   [`input_offset`](Self::input_offset), [`buffered`](Self::buffered), …
/// * **Input** hands in what the socket gave: [`recv_buf`](Self::recv_buf) +
///   [`receive_filled`](Self::receive_filled) (read straight into the
///   connection's buffer: the socket read is the only copy), or
///   [`receive`](Self::receive); and the end of input, clean
///   ([`receive_eof`](Self::receive_eof): FIN, TLS `close_notify`) or not
///   ([`receive_unclean_eof`](Self::receive_unclean_eof): TLS EOF without
///   `close_notify`, a reset). Input is only buffered: nothing is parsed
///   until `poll_event`.
/// * **Commands** queue output and move the send side:
///   [`send_request`](Self::send_request), [`send_body`](Self::send_body),
///   [`finish`](Self::finish), [`finish_with_trailers`](Self::finish_with_trailers),
///   [`reset`](Self::reset) (ready for the next request after `End`).
/// * **Outputs**: [`transmit_buf`](Self::transmit_buf) +
///   [`advance_transmit`](Self::advance_transmit) (bytes to write),
///   [`poll_event`](Self::poll_event) (response events), and
///   [`take_remaining`](Self::take_remaining) (the bytes after a 101 or a
///   tunnel's 2xx).
///
/// A driver drains the outputs in this order, after every command and every
/// input:
///
/// 1. write out `transmit_buf()` while [`wants_transmit`](Self::wants_transmit)
///    (a short write is fine: `advance_transmit` what was written, and write
///    the rest when the socket is writable again);
/// 2. call `poll_event()` until it returns `Ok(None)` or an error, handling
///    each [`Event`] (a response may arrive while the request body is still
///    being sent: keep reading while writing);
/// 3. when [`wants_receive`](Self::wants_receive), read the socket (into
///    `recv_buf()`) or wait until it is readable; an empty `recv_buf()` means
///    step 2 comes first;
/// 4. after [`Event::End`]: [`reset`](Self::reset) and go on when
///    [`can_reuse`](Self::can_reuse), close the connection when
///    [`close_reason`](Self::close_reason) says so, or hand it over with
///    [`take_remaining`](Self::take_remaining) after a protocol switch. A
///    kept connection that waits for its next request stays usable while
///    [`is_idle`](Self::is_idle): the end of input or any byte that arrives
///    meanwhile (handed in as usual) ends that.
///
/// `send_state()` changes only with commands, a switching response, errors
/// and the input's verdict on reuse; `recv_state()` only inside
/// `poll_event()`, `send_request()` and `reset()`, and with that verdict:
/// when no request is outstanding (idle, or after `End`), the end of input
/// and any byte that arrives end reuse at once (`Closed` or `MustClose`;
/// [`close_reason`](Self::close_reason) says which), without a
/// `poll_event()`. An error is final: the connection is dead, returns the same error
/// from every later call that needs input or output, and both states are
/// `Error`; events handed out before stay valid. Nothing here blocks,
/// allocates per body event, or reads a clock: timeouts belong to the driver.
///
/// ```text
///  send_state()                                  recv_state()
///
///  Idle ─send_request─► SendingLength ─┐         Idle ─send_request─► Head ◄─┐ Informational
///   ▲  (or SendingChunked, or Done)    │ send_body,  ▲                   │ └───┘ (1xx)
///   │                                  ▼ finish      │                   ▼ Head
///   └────────── reset ◄────────────── Done           │                  Body ─ Body* ─► Trailers
///                                      │             │                   │ End            │ Trailers?
///     MustClose ◄── close_reason() ────┤             └── reset ◄──────── Done ◄── End ────┘
///     SwitchedProtocol ◄── 101, 2xx to CONNECT       MustClose, SwitchedProtocol, Closed (EOF while idle)
///     Error ◄── any error ──────────────────────────► Error
/// ```
///
/// # Example: every state, byte for byte
///
/// ```
/// use pollhttp_proto::{
///     method, Bytes, CloseReason, Config, Connection, Error, Event, MessageBodyLength,
///     RecvState, SendState,
/// };
///
/// /// Take every queued byte off the transmit queue (the socket write).
/// fn written(conn: &mut Connection) -> Vec<u8> {
///     let out = conn.transmit_buf().to_vec();
///     conn.advance_transmit(out.len());
///     out
/// }
///
/// # fn main() -> Result<(), Error> {
/// let mut conn = Connection::new(Config::default());
/// assert_eq!((conn.send_state(), conn.recv_state()), (SendState::Idle, RecvState::Idle));
///
/// // A chunked upload that waits for 100 Continue.
/// conn.send_request(
///     method::POST,
///     "/upload",
///     [("Host", "example.com"), ("Transfer-Encoding", "chunked"), ("Expect", "100-continue")],
/// )?;
/// assert_eq!(
///     written(&mut conn),
///     b"POST /upload HTTP/1.1\r\nHost: example.com\r\nTransfer-Encoding: chunked\r\n\
///       Expect: 100-continue\r\n\r\n"
/// );
/// assert_eq!(conn.send_state(), SendState::SendingChunked);
/// assert_eq!(conn.recv_state(), RecvState::Head);
/// assert!(conn.wants_receive());
///
/// // An interim response.
/// conn.receive(b"HTTP/1.1 100 Continue\r\n\r\n");
/// let Some(Event::Informational(info)) = conn.poll_event()? else { unreachable!() };
/// assert_eq!(info.status(), 100);
/// assert_eq!(conn.poll_event()?, None);
/// assert!(conn.wants_receive());
///
/// // The body, one chunk per send_body, then the last-chunk.
/// conn.send_body(b"hello")?;
/// conn.finish()?;
/// assert_eq!(written(&mut conn), b"5\r\nhello\r\n0\r\n\r\n");
/// assert_eq!(conn.send_state(), SendState::Done);
///
/// // The head, in two reads: nothing comes out until it is complete.
/// conn.receive(b"HTTP/1.1 200 OK\r\nTransfer-Enc");
/// assert_eq!(conn.poll_event()?, None);
/// conn.receive(b"oding: chunked\r\n\r\n4\r\nabcd\r\n0\r\nX-Sum: 7\r\n\r\n");
/// let Some(Event::Head(head)) = conn.poll_event()? else { unreachable!() };
/// assert_eq!((head.status(), head.body_length()), (200, MessageBodyLength::Chunked));
/// assert_eq!(conn.recv_state(), RecvState::Body);
///
/// // Body, trailers, end.
/// assert_eq!(conn.poll_event()?, Some(Event::Body(Bytes::from_static(b"abcd"))));
/// let Some(Event::Trailers(trailers)) = conn.poll_event()? else { unreachable!() };
/// assert_eq!(trailers.get("x-sum"), Some(&b"7"[..]));
/// assert_eq!(conn.poll_event()?, Some(Event::End));
/// assert_eq!(conn.recv_state(), RecvState::Done);
///
/// // Reuse.
/// assert_eq!(conn.close_reason(), None);
/// conn.reset()?;
/// assert!(conn.is_idle());
///
/// // A response that ends the connection: `reset` is refused after it, and
/// // bytes after it are an error.
/// conn.send_request(method::GET, "/bye", [("Host", "example.com")])?;
/// assert_eq!(written(&mut conn), b"GET /bye HTTP/1.1\r\nHost: example.com\r\n\r\n");
/// conn.receive(b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok");
/// assert!(matches!(conn.poll_event()?, Some(Event::Head(_))));
/// assert_eq!(conn.poll_event()?, Some(Event::Body(Bytes::from_static(b"ok"))));
/// assert_eq!(conn.poll_event()?, Some(Event::End));
/// assert_eq!(conn.close_reason(), Some(CloseReason::ConnectionClose));
/// assert_eq!((conn.send_state(), conn.recv_state()), (SendState::MustClose, RecvState::MustClose));
/// assert!(matches!(conn.reset(), Err(Error::InvalidState { .. })));
/// let offset = conn.input_offset();
/// conn.receive(b"HTTP/1.1 200 OK\r\n\r\n");
/// assert_eq!(conn.poll_event(), Err(Error::DataAfterClose { offset }));
///
/// // A protocol switch: the bytes after the head belong to the new protocol.
/// let mut ws = Connection::new(Config::default());
/// ws.send_request(
///     method::GET,
///     "/chat",
///     [("Host", "example.com"), ("Connection", "upgrade"), ("Upgrade", "websocket")],
/// )?;
/// written(&mut ws);
/// ws.receive(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n\x81\x05hello");
/// let Some(Event::Head(head)) = ws.poll_event()? else { unreachable!() };
/// assert_eq!(head.status(), 101);
/// assert_eq!(ws.poll_event()?, Some(Event::End));
/// assert_eq!(ws.recv_state(), RecvState::SwitchedProtocol);
/// assert_eq!(ws.take_remaining(), &b"\x81\x05hello"[..]);
///
/// // An error, and the sticky state after it.
/// let mut bad = Connection::new(Config::default());
/// bad.send_request(method::GET, "/", [("Host", "example.com")])?;
/// written(&mut bad);
/// bad.receive(b"HTTP/1.1 200 OK\r\nContent-Length: 1, 2\r\n\r\n");
/// let error = bad.poll_event().unwrap_err();
/// assert_eq!(error, Error::ConflictingContentLength { offset: 17 });
/// assert_eq!(bad.poll_event(), Err(error.clone()));
/// assert_eq!(bad.send_request(method::GET, "/", [("Host", "example.com")]), Err(error.clone()));
/// assert_eq!((bad.send_state(), bad.recv_state()), (SendState::Error, RecvState::Error));
/// assert_eq!(bad.close_reason(), Some(CloseReason::Error));
/// # Ok(())
/// # }
/// ```
pub struct Connection {
    config: Config,
    tx: Vec<u8>,
    tx_pos: usize,
    send: Tx,
    /// `rx[..filled]` is unconsumed input; `rx[filled..]` zeroed spare room.
    rx: BytesMut,
    filled: usize,
    /// Room [`recv_buf`](Connection::recv_buf) lends now: it starts at
    /// [`FIRST_RECV_ROOM`], doubles after a read that filled it, up to
    /// `config.recv_buf_size`, halves after two short ones; each response
    /// starts over.
    recv_room: ReadSize,
    /// Room lent by the last `recv_buf` (a read that fills it grows the next).
    lent: usize,
    /// The last room lent was cut by the caller's limit.
    lent_cut: bool,
    /// `rx` was allocated larger than [`GROWN_RECV_ROOM`]: `reset` gives it
    /// back.
    rx_grown: bool,
    /// Input offset of `rx[0]`.
    consumed: u64,
    /// How the input ended, once it has.
    eof: Option<Eof>,
    recv: Rx,
    req: RequestKind,
    /// How far the head or trailer section being received was examined.
    scan: SectionScan,
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
            tx: Vec::new(),
            tx_pos: 0,
            send: Tx::Idle,
            recv_room: recv_room(&config),
            lent: 0,
            lent_cut: false,
            rx_grown: false,
            config,
            rx: BytesMut::new(),
            filled: 0,
            consumed: 0,
            eof: None,
            recv: Rx::Idle,
            req: RequestKind::default(),
            scan: SectionScan::default(),
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

    /// Change [`Config::body_size_limit`] (wire bytes of a response body;
    /// `None`: no limit) from the next response head on: a client whose
    /// requests on one connection have their own limits sets each before
    /// sending it. A response whose head was already parsed keeps the limit
    /// it was framed with for its Content-Length check, and is held to the
    /// new one for the bytes still to come.
    pub fn set_body_size_limit(&mut self, limit: Option<u64>) {
        self.config.body_size_limit = limit;
    }

    /// Change [`Config::lenient`] from the next response head on (a client
    /// whose requests on one connection have their own leniencies sets each
    /// before sending it). Costs a copy of four booleans.
    pub fn set_leniency(&mut self, lenient: Leniency) {
        self.config.lenient = lenient;
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
    /// [`Error::MissingHost`], [`Error::MultipleHost`], the framing rules
    /// ([`Error::InvalidRequestContentLength`],
    /// [`Error::DuplicateRequestContentLength`],
    /// [`Error::InvalidRequestTransferEncoding`],
    /// [`Error::RequestContentLengthWithTransferEncoding`]),
    /// [`Error::InvalidState`] (a request is already outstanding). Also
    /// [`Error::ClosedByPeer`] after the end of input,
    /// [`Error::UnsolicitedData`] when bytes arrived while no request was
    /// outstanding, and the connection's error if it is dead: exactly when
    /// [`is_idle`](Self::is_idle) is false.
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
        if let Some(e) = self.refusal() {
            return Err(e);
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

    /// Ready the connection for the next request after [`Event::End`]. Only a
    /// connection with nothing buffered past the response is reset: bytes that
    /// arrived before the next request was sent answer no request
    /// ([`CloseReason::UnsolicitedData`]).
    ///
    /// # Errors
    /// [`Error::InvalidState`] before `End` or when
    /// [`close_reason`](Self::close_reason) says the connection cannot be
    /// reused (bytes past the response included: exactly when
    /// [`can_reuse`](Self::can_reuse) is false); the connection's error if it
    /// is dead.
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
        self.scan.restart();
        self.recv_room.reset();
        if self.filled == 0 && self.rx_grown {
            // A large room (a download's) goes back; the next response
            // starts small.
            self.rx = BytesMut::new();
            self.rx_grown = false;
        }
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

    /// The next response event, `Ok(None)` when more input is needed (then
    /// [`wants_receive`](Self::wants_receive) is true) or no response is
    /// outstanding.
    ///
    /// Its cost is linear in the input however it is split: a head or
    /// trailer section is searched for its end one new byte at a time and
    /// parsed once it is decided (its empty line arrived, the limit was
    /// passed, or the input ended), so an error inside an unfinished head is
    /// reported then, at the same offset whatever the splits. The status
    /// line is decided sooner, by its own LF: an invalid status line is
    /// reported as soon as its line is complete.
    ///
    /// # Errors
    /// Any protocol error in the input (each variant names the rule and
    /// offset), including [`Error::DataAfterClose`] for bytes after the `End`
    /// of a response that ends the connection. After an error the connection
    /// is dead and returns the same error from every later call; events
    /// handed out before stay valid.
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
    ///
    /// The room adapts to the response, as hyper's read buffer does
    /// ([`ReadSize`]): it starts at 8 KiB (or `recv_buf_size` if smaller),
    /// doubles after each read that filled it, up to `recv_buf_size`, and
    /// halves after two reads in a row that returned less than half of it;
    /// each response ([`reset`](Self::reset)) starts over, and `reset`
    /// gives a grown buffer back. A connection that carries small responses
    /// touches 8 KiB; a download reads into rooms of `recv_buf_size` after
    /// a few full reads.
    #[must_use]
    pub fn recv_buf(&mut self) -> &mut [u8] {
        self.recv_buf_within(usize::MAX)
    }

    /// [`recv_buf`](Self::recv_buf), at most `limit` bytes (at least 1 while
    /// any room is left): for a driver whose read budget has `limit` bytes
    /// left. A read that fills a room cut by the limit does not grow the
    /// room (it says nothing about larger reads); a fresh allocation follows
    /// the limit too.
    #[must_use]
    pub fn recv_buf_within(&mut self, limit: usize) -> &mut [u8] {
        let size = self.recv_room.next();
        // Room for a whole over-limit head or trailer section (so the limit,
        // not the buffer, decides), and at least a CR and its LF.
        let cap = self
            .config
            .recv_buf_size
            .max(1)
            .max(self.config.max_head_bytes.saturating_add(1))
            .max(self.config.max_trailer_bytes.saturating_add(1))
            .max(2);
        if self.filled >= cap {
            self.lent = 0;
            return &mut [];
        }
        // Unprocessed input and room together stay within `cap`.
        let want = size.min(limit).min(cap - self.filled).max(1);
        let spare = self.rx.len() - self.filled;
        if spare < want / 2 || spare == 0 {
            self.rx.truncate(self.filled);
            if self.filled + want <= GROWN_RECV_ROOM {
                self.rx.reserve(want);
            } else {
                self.rx_grown = true;
                if !self.rx.try_reclaim(want) {
                    // Exactly the room asked for (`reserve` would double
                    // a large buffer).
                    let mut fresh = BytesMut::with_capacity(self.filled + want);
                    fresh.extend_from_slice(&self.rx);
                    self.rx = fresh;
                }
            }
            self.rx.resize(self.filled + want, 0);
        }
        let end = self.rx.len().min(self.filled + want);
        self.lent = end - self.filled;
        self.lent_cut = want < size;
        &mut self.rx[self.filled..end]
    }

    /// Instead of [`recv_buf_within`](Self::recv_buf_within), while a body
    /// with a Content-Length is arriving and nothing is buffered: how many
    /// of its bytes the caller may read from the socket straight into its
    /// own memory (at most `limit`, within the adaptive room, at most the
    /// rest of the body), skipping the receive buffer and the copy out of
    /// it. 0 in any other state (use the receive buffer). After the read,
    /// call [`receive_body_direct`](Self::receive_body_direct).
    ///
    /// Cost: a few comparisons; nothing is allocated or zeroed.
    #[must_use]
    pub fn direct_body_room(&mut self, limit: usize) -> usize {
        let Rx::Length(remaining) = self.recv else {
            return 0;
        };
        if self.filled != 0 || self.error.is_some() || self.eof.is_some() {
            return 0;
        }
        let size = self.recv_room.next();
        let want = usize::try_from(remaining).map_or(size.min(limit), |r| size.min(limit).min(r));
        self.lent = want;
        // A read that fills a room cut by the limit or the body's end says
        // nothing about larger reads.
        self.lent_cut = want < size;
        want
    }

    /// `n` body bytes were read into the caller's memory after
    /// [`direct_body_room`](Self::direct_body_room) (more than it allowed is
    /// clamped): they count as received body bytes, as an [`Event::Body`]
    /// of them would have (no event is made: the caller has them), and the
    /// adaptive room learns from the read. A body so completed ends at the
    /// next [`poll_event`](Self::poll_event) ([`Event::End`]). Ignored in
    /// any other state.
    pub fn receive_body_direct(&mut self, n: usize) {
        let room = core::mem::take(&mut self.lent);
        let Rx::Length(remaining) = self.recv else {
            return;
        };
        if self.filled != 0 {
            return;
        }
        let n = (n.min(room) as u64).min(remaining);
        self.note_read(room, n as usize);
        self.recv = Rx::Length(remaining - n);
        self.body_received += n;
        self.consumed += n;
    }

    /// A read of `n` bytes into `room` lent bytes: the adaptive room learns.
    /// A room of the whole size (or the spare tail of one, at least half of
    /// it) counts as the whole size: filling it grows it.
    fn note_read(&mut self, room: usize, n: usize) {
        if room == 0 {
            return;
        }
        let size = self.recv_room.next();
        if core::mem::take(&mut self.lent_cut) {
            self.recv_room.record(room, n);
        } else if n >= room {
            self.recv_room.record(size, size);
        } else {
            self.recv_room.record(size, n);
        }
    }

    /// Record that `n` bytes were written at the start of
    /// [`recv_buf`](Self::recv_buf). `n` past the lent room is clamped.
    pub fn receive_filled(&mut self, n: usize) {
        let room = core::mem::take(&mut self.lent);
        self.note_read(room, n);
        self.filled = (self.filled + n).min(self.rx.len());
    }

    /// Hand in bytes read from the socket (one copy into the receive buffer).
    pub fn receive(&mut self, data: &[u8]) {
        if data.is_empty() {
            return;
        }
        let room = self.recv_room.next();
        self.lent_cut = false;
        self.note_read(room, data.len());
        self.rx.truncate(self.filled);
        if self.rx.capacity() - self.rx.len() < data.len() {
            // Room for a whole receive buffer, not just this slice: one
            // allocation per refill even when the consumer keeps body bytes.
            self.rx.reserve(data.len().max(room));
            self.rx_grown |= self.rx.capacity() > GROWN_RECV_ROOM;
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
    /// (so far: once [`Event::End`] was handed out, only the input can still
    /// change it, with the end of input ([`CloseReason::PeerClosed`]) or
    /// bytes that answer no request ([`CloseReason::UnsolicitedData`], which
    /// the end of input does not hide)). Derived from the state at each call,
    /// so it is right between `poll_event` calls too.
    #[must_use]
    pub fn close_reason(&self) -> Option<CloseReason> {
        if self.error.is_some() {
            return Some(CloseReason::Error);
        }
        if self.close.is_some() {
            return self.close;
        }
        if self.holds_unsolicited() {
            return Some(CloseReason::UnsolicitedData);
        }
        self.eof.map(|_| CloseReason::PeerClosed)
    }

    /// Whether the response ended ([`Event::End`] was handed out) and the
    /// connection can carry another request after [`reset`](Self::reset):
    /// [`close_reason`](Self::close_reason) is `None`, so no byte is buffered
    /// past the response and the input has not ended.
    pub fn can_reuse(&self) -> bool {
        self.recv == Rx::Done && self.close_reason().is_none()
    }

    /// Whether no request is outstanding and one may be sent now: exactly
    /// when [`send_request`](Self::send_request) would accept a valid
    /// request, and when [`send_state`](Self::send_state) and
    /// [`recv_state`](Self::recv_state) are both `Idle`. False once the input
    /// ended (clean or not: `send_request` then fails with
    /// [`Error::ClosedByPeer`] and [`close_reason`](Self::close_reason) is
    /// [`CloseReason::PeerClosed`]), once any byte arrived while no request
    /// was outstanding ([`Error::UnsolicitedData`],
    /// [`CloseReason::UnsolicitedData`]), and on a dead connection.
    #[must_use]
    pub fn is_idle(&self) -> bool {
        self.refusal().is_none()
    }

    /// Whether the current response is complete ([`Event::End`] was handed out).
    pub fn is_response_complete(&self) -> bool {
        self.recv == Rx::Done
    }

    /// Whether the request body is still being sent (more
    /// [`send_body`](Self::send_body) or [`finish`](Self::finish) expected):
    /// exactly when [`send_state`](Self::send_state) is `SendingLength` or
    /// `SendingChunked`, so false on a dead connection (where `send_body`
    /// returns its error).
    pub fn is_sending_body(&self) -> bool {
        self.error.is_none() && matches!(self.send, Tx::Length(_) | Tx::Chunked)
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
            // No request outstanding: `Idle` exactly when one may be sent.
            Tx::Idle if self.is_idle() => SendState::Idle,
            Tx::Idle => SendState::MustClose,
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
            Rx::Idle if self.is_idle() => RecvState::Idle,
            Rx::Idle if self.eof.is_some() => RecvState::Closed,
            // Bytes that answer no request arrived.
            Rx::Idle => RecvState::MustClose,
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

    /// Why [`send_request`](Self::send_request) refuses any request now, or
    /// `None` when it takes one: the one rule behind `send_request`,
    /// [`is_idle`](Self::is_idle) and the states' `Idle`.
    fn refusal(&self) -> Option<Error> {
        if let Some(e) = &self.error {
            return Some(e.clone());
        }
        if self.holds_unsolicited() {
            return Some(Error::UnsolicitedData);
        }
        if self.eof.is_some() || self.handed_over {
            return Some(Error::ClosedByPeer);
        }
        if self.send != Tx::Idle || self.recv != Rx::Idle {
            return Some(Error::InvalidState {
                expected: "the current response to finish and reset()",
            });
        }
        None
    }

    /// Whether bytes are buffered that answer no request: past the `End` of a
    /// response on a connection that could otherwise carry another, or while
    /// no request is outstanding ([`CloseReason::UnsolicitedData`]). A
    /// response that closes the connection (or switches protocols) has its
    /// own reason; bytes after it are [`Error::DataAfterClose`] (or the new
    /// protocol's).
    fn holds_unsolicited(&self) -> bool {
        self.filled > 0 && matches!(self.recv, Rx::Done | Rx::Idle) && self.close.is_none()
    }

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
    /// record in `scan` how much of the buffer they examined.
    fn starved(&self) -> bool {
        match self.recv {
            Rx::Idle | Rx::Done | Rx::PendingEnd | Rx::Length(0) => false,
            Rx::Head | Rx::Trailers => self.scan.scanned == self.filled,
            Rx::Length(_) | Rx::Close | Rx::Chunked => self.filled == 0,
        }
    }

    fn take(&mut self, n: usize) -> Bytes {
        self.filled -= n;
        self.consumed += n as u64;
        self.rx.split_to(n).freeze()
    }

    /// A head or trailer section of `n` bytes. Out of a grown receive
    /// buffer it is copied, so a kept head does not keep a download's
    /// buffer alive (a few hundred bytes pinning hundreds of KiB); out of a
    /// small one it is shared, without copying.
    fn take_section(&mut self, n: usize) -> Bytes {
        if !self.rx_grown {
            return self.take(n);
        }
        let raw = Bytes::copy_from_slice(&self.rx[..n]);
        self.skip(n);
        raw
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
                Rx::Idle => return Ok(None),
                Rx::Done => return self.poll_after_close(),
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

    /// After `End` on a connection that cannot be reused (other than by a
    /// protocol switch): nothing more may arrive. Empty lines are skipped, as
    /// before a status line; any other byte is [`Error::DataAfterClose`].
    /// On a connection that could otherwise be reused the bytes stay
    /// buffered and make it unusable ([`CloseReason::UnsolicitedData`]): the
    /// response stands, the connection is not an error, but no request may
    /// follow.
    fn poll_after_close(&mut self) -> Result<Option<Event>, Error> {
        if self.filled == 0 || self.close.is_none() || self.is_switched() || self.handed_over {
            return Ok(None);
        }
        let blank = self.rx[..self.filled]
            .iter()
            .take_while(|&&b| b == b'\r' || b == b'\n')
            .count();
        self.skip(blank);
        if self.filled > 0 {
            return Err(Error::DataAfterClose {
                offset: self.consumed,
            });
        }
        Ok(None)
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
                    self.scan.examined(self.filled);
                    return Ok(None);
                }
                _ => break,
            }
            self.scan.restart();
        }
        let filled = self.filled;
        if filled == 0 {
            return self.head_eof();
        }
        // Nothing new since the last look: nothing to do.
        if self.scan.scanned == filled && self.eof.is_none() {
            return Ok(None);
        }
        let max = self.config.max_head_bytes;
        let base = self.consumed;
        let limit = filled.min(max.saturating_add(1));
        // The status line is decided by its LF (see `scan`): checked once, as
        // soon as it is complete within the limit, before the head is parsed.
        if let Some(lf) = self.scan.first_line_end(&self.rx[..filled.min(max)]) {
            head::check_status_line(&self.rx[..=lf], base, &self.config)?;
        }
        // Parse only once the head is decided (see `scan`): linear cost and the
        // same outcome however the head arrives. The first look parses at once
        // (a head that arrived whole needs no search), keeping an error only if
        // the head is decided.
        let (over, eof) = (filled > max, self.eof.is_some());
        let first = self.scan.is_first_look();
        if !first && !self.scan.is_decided(&self.rx[..limit], over, eof) {
            self.scan.examined(filled);
            return Ok(None);
        }
        self.scan.parsing(limit);
        let parsed = match head::parse_head(&self.rx[..limit], base, &self.config) {
            Err(_) if first && !self.scan.is_decided(&self.rx[..limit], over, eof) => {
                self.scan.examined(filled);
                return Ok(None);
            }
            r => r?,
        };
        let Some(parsed) = parsed else {
            self.scan.incomplete_in(&self.rx[..limit], filled);
            if filled > max {
                return Err(Error::HeadTooLarge {
                    offset: base + max as u64,
                    limit: max,
                });
            }
            return self.head_eof();
        };
        self.scan.restart();
        let framing = framing::message_body_length(
            parsed.status,
            parsed.version,
            self.req,
            &parsed.framing,
            &self.config.lenient,
            base,
        )?;
        // A declared length over the limit: the head is handed out (it was
        // received whole, and says what was refused), then the error, before
        // any body byte.
        let too_large = match (framing.body, self.config.body_size_limit) {
            (MessageBodyLength::ContentLength(n), Some(limit)) if n > limit => {
                Some(Error::BodyTooLarge {
                    offset: base + parsed.len as u64,
                    limit,
                })
            }
            _ => None,
        };
        if self.config.lenient.obs_fold {
            head::unfold_obs_fold(
                &mut self.rx[..parsed.len],
                parsed.fields_at,
                base,
                self.config.lenient.bare_lf,
            )?;
        }
        let raw = self.take_section(parsed.len);
        let head = ResponseHead {
            version: parsed.version,
            status: parsed.status,
            reason: parsed.reason,
            fields: Fields::with_index(raw, parsed.fields_at, parsed.index),
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
        if let Some(e) = too_large {
            // Sticky from the next poll on, as any error.
            self.error = Some(e);
            self.close = Some(CloseReason::Error);
        }
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
        if self.recv == Rx::Trailers && self.filled == 0 {
            if self.config.lenient.last_chunk_then_eof {
                self.recv = Rx::PendingEnd;
                return Ok(());
            }
            return Err(Error::LastChunkThenEof {
                offset: self.consumed,
                received: self.body_received,
            });
        }
        Err(Error::IncompleteChunkedBody {
            offset: self.consumed + self.filled as u64,
            received: self.body_received,
        })
    }

    /// The trailer section after the last-chunk.
    fn poll_trailers(&mut self) -> Result<Option<Event>, Error> {
        let filled = self.filled;
        if self.scan.scanned == filled && filled > 0 && self.eof.is_none() {
            return Ok(None);
        }
        let max = self.config.max_trailer_bytes;
        let base = self.consumed;
        let limit = filled.min(max.saturating_add(1));
        // The empty section (a lone CRLF) is decided at once; a field section
        // is parsed only once it is decided (see `scan`; the first look parses
        // at once, keeping an error only if the section is decided).
        let (over, eof) = (filled > max, self.eof.is_some());
        let empty = matches!(self.rx[..filled], [b'\r' | b'\n', ..]);
        let first = self.scan.is_first_look();
        if !empty && !first && !self.scan.is_decided(&self.rx[..limit], over, eof) {
            self.scan.examined(filled);
            return Ok(None);
        }
        self.scan.parsing(limit);
        let parsed = match trailers::parse_trailers(&self.rx[..filled], base, &self.config) {
            Err(_) if !empty && first && !self.scan.is_decided(&self.rx[..limit], over, eof) => {
                self.scan.examined(filled);
                return Ok(None);
            }
            r => r?,
        };
        let Some(parsed) = parsed else {
            // All buffered input examined: see `starved`.
            self.scan.incomplete_in(&self.rx[..limit], filled);
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
        self.scan.restart();
        self.recv = Rx::PendingEnd;
        if parsed.field_count == 0 {
            self.skip(parsed.len);
            return Ok(None);
        }
        let raw = self.take_section(parsed.len);
        Ok(Some(Event::Trailers(Fields::new(
            raw,
            0,
            parsed.field_count,
        ))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::format;

    /// Feed `input` in pieces of `step` bytes and return the section work
    /// (bytes searched plus bytes parsed) until the head came out.
    fn head_work(input: &[u8], step: usize) -> usize {
        let mut conn = Connection::new(Config::default());
        conn.send_request(method::GET, "/", [("Host", "h")])
            .unwrap();
        for piece in input.chunks(step) {
            conn.receive(piece);
            match conn.poll_event().unwrap() {
                Some(Event::Head(_)) => return conn.scan.work,
                None => {}
                other => panic!("{other:?}"),
            }
        }
        panic!("no head");
    }

    /// Reads a 2 MiB body through `recv_buf_within`: each read gets
    /// `avail(i)` bytes at most (what the socket has) within `limit(i)`;
    /// returns the rooms lent.
    fn read_body(
        conn: &mut Connection,
        avail: impl Fn(usize) -> usize,
        limit: impl Fn(usize) -> usize,
    ) -> alloc::vec::Vec<usize> {
        const BODY: usize = 2 << 20;
        conn.send_request(method::GET, "/", [("Host", "h")])
            .unwrap();
        let n = conn.transmit_buf().len();
        conn.advance_transmit(n);
        conn.receive(format!("HTTP/1.1 200 OK\r\nContent-Length: {BODY}\r\n\r\n").as_bytes());
        let (mut rooms, mut body, mut i) = (alloc::vec::Vec::new(), 0, 0);
        loop {
            while let Some(ev) = conn.poll_event().unwrap() {
                match ev {
                    Event::Body(b) => body += b.len(),
                    Event::End => return rooms,
                    _ => {}
                }
            }
            let buf = conn.recv_buf_within(limit(i));
            assert!(buf.len() <= limit(i).max(1), "never above the limit");
            rooms.push(buf.len());
            let k = buf.len().min(avail(i)).min(BODY - body);
            conn.receive_filled(k);
            i += 1;
        }
    }

    #[test]
    fn the_room_grows_to_the_gulp_shrinks_on_short_reads_and_goes_back_on_reset() {
        const K: usize = 1024;
        let config = Config {
            recv_buf_size: 512 * K,
            ..Config::default()
        };
        let mut conn = Connection::new(config);
        // Plenty of data: 8 KiB doubling to 512 KiB, then 512 KiB reads.
        let rooms = read_body(&mut conn, |_| usize::MAX, |_| usize::MAX);
        let full = rooms.iter().filter(|&&r| r == 512 * K).count();
        assert!(rooms.len() <= 12 && full >= 3, "{rooms:?}");
        assert!(rooms.iter().all(|&r| r <= 512 * K));
        assert!(conn.rx_grown);
        conn.reset().unwrap();
        assert!(
            !conn.rx_grown && conn.rx.capacity() == 0,
            "a grown buffer goes back"
        );
        // A slow socket (1 000 bytes per read): the room comes down to 8 KiB
        // and stays; the buffer is reused, not grown.
        let rooms = read_body(
            &mut conn,
            |i| if i < 6 { usize::MAX } else { 1000 },
            |_| usize::MAX,
        );
        let peak = rooms.iter().copied().max().unwrap();
        assert!(peak >= 256 * K, "{peak}");
        let last = &rooms[rooms.len() - 100..];
        assert!(last.iter().all(|&r| r <= 8 * K), "{last:?}");
        conn.reset().unwrap();
        // A budget of 20 000 bytes per read, data plentiful: every room is
        // cut to it, and the room grows only until the limit cuts it (8, 16,
        // then 32 KiB, cut to 20 000: filled cut rooms say nothing).
        let rooms = read_body(&mut conn, |_| usize::MAX, |_| 20_000);
        assert!(rooms.iter().all(|&r| r <= 20_000), "{rooms:?}");
        assert_eq!(conn.recv_room.next(), 32 * K);
        assert!(conn.rx.capacity() <= 64 * K);
        conn.reset().unwrap();
        // Small responses keep their small buffer across reset.
        conn.send_request(method::GET, "/", [("Host", "h")])
            .unwrap();
        let n = conn.transmit_buf().len();
        conn.advance_transmit(n);
        let head = b"HTTP/1.1 204 No Content\r\n\r\n";
        let buf = conn.recv_buf();
        assert!((4 * K..=8 * K).contains(&buf.len()), "{}", buf.len());
        buf[..head.len()].copy_from_slice(head);
        conn.receive_filled(head.len());
        assert!(matches!(conn.poll_event(), Ok(Some(Event::Head(_)))));
        assert_eq!(conn.poll_event(), Ok(Some(Event::End)));
        conn.reset().unwrap();
        assert!(conn.rx.capacity() > 0 && conn.rx.capacity() <= 16 * K);
    }

    #[test]
    fn the_index_built_while_parsing_is_the_one_a_second_parse_builds() {
        let heads: [&[u8]; 4] = [
            b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nX-Empty:\r\nX-Pad:   v  \r\nA: 1\r\nA: 2\r\n\r\n",
            b"HTTP/1.1 204 No Content\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nX-Fold: a\r\n  b\r\n\tc\r\nContent-Length: 0\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nX-Empty: \r\nContent-Length: 0\r\n\r\n",
        ];
        for input in heads {
            let mut config = Config::default();
            config.lenient.obs_fold = true;
            let mut conn = Connection::new(config);
            conn.send_request(method::GET, "/", [("Host", "h")])
                .unwrap();
            conn.receive(input);
            let Ok(Some(Event::Head(head))) = conn.poll_event() else {
                panic!("no head from {input:?}");
            };
            let eager: alloc::vec::Vec<_> = head.fields.iter().collect();
            let raw = head.fields.raw().clone();
            let fields_at = raw.iter().position(|&b| b == b'\n').unwrap() + 1;
            let lazy = Fields::new(raw, fields_at, eager.len());
            let lazy: alloc::vec::Vec<_> = lazy.iter().collect();
            assert_eq!(eager, lazy, "{input:?}");
        }
    }

    /// A head of about `len` bytes in 100 fields.
    fn big_head(len: usize) -> alloc::vec::Vec<u8> {
        let value = "v".repeat(len / 100 - 10);
        let mut head = alloc::vec::Vec::from(&b"HTTP/1.1 200 OK\r\n"[..]);
        for i in 0..98 {
            head.extend_from_slice(format!("X-{i:02}: {value}\r\n").as_bytes());
        }
        head.extend_from_slice(b"Content-Length: 0\r\n\r\n");
        head
    }

    #[test]
    fn a_head_fed_byte_by_byte_costs_a_small_multiple_of_it_fed_whole() {
        for len in [1000, 16 * 1024, 60 * 1024] {
            let head = big_head(len);
            let whole = head_work(&head, head.len());
            let drip = head_work(&head, 1);
            let reads = head_work(&head, 1460);
            // The status line is searched for its LF and checked once more.
            let line = b"HTTP/1.1 200 OK\r\n".len();
            assert!(whole <= 2 * head.len() + 2 * line, "{len}: whole {whole}");
            // Each byte searched once (3 times with the overlap), one parse.
            assert!(
                drip <= 4 * head.len() + 2 * line,
                "{len}: drip {drip} for {}",
                head.len()
            );
            assert!(reads <= 3 * head.len() + 2 * line, "{len}: reads {reads}");
        }
    }
}
