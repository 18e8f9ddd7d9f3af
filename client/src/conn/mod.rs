//! Connections: [`Conn`] establishes one (resolve → connect → proxy CONNECT →
//! TLS handshake, one state machine owning the connect deadline) and then
//! carries requests through its [`Exchange`]. A connection registers with a
//! [`mio::Registry`] under the [`Token`] it is given, so any number of them
//! can share one reactor.

use std::fmt;
use std::hash::{Hash, Hasher};
use std::io;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use mio::{Interest, Registry, Token, Waker};
use pollhttp_proto::{method, Config, Event, RecvState};
use url::Url;

use crate::connect::{ConnectProgress, Connector};
use crate::error::Failure;
use crate::reactor::Readiness;
use crate::resolve::{parse_ip_literal, PendingLookup, Resolver};
use crate::status::Status;
use crate::tls_options::TlsOptions;
use crate::transport::{PlainStream, TlsStream, Transport};

pub(crate) mod cache;
mod exchange;

/// proto's configuration for a client with this read chunk size: the
/// receive room grows up to the gulp ([`GULP`](crate::transport::GULP), or
/// the chunk size if larger) while reads fill it; the client is a user
/// agent, so obs-fold in a response is unfolded (RFC 9112 §5.2).
pub(crate) fn client_proto_config(base: Config, read_chunk_size: usize) -> Config {
    let mut config = Config {
        read_chunk_size,
        recv_buf_size: read_chunk_size.max(crate::transport::GULP),
        ..base
    };
    config.lenient.obs_fold = true;
    config
}

pub(crate) use exchange::Exchange;

/// Whether `url` is https, its host (an IPv6 literal without its brackets)
/// and its port: a connection [`Target`]'s origin.
pub(crate) fn url_origin(url: &Url) -> (bool, &str, u16) {
    let host = url.host_str().unwrap_or("");
    let host = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    (
        url.scheme() == "https",
        host,
        url.port_or_known_default().unwrap_or(80),
    )
}

/// Where a connection goes and how: the origin a request is for, the proxy
/// on the way, the TLS settings. Which connections may carry it is its
/// [`ConnKey`].
#[derive(Clone, Debug)]
pub(crate) struct Target {
    /// `https`: TLS to the origin (through the proxy's tunnel, if any).
    pub(crate) tls: bool,
    /// The host without brackets (a name or an IP literal).
    pub(crate) host: String,
    pub(crate) port: u16,
    /// The proxy the socket goes to, as (host, port): an HTTP proxy for
    /// `http` (absolute-form targets), a CONNECT tunnel for `https`.
    pub(crate) proxy: Option<(String, u16)>,
    /// The `Proxy-Authorization` value sent to the proxy (on CONNECT, or
    /// with each absolute-form request), never to the origin.
    pub(crate) proxy_auth: Option<String>,
    /// TLS settings, for `https`.
    pub(crate) tls_options: Option<TlsOptions>,
}

impl Target {
    /// The Host field value: `host[:port]`, the port left out when it is the
    /// scheme's default, IPv6 literals bracketed (RFC 9110 §7.2).
    pub(crate) fn host_header(&self) -> String {
        let host = self.host_for_uri();
        if self.port == if self.tls { 443 } else { 80 } {
            host
        } else {
            format!("{host}:{}", self.port)
        }
    }

    fn host_for_uri(&self) -> String {
        match parse_ip_literal(&self.host) {
            Some(IpAddr::V6(_)) => format!("[{}]", self.host),
            _ => self.host.clone(),
        }
    }

    /// Whether requests need an absolute-form target (an HTTP proxy).
    pub(crate) fn via_http_proxy(&self) -> bool {
        !self.tls && self.proxy.is_some()
    }
}

/// A proxy as a connection's key knows it: host (ASCII case folded), port,
/// and the `Proxy-Authorization` value sent to it.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) struct ProxyKey {
    host: String,
    port: u16,
    auth: Option<String>,
}

impl ProxyKey {
    fn of(t: &Target) -> Option<ProxyKey> {
        t.proxy.as_ref().map(|(host, port)| ProxyKey {
            host: host.to_ascii_lowercase(),
            port: *port,
            auth: t.proxy_auth.clone(),
        })
    }

    fn admits(&self, t: &Target) -> bool {
        t.proxy
            .as_ref()
            .is_some_and(|(h, p)| *p == self.port && h.eq_ignore_ascii_case(&self.host))
            && t.proxy_auth == self.auth
    }
}

