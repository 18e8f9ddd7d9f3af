//! Scripted (misbehaving) servers on std sockets, plain and TLS.
//!
//! [`ScriptServer::start`] takes one script per connection: the N-th accepted
//! connection runs the N-th `Vec<Step>`, in its own thread; connections beyond
//! the scripts are closed at once (they are still counted). A script ending
//! without [`Step::Close`] or [`Step::Reset`] closes the connection normally.
//!
//! Every socket has read and write timeouts (10 s by default,
//! [`ScriptServer::start_with_timeout`]), so no step can hang forever; a step
//! that fails (timeout, peer reset, EOF before an expected request...) ends
//! that connection and is recorded in [`ScriptServer::errors`]. Dropping the
//! server stops the accept thread, shuts down open connections and joins
//! every thread; then, unless the test is already failing, **it panics if a
//! step failed**, so a script the client did not follow fails its test. A
//! test that expects steps to fail takes them first
//! ([`ScriptServer::take_errors`], [`ScriptServer::wait_for_errors`]: the
//! exact failures asserted), or, when whether one fails depends on timing
//! (a write racing the client's close), says so with
//! [`ScriptServer::tolerate_step_errors`]. Steps cut short by the drop itself
//! are not failures.
//!
//! ```no_run
//! use pollhttp_tests::script::{ScriptServer, Step};
//! let srv = ScriptServer::start(vec![vec![
//!     Step::ReadRequest,
//!     Step::write("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"),
//! ]]);
//! let url = format!("http://127.0.0.1:{}/", srv.port());
//! # let _ = url;
//! ```

use std::collections::{HashMap, VecDeque};
use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use rustls::{ServerConfig, ServerConnection, StreamOwned};

use crate::util::{find_head_end, header_value};

/// Default read/write timeout of scripted connections.
pub const DEFAULT_IO_TIMEOUT: Duration = Duration::from_secs(10);

const MAX_HEAD: usize = 1 << 20;

/// One step of a connection script.
#[derive(Debug, Clone)]
pub enum Step {
    /// Read a request head (through `\r\n\r\n`) and, if it announces a body
    /// (`Content-Length` or chunked `Transfer-Encoding`), the body; record
    /// the raw bytes as one entry of [`ScriptServer::requests`].
    ReadRequest,
    /// Read only a request head and record it (e.g. before answering
    /// `Expect: 100-continue`); a later [`Step::ReadBody`] appends the body.
    ReadRequestHead,
    /// Read the body announced by this connection's last request head and
    /// append its raw bytes to that request's record.
    ReadBody,
    /// Read exactly this many bytes (recorded only in [`ScriptServer::received`]).
    ReadBytes(usize),
    /// Read until the peer closes its write side (EOF), bounded by the timeout.
    ReadToEof,
    /// Write these bytes (all at once).
    Write(Vec<u8>),
    /// Write these bytes to the TCP socket itself: over TLS they bypass the
    /// TLS session (e.g. a record that does not decrypt); plain, the same
    /// as [`Step::Write`].
    WriteRaw(Vec<u8>),
    /// Write one byte at a time, sleeping `per_byte` before each byte.
    WriteSlowly {
        /// Bytes to send.
        data: Vec<u8>,
        /// Pause before each byte.
        per_byte: Duration,
    },
    /// Write `chunk` repeatedly until `total` bytes were written (the last
    /// repetition is truncated), without allocating `total` bytes.
    WriteRepeated {
        /// The repeated pattern (must not be empty if `total > 0`).
        chunk: Vec<u8>,
        /// Total bytes to write.
        total: u64,
    },
    /// Do nothing for this long (interrupted early if the server drops).
    Sleep(Duration),
    /// Wait until the test opens the [`Gate`] (bounded by the connection's
    /// I/O timeout, which fails the step): orders a server action after
    /// something the test observed, without a sleep.
    Wait(Gate),
    /// Half-close: shut down the write side (TLS: send `close_notify` first).
    ShutdownWrite,
    /// Close the connection normally (TLS: send `close_notify` first).
    Close,
    /// TLS: close the TCP connection without sending `close_notify` (a
    /// truncation); plain TCP: same as [`Step::Close`].
    CloseWithoutNotify,
    /// Abort the connection: `SO_LINGER` 0 then close, so the peer gets a RST.
    Reset,
}

