//! [`HttpClient`]: one HTTP/1.1 connection driven by `poll()`, shaped like
//! Godot's HTTPClient.

use std::fmt;
use std::io;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use mio::{Events, Interest, Poll, Token, Waker};
use pollhttp_proto::{Config, Connection, Event, Fields, MessageBodyLength, ResponseHead};

use crate::connect::{ConnectProgress, Connector};
use crate::resolve::{parse_ip_literal, LookupFn, PendingLookup, Resolver};
use crate::tls::{PlainStream, ReadOutcome, TlsError, TlsOptions, TlsStream, Transport};

const SOCKET: Token = Token(0);
const WAKER: Token = Token(1);

/// The state of an [`HttpClient`], with Godot's HTTPClient names and meanings.
///
/// Error states (`CantResolve`, `CantConnect`, `ConnectionError`,
/// `TlsHandshakeError`) stay until [`HttpClient::close`] or a new
/// [`HttpClient::connect_to_host`]; [`HttpClient::failure`] says why.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Status {
    /// No connection.
    Disconnected,
    /// Resolving the host name on a resolver thread.
    Resolving,
    /// The host name could not be resolved.
    CantResolve,
    /// Connecting (TCP, then the proxy tunnel and the TLS handshake).
    Connecting,
    /// No address could be connected to, the connect timed out, or the proxy
    /// refused the tunnel.
    CantConnect,
    /// Connected and idle: ready for [`HttpClient::request`].
    Connected,
    /// A request is being sent or its response head awaited.
    Requesting,
    /// The response head arrived; its body is being read with
    /// [`HttpClient::read_response_body_chunk`].
    Body,
    /// The connection failed: an I/O error, a truncated or malformed response,
    /// or the server closed an idle kept-alive connection.
    ConnectionError,
    /// The TLS handshake or certificate verification failed.
    TlsHandshakeError,
}

impl Status {
    /// Every status, in declaration order (`ALL[s as usize] == s`).
    pub(crate) const ALL: [Status; 10] = [
        Status::Disconnected,
        Status::Resolving,
        Status::CantResolve,
        Status::Connecting,
        Status::CantConnect,
        Status::Connected,
        Status::Requesting,
        Status::Body,
        Status::ConnectionError,
        Status::TlsHandshakeError,
    ];

    /// Whether this is one of the four error states.
    pub fn is_error(self) -> bool {
        matches!(
            self,
            Status::CantResolve
                | Status::CantConnect
                | Status::ConnectionError
                | Status::TlsHandshakeError
        )
    }
}

/// Why an [`HttpClient`] is in an error state.
#[derive(Debug)]
#[non_exhaustive]
pub enum Failure {
    /// The resolver failed (the system's message is kept).
    Resolve(io::Error),
    /// Every resolved address refused or failed; the last error is kept.
    Connect(io::Error),
    /// No address connected within the connect timeout.
    ConnectTimeout(Duration),
    /// The HTTPS proxy answered CONNECT with a non-2xx status.
    ProxyRefused {
        /// The proxy's status code.
        status: u16,
    },
    /// The TLS handshake or certificate verification failed.
    Tls(TlsError),
    /// The response broke HTTP/1.1 or was cut off (see the proto error for the
    /// rule and the byte offset).
    Protocol(pollhttp_proto::Error),
    /// A socket error while sending or receiving.
    Io(io::Error),
    /// The server closed the connection while it was idle between requests
    /// (a kept-alive connection timed out on the server).
    ClosedWhileIdle,
    /// The server sent bytes while no request was outstanding.
    UnsolicitedData,
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::Resolve(e) => write!(f, "cannot resolve host: {e}"),
            Failure::Connect(e) => write!(f, "cannot connect: {e}"),
            Failure::ConnectTimeout(d) => {
                write!(f, "connect timed out after {:.1} s", d.as_secs_f64())
            }
            Failure::ProxyRefused { status } => {
                write!(f, "proxy refused the CONNECT tunnel with status {status}")
            }
            Failure::Tls(e) => write!(f, "TLS handshake failed: {e}"),
            Failure::Protocol(e) => write!(f, "invalid or truncated response: {e}"),
            Failure::Io(e) => write!(f, "connection error: {e}"),
            Failure::ClosedWhileIdle => {
                f.write_str("the server closed the idle kept-alive connection")
            }
            Failure::UnsolicitedData => {
                f.write_str("the server sent data while no request was outstanding")
            }
        }
    }
}

/// Why [`HttpClient::connect_to_host`] or [`HttpClient::request`] refused a
/// call. Nothing was sent.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum RequestError {
    /// The host is empty or not a host name / IP literal.
    InvalidHost,
    /// The call does not fit the current status (e.g. `request` while not
    /// [`Status::Connected`], as Godot's ERR_INVALID_PARAMETER / ERR_BUSY).
    WrongStatus(Status),
    /// The method, request-target or a header field is invalid (CR, LF or NUL
    /// in a value, a non-token name, …): see the proto error.
    Invalid(pollhttp_proto::Error),
    /// The TLS options could not be used for this host name.
    Tls(String),
}

impl fmt::Display for RequestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RequestError::InvalidHost => f.write_str("invalid host"),
            RequestError::WrongStatus(s) => write!(f, "not possible in status {s:?}"),
            RequestError::Invalid(e) => write!(f, "invalid request: {e}"),
            RequestError::Tls(e) => write!(f, "TLS configuration: {e}"),
        }
    }
}

