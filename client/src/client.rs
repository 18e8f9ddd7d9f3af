//! [`HttpClient`]: one HTTP/1.1 connection driven by `poll()`, shaped like
//! Godot's HTTPClient. A thin front end: the connection ([`Conn`]: establish,
//! then exchange) does the work, and [`HttpClient::status`] is computed from
//! where it is and from proto's states, never stored beside them.

use std::fmt;
use std::io;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use mio::Token;
use pollhttp_proto::{Config, Event, Fields, MessageBodyLength, ResponseHead};

use crate::body::BodySource;
use crate::budget::PollBudget;
use crate::conn::{client_proto_config, BodyPlan, Conn, ConnSettings, Phase, Route, Target};
use crate::error::{Failure, RequestError};
use crate::reactor::Reactor;
use crate::resolve::{parse_ip_literal, system_lookup, LookupFn, Resolver, ResolverConfig};
use crate::status::{Status, WakeHandle};
use crate::time::{sleep_for, Clock};
use crate::tls_options::TlsOptions;

/// The token of the client's one connection.
const CONN: Token = Token(0);

/// One HTTP/1.1 connection driven by [`poll`](Self::poll), with Godot's
/// HTTPClient shape: `connect_to_host`, `poll`, `status`, `request`,
/// `has_response`, `response_code`, `response_headers`,
/// `read_response_body_chunk`, `close`.
///
/// No method blocks except [`wait`](Self::wait), which sleeps on the socket
/// and the resolver (never a busy loop). Name resolution runs on the
/// client's resolver: a few worker threads (at most 4 lookups at once, the
/// rest queued) and a cache of answers (successes for a minute, failures for
/// a few seconds), so a slow name never holds a call. Everything else runs
/// inside the calls, with bounded work per call: socket reads are bounded by
/// the per-poll budget ([`set_poll_budget`](Self::set_poll_budget)),
/// shared by a `poll` and the [`read_response_body_chunk`](Self::read_response_body_chunk)
/// calls after it.
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
    reactor: Reactor,
    resolver: Resolver,
    /// Where the client reads the time (the connect deadline, Happy
    /// Eyeballs' attempts, the age of cached lookups).
    clock: Clock,
    conn: Option<Conn>,
    failure: Option<Failure>,
    /// Events were collected by `wait`; `poll` uses them instead of asking
    /// the OS again.
    fresh_events: bool,
    // settings
    read_chunk_size: usize,
    poll_budget: PollBudget,
    /// When the current `poll`'s time runs out (from its budget).
    poll_deadline: Option<Instant>,
    /// Socket bytes the current `poll`'s budget still allows: reset by each
    /// `poll`, spent by it and by the `read_response_body_chunk` calls after.
    read_budget_left: usize,
    connect_timeout: Duration,
    attempt_delay: Duration,
    recv_buffer_size: Option<usize>,
    tls_options: Option<TlsOptions>,
    http_proxy: Option<(String, u16)>,
    https_proxy: Option<(String, u16)>,
    proto_config: Config,
    // response
    response: Option<ResponseHead>,
    informational: Vec<ResponseHead>,
    trailers: Option<Fields>,
    /// Bytes read by the connections closed so far.
    bytes_read_before: u64,
}

impl fmt::Debug for HttpClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpClient")
            .field("status", &self.status())
            .field("conn", &self.conn)
            .field("failure", &self.failure)
            .finish()
    }
}

/// The resolver of an [`HttpClient`]: `lookup` behind the default cache,
/// whose answers age on `clock`.
fn client_resolver(lookup: LookupFn, clock: &Clock) -> Resolver {
    Resolver::with_config(lookup, ResolverConfig::default(), Arc::clone(clock))
}

/// The `http://` or `https://` prefix of a `connect_to_host` host (ASCII
/// case ignored): whether it asks for TLS, and the rest.
fn scheme_prefix(host: &str) -> Option<(bool, &str)> {
    [("https://", true), ("http://", false)]
        .into_iter()
        .find_map(|(prefix, tls)| {
            let head = host.get(..prefix.len())?;
            head.eq_ignore_ascii_case(prefix)
                .then(|| (tls, &host[prefix.len()..]))
        })
}

impl HttpClient {
    /// A disconnected client with its own reactor (a mio `Poll` and waker).
    ///
    /// # Errors
    /// When the OS refuses an epoll instance or an eventfd.
    pub fn new() -> io::Result<HttpClient> {
        HttpClient::with_clock(Arc::new(Instant::now))
    }