/// Which connections may carry a request: a kept connection is reused only
/// for a [`Target`] with its key, and two connections with equal keys are
/// interchangeable. curl's CONNREUSE rules: never across TLS settings
/// (`https`: the same [`TlsOptions`], [`TlsOptions::same_settings`]) nor
/// across proxies (the same proxy with the same credentials, or none).
///
/// What the connection's peer is decides the rest:
/// - straight to the origin, or `https` through a proxy's CONNECT tunnel
///   (the tunnel leads to one origin): the origin (scheme, host, port);
/// - plain `http` through an HTTP proxy: the proxy is the peer and every
///   request names its origin in absolute-form (RFC 9112 §3.2.2), so any
///   `http` origin may go over any connection to that proxy with the same
///   credentials (as curl).
///
/// The connection cache counts its per-origin limits by this key (so for
/// plain `http` through a proxy, the connections to the proxy, as curl),
/// and the pool's wait queue queues by it: requests with equal keys wait
/// for the same connections. Host names compare without ASCII case.
#[derive(Clone, Debug)]
pub(crate) enum ConnKey {
    /// Plain `http` through an HTTP proxy, whatever the origin.
    HttpProxy(ProxyKey),
    /// To one origin (scheme, host, port): straight, or through a proxy's
    /// CONNECT tunnel.
    Origin {
        tls: bool,
        host: String,
        port: u16,
        /// A CONNECT tunnel's proxy (boxed: rare, and a key is kept per
        /// waiting request).
        proxy: Option<Box<ProxyKey>>,
        tls_options: Option<TlsOptions>,
    },
}

impl ConnKey {
    /// The key of the connections that may carry a request for `t`.
    pub(crate) fn of(t: &Target) -> ConnKey {
        if let (true, Some(proxy)) = (t.via_http_proxy(), ProxyKey::of(t)) {
            return ConnKey::HttpProxy(proxy);
        }
        ConnKey::Origin {
            tls: t.tls,
            host: t.host.to_ascii_lowercase(),
            port: t.port,
            proxy: ProxyKey::of(t).map(Box::new),
            tls_options: t.tls_options.clone(),
        }
    }

    /// Whether a connection with this key may carry a request for `t`
    /// (`self == ConnKey::of(t)`, without building the key).
    pub(crate) fn admits(&self, t: &Target) -> bool {
        match self {
            ConnKey::HttpProxy(proxy) => t.via_http_proxy() && proxy.admits(t),
            ConnKey::Origin {
                tls,
                host,
                port,
                proxy,
                tls_options,
            } => {
                !t.via_http_proxy()
                    && t.tls == *tls
                    && t.port == *port
                    && t.host.eq_ignore_ascii_case(host)
                    && match proxy {
                        Some(p) => p.admits(t),
                        None => t.proxy.is_none(),
                    }
                    && same_tls(tls_options.as_ref(), t.tls_options.as_ref())
            }
        }
    }
}

/// A request's [`Target`] with its [`ConnKey`], made once per URL (a job
/// keeps it until a redirect changes the URL): the pool queues the request
/// by the key and the connection cache counts connections by it, so the
/// key is built once per request rather than at each look-up.
#[derive(Clone, Debug)]
pub(crate) struct Route {
    pub(crate) target: Target,
    pub(crate) key: ConnKey,
}

impl Route {
    pub(crate) fn new(target: Target) -> Route {
        let key = ConnKey::of(&target);
        Route { target, key }
    }
}

/// Whether two TLS settings (or their absence) make interchangeable
/// connections ([`TlsOptions::same_settings`]).
pub(crate) fn same_tls(a: Option<&TlsOptions>, b: Option<&TlsOptions>) -> bool {
    match (a, b) {
        (None, None) => true,
        (Some(a), Some(b)) => a.same_settings(b),
        _ => false,
    }
}

impl PartialEq for ConnKey {
    fn eq(&self, other: &ConnKey) -> bool {
        match (self, other) {
            (ConnKey::HttpProxy(a), ConnKey::HttpProxy(b)) => a == b,
            (
                ConnKey::Origin {
                    tls,
                    host,
                    port,
                    proxy,
                    tls_options,
                },
                ConnKey::Origin {
                    tls: tls2,
                    host: host2,
                    port: port2,
                    proxy: proxy2,
                    tls_options: tls_options2,
                },
            ) => {
                tls == tls2
                    && port == port2
                    && host == host2
                    && proxy == proxy2
                    && same_tls(tls_options.as_ref(), tls_options2.as_ref())
            }
            _ => false,
        }
    }
}

// `same_settings` is an equivalence (pointer equality of the rustls
// configuration and equal options).
impl Eq for ConnKey {}