impl std::error::Error for RequestError {}

enum Stage {
    Idle,
    Resolving(PendingLookup),
    Connecting(Connector),
    /// CONNECT exchange with an HTTPS proxy over the plain transport.
    ProxyConnect(Box<Connection>),
    TlsHandshake,
    Ready,
}

/// Wakes an [`HttpClient`] sleeping in [`HttpClient::wait`] from another
/// thread (e.g. to cancel a worker). Cheap to clone.
#[derive(Clone)]
pub struct WakeHandle(Arc<Waker>);

impl WakeHandle {
    /// Make the client's current or next `wait` return at once. Never blocks.
    pub fn wake(&self) {
        let _ = self.0.wake();
    }
}

impl fmt::Debug for WakeHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("WakeHandle")
    }
}

/// One HTTP/1.1 connection driven by [`poll`](Self::poll), with Godot's
/// HTTPClient shape: `connect_to_host`, `poll`, `status`, `request`,
/// `has_response`, `response_code`, `response_headers`,
/// `read_response_body_chunk`, `close`.
///
/// No method blocks except [`wait`](Self::wait), which sleeps on the socket
/// and the resolver (never a busy loop). Name resolution runs on its own
/// short-lived thread per lookup; everything else runs inside the calls, with
/// bounded work per call.
///
/// ```no_run
/// use pollhttp::{HttpClient, Status};
/// use std::time::Duration;
///
/// let mut client = HttpClient::new().unwrap();
/// client.connect_to_host("http://example.com", None, false).unwrap();
/// while matches!(client.status(), Status::Resolving | Status::Connecting) {
///     client.wait(Some(Duration::from_millis(100)));
///     client.poll();
/// }
/// client.request("GET", "/", &[("Accept", "text/html")], b"").unwrap();
/// let mut body = Vec::new();
/// loop {
///     client.poll();
///     match client.status() {
///         Status::Requesting => {}
///         Status::Body => {
///             while let Some(chunk) = client.read_response_body_chunk() {
///                 body.extend_from_slice(&chunk);
///             }
///         }
///         _ => break,
///     }
///     client.wait(Some(Duration::from_millis(100)));
/// }
/// println!("{} {} bytes", client.response_code(), body.len());
/// ```
pub struct HttpClient {
    poll: Poll,
    events: Events,
    waker: Arc<Waker>,
    resolver: Resolver,
    status: Status,
    failure: Option<Failure>,
    // settings
    read_chunk_size: usize,
    poll_read_budget: usize,
    connect_timeout: Duration,
    tls_options: Option<TlsOptions>,
    http_proxy: Option<(String, u16)>,
    https_proxy: Option<(String, u16)>,
    proto_config: Config,
    // target
    host: String,
    port: u16,
    tls: bool,
    host_header: String,
    // connection
    stage: Stage,
    transport: Option<Transport>,
    conn: Connection,
    readable: bool,
    writable: bool,
    /// The poller reported the peer closed its write side.
    read_closed: bool,
    woken: bool,
    fresh_events: bool,
    /// proto returned "need more data" and no byte arrived since.
    needs_input: bool,
    deadline: Option<Instant>,
    bytes_read: u64,
    // response
    response: Option<ResponseHead>,
    informational: Vec<ResponseHead>,
    trailers: Option<Fields>,
}

impl fmt::Debug for HttpClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpClient")
            .field("status", &self.status)
            .field("host", &self.host)
            .field("port", &self.port)
            .field("tls", &self.tls)
            .field("failure", &self.failure)
            .finish()
    }
}

fn proto_config(read_chunk_size: usize) -> Config {
    Config {
        read_chunk_size,
        recv_buf_size: read_chunk_size.max(16 * 1024),
        ..Config::default()
    }
}

impl HttpClient {
    /// A disconnected client with its own mio `Poll`.
    ///
    /// # Errors
    /// When the OS refuses an epoll instance or an eventfd.
    pub fn new() -> io::Result<HttpClient> {
        let poll = Poll::new()?;
        let waker = Arc::new(Waker::new(poll.registry(), WAKER)?);
        Ok(HttpClient {
            poll,
            events: Events::with_capacity(8),
            waker,
            resolver: Resolver::new(),
            status: Status::Disconnected,
            failure: None,
            read_chunk_size: 65_536,
            poll_read_budget: 256 * 1024,
            connect_timeout: Duration::from_secs(30),
            tls_options: None,
            http_proxy: None,
            https_proxy: None,
            proto_config: proto_config(65_536),
            host: String::new(),
            port: 0,
            tls: false,
            host_header: String::new(),
            stage: Stage::Idle,
            transport: None,
            conn: Connection::new(proto_config(65_536)),
            readable: false,
            writable: false,
            read_closed: false,
            woken: false,
            fresh_events: false,
            needs_input: false,
            deadline: None,
            bytes_read: 0,
            response: None,
            informational: Vec::new(),
            trailers: None,
        })
    }

    // ------------------------------------------------------------ settings

    /// Most bytes one [`read_response_body_chunk`](Self::read_response_body_chunk)
    /// returns. Default 65 536 (Godot's default); values below 256 are raised
    /// to 256 and above 16 MiB lowered to 16 MiB (Godot's range). Takes effect
    /// at the next `connect_to_host`.
    pub fn set_read_chunk_size(&mut self, bytes: usize) {
        self.read_chunk_size = bytes.clamp(256, 16 << 20);
        self.proto_config.read_chunk_size = self.read_chunk_size;
        self.proto_config.recv_buf_size = self.read_chunk_size.max(16 * 1024);
    }