    /// A disconnected client whose logic reads the time from `clock`, as
    /// [`RequestPool::with_clock`](crate::RequestPool::with_clock) does: the
    /// connect deadline ([`set_connect_timeout`](Self::set_connect_timeout)),
    /// Happy Eyeballs' next attempt, and the age of cached name lookups. A
    /// test can drive a client with a fake clock that moves only when told
    /// to.
    ///
    /// `clock` is called once or twice per [`poll`](Self::poll),
    /// [`wait`](Self::wait) and [`connect_to_host`](Self::connect_to_host)
    /// (and from the resolver's threads), so it must be cheap and must never
    /// block; it should never go backwards. [`wait`](Self::wait) still
    /// sleeps in real time: a fake clock that stands still makes it sleep
    /// until its `timeout` (or an event), never spin.
    ///
    /// # Errors
    /// When the OS refuses an epoll instance or an eventfd.
    pub fn with_clock(clock: Clock) -> io::Result<HttpClient> {
        Ok(HttpClient {
            reactor: Reactor::new(8)?,
            resolver: client_resolver(Arc::new(system_lookup), &clock),
            clock,
            conn: None,
            failure: None,
            fresh_events: false,
            read_chunk_size: 65_536,
            poll_budget: PollBudget::default(),
            poll_deadline: None,
            read_budget_left: PollBudget::default().bytes,
            connect_timeout: Duration::from_secs(30),
            attempt_delay: Duration::from_millis(250),
            recv_buffer_size: None,
            tls_options: None,
            http_proxy: None,
            https_proxy: None,
            proto_config: client_proto_config(Config::default(), 65_536),
            response: None,
            informational: Vec::new(),
            trailers: None,
            bytes_read_before: 0,
        })
    }

    // ------------------------------------------------------------ settings

    /// Most bytes one [`read_response_body_chunk`](Self::read_response_body_chunk)
    /// returns. Default 65 536 (Godot's default); values below 256 are raised
    /// to 256 and above 16 MiB lowered to 16 MiB (Godot's range). Takes effect
    /// at the next `connect_to_host`.
    pub fn set_read_chunk_size(&mut self, bytes: usize) {
        self.read_chunk_size = bytes.clamp(256, 16 << 20);
        self.proto_config = client_proto_config(self.proto_config.clone(), self.read_chunk_size);
    }

    /// The read chunk size in bytes.
    pub fn read_chunk_size(&self) -> usize {
        self.read_chunk_size
    }

    /// What one [`poll`](Self::poll) and the
    /// [`read_response_body_chunk`](Self::read_response_body_chunk) calls
    /// after it may do: socket bytes and time ([`PollBudget`], the same type
    /// and default as every front end's: 4 MiB, 1 ms), so that a fast
    /// download cannot stall a frame.
    ///
    /// Each `poll` starts it afresh (its time counted from the `poll`'s
    /// reading of the clock); what the `poll` reads is spent, and once the
    /// bytes are spent or the time has passed, `read_response_body_chunk`
    /// returns what proto already holds and then `None` until the next
    /// `poll`. Takes effect at the next `poll`.
    pub fn set_poll_budget(&mut self, budget: PollBudget) {
        self.poll_budget = budget;
    }

    /// The budget of one `poll` and the chunk reads after it.
    pub fn poll_budget(&self) -> PollBudget {
        self.poll_budget
    }

    /// How long connecting may take, counted from the first attempt, over
    /// every address tried; then the status becomes [`Status::CantConnect`]
    /// with [`Failure::ConnectTimeout`]. Default 30 s (Godot's
    /// `network/limits/tcp/connect_timeout_seconds`). Covers TCP, the proxy
    /// tunnel and the TLS handshake.
    pub fn set_connect_timeout(&mut self, timeout: Duration) {
        self.connect_timeout = timeout;
    }

    /// Happy Eyeballs (RFC 8305): when a name has several addresses (both
    /// families interleaved), the next one is tried beside a pending attempt
    /// after this delay, a few at once; the first to connect wins. Default
    /// 250 ms (RFC 8305 §5).
    pub fn set_attempt_delay(&mut self, delay: Duration) {
        self.attempt_delay = delay;
    }