impl Hash for ConnKey {
    /// Everything but the TLS settings (equal keys still hash equal).
    fn hash<H: Hasher>(&self, state: &mut H) {
        std::mem::discriminant(self).hash(state);
        match self {
            ConnKey::HttpProxy(proxy) => proxy.hash(state),
            ConnKey::Origin {
                tls,
                host,
                port,
                proxy,
                ..
            } => {
                tls.hash(state);
                host.hash(state);
                port.hash(state);
                proxy.hash(state);
            }
        }
    }
}

/// Where a connection is, for a front end's status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Phase {
    Resolving,
    Connecting,
    Ready,
    Closed,
}

enum Stage {
    Resolving(PendingLookup),
    Connecting(Box<Connector>),
    /// CONNECT to an HTTPS proxy over the plain transport.
    Tunnel(Box<Exchange>),
    Handshake(Box<TlsStream>),
    Ready(Box<Exchange>),
    Closed,
}

/// One connection, from resolving its target to carrying requests.
pub(crate) struct Conn {
    token: Token,
    target: Target,
    /// The key of `target`, which never changes.
    key: ConnKey,
    /// The Host field value for this target, built once.
    host_header: String,
    stage: Stage,
    ready: Readiness,
    /// The interest the socket is registered with (`None`: not registered).
    interest: Option<Interest>,
    connect_timeout: Duration,
    connect_deadline: Option<Instant>,
    /// RFC 8305's Connection Attempt Delay.
    attempt_delay: Duration,
    recv_buffer: Option<usize>,
    config: Config,
}

impl fmt::Debug for Conn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Conn")
            .field("token", &self.token)
            .field("target", &self.target)
            .field("phase", &self.phase())
            .field("ready", &self.ready)
            .finish_non_exhaustive()
    }
}

/// How a connection is set up.
#[derive(Clone, Debug)]
pub(crate) struct ConnSettings {
    pub(crate) connect_timeout: Duration,
    /// Happy Eyeballs' delay before the next address starts beside a
    /// pending one (RFC 8305 §5: 250 ms recommended).
    pub(crate) attempt_delay: Duration,
    /// `SO_RCVBUF` of each new socket, set before it connects
    /// ([`Settings::recv_buffer_size`](crate::Settings::recv_buffer_size)).
    pub(crate) recv_buffer: Option<usize>,
    pub(crate) config: Config,
}

impl Conn {
    /// Start connecting to `target`: the lookup goes to a resolver thread
    /// (IP literals are answered at once, and connecting starts now). Never
    /// blocks.
    pub(crate) fn start(
        route: Route,
        token: Token,
        settings: &ConnSettings,
        resolver: &Resolver,
        registry: &Registry,
        waker: &Arc<Waker>,
        now: Instant,
    ) -> Conn {
        let Route { target, key } = route;
        let (host, port) = match &target.proxy {
            Some((h, p)) => (h.clone(), *p),
            None => (target.host.clone(), target.port),
        };
        let lookup = resolver.start(&host, port, Some(Arc::clone(waker)));
        let answered = lookup.has_addresses();
        let mut conn = Conn {
            token,
            host_header: target.host_header(),
            key,
            target,
            stage: Stage::Resolving(lookup),
            ready: Readiness::default(),
            interest: None,
            connect_timeout: settings.connect_timeout,
            connect_deadline: None,
            attempt_delay: settings.attempt_delay,
            recv_buffer: settings.recv_buffer,
            config: settings.config.clone(),
        };
        if answered {
            // An IP literal or a cached name: connect now; no thread runs and
            // no wake-up will come. (An answer that is a failure stays for
            // the first step to report; a connect error shows there too.)
            let _ = conn.step_resolving(registry, now);
        }
        conn
    }

    /// Which requests this connection may carry.
    pub(crate) fn key(&self) -> &ConnKey {
        &self.key
    }

    /// Whether this connection may carry a request for `target` (its
    /// [`ConnKey`] admits it); if so, its next requests name `target`'s
    /// origin (`Host`, and the absolute-form target through an HTTP proxy,
    /// whose connections carry requests for any `http` origin).
    pub(crate) fn reuse_for(&mut self, target: &Target) -> bool {
        if !self.key.admits(target) {
            return false;
        }
        if self.target.host != target.host || self.target.port != target.port {
            self.host_header = target.host_header();
            self.target.host.clone_from(&target.host);
            self.target.port = target.port;
        }
        true
    }

    pub(crate) fn token(&self) -> Token {
        self.token
    }

    pub(crate) fn phase(&self) -> Phase {
        match self.stage {
            Stage::Resolving(_) => Phase::Resolving,
            Stage::Connecting(_) | Stage::Tunnel(_) | Stage::Handshake(_) => Phase::Connecting,
            Stage::Ready(_) => Phase::Ready,
            Stage::Closed => Phase::Closed,
        }
    }