impl Step {
    /// `Step::Write` from anything byte-like (`&str`, `&[u8]`, `Vec<u8>`...).
    pub fn write(data: impl AsRef<[u8]>) -> Step {
        Step::Write(data.as_ref().to_vec())
    }

    /// `Step::WriteSlowly` from anything byte-like.
    pub fn write_slowly(data: impl AsRef<[u8]>, per_byte: Duration) -> Step {
        Step::WriteSlowly {
            data: data.as_ref().to_vec(),
            per_byte,
        }
    }
}

/// A one-way latch a test opens to let a [`Step::Wait`] go on.
#[derive(Debug, Clone, Default)]
pub struct Gate(Arc<(Mutex<bool>, Condvar)>);

impl Gate {
    /// A closed gate.
    pub fn new() -> Gate {
        Gate::default()
    }

    /// Opens the gate (for good): every waiting and later [`Step::Wait`] on
    /// it goes on.
    pub fn open(&self) {
        *lock(&self.0 .0) = true;
        self.0 .1.notify_all();
    }

    /// Waits until the gate is open, at most `timeout`, polling `stop` every
    /// 50 ms; returns whether it opened.
    fn wait(&self, timeout: Duration, stop: &AtomicBool) -> bool {
        let deadline = Instant::now() + timeout;
        let mut open = lock(&self.0 .0);
        loop {
            if *open {
                return true;
            }
            let now = Instant::now();
            if now >= deadline || stop.load(Ordering::SeqCst) {
                return false;
            }
            let slice = (deadline - now).min(Duration::from_millis(50));
            open = self
                .0
                 .1
                .wait_timeout(open, slice)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }
}

/// `HTTP/1.1 200 OK` with `Content-Length` and `body`.
pub fn ok_response(body: impl AsRef<[u8]>) -> Vec<u8> {
    response("200 OK", &[], body)
}

/// An `HTTP/1.1 <status>` response with the given extra headers, a
/// `Content-Length` header and `body`.
pub fn response(status: &str, headers: &[(&str, &str)], body: impl AsRef<[u8]>) -> Vec<u8> {
    let body = body.as_ref();
    let mut out = format!("HTTP/1.1 {status}\r\n");
    for (n, v) in headers {
        out.push_str(&format!("{n}: {v}\r\n"));
    }
    out.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
    let mut out = out.into_bytes();
    out.extend_from_slice(body);
    out
}

/// Splits a recorded raw request into its head (text, through the blank
/// line) and its decoded body (de-chunked if it was sent chunked; trailers
/// are dropped).
pub fn split_request(raw: &[u8]) -> (String, Vec<u8>) {
    let Some(end) = find_head_end(raw) else {
        return (String::from_utf8_lossy(raw).into_owned(), Vec::new());
    };
    let head = &raw[..end];
    let body = &raw[end..];
    let chunked = header_value(head, "transfer-encoding")
        .is_some_and(|v| v.to_ascii_lowercase().contains("chunked"));
    let decoded = if chunked {
        crate::dechunk(body)
    } else {
        body.to_vec()
    };
    (String::from_utf8_lossy(head).into_owned(), decoded)
}

#[derive(Default)]
struct Shared {
    stop: AtomicBool,
    /// Step errors are expected (timing decides whether any happen).
    tolerate_errors: AtomicBool,
    accepted: AtomicUsize,
    requests: Mutex<Vec<Vec<u8>>>,
    received: Mutex<Vec<Vec<u8>>>,
    errors: Mutex<Vec<String>>,
    open: Mutex<HashMap<usize, TcpStream>>,
    handlers: Mutex<Vec<JoinHandle<()>>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// A scripted plain-TCP server on 127.0.0.1 (ephemeral port).
pub struct ScriptServer {
    inner: Server,
}

/// A scripted TLS server on 127.0.0.1: same steps as [`ScriptServer`], run
/// over a rustls `ServerConnection` after a completed handshake. A failed
/// handshake (e.g. the client rejects the certificate) ends that connection
/// quietly; the failure is listed in [`TlsScriptServer::errors`].
pub struct TlsScriptServer {
    inner: Server,
}

macro_rules! server_accessors {
    ($t:ty) => {
        impl $t {
            /// The listening port.
            pub fn port(&self) -> u16 {
                self.inner.addr.port()
            }

            /// The listening address (`127.0.0.1:port`).
            pub fn addr(&self) -> SocketAddr {
                self.inner.addr
            }

            /// Raw requests recorded so far (heads plus bodies, as received),
            /// in the order they were read, across all connections.
            pub fn requests(&self) -> Vec<Vec<u8>> {
                lock(&self.inner.shared.requests).clone()
            }

            /// Everything read so far, one entry per accepted connection
            /// (indexed by accept order; unscripted connections stay empty).
            pub fn received(&self) -> Vec<Vec<u8>> {
                lock(&self.inner.shared.received).clone()
            }

            /// Number of connections accepted so far.
            pub fn connections_accepted(&self) -> usize {
                self.inner.shared.accepted.load(Ordering::SeqCst)
            }

            /// Errors of failed steps / handshakes so far (`conn N: ...`).
            pub fn errors(&self) -> Vec<String> {
                lock(&self.inner.shared.errors).clone()
            }

            /// The errors so far, removed: the test has judged them, so the
            /// drop's check does not fail on them.
            pub fn take_errors(&self) -> Vec<String> {
                std::mem::take(&mut *lock(&self.inner.shared.errors))
            }

            /// Waits (bounded by `timeout`, a hang guard) until at least `n`
            /// step errors were recorded, then takes them all
            /// ([`take_errors`](Self::take_errors)). Panics if fewer came.
            pub fn wait_for_errors(&self, n: usize, timeout: Duration) -> Vec<String> {
                let deadline = Instant::now() + timeout;
                while lock(&self.inner.shared.errors).len() < n {
                    assert!(
                        Instant::now() < deadline,
                        "{} step errors after {timeout:?}, not {n}: {:?}",
                        lock(&self.inner.shared.errors).len(),
                        self.errors()
                    );
                    thread::sleep(Duration::from_millis(5));
                }
                self.take_errors()
            }

            /// Step errors may or may not happen (e.g. a write racing the
            /// client's close): the drop does not check them.
            pub fn tolerate_step_errors(&self) {
                self.inner
                    .shared
                    .tolerate_errors
                    .store(true, Ordering::SeqCst);
            }

            /// Waits (bounded by `timeout`) until at least `n` requests were
            /// recorded; returns whether they were.
            pub fn wait_for_requests(&self, n: usize, timeout: Duration) -> bool {
                let deadline = Instant::now() + timeout;
                loop {
                    if lock(&self.inner.shared.requests).len() >= n {
                        return true;
                    }
                    if Instant::now() >= deadline {
                        return false;
                    }
                    thread::sleep(Duration::from_millis(5));
                }
            }

            /// `http://127.0.0.1:port` or `https://127.0.0.1:port`.
            pub fn base_url(&self) -> String {
                let scheme = if self.inner.tls.is_some() {
                    "https"
                } else {
                    "http"
                };
                format!("{scheme}://127.0.0.1:{}", self.port())
            }
        }
    };
}

server_accessors!(ScriptServer);
server_accessors!(TlsScriptServer);

impl ScriptServer {
    /// Starts serving: `conns[i]` is the script of the i-th accepted connection.
    pub fn start(conns: Vec<Vec<Step>>) -> ScriptServer {
        Self::start_with_timeout(conns, DEFAULT_IO_TIMEOUT)
    }