    /// The receive buffer (`SO_RCVBUF`, bytes) of sockets this client opens
    /// from now on: see [`Settings::recv_buffer_size`](crate::Settings::recv_buffer_size).
    /// `None` (default): the kernel's default, autotuned.
    pub fn set_recv_buffer_size(&mut self, size: Option<usize>) {
        self.recv_buffer_size = size;
    }

    /// TLS settings for `https` connections (custom roots, name override, the
    /// dangerous no-verification mode). Default: verify against webpki-roots.
    pub fn set_tls_options(&mut self, options: TlsOptions) {
        self.tls_options = Some(options);
    }

    /// Limits and leniencies for parsing responses (head size, body size
    /// limit, …). `read_chunk_size` is kept from
    /// [`set_read_chunk_size`](Self::set_read_chunk_size), and obs-fold is
    /// always unfolded (RFC 9112 §5.2: a user agent must). Takes effect at the
    /// next `connect_to_host`.
    pub fn set_protocol_config(&mut self, config: Config) {
        self.proto_config = client_proto_config(config, self.read_chunk_size);
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
    /// thread, never in a call of this client, so it may block. It applies
    /// from the next [`connect_to_host`](Self::connect_to_host) on, and the
    /// name cache starts empty (its answers age on the client's clock).
    /// Never blocks; costs one small allocation.
    pub fn set_resolver(&mut self, lookup: LookupFn) {
        self.resolver = client_resolver(lookup, &self.clock);
    }

    // ------------------------------------------------------------ connection

    /// Start connecting to `host`: an IPv4 or IPv6 literal (bracketed or
    /// not) or a name, with TLS when `tls` is true. `port` `None` means the
    /// default port, 443 with TLS, else 80. Returns at once: the status
    /// becomes [`Status::Resolving`] (names; the lookup runs on the
    /// resolver's worker threads) or [`Status::Connecting`] (IP literals).
    /// Any previous connection is closed first, as in Godot.
    ///
    /// `host` may carry an `http://` or `https://` prefix (ASCII case
    /// ignored), which must agree with `tls`: `("https://example.com", None,
    /// true)` and `("http://example.com", None, false)` are fine, and a
    /// prefix that disagrees with the flag is refused. (Godot 3 lets the
    /// flag win and Godot 4 the prefix, so either guess surprises someone:
    /// one sends in plaintext what the caller asked to protect, the other
    /// ignores the flag.)
    ///
    /// ```
    /// use pollhttp::{HttpClient, RequestError};
    ///
    /// let mut client = HttpClient::new().unwrap();
    /// assert!(matches!(
    ///     client.connect_to_host("http://example.com", None, true),
    ///     Err(RequestError::ConflictingScheme)
    /// ));
    /// ```
    ///
    /// # Errors
    /// [`RequestError::ConflictingScheme`] when the prefix disagrees with
    /// `tls`; [`RequestError::InvalidHost`] for an empty or malformed host;
    /// [`RequestError::Tls`] when the TLS options cannot be used for the name.
    /// The client is [`Status::Disconnected`] then.
    pub fn connect_to_host(
        &mut self,
        host: &str,
        port: Option<u16>,
        tls: bool,
    ) -> Result<(), RequestError> {
        self.close();
        let host = match scheme_prefix(host) {
            Some((prefix_tls, _)) if prefix_tls != tls => {
                return Err(RequestError::ConflictingScheme)
            }
            Some((_, rest)) => rest,
            None => host,
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
        let tls_options = if tls {
            let options = self.tls_options.get_or_insert_with(TlsOptions::new).clone();
            options.server_name(bare).map_err(RequestError::Tls)?;
            Some(options)
        } else {
            None
        };
        let proxy = if tls {
            self.https_proxy.clone()
        } else {
            self.http_proxy.clone()
        };
        let target = Target {
            tls,
            host: bare.to_string(),
            port,
            proxy,
            proxy_auth: None,
            tls_options,
        };
        let settings = ConnSettings {
            connect_timeout: self.connect_timeout,
            attempt_delay: self.attempt_delay,
            recv_buffer: self.recv_buffer_size,
            config: self.proto_config.clone(),
        };
        self.conn = Some(Conn::start(
            Route::new(target),
            CONN,
            &settings,
            &self.resolver,
            self.reactor.registry(),
            self.reactor.waker(),
            (self.clock)(),
        ));
        Ok(())
    }

    /// Drop the connection and everything about it, at any time. Never blocks
    /// (a pending lookup finishes on its own thread and is discarded; a TLS
    /// `close_notify` is sent best effort). The status becomes
    /// [`Status::Disconnected`].
    pub fn close(&mut self) {
        self.drop_connection();
        self.failure = None;
        self.response = None;
        self.informational.clear();
        self.trailers = None;
    }

    fn drop_connection(&mut self) {
        if let Some(mut conn) = self.conn.take() {
            self.bytes_read_before += conn.exchange().map_or(0, |x| x.bytes_read);
            conn.close(self.reactor.registry());
        }
    }

    fn fail(&mut self, failure: Failure) {
        self.drop_connection();
        self.failure = Some(failure);
    }

    /// A handle that wakes this client's [`wait`](Self::wait) from any thread.
    pub fn wake_handle(&self) -> WakeHandle {
        WakeHandle(Arc::clone(self.reactor.waker()))
    }

    /// The current status, computed from the connection's phase and proto's
    /// receive state (Godot's HTTPClient statuses). Cheap.
    pub fn status(&self) -> Status {
        if let Some(f) = &self.failure {
            return f.status();
        }
        self.conn
            .as_ref()
            .map_or(Status::Disconnected, Conn::status)
    }

    /// Why the client is in an error state, or `None`.
    pub fn failure(&self) -> Option<&Failure> {
        self.failure.as_ref()
    }

    /// Bytes of HTTP read from the connections of this client since it was
    /// created, over every `connect_to_host` (plaintext bytes for TLS: heads
    /// and bodies, not TLS records).
    pub fn bytes_read(&self) -> u64 {
        self.bytes_read_before
            + self
                .conn
                .as_ref()
                .and_then(Conn::exchange)
                .map_or(0, |x| x.bytes_read)
    }

    // ------------------------------------------------------------ driving

    /// Advance the connection: take the readiness the OS has (a zero-timeout
    /// `epoll_wait`), resolve → connect → tunnel → TLS, write queued request
    /// bytes, read the response within a fresh per-poll budget
    /// ([`set_poll_budget`](Self::set_poll_budget); what is left of
    /// it is for the [`read_response_body_chunk`](Self::read_response_body_chunk)
    /// calls until the next `poll`), and parse the response head. Returns the
    /// new status.
    ///
    /// Never blocks and never sleeps; safe to call every frame and after
    /// spurious wakeups. Cost per call: one `epoll_wait` and one reading of
    /// the client's clock ([`with_clock`](Self::with_clock)) plus at most the
    /// budget's worth of reads (and one `epoll_ctl` when the interest changes).
    pub fn poll(&mut self) -> Status {
        if !self.fresh_events {
            self.collect_events(Some(Duration::ZERO));
        }
        self.fresh_events = false;
        let now = (self.clock)();
        self.read_budget_left = self.poll_budget.byte_limit();
        self.poll_deadline = self.poll_budget.deadline(now);
        let resolving = self.conn.as_ref().map(Conn::phase) == Some(Phase::Resolving);
        if !resolving {
            // A wake from a WakeHandle is for the caller; it has seen it now.
            self.reactor.take_woken();
        }
        self.step(now);
        self.status()
    }

    /// Sleep until the socket or the resolver has something for
    /// [`poll`](Self::poll), or `timeout` passes (`None`: no timeout; the
    /// connect deadline still wakes it). Returns at once when work is already
    /// pending. Returns whether something may be ready. The connect deadline
    /// is measured on the client's clock ([`with_clock`](Self::with_clock)).
    /// This is the only call that blocks, and it never spins.
    pub fn wait(&mut self, timeout: Option<Duration>) -> bool {
        if self.has_pending_work() {
            return true;
        }
        let deadline = self.conn.as_ref().and_then(Conn::deadline);
        let got = self.collect_events(sleep_for(timeout, deadline, (self.clock)()));
        self.fresh_events = true;
        got || deadline.is_some_and(|d| (self.clock)() >= d)
    }

    /// Whether a call to `poll` or `read_response_body_chunk` would find work
    /// without waiting.
    fn has_pending_work(&self) -> bool {
        let Some(conn) = &self.conn else {
            return true; // disconnected or failed: nothing to wait for
        };
        if self.failure.is_some() {
            return true;
        }
        let woken = self.reactor.is_woken();
        (woken && conn.phase() != Phase::Resolving) || conn.has_pending_work(woken)
    }

    fn collect_events(&mut self, timeout: Option<Duration>) -> bool {
        let conn = &mut self.conn;
        self.reactor.poll(timeout, |token, ev| {
            if let Some(c) = conn.as_mut().filter(|c| c.token() == token) {
                c.on_event(ev);
            }
        })
    }

    fn step(&mut self, now: Instant) {
        let Some(conn) = self.conn.as_mut() else {
            return;
        };
        let registry = self.reactor.registry();
        if conn.phase() != Phase::Ready {
            if conn.phase() == Phase::Resolving {
                self.reactor.take_woken();
            }
            if let Err(f) = conn.establish(self.reactor.registry(), now) {
                return self.fail(f);
            }
            return;
        }
        let Some((x, ready)) = conn.exchange_mut() else {
            return;
        };
        let result = x.pump(ready, &mut self.read_budget_left);
        conn.update_interest(registry);
        if let Err(f) = result {
            return self.fail(f);
        }
        if self.status() == Status::Requesting {
            self.parse_head();
        }
    }

    fn parse_head(&mut self) {
        loop {
            let Some((x, ready)) = self.conn.as_mut().and_then(Conn::exchange_mut) else {
                return;
            };
            // The pump has read already: no second read here.
            match x.poll_event(ready, &mut 0) {
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
                    if no_body {
                        // The next event is End.
                        let _ = self.read_response_body_chunk();
                    }
                    return;
                }
                Ok(Some(_)) => return,
                Err(f) => return self.fail(f),
            }
        }
    }

    // ------------------------------------------------------------ requests

    /// Send a request on a [`Status::Connected`] client: `method` (any token;
    /// see [`crate::method`]), `target` in origin-form (`/path?query`;
    /// absolute-form is built for you behind an HTTP proxy), the caller's
    /// header fields in order, and a body (empty for none; copied once, see
    /// [`request_body`](Self::request_body) to hand one over without a copy).
    /// The status becomes [`Status::Requesting`]; the bytes are written now
    /// as far as the socket takes them and by `poll` after that.
    ///
    /// `Host` goes first (RFC 9110 §7.2), then the caller's fields, then,
    /// unless the caller gave a field of that name (case-insensitive), the
    /// headers Godot adds: `User-Agent: pollhttp/<version>`, `Accept: */*`,
    /// and `Content-Length` when there is a body (also `0` for POST, PUT and
    /// PATCH without one, as RFC 9110 §8.6 asks).
    ///
    /// # Errors
    /// [`RequestError::WrongStatus`] unless connected and idle;
    /// [`RequestError::Invalid`] for an invalid method, target or field (CR,
    /// LF, NUL in a value…; the index is into `headers`). Nothing is sent then.
    pub fn request<K: AsRef<str>, V: AsRef<str>>(
        &mut self,
        method: &str,
        target: &str,
        headers: &[(K, V)],
        body: &[u8],
    ) -> Result<(), RequestError> {
        let source = BodySource::Memory(Bytes::copy_from_slice(body));
        self.start_request(method, target, headers, BodyPlan::Source(source))
    }

    /// Like [`request`](Self::request) with a body handed over as it is
    /// (bytes in memory without a copy, a file or a reader streamed with
    /// back-pressure; see [`crate::RequestBody`]).
    ///
    /// # Errors
    /// As [`request`](Self::request), and [`RequestError::Body`] when a body
    /// file cannot be opened.
    pub fn request_body<K: AsRef<str>, V: AsRef<str>>(
        &mut self,
        method: &str,
        target: &str,
        headers: &[(K, V)],
        body: crate::RequestBody,
    ) -> Result<(), RequestError> {
        if self.status() != Status::Connected {
            return Err(RequestError::WrongStatus(self.status()));
        }
        let source = body.open().map_err(RequestError::Body)?;
        self.start_request(method, target, headers, BodyPlan::Source(source))
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
        self.start_request(method, target, headers, BodyPlan::Streaming)
    }

    /// Queue one piece of a streamed request body (one chunk on the wire)
    /// and write what the socket takes now.
    ///
    /// # Errors
    /// [`RequestError::WrongStatus`] when no streamed body is being sent.
    pub fn send_body_chunk(&mut self, data: &[u8]) -> Result<(), RequestError> {
        let status = self.status();
        let Some((x, _)) = self.sending_exchange() else {
            return Err(RequestError::WrongStatus(status));
        };
        x.proto.send_body(data).map_err(RequestError::Invalid)?;
        self.write_now();
        Ok(())
    }

    /// End a streamed request body (the last-chunk) and write it.
    ///
    /// # Errors
    /// [`RequestError::WrongStatus`] when no streamed body is being sent.
    pub fn finish_body(&mut self) -> Result<(), RequestError> {
        let status = self.status();
        let Some((x, _)) = self.sending_exchange() else {
            return Err(RequestError::WrongStatus(status));
        };
        x.proto.finish().map_err(RequestError::Invalid)?;
        self.write_now();
        Ok(())
    }

    /// Whether a request body is still being sent.
    pub fn is_sending_body(&self) -> bool {
        self.conn
            .as_ref()
            .and_then(Conn::exchange)
            .is_some_and(|x| x.proto.is_sending_body())
    }

    fn sending_exchange(
        &mut self,
    ) -> Option<(&mut crate::conn::Exchange, &mut crate::reactor::Readiness)> {
        self.conn
            .as_mut()
            .and_then(Conn::exchange_mut)
            .filter(|(x, _)| x.proto.is_sending_body())
    }

    /// Write what is queued, as far as the socket takes it (no read).
    fn write_now(&mut self) {
        let Some(conn) = self.conn.as_mut() else {
            return;
        };
        let Some((x, ready)) = conn.exchange_mut() else {
            return;
        };
        let result = x.pump(ready, &mut 0);
        conn.update_interest(self.reactor.registry());
        if let Err(f) = result {
            self.fail(f);
        }
    }

    fn start_request<K: AsRef<str>, V: AsRef<str>>(
        &mut self,
        method: &str,
        target: &str,
        headers: &[(K, V)],
        body: BodyPlan,
    ) -> Result<(), RequestError> {
        let status = self.status();
        if status != Status::Connected {
            return Err(RequestError::WrongStatus(status));
        }
        let Some(conn) = self.conn.as_mut() else {
            return Err(RequestError::WrongStatus(status));
        };
        conn.start_request(method, target, headers, body)
            .map_err(RequestError::Invalid)?;
        self.response = None;
        self.informational.clear();
        self.trailers = None;
        self.write_now();
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
    /// Reads from the socket only within what is left of the current poll's
    /// budget ([`set_poll_budget`](Self::set_poll_budget)): once the bytes
    /// read since the last [`poll`](Self::poll) reach it, or its time has
    /// passed, this
    /// returns the body proto already holds, then `None` until the next
    /// `poll`, so the usual drain loop (`while let Some(chunk) = …`) ends
    /// within one frame's budget however fast the data arrives.
    ///
    /// Never blocks. Cost per call: no copy of the body; one reading of the
    /// client's clock when the budget has a time; when proto holds no
    /// event, socket reads of at most its receive buffer's size
    /// (up to 512 KiB, growing while reads fill it), within the budget left.
    pub fn read_response_body_chunk(&mut self) -> Option<Bytes> {
        if self.status() != Status::Body {
            return None;
        }
        // One receive buffer's worth per call at most, within the poll's
        // budget; nothing more from the socket once its time has passed.
        if self.poll_deadline.is_some_and(|d| (self.clock)() >= d) {
            self.read_budget_left = 0;
        }
        let mut budget = self.read_budget_left.min(self.proto_config.recv_buf_size);
        loop {
            let (x, ready) = self.conn.as_mut().and_then(Conn::exchange_mut)?;
            let before = budget;
            let event = x.poll_event(ready, &mut budget);
            self.read_budget_left -= before - budget;
            match event {
                Ok(Some(Event::Body(b))) => return Some(b),
                Ok(Some(Event::Trailers(t))) => self.trailers = Some(t),
                Ok(Some(Event::End)) => {
                    self.finish_response();
                    return None;
                }
                Ok(Some(_)) => {}
                Ok(None) => return None,
                Err(f) => {
                    self.fail(f);
                    return None;
                }
            }
        }
    }

    fn finish_response(&mut self) {
        let reusable = self
            .conn
            .as_mut()
            .and_then(Conn::exchange_mut)
            .is_some_and(|(x, _)| x.proto.can_reuse() && x.proto.reset().is_ok());
        if reusable {
            if let Some(conn) = self.conn.as_mut() {
                conn.update_interest(self.reactor.registry());
            }
        } else {
            self.drop_connection();
        }
    }
}
