//! A small HTTP proxy on 127.0.0.1 for proxy tests.
//!
//! Per client connection, the first request head decides what happens:
//! - `CONNECT host:port HTTP/1.1`: connects to the target (5 s timeout),
//!   answers `HTTP/1.1 200 Connection Established`, then pipes bytes both
//!   ways until both sides closed (half-closes are forwarded). Unreachable
//!   target: `502 Bad Gateway`. With [`ProxyOptions::refuse_connect_with`]
//!   it answers that status instead (and closes).
//! - absolute-form (`GET http://host:port/path HTTP/1.1`): connects to that
//!   origin and forwards the request bytes unchanged (nginx accepts
//!   absolute-form), then keeps forwarding for the rest of the connection:
//!   later requests on the same client connection go to the same origin,
//!   each one parsed (head, then a Content-Length or chunked body) so its
//!   head is recorded too; responses are piped back as they come.
//! - anything else (origin-form, `https://` absolute-form): `400`, close.
//!
//! With [`ProxyOptions::require_auth`], a request whose `Proxy-Authorization`
//! differs gets `407` with `Proxy-Authenticate: Basic realm="pollhttp-test"`
//! and the connection stays open for a retry.
//!
//! Piping stops when both directions are idle for [`ProxyOptions::io_timeout`]
//! (default 30 s) or the proxy drops (open connections are shut down).

use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, Shutdown, SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use crate::util::{header_value, read_head};

/// Options for [`Proxy::start`].
#[derive(Debug, Clone)]
pub struct ProxyOptions {
    /// Answer CONNECT requests with this status (e.g. 403) instead of
    /// tunnelling.
    pub refuse_connect_with: Option<u16>,
    /// Require this exact `Proxy-Authorization` value (e.g. `Basic dTpw`),
    /// else answer 407.
    pub require_auth: Option<String>,
    /// Idle limit for piped connections (both directions idle), and the
    /// timeout for reading request heads and writing. Default 30 s.
    pub io_timeout: Duration,
}

impl Default for ProxyOptions {
    fn default() -> Self {
        ProxyOptions {
            refuse_connect_with: None,
            require_auth: None,
            io_timeout: Duration::from_secs(30),
        }
    }
}

#[derive(Default)]
struct Shared {
    stop: AtomicBool,
    accepted: AtomicUsize,
    next_id: AtomicUsize,
    heads: Mutex<Vec<String>>,
    errors: Mutex<Vec<String>>,
    open: Mutex<HashMap<usize, Vec<TcpStream>>>,
    handlers: Mutex<Vec<JoinHandle<()>>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// A running proxy; stopped on drop.
pub struct Proxy {
    addr: SocketAddr,
    shared: Arc<Shared>,
    acceptor: Option<JoinHandle<()>>,
}

impl Proxy {
    /// Starts the proxy on 127.0.0.1 (ephemeral port).
    pub fn start(opts: ProxyOptions) -> Proxy {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("local_addr");
        let shared = Arc::new(Shared::default());
        let sh = Arc::clone(&shared);
        let acceptor = thread::Builder::new()
            .name(format!("proxy-accept-{}", addr.port()))
            .spawn(move || accept_loop(listener, Arc::new(opts), sh))
            .expect("spawn proxy thread");
        Proxy {
            addr,
            shared,
            acceptor: Some(acceptor),
        }
    }

    /// The listening port.
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// The listening address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:<port>` (the proxy URL to configure in a client).
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port())
    }

    /// Request lines seen so far (first line of each head the proxy parsed:
    /// every request of each connection, retries after a 407 included; not
    /// what goes through a CONNECT tunnel), e.g.
    /// `CONNECT 127.0.0.1:443 HTTP/1.1` or `GET http://127.0.0.1:8080/x HTTP/1.1`.
    pub fn request_lines(&self) -> Vec<String> {
        self.request_heads()
            .iter()
            .map(|h| h.split("\r\n").next().unwrap_or("").to_string())
            .collect()
    }

    /// Full request heads the proxy parsed (see [`Proxy::request_lines`]).
    pub fn request_heads(&self) -> Vec<String> {
        lock(&self.shared.heads).clone()
    }

    /// Client connections accepted so far.
    pub fn connections_accepted(&self) -> usize {
        self.shared.accepted.load(Ordering::SeqCst)
    }

    /// Errors so far (failed upstream connects, bad requests...).
    pub fn errors(&self) -> Vec<String> {
        lock(&self.shared.errors).clone()
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        for (_, socks) in lock(&self.shared.open).drain() {
            for s in socks {
                let _ = s.shutdown(Shutdown::Both);
            }
        }
        let woke = TcpStream::connect_timeout(&self.addr, Duration::from_secs(2)).is_ok();
        if let Some(h) = self.acceptor.take() {
            if woke {
                let _ = h.join();
            }
        }
        let handlers: Vec<_> = lock(&self.shared.handlers).drain(..).collect();
        for h in handlers {
            let _ = h.join();
        }
    }
}