    /// The connection's state with Godot's HTTPClient names, derived from
    /// its phase and proto's receive state (the one place both front ends
    /// read it from).
    pub(crate) fn status(&self) -> Status {
        match self.phase() {
            Phase::Resolving => Status::Resolving,
            Phase::Connecting => Status::Connecting,
            Phase::Closed => Status::Disconnected,
            Phase::Ready => match self.exchange().map(|x| x.proto.recv_state()) {
                Some(RecvState::Head) => Status::Requesting,
                Some(RecvState::Body | RecvState::Trailers) => Status::Body,
                _ => Status::Connected,
            },
        }
    }

    /// The exchange, once established.
    pub(crate) fn exchange(&self) -> Option<&Exchange> {
        match &self.stage {
            Stage::Ready(x) => Some(x),
            _ => None,
        }
    }

    /// The exchange and the socket's readiness, once established.
    pub(crate) fn exchange_mut(&mut self) -> Option<(&mut Exchange, &mut Readiness)> {
        match &mut self.stage {
            Stage::Ready(x) => Some((x, &mut self.ready)),
            _ => None,
        }
    }

    /// A readiness event for this connection's token.
    pub(crate) fn on_event(&mut self, ev: &mio::event::Event) {
        self.ready.merge(ev);
    }

    /// The next time the connection needs a step without an event: the
    /// connect deadline, or the next Happy Eyeballs attempt.
    pub(crate) fn deadline(&self) -> Option<Instant> {
        let attempt = match &self.stage {
            Stage::Connecting(c) => c.next_attempt(),
            _ => None,
        };
        [self.connect_deadline, attempt].into_iter().flatten().min()
    }

    /// Whether a step would make progress now without waiting (`woken`: the
    /// reactor's waker fired, which is how a lookup reports).
    pub(crate) fn has_pending_work(&self, woken: bool) -> bool {
        match &self.stage {
            Stage::Resolving(lookup) => woken || lookup.is_answered(),
            Stage::Connecting(_) => self.ready.writable,
            Stage::Tunnel(x) => x.has_pending_work(&self.ready),
            Stage::Handshake(_) => self.ready.readable || self.ready.writable,
            Stage::Ready(x) => x.has_pending_work(&self.ready),
            Stage::Closed => false,
        }
    }

    /// Advance the establishment as far as it goes without blocking; a no-op
    /// once ready. `now` is the caller's clock reading for this step.
    ///
    /// # Errors
    /// Why the connection could not be established (the connection is
    /// closed then).
    pub(crate) fn establish(&mut self, registry: &Registry, now: Instant) -> Result<(), Failure> {
        let result = self.establish_inner(registry, now);
        if result.is_err() {
            self.close(registry);
        } else {
            self.update_interest(registry);
        }
        result
    }

    fn establish_inner(&mut self, registry: &Registry, now: Instant) -> Result<(), Failure> {
        loop {
            let before = self.phase_index();
            match self.stage {
                Stage::Resolving(_) => self.step_resolving(registry, now)?,
                Stage::Connecting(_) => self.step_connecting(registry, now)?,
                Stage::Tunnel(_) => self.step_tunnel(now)?,
                Stage::Handshake(_) => self.step_handshake(now)?,
                Stage::Ready(_) | Stage::Closed => return Ok(()),
            }
            // A finished lookup shows as Connecting until the next step
            // (Godot's status sequence), even when the connect is instant.
            if self.phase_index() == before || before == 0 {
                return Ok(());
            }
        }
    }

    fn phase_index(&self) -> u8 {
        match self.stage {
            Stage::Resolving(_) => 0,
            Stage::Connecting(_) => 1,
            Stage::Tunnel(_) => 2,
            Stage::Handshake(_) => 3,
            Stage::Ready(_) => 4,
            Stage::Closed => 5,
        }
    }

    fn timed_out(&self, now: Instant) -> bool {
        self.connect_deadline.is_some_and(|d| now >= d)
    }

    fn step_resolving(&mut self, registry: &Registry, now: Instant) -> Result<(), Failure> {
        let Stage::Resolving(lookup) = &mut self.stage else {
            return Ok(());
        };
        let addrs = match lookup.try_take() {
            None => return Ok(()),
            Some(Err(e)) => return Err(Failure::Resolve(e)),
            Some(Ok(addrs)) if addrs.is_empty() => {
                return Err(Failure::Resolve(io::Error::new(
                    io::ErrorKind::NotFound,
                    "no addresses",
                )))
            }
            Some(Ok(addrs)) => addrs,
        };
        self.stage = Stage::Connecting(Box::new(Connector::start_with(
            addrs,
            registry,
            self.token,
            self.attempt_delay,
            self.recv_buffer,
            now,
        )));
        self.interest = Some(Interest::WRITABLE);
        self.connect_deadline = Some(now + self.connect_timeout);
        // Checked at the next step: a refused or completed connect may be
        // known then without waiting for an event.
        self.ready.writable = true;
        Ok(())
    }