    /// Like [`ScriptServer::start`] with a custom read/write timeout.
    pub fn start_with_timeout(conns: Vec<Vec<Step>>, io_timeout: Duration) -> ScriptServer {
        ScriptServer {
            inner: Server::start(conns, io_timeout, None),
        }
    }
}

impl TlsScriptServer {
    /// Starts serving TLS with `config` (e.g. [`crate::certs::TestCa::server_config`],
    /// [`crate::certs::untrusted_server_config`]).
    pub fn start(config: Arc<ServerConfig>, conns: Vec<Vec<Step>>) -> TlsScriptServer {
        Self::start_with_timeout(config, conns, DEFAULT_IO_TIMEOUT)
    }

    /// Like [`TlsScriptServer::start`] with a custom read/write timeout.
    pub fn start_with_timeout(
        config: Arc<ServerConfig>,
        conns: Vec<Vec<Step>>,
        io_timeout: Duration,
    ) -> TlsScriptServer {
        TlsScriptServer {
            inner: Server::start(conns, io_timeout, Some(config)),
        }
    }
}

struct Server {
    addr: SocketAddr,
    shared: Arc<Shared>,
    tls: Option<Arc<ServerConfig>>,
    acceptor: Option<JoinHandle<()>>,
}

impl Server {
    fn start(
        conns: Vec<Vec<Step>>,
        io_timeout: Duration,
        tls: Option<Arc<ServerConfig>>,
    ) -> Server {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("local_addr");
        let shared = Arc::new(Shared::default());
        let sh = Arc::clone(&shared);
        let cfg = tls.clone();
        let acceptor = thread::Builder::new()
            .name(format!("script-accept-{}", addr.port()))
            .spawn(move || accept_loop(listener, conns.into(), io_timeout, cfg, sh))
            .expect("spawn accept thread");
        Server {
            addr,
            shared,
            tls,
            acceptor: Some(acceptor),
        }
    }
}

fn accept_loop(
    listener: TcpListener,
    mut scripts: VecDeque<Vec<Step>>,
    io_timeout: Duration,
    tls: Option<Arc<ServerConfig>>,
    shared: Arc<Shared>,
) {
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
        let id = shared.accepted.fetch_add(1, Ordering::SeqCst);
        lock(&shared.received).push(Vec::new());
        let Some(script) = scripts.pop_front() else {
            drop(stream);
            continue;
        };
        let _ = stream.set_nonblocking(false);
        let _ = stream.set_nodelay(true);
        let _ = stream.set_read_timeout(Some(io_timeout));
        let _ = stream.set_write_timeout(Some(io_timeout));
        if let Ok(clone) = stream.try_clone() {
            lock(&shared.open).insert(id, clone);
        }
        let sh = Arc::clone(&shared);
        let cfg = tls.clone();
        let handle = thread::Builder::new()
            .name(format!("script-conn-{id}"))
            .spawn(move || run_connection(id, stream, script, cfg, sh));
        match handle {
            Ok(h) => lock(&shared.handlers).push(h),
            Err(e) => record_error(&shared, format!("conn {id}: spawn: {e}")),
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        for (_, s) in lock(&self.shared.open).drain() {
            let _ = s.shutdown(Shutdown::Both);
        }
        // Wake the blocking accept().
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
        let errors = lock(&self.shared.errors).clone();
        if !errors.is_empty()
            && !self.shared.tolerate_errors.load(Ordering::SeqCst)
            && !thread::panicking()
        {
            panic!(
                "scripted server on port {}: {} step(s) failed (the client did not \
                 follow the script): {errors:#?}",
                self.addr.port(),
                errors.len()
            );
        }
    }
}

/// Records a step error unless the server is stopping (the drop cut it).
fn record_error(shared: &Shared, error: String) {
    if !shared.stop.load(Ordering::SeqCst) {
        lock(&shared.errors).push(error);
    }
}

/// The byte stream a script runs over.
enum Io {
    Plain(TcpStream),
    Tls(Box<StreamOwned<ServerConnection, TcpStream>>),
}

impl Io {
    fn tcp(&self) -> &TcpStream {
        match self {
            Io::Plain(s) => s,
            Io::Tls(s) => &s.sock,
        }
    }

    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Io::Plain(s) => s.read(buf),
            Io::Tls(s) => match s.read(buf) {
                // TCP EOF without close_notify: treat as EOF here.
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => Ok(0),
                r => r,
            },
        }
    }