fn accept_loop(listener: TcpListener, opts: Arc<ProxyOptions>, shared: Arc<Shared>) {
    loop {
        let stream = match listener.accept() {
            Ok((s, _)) => s,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => {
                if shared.stop.load(Ordering::SeqCst) {
                    return;
                }
                lock(&shared.errors).push(format!("accept: {e}"));
                thread::sleep(Duration::from_millis(10));
                continue;
            }
        };
        if shared.stop.load(Ordering::SeqCst) {
            return;
        }
        shared.accepted.fetch_add(1, Ordering::SeqCst);
        let id = shared.next_id.fetch_add(1, Ordering::SeqCst);
        let sh = Arc::clone(&shared);
        let o = Arc::clone(&opts);
        let h = thread::Builder::new()
            .name(format!("proxy-conn-{id}"))
            .spawn(move || {
                if let Err(e) = handle(id, stream, &o, &sh) {
                    lock(&sh.errors).push(format!("conn {id}: {e}"));
                }
                lock(&sh.open).remove(&id);
            });
        match h {
            Ok(h) => lock(&shared.handlers).push(h),
            Err(e) => lock(&shared.errors).push(format!("spawn: {e}")),
        }
    }
}

fn register(shared: &Shared, id: usize, s: &TcpStream) {
    if let Ok(c) = s.try_clone() {
        lock(&shared.open).entry(id).or_default().push(c);
    }
}

fn simple_response(code: u16, reason: &str, extra: &str, close: bool) -> Vec<u8> {
    let conn = if close { "Connection: close\r\n" } else { "" };
    format!("HTTP/1.1 {code} {reason}\r\n{extra}{conn}Content-Length: 0\r\n\r\n").into_bytes()
}

fn connect_to(target: &str, timeout: Duration) -> io::Result<TcpStream> {
    let mut last = io::Error::new(io::ErrorKind::NotFound, format!("{target}: no address"));
    for addr in target.to_socket_addrs()? {
        match TcpStream::connect_timeout(&addr, timeout) {
            Ok(s) => return Ok(s),
            Err(e) => last = e,
        }
    }
    Err(last)
}

fn handle(
    id: usize,
    mut client: TcpStream,
    opts: &ProxyOptions,
    shared: &Shared,
) -> io::Result<()> {
    client.set_read_timeout(Some(opts.io_timeout))?;
    client.set_write_timeout(Some(opts.io_timeout))?;
    let _ = client.set_nodelay(true);
    register(shared, id, &client);
    let mut buf = Vec::new();
    loop {
        let end = read_head(&mut client, &mut buf, 1 << 20)?;
        let head: Vec<u8> = buf[..end].to_vec();
        let text = String::from_utf8_lossy(&head).into_owned();
        lock(&shared.heads).push(text.clone());
        let line = text.split("\r\n").next().unwrap_or("");
        let mut parts = line.split_whitespace();
        let method = parts.next().unwrap_or("");
        let target = parts.next().unwrap_or("");

        if let Some(expected) = &opts.require_auth {
            if header_value(&head, "proxy-authorization").as_deref() != Some(expected.as_str()) {
                client.write_all(&simple_response(
                    407,
                    "Proxy Authentication Required",
                    "Proxy-Authenticate: Basic realm=\"pollhttp-test\"\r\n",
                    false,
                ))?;
                // Skip a Content-Length body, then wait for a retry.
                let body_len: usize = header_value(&head, "content-length")
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(0);
                buf.drain(..end);
                while buf.len() < body_len {
                    let mut tmp = [0u8; 8192];
                    let n = client.read(&mut tmp)?;
                    if n == 0 {
                        return Ok(());
                    }
                    buf.extend_from_slice(&tmp[..n]);
                }
                buf.drain(..body_len);
                continue;
            }
        }

        if method.eq_ignore_ascii_case("CONNECT") {
            if let Some(code) = opts.refuse_connect_with {
                client.write_all(&simple_response(code, "Refused By Test Proxy", "", true))?;
                return Ok(());
            }
            let upstream = match connect_to(target, Duration::from_secs(5)) {
                Ok(u) => u,
                Err(e) => {
                    client.write_all(&simple_response(502, "Bad Gateway", "", true))?;
                    return Err(io::Error::new(e.kind(), format!("CONNECT {target}: {e}")));
                }
            };
            client.write_all(b"HTTP/1.1 200 Connection Established\r\n\r\n")?;
            let leftover = buf[end..].to_vec();
            return pipe(id, client, upstream, &leftover, opts, shared);
        }

        let url = url::Url::parse(target)
            .ok()
            .filter(|u| u.scheme() == "http");
        let Some(url) = url else {
            client.write_all(&simple_response(400, "Bad Request", "", true))?;
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("not a proxy request: {line:?}"),
            ));
        };
        let host = match url.host() {
            Some(url::Host::Ipv6(a)) => format!("[{a}]"),
            Some(h) => h.to_string(),
            None => String::new(),
        };
        let origin = format!("{host}:{}", url.port_or_known_default().unwrap_or(80));
        let upstream = match connect_to(&origin, Duration::from_secs(5)) {
            Ok(u) => u,
            Err(e) => {
                client.write_all(&simple_response(502, "Bad Gateway", "", true))?;
                return Err(io::Error::new(e.kind(), format!("{origin}: {e}")));
            }
        };
        // Forward the requests (this one first) unchanged, recording each.
        return forward(id, client, upstream, buf, opts, shared);
    }
}