    /// The read chunk size in bytes.
    pub fn read_chunk_size(&self) -> usize {
        self.read_chunk_size
    }

    /// Most socket bytes one [`poll`](Self::poll) call reads (default 262 144,
    /// 256 KiB), so that a fast download cannot stall a frame. At least 1.
    pub fn set_poll_read_budget(&mut self, bytes: usize) {
        self.poll_read_budget = bytes.max(1);
    }

    /// How long one address may take to connect before the next is tried;
    /// when the last one times out the status becomes
    /// [`Status::CantConnect`]. Default 30 s (Godot's
    /// `network/limits/tcp/connect_timeout_seconds`). Covers TCP, the proxy
    /// tunnel and the TLS handshake.
    pub fn set_connect_timeout(&mut self, timeout: Duration) {
        self.connect_timeout = timeout;
    }

    /// TLS settings for `https` connections (custom roots, name override, the
    /// dangerous no-verification mode). Default: verify against webpki-roots.
    pub fn set_tls_options(&mut self, options: TlsOptions) {
        self.tls_options = Some(options);
    }

    /// Limits and leniencies for parsing responses (head size, body size
    /// limit, …). `read_chunk_size` is kept from
    /// [`set_read_chunk_size`](Self::set_read_chunk_size). Takes effect at the
    /// next `connect_to_host`.
    pub fn set_protocol_config(&mut self, config: Config) {
        self.proto_config = Config {
            read_chunk_size: self.read_chunk_size,
            recv_buf_size: self.read_chunk_size.max(16 * 1024),
            ..config
        };
    }

    /// Send plain-HTTP requests through this proxy, with absolute-form
    /// request-targets (RFC 9112 §3.2.2). An empty host unsets it.
    pub fn set_http_proxy(&mut self, host: &str, port: u16) {
        self.http_proxy = (!host.is_empty()).then(|| (host.to_string(), port));
    }

    /// Tunnel HTTPS connections through this proxy with CONNECT, then TLS to
    /// the origin end to end. A non-2xx reply → [`Status::CantConnect`] with
    /// [`Failure::ProxyRefused`]. An empty host unsets it.
    pub fn set_https_proxy(&mut self, host: &str, port: u16) {
        self.https_proxy = (!host.is_empty()).then(|| (host.to_string(), port));
    }

    /// Replace the name lookup (default: the system resolver through
    /// `ToSocketAddrs`), e.g. to pin names in tests. It runs on the resolver
    /// thread.
    pub fn set_resolver(&mut self, lookup: LookupFn) {
        self.resolver = Resolver::with_lookup(lookup);
    }

    // ------------------------------------------------------------ connection

    /// Start connecting to `host`, which may carry an `http://` or `https://`
    /// prefix (choosing plain or TLS and the default port 80 / 443), an IPv4
    /// or IPv6 literal (bracketed or not), or a name. `port` `None` means the
    /// scheme's default. Returns at once: the status becomes
    /// [`Status::Resolving`] (names; the lookup runs on its own thread) or
    /// [`Status::Connecting`] (IP literals). Any previous connection is closed
    /// first, as in Godot.
    ///
    /// # Errors
    /// [`RequestError::InvalidHost`] for an empty or malformed host;
    /// [`RequestError::Tls`] when the TLS options cannot be used for the name.
    pub fn connect_to_host(
        &mut self,
        host: &str,
        port: Option<u16>,
        tls: bool,
    ) -> Result<(), RequestError> {
        self.close();
        let (host, tls) = if let Some(rest) = host.strip_prefix("https://") {
            (rest, true)
        } else if let Some(rest) = host.strip_prefix("http://") {
            (rest, false)
        } else {
            (host, tls)
        };
        let host = host.trim_end_matches('/');
        let bare = host
            .strip_prefix('[')
            .and_then(|h| h.strip_suffix(']'))
            .unwrap_or(host);
        if bare.is_empty()
            || bare
                .bytes()
                .any(|b| b <= b' ' || b >= 0x7f || matches!(b, b'/' | b'?' | b'#' | b'@'))
            || (bare.contains(':') && parse_ip_literal(bare).is_none())
        {
            return Err(RequestError::InvalidHost);
        }
        let port = port.unwrap_or(if tls { 443 } else { 80 });
        if tls {
            let options = self.tls_options.get_or_insert_with(TlsOptions::new);
            options
                .server_name(bare)
                .map_err(|e| RequestError::Tls(e.to_string()))?;
        }
        self.host = bare.to_string();
        self.port = port;
        self.tls = tls;
        let host_for_header = match parse_ip_literal(bare) {
            Some(IpAddr::V6(_)) => format!("[{bare}]"),
            _ => bare.to_string(),
        };
        self.host_header = if port == if tls { 443 } else { 80 } {
            host_for_header
        } else {
            format!("{host_for_header}:{port}")
        };
        self.conn = Connection::new(self.proto_config.clone());
        // The socket goes to the proxy when one applies.
        let (target_host, target_port) = match (&self.https_proxy, &self.http_proxy, tls) {
            (Some((h, p)), _, true) => (h.clone(), *p),
            (_, Some((h, p)), false) => (h.clone(), *p),
            _ => (bare.to_string(), port),
        };
        let lookup = self
            .resolver
            .start(&target_host, target_port, Some(Arc::clone(&self.waker)));
        self.stage = Stage::Resolving(lookup);
        self.status = Status::Resolving;
        // IP literals are resolved already: start connecting now. A name's
        // answer is picked up by `poll`, so `Resolving` is always observed.
        if parse_ip_literal(&target_host).is_some() {
            self.step_resolving();
        }
        Ok(())
    }