    fn step_connecting(&mut self, registry: &Registry, now: Instant) -> Result<(), Failure> {
        // One deadline over every attempt, counted from the first.
        if self.timed_out(now) {
            return Err(Failure::ConnectTimeout(self.connect_timeout));
        }
        let Stage::Connecting(connector) = &mut self.stage else {
            return Ok(());
        };
        let attempt_due = connector.next_attempt().is_some_and(|t| now >= t);
        if !self.ready.writable && !attempt_due {
            return Ok(());
        }
        self.ready.writable = false;
        let stream = match connector.poll(registry, now) {
            ConnectProgress::Pending => return Ok(()),
            ConnectProgress::Failed(e) => return Err(Failure::Connect(e)),
            ConnectProgress::Connected(stream) => stream,
        };
        // Registered for WRITABLE by the connector; the interest follows what
        // the transport needs from here on.
        self.interest = Some(Interest::WRITABLE);
        self.ready = Readiness::ALL;
        let plain = Transport::Plain(PlainStream::new(stream));
        if self.target.tls && self.target.proxy.is_some() {
            let mut tunnel = Exchange::new(plain, Config::default());
            let authority = format!("{}:{}", self.target.host_for_uri(), self.target.port);
            let mut fields = vec![("Host", authority.as_str())];
            if let Some(auth) = &self.target.proxy_auth {
                fields.push(("Proxy-Authorization", auth.as_str()));
            }
            tunnel
                .start_request(method::CONNECT, &authority, fields, None)
                .map_err(Failure::Protocol)?;
            self.stage = Stage::Tunnel(Box::new(tunnel));
        } else if self.target.tls {
            self.start_tls(plain, &[])?;
        } else {
            self.ready_with(plain);
        }
        Ok(())
    }

    fn ready_with(&mut self, transport: Transport) {
        self.stage = Stage::Ready(Box::new(Exchange::new(transport, self.config.clone())));
        self.connect_deadline = None;
    }

    fn start_tls(&mut self, plain: Transport, initial: &[u8]) -> Result<(), Failure> {
        let Transport::Plain(plain) = plain else {
            return Ok(());
        };
        let options = self
            .target
            .tls_options
            .get_or_insert_with(TlsOptions::default);
        let name = options
            .server_name(&self.target.host)
            .map_err(Failure::TlsConfig)?;
        let tls = TlsStream::new(
            Arc::clone(options.client_config()),
            name,
            plain.into_inner(),
            initial,
        )
        .map_err(Failure::Tls)?;
        self.stage = Stage::Handshake(Box::new(tls));
        Ok(())
    }

    fn step_tunnel(&mut self, now: Instant) -> Result<(), Failure> {
        if self.timed_out(now) {
            return Err(Failure::ConnectTimeout(self.connect_timeout));
        }
        let Stage::Tunnel(tunnel) = &mut self.stage else {
            return Ok(());
        };
        let mut budget = 64 * 1024;
        tunnel.pump(&mut self.ready, &mut budget)?;
        loop {
            let ev = tunnel
                .poll_event(&mut self.ready, &mut budget)
                .map_err(|f| match f {
                    Failure::Io(e) => Failure::Connect(e),
                    other => other,
                })?;
            match ev {
                None => return Ok(()),
                Some(Event::Head(h)) if !(200..300).contains(&h.status()) => {
                    return Err(Failure::ProxyRefused { status: h.status() })
                }
                Some(Event::End) => break,
                Some(_) => {}
            }
        }
        let Stage::Tunnel(tunnel) = std::mem::replace(&mut self.stage, Stage::Closed) else {
            return Ok(());
        };
        let (plain, initial) = tunnel.into_parts();
        self.ready = Readiness::ALL;
        self.start_tls(plain, &initial)
    }

    fn step_handshake(&mut self, now: Instant) -> Result<(), Failure> {
        if self.timed_out(now) {
            return Err(Failure::ConnectTimeout(self.connect_timeout));
        }
        let Stage::Handshake(tls) = &mut self.stage else {
            return Ok(());
        };
        match tls.drive_handshake() {
            Ok(true) => {
                let Stage::Handshake(tls) = std::mem::replace(&mut self.stage, Stage::Closed)
                else {
                    return Ok(());
                };
                self.ready_with(Transport::Tls(tls));
                // Application data may already be buffered with the handshake.
                self.ready = Readiness::ALL;
                Ok(())
            }
            Ok(false) => {
                self.ready.readable = false;
                self.ready.writable = false;
                Ok(())
            }
            Err(e) => Err(Failure::Tls(e)),
        }
    }