    fn write_all(&mut self, data: &[u8]) -> io::Result<()> {
        match self {
            Io::Plain(s) => s.write_all(data),
            Io::Tls(s) => {
                s.write_all(data)?;
                s.flush()
            }
        }
    }

    fn shutdown_write(&mut self) -> io::Result<()> {
        if let Io::Tls(s) = self {
            s.conn.send_close_notify();
            s.flush()?;
        }
        self.tcp().shutdown(Shutdown::Write)
    }
}

struct Conn {
    id: usize,
    io: Io,
    buf: Vec<u8>,
    shared: Arc<Shared>,
    /// Index in `shared.requests` and body framing of the last head read.
    last_request: Option<(usize, Framing)>,
}

#[derive(Debug, Clone, Copy)]
enum Framing {
    None,
    Length(u64),
    Chunked,
}

fn run_connection(
    id: usize,
    stream: TcpStream,
    script: Vec<Step>,
    tls: Option<Arc<ServerConfig>>,
    shared: Arc<Shared>,
) {
    let io = match tls {
        None => Io::Plain(stream),
        Some(cfg) => match handshake(cfg, stream) {
            Ok(s) => Io::Tls(Box::new(s)),
            Err(e) => {
                record_error(&shared, format!("conn {id}: TLS handshake failed: {e}"));
                lock(&shared.open).remove(&id);
                return;
            }
        },
    };
    let mut conn = Conn {
        id,
        io,
        buf: Vec::new(),
        shared,
        last_request: None,
    };
    for step in script {
        if conn.shared.stop.load(Ordering::SeqCst) {
            break;
        }
        let what = format!("{step:?}");
        let what: String = what.chars().take(80).collect();
        match conn.step(step) {
            Ok(true) => {}
            Ok(false) => return,
            Err(e) => {
                record_error(&conn.shared, format!("conn {id}: {what}: {e}"));
                break;
            }
        }
    }
    conn.close(true);
}