    /// Drop the connection and everything about it, at any time. Never blocks
    /// (a pending lookup finishes on its own thread and is discarded). The
    /// status becomes [`Status::Disconnected`].
    pub fn close(&mut self) {
        self.drop_connection();
        self.status = Status::Disconnected;
        self.failure = None;
        self.response = None;
        self.informational.clear();
        self.trailers = None;
    }

    fn drop_connection(&mut self) {
        match std::mem::replace(&mut self.stage, Stage::Idle) {
            Stage::Connecting(mut c) => c.cancel(self.poll.registry()),
            Stage::Resolving(lookup) => lookup.cancel(),
            _ => {}
        }
        if let Some(mut t) = self.transport.take() {
            if let Transport::Tls(tls) = &mut t {
                tls.send_close_notify();
                let _ = tls.flush();
            }
            let _ = self.poll.registry().deregister(t.socket());
        }
        self.readable = false;
        self.writable = false;
        self.read_closed = false;
        self.deadline = None;
    }

    fn fail(&mut self, status: Status, failure: Failure) {
        self.drop_connection();
        self.status = status;
        self.failure = Some(failure);
    }

    /// A handle that wakes this client's [`wait`](Self::wait) from any thread.
    pub fn wake_handle(&self) -> WakeHandle {
        WakeHandle(Arc::clone(&self.waker))
    }

    /// The current status.
    pub fn status(&self) -> Status {
        self.status
    }

    /// Why the client is in an error state, or `None`.
    pub fn failure(&self) -> Option<&Failure> {
        self.failure.as_ref()
    }

    /// Bytes of HTTP read from the connections of this client since it was
    /// created, over every `connect_to_host` (plaintext bytes for TLS: heads
    /// and bodies, not TLS records).
    pub fn bytes_read(&self) -> u64 {
        self.bytes_read
    }

    // ------------------------------------------------------------ driving

    /// Advance the connection: take the readiness the OS has (a zero-timeout
    /// `epoll_wait`), resolve → connect → tunnel → TLS, write queued request
    /// bytes, read the response up to the per-call budget
    /// ([`set_poll_read_budget`](Self::set_poll_read_budget)), and parse the
    /// response head. Returns the new status.
    ///
    /// Never blocks and never sleeps; safe to call every frame and after
    /// spurious wakeups. Cost per call: one `epoll_wait` plus at most the
    /// budget's worth of reads.
    pub fn poll(&mut self) -> Status {
        if !self.fresh_events {
            self.collect_events(Some(Duration::ZERO));
        }
        self.fresh_events = false;
        if !matches!(self.stage, Stage::Resolving(_)) {
            // A wake from a WakeHandle is for the caller; it has seen it now.
            self.woken = false;
        }
        self.step();
        self.status
    }

    /// Sleep until the socket or the resolver has something for
    /// [`poll`](Self::poll), or `timeout` passes (`None`: no timeout; the
    /// connect deadline still wakes it). Returns at once when work is already
    /// pending. Returns whether something may be ready. This is the only call
    /// that blocks, and it never spins.
    pub fn wait(&mut self, timeout: Option<Duration>) -> bool {
        if self.has_pending_work() {
            return true;
        }
        let mut timeout = timeout;
        if let Some(deadline) = self.deadline {
            let left = deadline.saturating_duration_since(Instant::now());
            timeout = Some(timeout.map_or(left, |t| t.min(left)));
        }
        let got = self.collect_events(timeout);
        self.fresh_events = true;
        got || self.deadline.is_some_and(|d| Instant::now() >= d)
    }

    /// Whether a call to `poll` or `read_response_body_chunk` would find work
    /// without waiting.
    fn has_pending_work(&self) -> bool {
        if self.status.is_error() || self.status == Status::Disconnected {
            return true;
        }
        if self.woken && !matches!(self.stage, Stage::Resolving(_)) {
            return true;
        }
        match self.stage {
            Stage::Idle => true,
            Stage::Resolving(_) => self.woken,
            Stage::Connecting(_) => self.writable,
            Stage::ProxyConnect(_) | Stage::TlsHandshake => self.readable || self.writable,
            Stage::Ready => match self.status {
                Status::Connected => self.readable,
                Status::Requesting => {
                    self.readable || (self.writable && self.conn.wants_transmit())
                }
                Status::Body => self.readable || !self.needs_input,
                _ => true,
            },
        }
    }