    /// Re-register the socket when the interest it needs changed (rustls'
    /// `wants_write`, request bytes to send). One `epoll_ctl` per change.
    pub(crate) fn update_interest(&mut self, registry: &Registry) {
        let token = self.token;
        let (want, transport) = match &mut self.stage {
            Stage::Tunnel(x) | Stage::Ready(x) => (x.interest(), x.transport_mut()),
            Stage::Handshake(tls) => {
                // The handshake reads and writes by turns: both.
                let sock = tls.socket();
                if self.interest != Some(Interest::READABLE | Interest::WRITABLE)
                    && registry
                        .reregister(sock, token, Interest::READABLE | Interest::WRITABLE)
                        .is_ok()
                {
                    self.interest = Some(Interest::READABLE | Interest::WRITABLE);
                }
                return;
            }
            _ => return,
        };
        if self.interest != Some(want)
            && registry.reregister(transport.socket(), token, want).is_ok()
        {
            self.interest = Some(want);
        }
    }

    /// Give the buffers back (an idle kept-alive connection).
    pub(crate) fn release_buffers(&mut self) {
        if let Stage::Ready(x) = &mut self.stage {
            x.release_buffers();
        }
    }

    /// Stop readiness events for this socket (a rate-limited request that
    /// must not be woken by every arriving segment): deregister it. The next
    /// [`update_interest`](Self::update_interest) registers it again.
    pub(crate) fn pause(&mut self, registry: &Registry) {
        if let Stage::Ready(x) = &mut self.stage {
            if self.interest.is_some() && registry.deregister(x.transport_mut().socket()).is_ok() {
                self.interest = None;
            }
        }
    }

    /// Whether [`pause`](Self::pause) holds.
    pub(crate) fn is_paused(&self) -> bool {
        matches!(self.stage, Stage::Ready(_)) && self.interest.is_none()
    }

    /// Register a paused socket again; its readiness is unknown, so it is
    /// taken as readable (a read that finds nothing says so).
    pub(crate) fn resume(&mut self, registry: &Registry) {
        let token = self.token;
        if let Stage::Ready(x) = &mut self.stage {
            if self.interest.is_none() {
                let want = x.interest();
                if registry
                    .register(x.transport_mut().socket(), token, want)
                    .is_ok()
                {
                    self.interest = Some(want);
                }
                self.ready.readable = true;
            }
        }
    }

    /// Whether the connection is established, idle and may carry a request.
    pub(crate) fn is_idle(&self) -> bool {
        self.exchange()
            .is_some_and(|x| x.proto.recv_state() == RecvState::Idle && x.proto.is_idle())
    }

    /// Close at once: deregister, a best-effort TLS `close_notify`, cancel a
    /// connect or a lookup (never joined). Never blocks.
    pub(crate) fn close(&mut self, registry: &Registry) {
        match std::mem::replace(&mut self.stage, Stage::Closed) {
            Stage::Resolving(lookup) => lookup.cancel(),
            Stage::Connecting(mut c) => c.cancel(registry),
            Stage::Tunnel(mut x) | Stage::Ready(mut x) => {
                x.close_notify();
                if self.interest.is_some() {
                    let _ = registry.deregister(x.transport_mut().socket());
                }
            }
            Stage::Handshake(mut tls) => {
                let _ = registry.deregister(tls.socket());
            }
            Stage::Closed => {}
        }
        self.interest = None;
        self.connect_deadline = None;
        self.ready = Readiness::default();
    }
}

/// How a request's body is sent.
pub(crate) enum BodyPlan {
    /// From this source: `Content-Length` when its length is known, chunked
    /// otherwise.
    Source(crate::body::BodySource),
    /// Chunked, in pieces the caller sends one by one.
    Streaming,
}

