//! A simulated network for the request layer: scripted HTTP peers driven
//! step by step from the test's own thread, name lookups that answer now,
//! late (when the test says) or from the resolver's cache, and a fake clock.
//!
//! The peers listen on 127.0.0.1 and the client under test uses its real
//! transport, reactor and request logic; what makes the network simulated is
//! that nothing runs on its own. No server thread, no sleep: a peer accepts,
//! reads and answers only inside [`SimNet::step`], and on Linux loopback a
//! write is readable at the other end when the call returns, so a test
//! interleaves `step()` and the client's `poll()` and gets the same run every
//! time. Time moves only when the test advances the [`FakeClock`]. The one
//! real wait is [`SimNet::settle`]'s bounded `wait()` for the resolver's
//! worker threads, which wake the client when they answer.
//!
//! A peer answers by request-target: each route holds a queue of
//! [`Reply`]s (the last one repeats), so "reset, then 200" is two entries.

use std::collections::{HashMap, VecDeque};
use std::io::{self, ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use pollhttp::{Completed, HttpClient, HttpRequest, LookupFn, RequestId, RequestPool};

use crate::util::{find_head_end, header_value};

/// What a peer does with a request.
#[derive(Debug, Clone)]
pub enum Reply {
    /// Write these bytes (a whole response, or more), then read the next
    /// request on the connection.
    Send(Vec<u8>),
    /// Write these bytes, then close the connection.
    SendAndClose(Vec<u8>),
    /// Write these bytes one per [`SimNet::step`].
    Drip(Vec<u8>),
    /// Close the connection without answering (FIN).
    Close,
    /// Reset the connection without answering (RST: `SO_LINGER` 0).
    Reset,
    /// Never answer; the connection stays open.
    Stall,
}

/// A whole response: status line, fields (a `Content-Length` is added
/// unless one of `fields` frames the body) and body.
pub fn response(status: &str, fields: &[(&str, &str)], body: &[u8]) -> Vec<u8> {
    let mut out = format!("HTTP/1.1 {status}\r\n").into_bytes();
    let framed = fields.iter().any(|(k, _)| {
        k.eq_ignore_ascii_case("content-length") || k.eq_ignore_ascii_case("transfer-encoding")
    });
    for (k, v) in fields {
        out.extend_from_slice(format!("{k}: {v}\r\n").as_bytes());
    }
    if !framed {
        out.extend_from_slice(format!("Content-Length: {}\r\n", body.len()).as_bytes());
    }
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(body);
    out
}

/// A `200 OK` with `body`.
pub fn ok(body: &[u8]) -> Vec<u8> {
    response("200 OK", &[], body)
}

/// A redirect to `location` with `status` (e.g. `"302 Found"`), empty body.
pub fn redirect(status: &str, location: &str) -> Vec<u8> {
    response(status, &[("Location", location)], b"")
}

/// A request as a peer received it.
#[derive(Debug, Clone)]
pub struct Received {
    /// The connection's number at this peer (0 for the first accepted).
    pub conn: usize,
    /// The request head and body, as sent.
    pub raw: Vec<u8>,
}

impl Received {
    /// The request line.
    pub fn request_line(&self) -> String {
        let end = self
            .raw
            .windows(2)
            .position(|w| w == b"\r\n")
            .unwrap_or(self.raw.len());
        String::from_utf8_lossy(&self.raw[..end]).into_owned()
    }

    /// A field's value (the first with that name), if present.
    pub fn field(&self, name: &str) -> Option<String> {
        let end = find_head_end(&self.raw).unwrap_or(self.raw.len());
        header_value(&self.raw[..end], name)
    }
}

struct PeerConn {
    stream: TcpStream,
    number: usize,
    input: Vec<u8>,
    output: VecDeque<u8>,
    drip: bool,
    close_when_written: bool,
    stalled: bool,
    closed: bool,
}

/// One scripted HTTP server.
pub struct Peer {
    listener: TcpListener,
    routes: HashMap<String, VecDeque<Reply>>,
    conns: Vec<PeerConn>,
    accepted: usize,
    received: Vec<Received>,
}

impl Peer {
    fn new() -> Peer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        listener
            .set_nonblocking(true)
            .expect("non-blocking listener");
        Peer {
            listener,
            routes: HashMap::new(),
            conns: Vec::new(),
            accepted: 0,
            received: Vec::new(),
        }
    }

    fn reply_for(&mut self, target: &str) -> Reply {
        let path = target.split('?').next().unwrap_or(target);
        let key = if self.routes.contains_key(target) {
            target.to_string()
        } else {
            // An absolute-form target (through a proxy): its path.
            let path = path
                .strip_prefix("http://")
                .and_then(|rest| rest.find('/').map(|i| &rest[i..]))
                .unwrap_or(path);
            path.to_string()
        };
        match self.routes.get_mut(&key) {
            Some(q) if q.len() > 1 => q.pop_front().unwrap_or(Reply::Stall),
            Some(q) => q.front().cloned().unwrap_or(Reply::Stall),
            None => Reply::Send(response("404 Not Found", &[], b"no route")),
        }
    }

    /// Accept, read, answer and write what can be done now. Returns whether
    /// anything happened.
    fn step(&mut self) -> bool {
        let mut progress = false;
        loop {
            match self.listener.accept() {
                Ok((stream, _)) => {
                    stream.set_nonblocking(true).expect("non-blocking stream");
                    stream.set_nodelay(true).ok();
                    self.conns.push(PeerConn {
                        stream,
                        number: self.accepted,
                        input: Vec::new(),
                        output: VecDeque::new(),
                        drip: false,
                        close_when_written: false,
                        stalled: false,
                        closed: false,
                    });
                    self.accepted += 1;
                    progress = true;
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) => panic!("accept: {e}"),
            }
        }
        for i in 0..self.conns.len() {
            progress |= self.step_conn(i);
        }
        self.conns.retain(|c| !c.closed);
        progress
    }

    fn step_conn(&mut self, i: usize) -> bool {
        let mut progress = false;
        let mut buf = [0u8; 16 * 1024];
        loop {
            let c = &mut self.conns[i];
            if c.closed {
                return progress;
            }
            match c.stream.read(&mut buf) {
                Ok(0) => {
                    // The client closed: answer nothing more.
                    c.closed = true;
                    return true;
                }
                Ok(n) => {
                    c.input.extend_from_slice(&buf[..n]);
                    progress = true;
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(_) => {
                    c.closed = true;
                    return true;
                }
            }
        }
        while !self.conns[i].stalled && self.conns[i].output.is_empty() {
            let Some(len) = request_len(&self.conns[i].input) else {
                break;
            };
            let raw: Vec<u8> = self.conns[i].input.drain(..len).collect();
            let conn = self.conns[i].number;
            let target = String::from_utf8_lossy(&raw)
                .split(' ')
                .nth(1)
                .unwrap_or("/")
                .to_string();
            self.received.push(Received { conn, raw });
            progress = true;
            let reply = self.reply_for(&target);
            let c = &mut self.conns[i];
            match reply {
                Reply::Send(b) => c.output.extend(b),
                Reply::SendAndClose(b) => {
                    c.output.extend(b);
                    c.close_when_written = true;
                }
                Reply::Drip(b) => {
                    c.output.extend(b);
                    c.drip = true;
                }
                Reply::Close => {
                    let _ = c.stream.shutdown(std::net::Shutdown::Both);
                    c.closed = true;
                    return true;
                }
                Reply::Reset => {
                    let sock = socket2::SockRef::from(&c.stream);
                    let _ = sock.set_linger(Some(Duration::ZERO));
                    c.closed = true;
                    return true;
                }
                Reply::Stall => c.stalled = true,
            }
        }
        let c = &mut self.conns[i];
        while !c.output.is_empty() {
            let (front, _) = c.output.as_slices();
            let n = if c.drip { 1 } else { front.len() };
            match c.stream.write(&front[..n]) {
                Ok(0) => break,
                Ok(n) => {
                    c.output.drain(..n);
                    progress = true;
                    if c.drip {
                        break;
                    }
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(_) => {
                    c.closed = true;
                    return true;
                }
            }
        }
        if c.output.is_empty() {
            c.drip = false;
            if c.close_when_written {
                let _ = c.stream.shutdown(std::net::Shutdown::Both);
                c.closed = true;
            }
        }
        progress
    }
}

/// The length of the first whole request in `input` (head and a body framed
/// by Content-Length or chunked), if it is all there.
fn request_len(input: &[u8]) -> Option<usize> {
    let head = find_head_end(input)?;
    let fields = &input[..head];
    if header_value(fields, "transfer-encoding").is_some_and(|v| v.contains("chunked")) {
        let end = input[head..].windows(5).position(|w| w == b"0\r\n\r\n")?;
        return Some(head + end + 5);
    }
    let len: usize = header_value(fields, "content-length")
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    (input.len() >= head + len).then_some(head + len)
}

/// How a name lookup answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    /// At once (on the resolver's worker thread, which wakes the client).
    Now,
    /// Only after [`SimNet::release`] names it.
    Late,
    /// Not found.
    Fail,
}

#[derive(Default)]
struct Names {
    map: HashMap<String, (SocketAddr, Answer)>,
    released: Vec<String>,
    lookups: HashMap<String, usize>,
}

/// A clock the test moves by hand, for [`RequestPool::with_clock`].
#[derive(Clone)]
pub struct FakeClock {
    base: Instant,
    nanos: Arc<AtomicU64>,
}

impl Default for FakeClock {
    fn default() -> Self {
        FakeClock {
            base: Instant::now(),
            nanos: Arc::new(AtomicU64::new(0)),
        }
    }
}

impl FakeClock {
    /// The clock as the client takes it.
    pub fn clock(&self) -> pollhttp::Clock {
        let (base, nanos) = (self.base, Arc::clone(&self.nanos));
        Arc::new(move || base + Duration::from_nanos(nanos.load(Ordering::SeqCst)))
    }

    /// Move time on by `d`.
    pub fn advance(&self, d: Duration) {
        self.nanos.fetch_add(
            u64::try_from(d.as_nanos()).unwrap_or(u64::MAX),
            Ordering::SeqCst,
        );
    }

    /// The clock's reading now.
    pub fn now(&self) -> Instant {
        self.base + Duration::from_nanos(self.nanos.load(Ordering::SeqCst))
    }
}

/// Peers by host name, the name lookups that find them, and a fake clock.
pub struct SimNet {
    peers: Vec<(String, Peer)>,
    names: Arc<(Mutex<Names>, Condvar)>,
    /// The time every client in the test reads.
    pub clock: FakeClock,
}

impl Default for SimNet {
    fn default() -> Self {
        Self::new()
    }
}

impl SimNet {
    /// An empty network.
    pub fn new() -> SimNet {
        SimNet {
            peers: Vec::new(),
            names: Arc::default(),
            clock: FakeClock::default(),
        }
    }

    /// Add a peer reachable as `host` (looked up as `answer` says).
    pub fn add_peer(&mut self, host: &str, answer: Answer) {
        let peer = Peer::new();
        let addr = peer.listener.local_addr().expect("local addr");
        self.names
            .0
            .lock()
            .unwrap()
            .map
            .insert(host.to_string(), (addr, answer));
        self.peers.push((host.to_string(), peer));
    }

    /// The port `host`'s peer listens on (its URLs carry it).
    pub fn port(&self, host: &str) -> u16 {
        self.peer_ref(host).listener.local_addr().unwrap().port()
    }

    /// `http://host:port{path}` for `host`'s peer.
    pub fn url(&self, host: &str, path: &str) -> String {
        format!("http://{host}:{}{path}", self.port(host))
    }

    /// Queue `replies` for requests to `target` at `host` (the last repeats).
    pub fn route(&mut self, host: &str, target: &str, replies: Vec<Reply>) {
        self.peer(host)
            .routes
            .insert(target.to_string(), replies.into());
    }

    /// Requests `host`'s peer received, in order.
    pub fn received(&self, host: &str) -> &[Received] {
        &self.peer_ref(host).received
    }

    /// The request lines `host`'s peer received, in order.
    pub fn request_lines(&self, host: &str) -> Vec<String> {
        self.received(host)
            .iter()
            .map(Received::request_line)
            .collect()
    }

    /// Connections `host`'s peer accepted.
    pub fn accepted(&self, host: &str) -> usize {
        self.peer_ref(host).accepted
    }

    /// How many times `host` was looked up (the resolver's cache answers
    /// the rest).
    pub fn lookups(&self, host: &str) -> usize {
        let names = self.names.0.lock().unwrap();
        names.lookups.get(host).copied().unwrap_or(0)
    }

    /// Let a [`Answer::Late`] lookup of `host` answer.
    pub fn release(&self, host: &str) {
        let (lock, cv) = &*self.names;
        lock.lock().unwrap().released.push(host.to_string());
        cv.notify_all();
    }

    /// The lookup function for the client: finds the peers by name, waits
    /// for [`release`](Self::release) where the answer is late.
    pub fn lookup(&self) -> LookupFn {
        let names = Arc::clone(&self.names);
        Arc::new(move |host: &str, _port: u16| {
            let (lock, cv) = &*names;
            let mut n = lock.lock().unwrap();
            *n.lookups.entry(host.to_string()).or_default() += 1;
            let Some(&(addr, answer)) = n.map.get(host) else {
                return Err(io::Error::new(ErrorKind::NotFound, "no such peer"));
            };
            match answer {
                Answer::Now => Ok(vec![addr]),
                Answer::Fail => Err(io::Error::new(ErrorKind::NotFound, "lookup fails")),
                Answer::Late => {
                    // Bounded: a test that never releases fails, not hangs.
                    let deadline = Instant::now() + Duration::from_secs(30);
                    while !n.released.iter().any(|h| h == host) {
                        let left = deadline.saturating_duration_since(Instant::now());
                        if left.is_zero() {
                            return Err(io::Error::new(ErrorKind::TimedOut, "never released"));
                        }
                        n = cv.wait_timeout(n, left).unwrap().0;
                    }
                    Ok(vec![addr])
                }
            }
        })
    }

    /// A pool on this network's clock and names.
    pub fn pool(&self, settings: pollhttp::PoolSettings) -> RequestPool {
        let mut pool = RequestPool::with_clock(settings, self.clock.clock()).expect("pool");
        pool.set_lookup(self.lookup());
        pool
    }

    /// An [`HttpRequest`] on this network's clock and names.
    pub fn http_request(&self) -> HttpRequest {
        let mut req = HttpRequest::with_clock(self.clock.clock());
        req.set_lookup(self.lookup());
        req
    }

    /// An [`HttpClient`] on this network's clock and names.
    pub fn http_client(&self) -> HttpClient {
        let mut client = HttpClient::with_clock(self.clock.clock()).expect("client");
        client.set_resolver(self.lookup());
        client
    }

    fn peer(&mut self, host: &str) -> &mut Peer {
        let i = self.peers.iter().position(|(h, _)| h == host);
        &mut self.peers[i.unwrap_or_else(|| panic!("no peer {host}"))].1
    }

    fn peer_ref(&self, host: &str) -> &Peer {
        let i = self.peers.iter().position(|(h, _)| h == host);
        &self.peers[i.unwrap_or_else(|| panic!("no peer {host}"))].1
    }

    /// One step of every peer. Returns whether anything happened.
    pub fn step(&mut self) -> bool {
        let mut progress = false;
        for (_, p) in &mut self.peers {
            progress |= p.step();
        }
        progress
    }

    /// Alternate peer steps and pool polls until `pool` has nothing in
    /// flight or nothing moves any more: no peer step, no completion, and a
    /// bounded real `wait()` (for the resolver's threads) that brings
    /// nothing. The fake clock does not move. Returns the completions, in
    /// order. `max_rounds` bounds the whole run.
    pub fn settle(
        &mut self,
        pool: &mut RequestPool,
        max_rounds: usize,
    ) -> Vec<(RequestId, Completed)> {
        let mut done = Vec::new();
        let mut quiet = 0;
        for _ in 0..max_rounds {
            let read_before = pool.bytes_read();
            // The client reading what the peers wrote before is progress too
            // (a large response is read over several polls).
            let moved = self.step() | {
                pool.poll();
                pool.bytes_read() != read_before
            };
            let before = done.len();
            done.extend(pool.drain_completed());
            if pool.in_flight() == 0 {
                self.step();
                return done;
            }
            if moved || done.len() > before {
                quiet = 0;
                continue;
            }
            quiet += 1;
            if quiet > 5 {
                return done;
            }
            // Nothing moved: give the resolver's threads (and the kernel) a
            // moment; a wake-up or an event ends the wait early.
            pool.wait(Some(Duration::from_millis(50)));
        }
        done
    }
    /// [`settle`](Self::settle) (at most 400 rounds), then `id`'s
    /// completion (the others are dropped).
    ///
    /// # Panics
    /// When `id` did not complete: it waits for a wake-up no one will send.
    pub fn finish(&mut self, pool: &mut RequestPool, id: RequestId) -> Completed {
        let done = self.settle(pool, 400);
        match done.into_iter().find(|(i, _)| *i == id) {
            Some((_, c)) => c,
            None => panic!(
                "request {id} waits for a wake-up no one will send ({} in flight)",
                pool.in_flight()
            ),
        }
    }

    /// [`settle`](Self::settle) for an [`HttpRequest`]: alternate peer steps
    /// and `req.poll()` until the request completes (its [`Completed`]) or
    /// nothing moves any more (`None`): no peer step, no completion, and a
    /// bounded real `wait()` (for the resolver's threads, or a worker
    /// thread) that brings nothing. The fake clock does not move.
    /// `max_rounds` bounds the whole run.
    pub fn finish_request(
        &mut self,
        req: &mut HttpRequest,
        max_rounds: usize,
    ) -> Option<Completed> {
        let mut quiet = 0;
        for _ in 0..max_rounds {
            let moved = self.step();
            if let Some(done) = req.poll() {
                // Let the peers see what the request's end did (a close).
                self.step();
                return Some(done);
            }
            if moved {
                quiet = 0;
                continue;
            }
            quiet += 1;
            if quiet > 5 {
                return None;
            }
            req.wait(Some(Duration::from_millis(50)));
        }
        None
    }
}