    fn collect_events(&mut self, timeout: Option<Duration>) -> bool {
        match self.poll.poll(&mut self.events, timeout) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => return false,
            Err(_) => return false,
        }
        let mut any = false;
        for ev in self.events.iter() {
            any = true;
            match ev.token() {
                SOCKET => {
                    if ev.is_readable() || ev.is_read_closed() || ev.is_error() {
                        self.readable = true;
                    }
                    if ev.is_read_closed() || ev.is_error() {
                        self.read_closed = true;
                    }
                    if ev.is_writable() || ev.is_write_closed() || ev.is_error() {
                        self.writable = true;
                    }
                }
                WAKER => self.woken = true,
                _ => {}
            }
        }
        any
    }

    fn step(&mut self) {
        match self.stage {
            Stage::Idle => {}
            Stage::Resolving(_) => self.step_resolving(),
            Stage::Connecting(_) => self.step_connecting(),
            Stage::ProxyConnect(_) => self.step_proxy(),
            Stage::TlsHandshake => self.step_tls(),
            Stage::Ready => match self.status {
                Status::Connected => self.check_idle(),
                Status::Requesting => self.step_requesting(),
                Status::Body => {
                    self.flush_tx();
                    if self.status == Status::Body {
                        let mut budget = self.poll_read_budget;
                        self.read_socket(&mut budget);
                    }
                }
                _ => {}
            },
        }
    }

    fn step_resolving(&mut self) {
        let Stage::Resolving(lookup) = &mut self.stage else {
            return;
        };
        self.woken = false;
        match lookup.try_take() {
            None => {}
            Some(Err(e)) => self.fail(Status::CantResolve, Failure::Resolve(e)),
            Some(Ok(addrs)) if addrs.is_empty() => self.fail(
                Status::CantResolve,
                Failure::Resolve(io::Error::new(io::ErrorKind::NotFound, "no addresses")),
            ),
            Some(Ok(addrs)) => {
                let connector = Connector::start(addrs, self.poll.registry(), SOCKET);
                self.stage = Stage::Connecting(connector);
                self.status = Status::Connecting;
                self.deadline = Some(Instant::now() + self.connect_timeout);
                // Checked at the next poll: a refused or completed connect may
                // already be known then, without waiting for an event.
                self.writable = true;
            }
        }
    }

    fn step_connecting(&mut self) {
        let Stage::Connecting(connector) = &mut self.stage else {
            return;
        };
        let timed_out = self.deadline.is_some_and(|d| Instant::now() >= d);
        if timed_out {
            connector.fail_current(
                self.poll.registry(),
                io::Error::new(io::ErrorKind::TimedOut, "connect timed out"),
            );
            self.deadline = Some(Instant::now() + self.connect_timeout);
        } else if !self.writable {
            return;
        }
        self.writable = false;
        match connector.poll(self.poll.registry()) {
            ConnectProgress::Pending => {}
            ConnectProgress::Failed(e) => {
                let failure = if e.kind() == io::ErrorKind::TimedOut {
                    Failure::ConnectTimeout(self.connect_timeout)
                } else {
                    Failure::Connect(e)
                };
                self.fail(Status::CantConnect, failure);
            }
            ConnectProgress::Connected(mut stream) => {
                if let Err(e) = self.poll.registry().reregister(
                    &mut stream,
                    SOCKET,
                    Interest::READABLE | Interest::WRITABLE,
                ) {
                    self.fail(Status::CantConnect, Failure::Connect(e));
                    return;
                }
                self.readable = true;
                self.writable = true;
                if self.tls && self.https_proxy.is_some() {
                    let mut tunnel = Connection::new(Config::default());
                    let authority = format!("{}:{}", self.host_header_host(), self.port);
                    if let Err(e) =
                        tunnel.send_request("CONNECT", &authority, [("Host", authority.as_str())])
                    {
                        self.fail(Status::CantConnect, Failure::Protocol(e));
                        return;
                    }
                    self.transport = Some(Transport::Plain(PlainStream::new(stream)));
                    self.stage = Stage::ProxyConnect(Box::new(tunnel));
                    self.step_proxy();
                } else if self.tls {
                    self.start_tls(stream, &[]);
                } else {
                    self.transport = Some(Transport::Plain(PlainStream::new(stream)));
                    self.stage = Stage::Ready;
                    self.deadline = None;
                    self.status = Status::Connected;
                }
            }
        }
    }

    fn host_header_host(&self) -> String {
        match parse_ip_literal(&self.host) {
            Some(IpAddr::V6(_)) => format!("[{}]", self.host),
            _ => self.host.clone(),
        }
    }

    fn start_tls(&mut self, stream: mio::net::TcpStream, initial: &[u8]) {
        let options = self.tls_options.get_or_insert_with(TlsOptions::new);
        let started = options
            .server_name(&self.host)
            .map_err(|e| TlsError::Io(io::Error::new(io::ErrorKind::InvalidInput, e.to_string())))
            .and_then(|name| {
                TlsStream::with_initial_bytes(
                    Arc::clone(options.client_config()),
                    name,
                    stream,
                    initial,
                )
            });
        match started {
            Ok(tls) => {
                self.transport = Some(Transport::Tls(Box::new(tls)));
                self.stage = Stage::TlsHandshake;
                self.step_tls();
            }
            Err(e) => self.fail(Status::TlsHandshakeError, Failure::Tls(e)),
        }
    }

    fn step_tls(&mut self) {
        if self.deadline.is_some_and(|d| Instant::now() >= d) {
            self.fail(
                Status::CantConnect,
                Failure::ConnectTimeout(self.connect_timeout),
            );
            return;
        }
        let Some(Transport::Tls(tls)) = self.transport.as_mut() else {
            return;
        };
        match tls.drive_handshake() {
            Ok(true) => {
                self.stage = Stage::Ready;
                self.deadline = None;
                self.status = Status::Connected;
                // Application data may already be buffered with the handshake.
                self.readable = true;
            }
            Ok(false) => {
                self.readable = false;
                self.writable = false;
            }
            Err(e) => self.fail(Status::TlsHandshakeError, Failure::Tls(e)),
        }
    }

    fn step_proxy(&mut self) {
        if self.deadline.is_some_and(|d| Instant::now() >= d) {
            self.fail(
                Status::CantConnect,
                Failure::ConnectTimeout(self.connect_timeout),
            );
            return;
        }
        let Stage::ProxyConnect(tunnel) = &mut self.stage else {
            return;
        };
        let Some(transport) = self.transport.as_mut() else {
            return;
        };
        // Write the CONNECT request.
        self.writable = false;
        while tunnel.wants_transmit() {
            match transport.write_plain(tunnel.transmit_buf()) {
                Ok(n) => tunnel.advance_transmit(n),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) => return self.fail(Status::CantConnect, Failure::Connect(e)),
            }
        }
        // Read the reply.
        let mut budget = 64 * 1024;
        loop {
            let out = tunnel.recv_buf();
            if out.is_empty() {
                break;
            }
            match transport.read_plain(out, &mut budget) {
                Ok(ReadOutcome::Data(n)) => tunnel.receive_filled(n),
                Ok(ReadOutcome::WouldBlock) => {
                    self.readable = transport.has_pending_input();
                    break;
                }
                Ok(ReadOutcome::Eof) => {
                    tunnel.receive_eof();
                    break;
                }
                Err(e) => return self.fail(Status::CantConnect, Failure::Connect(e)),
            }
        }
        loop {
            match tunnel.poll_event() {
                Ok(None) => return,
                Ok(Some(Event::Head(h))) if !(200..300).contains(&h.status()) => {
                    return self.fail(
                        Status::CantConnect,
                        Failure::ProxyRefused { status: h.status() },
                    );
                }
                Ok(Some(Event::End)) => break,
                Ok(Some(_)) => {}
                Err(e) => return self.fail(Status::CantConnect, Failure::Protocol(e)),
            }
        }
        let initial = tunnel.take_remaining();
        let Some(Transport::Plain(plain)) = self.transport.take() else {
            return;
        };
        self.start_tls(plain.into_inner(), &initial);
    }

    /// Connected and idle: a readable socket means the server closed the
    /// connection (or, wrongly, sent bytes).
    fn check_idle(&mut self) {
        if !self.readable {
            return;
        }
        let Some(transport) = self.transport.as_mut() else {
            return;
        };
        let mut probe = [0u8; 1];
        let mut budget = 1;
        match transport.read_plain(&mut probe, &mut budget) {
            Ok(ReadOutcome::WouldBlock) => self.readable = transport.has_pending_input(),
            Ok(ReadOutcome::Eof) => self.fail(Status::ConnectionError, Failure::ClosedWhileIdle),
            Ok(ReadOutcome::Data(_)) => {
                self.fail(Status::ConnectionError, Failure::UnsolicitedData)
            }
            Err(e) => self.fail(Status::ConnectionError, Failure::Io(e)),
        }
    }

    /// Write what proto has queued until the socket would block.
    fn flush_tx(&mut self) {
        let Some(transport) = self.transport.as_mut() else {
            return;
        };
        while self.conn.wants_transmit() {
            match transport.write_plain(self.conn.transmit_buf()) {
                Ok(0) => break,
                Ok(n) => self.conn.advance_transmit(n),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    self.writable = false;
                    break;
                }
                Err(e) => return self.fail_io(e),
            }
        }
        match transport.flush() {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => self.writable = false,
            Err(e) => self.fail_io(e),
        }
    }

    fn fail_io(&mut self, e: io::Error) {
        self.fail(Status::ConnectionError, Failure::Io(e));
    }

    /// Read from the socket into proto's buffer, at most `budget` bytes.
    /// Returns whether anything was read.
    fn read_socket(&mut self, budget: &mut usize) -> bool {
        let Some(transport) = self.transport.as_mut() else {
            return false;
        };
        if self.read_closed {
            transport.note_read_closed();
        }
        let mut any = false;
        while *budget > 0 {
            let out = self.conn.recv_buf();
            if out.is_empty() {
                break;
            }
            let room = out.len();
            match transport.read_plain(out, budget) {
                Ok(ReadOutcome::Data(n)) => {
                    self.conn.receive_filled(n);
                    self.bytes_read += n as u64;
                    self.needs_input = false;
                    any = true;
                    if n < room && !transport.has_pending_input() {
                        // A short read drained the socket: the next edge
                        // will say when more arrives.
                        self.readable = false;
                        break;
                    }
                }
                Ok(ReadOutcome::WouldBlock) => {
                    self.readable = transport.has_pending_input();
                    break;
                }
                Ok(ReadOutcome::Eof) => {
                    self.conn.receive_eof();
                    self.readable = false;
                    self.needs_input = false;
                    break;
                }
                Err(e) => {
                    // Keep what arrived before the error: proto reports the
                    // truncation with its exact cause.
                    self.conn.receive_eof();
                    self.needs_input = false;
                    if self.conn.buffered() == 0 && self.status == Status::Requesting {
                        self.fail_io(e);
                    }
                    break;
                }
            }
        }
        any
    }

    fn step_requesting(&mut self) {
        self.flush_tx();
        if self.status != Status::Requesting {
            return;
        }
        let mut budget = self.poll_read_budget;
        self.read_socket(&mut budget);
        if self.status != Status::Requesting {
            return;
        }
        self.parse_head();
    }

    fn parse_head(&mut self) {
        loop {
            match self.conn.poll_event() {
                Ok(None) => return,
                Ok(Some(Event::Informational(h))) => {
                    if self.informational.len() < 16 {
                        self.informational.push(h);
                    }
                }
                Ok(Some(Event::Head(h))) => {
                    let no_body = matches!(
                        h.body_length(),
                        MessageBodyLength::None | MessageBodyLength::ContentLength(0)
                    );
                    self.response = Some(h);
                    self.status = Status::Body;
                    self.needs_input = false;
                    if no_body {
                        // The next event is End.
                        let _ = self.read_response_body_chunk();
                    }
                    return;
                }
                Ok(Some(_)) => return,
                Err(e) => return self.fail(Status::ConnectionError, Failure::Protocol(e)),
            }
        }
    }

    // ------------------------------------------------------------ requests

    /// Send a request on a [`Status::Connected`] client: `method` (any token;
    /// see [`crate::method`]), `target` in origin-form (`/path?query`;
    /// absolute-form is built for you behind an HTTP proxy), the caller's
    /// header fields in order, and a body (empty for none). The status becomes
    /// [`Status::Requesting`]; the bytes are written now as far as the socket
    /// takes them and by `poll` after that.
    ///
    /// Adds, unless the caller gave a field of that name (whole name,
    /// case-insensitive), the headers Godot adds: `Host` (with the port unless
    /// it is the scheme's default), `User-Agent: pollhttp/<version>`,
    /// `Accept: */*`, and `Content-Length` when there is a body (also `0` for
    /// POST, PUT and PATCH without one, as RFC 9110 §8.6 asks).
    ///
    /// # Errors
    /// [`RequestError::WrongStatus`] unless connected and idle;
    /// [`RequestError::Invalid`] for an invalid method, target or field (CR,
    /// LF, NUL in a value…). Nothing is sent then.
    pub fn request<K: AsRef<str>, V: AsRef<str>>(
        &mut self,
        method: &str,
        target: &str,
        headers: &[(K, V)],
        body: &[u8],
    ) -> Result<(), RequestError> {
        self.start_request(method, target, headers, Some(body))
    }

    /// Like [`request`](Self::request) for a body sent in pieces with chunked
    /// framing: adds `Transfer-Encoding: chunked`; then call
    /// [`send_body_chunk`](Self::send_body_chunk) for each piece and
    /// [`finish_body`](Self::finish_body) at the end. The response may arrive
    /// (and is delivered) before the body is finished.
    ///
    /// # Errors
    /// As [`request`](Self::request).
    pub fn request_streaming<K: AsRef<str>, V: AsRef<str>>(
        &mut self,
        method: &str,
        target: &str,
        headers: &[(K, V)],
    ) -> Result<(), RequestError> {
        self.start_request(method, target, headers, None)
    }

    /// Queue one piece of a streamed request body (one chunk on the wire)
    /// and write what the socket takes now.
    ///
    /// # Errors
    /// [`RequestError::WrongStatus`] when no streamed body is being sent.
    pub fn send_body_chunk(&mut self, data: &[u8]) -> Result<(), RequestError> {
        if !self.conn.is_sending_body() {
            return Err(RequestError::WrongStatus(self.status));
        }
        self.conn.send_body(data).map_err(RequestError::Invalid)?;
        self.flush_tx();
        Ok(())
    }

    /// End a streamed request body (the last-chunk) and write it.
    ///
    /// # Errors
    /// [`RequestError::WrongStatus`] when no streamed body is being sent.
    pub fn finish_body(&mut self) -> Result<(), RequestError> {
        if !self.conn.is_sending_body() {
            return Err(RequestError::WrongStatus(self.status));
        }
        self.conn.finish().map_err(RequestError::Invalid)?;
        self.flush_tx();
        Ok(())
    }

    /// Whether a request body is still being sent.
    pub fn is_sending_body(&self) -> bool {
        self.conn.is_sending_body()
    }

    fn start_request<K: AsRef<str>, V: AsRef<str>>(
        &mut self,
        method: &str,
        target: &str,
        headers: &[(K, V)],
        body: Option<&[u8]>,
    ) -> Result<(), RequestError> {
        if self.status != Status::Connected || !matches!(self.stage, Stage::Ready) {
            return Err(RequestError::WrongStatus(self.status));
        }
        let has = |name: &str| {
            headers
                .iter()
                .any(|(k, _)| k.as_ref().eq_ignore_ascii_case(name))
        };
        let has_framing = has("content-length") || has("transfer-encoding");
        // A caller's own Content-Length must match the body, checked before
        // anything is queued.
        if let Some(body) = body {
            let declared = headers
                .iter()
                .find(|(k, _)| k.as_ref().eq_ignore_ascii_case("content-length"))
                .map(|(_, v)| v.as_ref().trim().parse::<u64>().ok());
            if declared.is_some_and(|n| n != Some(body.len() as u64)) {
                return Err(RequestError::Invalid(
                    pollhttp_proto::Error::InvalidRequestFraming,
                ));
            }
        }
        let length;
        let mut extra: [Option<(&str, &str)>; 4] = [None; 4];
        if !has("host") {
            extra[0] = Some(("Host", self.host_header.as_str()));
        }
        if !has("user-agent") {
            extra[1] = Some((
                "User-Agent",
                concat!("pollhttp/", env!("CARGO_PKG_VERSION")),
            ));
        }
        if !has("accept") {
            extra[2] = Some(("Accept", "*/*"));
        }
        match body {
            Some(body) if !has_framing => {
                let wants_length = !body.is_empty() || matches!(method, "POST" | "PUT" | "PATCH");
                if wants_length {
                    length = body.len().to_string();
                    extra[3] = Some(("Content-Length", length.as_str()));
                }
            }
            None if !has_framing => extra[3] = Some(("Transfer-Encoding", "chunked")),
            _ => {}
        }
        let absolute;
        let target = if !self.tls && self.http_proxy.is_some() && target.starts_with('/') {
            absolute = format!("http://{}{}", self.host_header, target);
            absolute.as_str()
        } else {
            target
        };
        let fields = headers
            .iter()
            .map(|(k, v)| (k.as_ref(), v.as_ref()))
            .chain(extra.iter().flatten().copied());
        self.conn
            .send_request(method, target, fields)
            .map_err(RequestError::Invalid)?;
        if let Some(body) = body {
            if !body.is_empty() {
                if let Err(e) = self.conn.send_body(body) {
                    // The head is queued but the body does not fit its
                    // Content-Length: the connection cannot be used.
                    self.fail(Status::ConnectionError, Failure::Protocol(e.clone()));
                    return Err(RequestError::Invalid(e));
                }
            }
            // A whole body with the caller's chunked framing: end it here.
            if self.conn.is_sending_body() {
                if let Err(e) = self.conn.finish() {
                    self.fail(Status::ConnectionError, Failure::Protocol(e.clone()));
                    return Err(RequestError::Invalid(e));
                }
            }
        }
        self.response = None;
        self.informational.clear();
        self.trailers = None;
        self.status = Status::Requesting;
        self.flush_tx();
        Ok(())
    }

    // ------------------------------------------------------------ response

    /// Whether a final response head has arrived (Godot: `has_response`).
    pub fn has_response(&self) -> bool {
        self.response.is_some()
    }

    /// The final response's status code, 0 before one arrived.
    pub fn response_code(&self) -> u16 {
        self.response.as_ref().map_or(0, |h| h.status())
    }

    /// The final response head (status, reason, version, fields).
    pub fn response(&self) -> Option<&ResponseHead> {
        self.response.as_ref()
    }

    /// The final response's header fields in wire order, repeated fields kept.
    /// Unlike Godot, reading them does not consume them.
    pub fn response_headers(&self) -> Option<&Fields> {
        self.response.as_ref().map(|h| h.fields())
    }

    /// Interim 1xx responses (100 Continue, 103 Early Hints) that came before
    /// the final one, at most 16 kept.
    pub fn informational_responses(&self) -> &[ResponseHead] {
        &self.informational
    }

    /// The trailer section of a chunked response, once the body ended.
    pub fn response_trailers(&self) -> Option<&Fields> {
        self.trailers.as_ref()
    }

    /// The Content-Length of the response body, or `None` for chunked and
    /// close-delimited bodies (Godot's -1). 0 for responses without a body
    /// (HEAD, 204, 304).
    pub fn response_body_length(&self) -> Option<u64> {
        match self.response.as_ref()?.body_length() {
            MessageBodyLength::ContentLength(n) => Some(n),
            MessageBodyLength::None => Some(0),
            MessageBodyLength::Chunked | MessageBodyLength::CloseDelimited => None,
        }
    }

    /// Whether the response body uses the chunked transfer coding.
    pub fn is_response_chunked(&self) -> bool {
        self.response
            .as_ref()
            .is_some_and(|h| h.body_length() == MessageBodyLength::Chunked)
    }

    /// The next piece of the response body, at most
    /// [`read_chunk_size`](Self::read_chunk_size) bytes, without copying; `None`
    /// when nothing is available yet or the body ended. When the body ends the
    /// status becomes [`Status::Connected`] (the connection is kept alive) or
    /// [`Status::Disconnected`] (close-delimited body, `Connection: close`,
    /// HTTP/1.0); a truncated or malformed body becomes
    /// [`Status::ConnectionError`] with the cause in
    /// [`failure`](Self::failure). Bytes returned before stay valid.
    ///
    /// Never blocks: at most one socket read per call.
    pub fn read_response_body_chunk(&mut self) -> Option<Bytes> {
        if self.status != Status::Body {
            return None;
        }
        let mut read = false;
        loop {
            match self.conn.poll_event() {
                Ok(Some(Event::Body(b))) => return Some(b),
                Ok(Some(Event::Trailers(t))) => self.trailers = Some(t),
                Ok(Some(Event::End)) => {
                    self.finish_response();
                    return None;
                }
                Ok(Some(_)) => {}
                Ok(None) => {
                    if read {
                        self.needs_input = true;
                        return None;
                    }
                    read = true;
                    let mut budget = self.conn.config().recv_buf_size;
                    self.read_socket(&mut budget);
                    if self.status != Status::Body {
                        return None;
                    }
                }
                Err(e) => {
                    self.fail(Status::ConnectionError, Failure::Protocol(e));
                    return None;
                }
            }
        }
    }

    fn finish_response(&mut self) {
        if self.conn.can_reuse() && self.conn.reset().is_ok() {
            self.status = Status::Connected;
        } else {
            self.drop_connection();
            self.status = Status::Disconnected;
        }
    }
}