impl Conn {
    /// Queue a request on an idle established connection: `Host` first (RFC
    /// 9110 §7.2: the caller's, or `host[:port]`), the caller's fields in
    /// their order, then the defaults the caller did not give
    /// (`User-Agent: pollhttp/<version>`, `Accept: */*`, and the framing:
    /// `Content-Length` for a body of known size, also `0` for POST, PUT and
    /// PATCH without one as RFC 9110 §8.6 asks; `Transfer-Encoding: chunked`
    /// otherwise). Behind an HTTP proxy an origin-form target becomes
    /// absolute-form (RFC 9112 §3.2.2). Writes nothing yet.
    ///
    /// # Errors
    /// proto's caller errors, with field indexes into `headers`; a caller's
    /// Content-Length that does not match the body's size
    /// ([`ProtoError::RequestContentLengthMismatch`]); [`ProtoError::InvalidState`]
    /// when the connection is not established and idle. Nothing is queued.
    pub(crate) fn start_request<K: AsRef<str>, V: AsRef<str>>(
        &mut self,
        method: &str,
        target: &str,
        headers: &[(K, V)],
        body: BodyPlan,
    ) -> Result<(), pollhttp_proto::Error> {
        use pollhttp_proto::Error as ProtoError;
        let Stage::Ready(x) = &mut self.stage else {
            return Err(ProtoError::InvalidState {
                expected: "an established connection",
            });
        };
        let is = |k: &K, name: &str| k.as_ref().eq_ignore_ascii_case(name);
        let has = |name: &str| headers.iter().any(|(k, _)| is(k, name));
        let has_framing = has("content-length") || has("transfer-encoding");
        let length = match &body {
            BodyPlan::Source(s) => s.length(),
            BodyPlan::Streaming => None,
        };
        if let (BodyPlan::Source(_), Some(n)) = (&body, length) {
            // An unparsable one is proto's to refuse, with its index.
            let declared = headers
                .iter()
                .find(|(k, _)| is(k, "content-length"))
                .and_then(|(_, v)| v.as_ref().trim().parse::<u64>().ok());
            if let Some(declared) = declared.filter(|d| *d != n) {
                return Err(ProtoError::RequestContentLengthMismatch {
                    declared,
                    length: n,
                });
            }
        }
        let host_header = &self.host_header;
        let length_text;
        // (field, index in the caller's list)
        let mut fields: Vec<((&str, &str), Option<usize>)> = Vec::with_capacity(headers.len() + 4);
        for (i, (k, v)) in headers.iter().enumerate() {
            if is(k, "host") {
                fields.push(((k.as_ref(), v.as_ref()), Some(i)));
            }
        }
        if fields.is_empty() {
            fields.push((("Host", host_header.as_str()), None));
        }
        for (i, (k, v)) in headers.iter().enumerate() {
            if !is(k, "host") {
                fields.push(((k.as_ref(), v.as_ref()), Some(i)));
            }
        }
        if !has("user-agent") {
            let ua = concat!("pollhttp/", env!("CARGO_PKG_VERSION"));
            fields.push((("User-Agent", ua), None));
        }
        if !has("accept") {
            fields.push((("Accept", "*/*"), None));
        }
        if let (true, Some(auth)) = (self.target.via_http_proxy(), &self.target.proxy_auth) {
            if !has("proxy-authorization") {
                fields.push((("Proxy-Authorization", auth.as_str()), None));
            }
        }
        if !has_framing {
            match length {
                Some(n) if n > 0 || matches!(method, "POST" | "PUT" | "PATCH") => {
                    length_text = n.to_string();
                    fields.push((("Content-Length", length_text.as_str()), None));
                }
                Some(_) => {}
                None => fields.push((("Transfer-Encoding", "chunked"), None)),
            }
        }
        let absolute;
        let target = if self.target.via_http_proxy() && target.starts_with('/') {
            absolute = format!("http://{host_header}{target}");
            absolute.as_str()
        } else {
            target
        };
        let source = match body {
            BodyPlan::Source(s) => Some(s),
            BodyPlan::Streaming => None,
        };
        let remap = |index: usize| fields.get(index).and_then(|f| f.1).unwrap_or(index);
        x.start_request(method, target, fields.iter().map(|f| f.0), source)
            .map_err(|e| e.map_field_index(remap))?;
        // Try to write at once; a full socket says so.
        self.ready.writable = true;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(url: &str, proxy: Option<(&str, u16)>, auth: Option<&str>) -> Target {
        let url = Url::parse(url).unwrap();
        let (tls, host, port) = url_origin(&url);
        Target {
            tls,
            host: host.to_string(),
            port,
            proxy: proxy.map(|(h, p)| (h.to_string(), p)),
            proxy_auth: auth.map(str::to_string),
            tls_options: tls.then(TlsOptions::default),
        }
    }

    /// `ConnKey::of(a) == ConnKey::of(b)`, checked to agree with `admits`
    /// both ways (and with the hash).
    fn interchangeable(a: &Target, b: &Target) -> bool {
        use std::collections::hash_map::DefaultHasher;
        let (ka, kb) = (ConnKey::of(a), ConnKey::of(b));
        let equal = ka == kb;
        assert_eq!(ka.admits(b), equal, "{a:?} / {b:?}");
        assert_eq!(kb.admits(a), equal, "{b:?} / {a:?}");
        assert!(ka.admits(a) && kb.admits(b));
        if equal {
            let hash = |k: &ConnKey| {
                let mut h = DefaultHasher::new();
                k.hash(&mut h);
                h.finish()
            };
            assert_eq!(hash(&ka), hash(&kb));
        }
        equal
    }

    #[test]
    fn an_origin_is_scheme_host_and_port_without_case() {
        let a = target("http://Example.com/", None, None);
        assert!(interchangeable(
            &a,
            &target("http://example.com:80/x", None, None)
        ));
        assert!(!interchangeable(
            &a,
            &target("http://example.com:81/", None, None)
        ));
        assert!(!interchangeable(
            &a,
            &target("http://example.org/", None, None)
        ));
        assert!(!interchangeable(
            &target("https://example.com:80/", None, None),
            &target("http://example.com:80/", None, None)
        ));
        let mut v6 = target("http://[::1]:8080/", None, None);
        assert_eq!(v6.host, "::1");
        assert!(interchangeable(&v6, &v6.clone()));
        v6.port = 8081;
        assert!(!interchangeable(
            &v6,
            &target("http://[::1]:8080/", None, None)
        ));
    }

    #[test]
    fn never_across_tls_settings() {
        let a = target("https://example.com/", None, None);
        let mut b = a.clone();
        assert!(interchangeable(&a, &b), "the same default settings");
        b.tls_options = Some(TlsOptions::default().dangerous_disable_verification());
        assert!(!interchangeable(&a, &b));
        b.tls_options = Some(TlsOptions::default().server_name_override("other"));
        assert!(!interchangeable(&a, &b));
    }

    #[test]
    fn never_across_proxies_or_their_credentials() {
        let p = Some(("proxy", 3128));
        let direct = target("http://a.test/", None, None);
        let proxied = target("http://a.test/", p, None);
        assert!(!interchangeable(&direct, &proxied));
        assert!(!interchangeable(
            &proxied,
            &target("http://a.test/", Some(("proxy", 3129)), None)
        ));
        assert!(!interchangeable(
            &proxied,
            &target("http://a.test/", Some(("other", 3128)), None)
        ));
        assert!(!interchangeable(
            &proxied,
            &target("http://a.test/", p, Some("Basic dTpw"))
        ));
        assert!(interchangeable(
            &proxied,
            &target("http://a.test/", Some(("PROXY", 3128)), None)
        ));
    }

    #[test]
    fn plain_http_through_a_proxy_goes_over_any_connection_to_it() {
        let p = Some(("proxy", 3128));
        let auth = Some("Basic dTpw");
        let a = target("http://a.test/", p, auth);
        assert!(interchangeable(&a, &target("http://b.test:8080/", p, auth)));
        assert!(!interchangeable(
            &a,
            &target("http://b.test:8080/", p, None)
        ));
        // https goes through a tunnel to its origin: one per origin.
        let tunnel = target("https://a.test/", p, auth);
        assert!(interchangeable(
            &tunnel,
            &target("https://a.test/", p, auth)
        ));
        assert!(!interchangeable(
            &tunnel,
            &target("https://b.test/", p, auth)
        ));
        assert!(!interchangeable(&tunnel, &a));
        assert!(!interchangeable(
            &tunnel,
            &target("http://a.test:443/", p, auth)
        ));
    }

    #[test]
    // The key's hash leaves out the TLS settings (whose rustls
    // configuration has interior mutability), as the cache's map does.
    #[allow(clippy::mutable_key_type)]
    fn the_key_compares_and_hashes_as_curl_groups() {
        use std::collections::HashMap;
        let p = Some(("proxy", 3128));
        let mut counts: HashMap<ConnKey, usize> = HashMap::new();
        for url in ["http://a.test/", "http://b.test/", "http://A.test/x"] {
            *counts
                .entry(ConnKey::of(&target(url, p, None)))
                .or_default() += 1;
        }
        for url in ["https://a.test/", "https://b.test/", "http://a.test/"] {
            let t = if url.starts_with("https") {
                target(url, p, None)
            } else {
                target(url, None, None)
            };
            *counts.entry(ConnKey::of(&t)).or_default() += 1;
        }
        let mut sizes: Vec<usize> = counts.values().copied().collect();
        sizes.sort_unstable();
        assert_eq!(
            sizes,
            [1, 1, 1, 3],
            "the proxy's 3, two tunnels, one direct"
        );
    }
}