fn handshake(
    cfg: Arc<ServerConfig>,
    mut sock: TcpStream,
) -> io::Result<StreamOwned<ServerConnection, TcpStream>> {
    let mut conn = ServerConnection::new(cfg).map_err(io::Error::other)?;
    while conn.is_handshaking() {
        conn.complete_io(&mut sock)?;
    }
    Ok(StreamOwned::new(conn, sock))
}

impl Conn {
    /// Runs one step; `Ok(false)` means the connection is gone.
    fn step(&mut self, step: Step) -> io::Result<bool> {
        match step {
            Step::ReadRequest => {
                self.read_head()?;
                self.read_body()?;
            }
            Step::ReadRequestHead => self.read_head()?,
            Step::ReadBody => self.read_body()?,
            Step::ReadBytes(n) => {
                self.take_exact(n)?;
            }
            Step::ReadToEof => loop {
                self.buf.clear();
                if self.fill()? == 0 {
                    break;
                }
            },
            Step::Write(data) => self.io.write_all(&data)?,
            Step::WriteRaw(data) => {
                let mut tcp = self.io.tcp();
                tcp.write_all(&data)?;
            }
            Step::WriteSlowly { data, per_byte } => {
                for b in data {
                    self.sleep(per_byte);
                    self.check_stop()?;
                    self.io.write_all(&[b])?;
                }
            }
            Step::WriteRepeated { chunk, total } => {
                if total > 0 && chunk.is_empty() {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidInput,
                        "WriteRepeated with an empty chunk",
                    ));
                }
                let mut left = total;
                while left > 0 {
                    self.check_stop()?;
                    let n = left.min(chunk.len() as u64) as usize;
                    self.io.write_all(&chunk[..n])?;
                    left -= n as u64;
                }
            }
            Step::Sleep(d) => self.sleep(d),
            Step::Wait(gate) => {
                let timeout = self.io.tcp().read_timeout()?.unwrap_or(DEFAULT_IO_TIMEOUT);
                if !gate.wait(timeout, &self.shared.stop) {
                    self.check_stop()?;
                    return Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        "the test never opened the gate",
                    ));
                }
            }
            Step::ShutdownWrite => self.io.shutdown_write()?,
            Step::Close => {
                self.close(true);
                return Ok(false);
            }
            Step::CloseWithoutNotify => {
                self.close(false);
                return Ok(false);
            }
            Step::Reset => {
                lock(&self.shared.open).remove(&self.id);
                socket2::SockRef::from(self.io.tcp()).set_linger(Some(Duration::ZERO))?;
                return Ok(false);
            }
        }
        Ok(true)
    }

    fn close(&mut self, notify: bool) {
        if notify {
            if let Io::Tls(s) = &mut self.io {
                s.conn.send_close_notify();
                let _ = s.flush();
            }
        }
        lock(&self.shared.open).remove(&self.id);
        // The stream itself closes when `self` drops.
    }

    fn check_stop(&self) -> io::Result<()> {
        if self.shared.stop.load(Ordering::SeqCst) {
            return Err(io::Error::other("server stopped"));
        }
        Ok(())
    }

    fn sleep(&self, d: Duration) {
        let deadline = Instant::now() + d;
        loop {
            let now = Instant::now();
            if now >= deadline || self.shared.stop.load(Ordering::SeqCst) {
                return;
            }
            thread::sleep((deadline - now).min(Duration::from_millis(50)));
        }
    }

    /// Reads more bytes into `buf`; returns how many (0 = EOF). Also
    /// records them in `received`.
    fn fill(&mut self) -> io::Result<usize> {
        let mut tmp = [0u8; 16 * 1024];
        let n = loop {
            match self.io.read(&mut tmp) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                r => break r?,
            }
        };
        self.buf.extend_from_slice(&tmp[..n]);
        if let Some(r) = lock(&self.shared.received).get_mut(self.id) {
            r.extend_from_slice(&tmp[..n]);
        }
        Ok(n)
    }

    fn take_exact(&mut self, n: usize) -> io::Result<Vec<u8>> {
        while self.buf.len() < n {
            if self.fill()? == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    format!("EOF after {} of {n} bytes", self.buf.len()),
                ));
            }
        }
        Ok(self.buf.drain(..n).collect())
    }

    fn take_line(&mut self) -> io::Result<Vec<u8>> {
        loop {
            if let Some(p) = self.buf.windows(2).position(|w| w == b"\r\n") {
                return Ok(self.buf.drain(..p + 2).collect());
            }
            if self.buf.len() > MAX_HEAD {
                return Err(io::Error::new(io::ErrorKind::InvalidData, "line too long"));
            }
            if self.fill()? == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "EOF inside a chunked body",
                ));
            }
        }
    }

    fn read_head(&mut self) -> io::Result<()> {
        let end = loop {
            if let Some(end) = find_head_end(&self.buf) {
                break end;
            }
            if self.buf.len() > MAX_HEAD {
                return Err(io::Error::new(io::ErrorKind::InvalidData, "head too large"));
            }
            if self.fill()? == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    format!("EOF before end of request head ({} bytes)", self.buf.len()),
                ));
            }
        };
        let head: Vec<u8> = self.buf.drain(..end).collect();
        let chunked = header_value(&head, "transfer-encoding")
            .is_some_and(|v| v.to_ascii_lowercase().contains("chunked"));
        let framing =
            if chunked {
                Framing::Chunked
            } else if let Some(len) = header_value(&head, "content-length") {
                Framing::Length(len.parse().map_err(|_| {
                    io::Error::new(io::ErrorKind::InvalidData, "bad Content-Length")
                })?)
            } else {
                Framing::None
            };
        let mut reqs = lock(&self.shared.requests);
        reqs.push(head);
        self.last_request = Some((reqs.len() - 1, framing));
        Ok(())
    }

    fn read_body(&mut self) -> io::Result<()> {
        let Some((idx, framing)) = self.last_request.take() else {
            return Err(io::Error::other("ReadBody without a request head"));
        };
        let mut raw = Vec::new();
        match framing {
            Framing::None => {}
            Framing::Length(n) => {
                let mut left = n;
                while left > 0 {
                    if self.buf.is_empty() && self.fill()? == 0 {
                        return Err(io::Error::new(
                            io::ErrorKind::UnexpectedEof,
                            format!("EOF after {} of {n} body bytes", n - left),
                        ));
                    }
                    let take = (left.min(self.buf.len() as u64)) as usize;
                    raw.extend(self.buf.drain(..take));
                    left -= take as u64;
                }
            }
            Framing::Chunked => loop {
                let line = self.take_line()?;
                raw.extend_from_slice(&line);
                let text = String::from_utf8_lossy(&line);
                let size_str = text.trim().split(';').next().unwrap_or("").trim();
                let size = usize::from_str_radix(size_str, 16).map_err(|_| {
                    io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!("bad chunk size {text:?}"),
                    )
                })?;
                if size == 0 {
                    // Trailers, then the final empty line.
                    loop {
                        let t = self.take_line()?;
                        raw.extend_from_slice(&t);
                        if t == b"\r\n" {
                            break;
                        }
                    }
                    break;
                }
                raw.extend(self.take_exact(size + 2)?);
            },
        }
        if let Some(r) = lock(&self.shared.requests).get_mut(idx) {
            r.extend_from_slice(&raw);
        }
        Ok(())
    }
}