/// Pipes client <-> upstream; `first` is sent upstream before anything else.
fn pipe(
    id: usize,
    client: TcpStream,
    mut upstream: TcpStream,
    first: &[u8],
    opts: &ProxyOptions,
    shared: &Shared,
) -> io::Result<()> {
    register(shared, id, &upstream);
    let _ = upstream.set_nodelay(true);
    upstream.set_write_timeout(Some(opts.io_timeout))?;
    upstream.write_all(first)?;
    let start = Instant::now();
    let last = Arc::new(AtomicU64::new(0));
    let idle = opts.io_timeout;
    let run = |from: TcpStream, to: TcpStream, last: Arc<AtomicU64>| {
        move || copy_until_eof(from, to, start, &last, idle)
    };
    let c2u = thread::Builder::new()
        .name(format!("proxy-pipe-{id}"))
        .spawn(run(
            client.try_clone()?,
            upstream.try_clone()?,
            Arc::clone(&last),
        ))?;
    let r1 = run(upstream, client, last)();
    let r2 = c2u
        .join()
        .unwrap_or_else(|_| Err(io::Error::other("pipe panicked")));
    r1.and(r2)
}

/// Absolute-form: client -> upstream request by request (each head recorded
/// but the first, which `handle` did; `buf` starts with it), upstream ->
/// client piped.
fn forward(
    id: usize,
    client: TcpStream,
    upstream: TcpStream,
    buf: Vec<u8>,
    opts: &ProxyOptions,
    shared: &Shared,
) -> io::Result<()> {
    register(shared, id, &upstream);
    let _ = upstream.set_nodelay(true);
    upstream.set_write_timeout(Some(opts.io_timeout))?;
    let start = Instant::now();
    let last = Arc::new(AtomicU64::new(0));
    let idle = opts.io_timeout;
    let back = {
        let (from, to, last) = (
            upstream.try_clone()?,
            client.try_clone()?,
            Arc::clone(&last),
        );
        thread::Builder::new()
            .name(format!("proxy-back-{id}"))
            .spawn(move || copy_until_eof(from, to, start, &last, idle))?
    };
    let mut requests = Requests {
        from: client,
        to: upstream,
        buf,
        start,
        last: &last,
        idle,
    };
    let r1 = requests.run(shared);
    if r1.is_err() {
        let _ = requests.from.shutdown(Shutdown::Both);
        let _ = requests.to.shutdown(Shutdown::Both);
    }
    let r2 = back
        .join()
        .unwrap_or_else(|_| Err(io::Error::other("pipe panicked")));
    r1.and(r2)
}

/// The client -> upstream side of [`forward`].
struct Requests<'a> {
    from: TcpStream,
    to: TcpStream,
    buf: Vec<u8>,
    start: Instant,
    last: &'a AtomicU64,
    idle: Duration,
}

impl Requests<'_> {
    fn run(&mut self, shared: &Shared) -> io::Result<()> {
        self.from
            .set_read_timeout(Some(Duration::from_millis(250)))?;
        let mut first = true;
        loop {
            let end = loop {
                if let Some(end) = crate::util::find_head_end(&self.buf) {
                    break end;
                }
                if self.buf.len() > 1 << 20 {
                    return Err(io::Error::new(io::ErrorKind::InvalidData, "head too large"));
                }
                if !self.fill()? {
                    // The client is done (a partial head is passed on as is).
                    self.to.write_all(&self.buf)?;
                    let _ = self.to.shutdown(Shutdown::Write);
                    return Ok(());
                }
            };
            let head: Vec<u8> = self.buf.drain(..end).collect();
            if !first {
                lock(&shared.heads).push(String::from_utf8_lossy(&head).into_owned());
            }
            first = false;
            self.to.write_all(&head)?;
            let chunked = header_value(&head, "transfer-encoding")
                .is_some_and(|v| v.to_ascii_lowercase().contains("chunked"));
            if chunked {
                self.chunked_body()?;
            } else if let Some(len) = header_value(&head, "content-length") {
                let len: u64 = len.parse().map_err(|_| {
                    io::Error::new(io::ErrorKind::InvalidData, "bad Content-Length")
                })?;
                self.pass(len)?;
            }
        }
    }

    /// Reads more from the client into `buf`; `false` at EOF or when both
    /// directions were idle for `idle`.
    fn fill(&mut self) -> io::Result<bool> {
        let mut tmp = vec![0u8; 64 * 1024];
        loop {
            match self.from.read(&mut tmp) {
                Ok(0) => return Ok(false),
                Ok(n) => {
                    self.last
                        .store(self.start.elapsed().as_millis() as u64, Ordering::Relaxed);
                    self.buf.extend_from_slice(&tmp[..n]);
                    return Ok(true);
                }
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock
                            | io::ErrorKind::TimedOut
                            | io::ErrorKind::Interrupted
                    ) =>
                {
                    let idle_for = (self.start.elapsed().as_millis() as u64)
                        .saturating_sub(self.last.load(Ordering::Relaxed));
                    if idle_for > self.idle.as_millis() as u64 {
                        let _ = self.from.shutdown(Shutdown::Both);
                        let _ = self.to.shutdown(Shutdown::Both);
                        return Ok(false);
                    }
                }
                Err(e) => return Err(e),
            }
        }
    }

    fn eof(what: &str) -> io::Error {
        io::Error::new(io::ErrorKind::UnexpectedEof, format!("EOF inside {what}"))
    }

    /// Passes `n` body bytes on.
    fn pass(&mut self, mut n: u64) -> io::Result<()> {
        while n > 0 {
            if self.buf.is_empty() && !self.fill()? {
                return Err(Self::eof("a request body"));
            }
            let take = n.min(self.buf.len() as u64) as usize;
            self.to.write_all(&self.buf[..take])?;
            self.buf.drain(..take);
            n -= take as u64;
        }
        Ok(())
    }

    /// Passes one CRLF-ended line on; returns it.
    fn line(&mut self) -> io::Result<Vec<u8>> {
        loop {
            if let Some(p) = self.buf.windows(2).position(|w| w == b"\r\n") {
                let line: Vec<u8> = self.buf.drain(..p + 2).collect();
                self.to.write_all(&line)?;
                return Ok(line);
            }
            if self.buf.len() > 1 << 20 || !self.fill()? {
                return Err(Self::eof("a chunked request body"));
            }
        }
    }

    /// Passes a chunked body on: chunks, the last chunk, trailers.
    fn chunked_body(&mut self) -> io::Result<()> {
        loop {
            let line = self.line()?;
            let text = String::from_utf8_lossy(&line);
            let size = text.trim().split(';').next().unwrap_or("").trim();
            let size = u64::from_str_radix(size, 16).map_err(|_| {
                io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("bad chunk size {text:?}"),
                )
            })?;
            if size == 0 {
                while self.line()? != b"\r\n" {}
                return Ok(());
            }
            self.pass(size + 2)?;
        }
    }
}

fn copy_until_eof(
    mut from: TcpStream,
    mut to: TcpStream,
    start: Instant,
    last: &AtomicU64,
    idle: Duration,
) -> io::Result<()> {
    from.set_read_timeout(Some(Duration::from_millis(250)))?;
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        match from.read(&mut buf) {
            Ok(0) => {
                let _ = to.shutdown(Shutdown::Write);
                return Ok(());
            }
            Ok(n) => {
                last.store(start.elapsed().as_millis() as u64, Ordering::Relaxed);
                if let Err(e) = to.write_all(&buf[..n]) {
                    let _ = from.shutdown(Shutdown::Both);
                    let _ = to.shutdown(Shutdown::Both);
                    return Err(e);
                }
                last.store(start.elapsed().as_millis() as u64, Ordering::Relaxed);
            }
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock
                        | io::ErrorKind::TimedOut
                        | io::ErrorKind::Interrupted
                ) =>
            {
                let idle_for = (start.elapsed().as_millis() as u64)
                    .saturating_sub(last.load(Ordering::Relaxed));
                if idle_for > idle.as_millis() as u64 {
                    let _ = from.shutdown(Shutdown::Both);
                    let _ = to.shutdown(Shutdown::Both);
                    return Ok(());
                }
            }
            Err(e) => {
                // Reset or shut down (proxy dropped): abort both sides.
                let _ = from.shutdown(Shutdown::Both);
                let _ = to.shutdown(Shutdown::Both);
                return Err(e);
            }
        }
    }
}
