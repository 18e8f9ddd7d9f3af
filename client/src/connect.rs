//! Non-blocking TCP connect over a list of addresses.
//!
//! Follows the steps documented on [`mio::net::TcpStream::connect`] (issue a
//! non-blocking connect, register for WRITABLE, then check with `take_error()`
//! and `peer_addr()`), in the order that tells an established connection
//! from a failed connect even when the peer resets it at once:
//! `peer_addr()` first (an address means connected: an error that came
//! after, such as a reset, stays on the socket for the first read or write
//! to report); only without a peer `take_error()` (none: still connecting;
//! `ECONNRESET`, `EPIPE` or `ECONNABORTED`: the connection was established
//! and has ended since, so it is reported connected too, and the exchange
//! finds it closed; any other error, such as `ECONNREFUSED`: this address
//! failed, try the next).
//!
//! [`Connector::poll`] is safe to call at any time, with or without a
//! readiness event (e.g. once per frame): a spurious call costs two cheap
//! syscalls and reports [`ConnectProgress::Pending`]. With several addresses
//! it runs Happy Eyeballs (RFC 8305): families interleaved, the next attempt
//! started beside a slow one after the attempt delay
//! ([`Connector::next_attempt`] says when to call again). The connect
//! deadline is the owner's: it covers every attempt, counted from the first.

use std::collections::VecDeque;
use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use mio::net::TcpStream;
use mio::{Interest, Registry, Token};

/// What [`Connector::poll`] found.
#[derive(Debug)]
pub enum ConnectProgress {
    /// The current attempt is still in progress; wait for a WRITABLE event on
    /// the connector's token (or simply call again later).
    Pending,
    /// Connected. The stream is non-blocking, has `TCP_NODELAY` set, and is
    /// still registered with the registry under the connector's token with
    /// WRITABLE interest: `reregister` it with the interest you need next.
    /// The peer may have reset it already (a server that accepts and resets
    /// at once): then the first read or write reports the reset, or finds
    /// the socket closed when the reset came before this check.
    Connected(TcpStream),
    /// Every address failed. Carries the error of the last attempt (or
    /// [`io::ErrorKind::InvalidInput`] if the address list was empty). The
    /// connector is finished; further calls keep returning `Failed` (as do
    /// calls after `Connected` or [`Connector::cancel`]).
    Failed(io::Error),
}

/// Most connection attempts in flight at once (RFC 8305 §5: a few).
const MAX_IN_FLIGHT: usize = 3;

/// Connects to the first address of a list that accepts, with Happy
/// Eyeballs (RFC 8305): the addresses are interleaved by family (§4), and
/// when an attempt has not connected after the attempt delay the next one
/// starts beside it (§5), a few in flight at most; an attempt that fails
/// starts the next at once. The first to connect wins and the others are
/// closed. Never blocks; the time is an argument.
pub struct Connector {
    remaining: VecDeque<SocketAddr>,
    /// Attempts in flight, oldest first.
    attempts: Vec<(TcpStream, SocketAddr)>,
    last_error: Option<io::Error>,
    token: Token,
    delay: Duration,
    /// When the next address starts if nothing connected by then.
    next_attempt: Option<Instant>,
    done: bool,
    connected: bool,
    /// `SO_RCVBUF` for each attempt's socket, set before it connects.
    recv_buffer: Option<usize>,
}

impl fmt::Debug for Connector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Connector")
            .field(
                "attempts",
                &self.attempts.iter().map(|(_, a)| a).collect::<Vec<_>>(),
            )
            .field("remaining", &self.remaining)
            .field("last_error", &self.last_error)
            .field("token", &self.token)
            .finish()
    }
}

/// RFC 8305 §4: alternate the address families, starting with the family
/// of the first address (the resolver's preferred order within a family is
/// kept).
pub(crate) fn interleave(addrs: Vec<SocketAddr>) -> VecDeque<SocketAddr> {
    let Some(first) = addrs.first() else {
        return VecDeque::new();
    };
    let first_v6 = first.is_ipv6();
    let (mut a, mut b): (VecDeque<_>, VecDeque<_>) =
        addrs.into_iter().partition(|x| x.is_ipv6() == first_v6);
    let mut out = VecDeque::with_capacity(a.len() + b.len());
    loop {
        match (a.pop_front(), b.pop_front()) {
            (None, None) => return out,
            (x, y) => out.extend(x.into_iter().chain(y)),
        }
    }
}

impl Connector {
    /// Starts connecting to `addrs` (interleaved by family, then in order),
    /// registering each attempt's socket with `registry` under `token`; the
    /// next address starts beside a pending one after `delay` (RFC 8305's
    /// Connection Attempt Delay, 250 ms recommended). Never blocks; errors
    /// (including an empty list) are reported by [`poll`](Self::poll).
    #[cfg(test)]
    pub fn start(
        addrs: Vec<SocketAddr>,
        registry: &Registry,
        token: Token,
        delay: Duration,
        now: Instant,
    ) -> Self {
        Connector::start_with(addrs, registry, token, delay, None, now)
    }

    /// [`start`](Self::start), with each socket's receive buffer
    /// (`SO_RCVBUF`, in bytes) set before it connects, so the window scale
    /// the SYN announces covers it (RFC 7323 §2.2). The kernel clamps it
    /// (Linux: to `net.core.rmem_max`, then doubles it for bookkeeping) and
    /// stops autotuning that socket's buffer. `None`: the kernel's default
    /// and autotuning.
    pub fn start_with(
        addrs: Vec<SocketAddr>,
        registry: &Registry,
        token: Token,
        delay: Duration,
        recv_buffer: Option<usize>,
        now: Instant,
    ) -> Self {
        let mut c = Connector {
            recv_buffer,
            remaining: interleave(addrs),
            attempts: Vec::new(),
            last_error: None,
            token,
            delay,
            next_attempt: None,
            done: false,
            connected: false,
        };
        c.begin_next(registry, now);
        c
    }

    /// When the next attempt starts unless one connects first: the owner
    /// wakes up for it.
    pub fn next_attempt(&self) -> Option<Instant> {
        self.next_attempt.filter(|_| !self.remaining.is_empty())
    }

    /// Checks the attempts in flight, starts the next address when one
    /// failed or the attempt delay passed, and reports. Call it on a
    /// readiness event for the connector's token, when
    /// [`next_attempt`](Self::next_attempt) is due, or at any other time
    /// (spurious calls are fine). Never blocks.
    pub fn poll(&mut self, registry: &Registry, now: Instant) -> ConnectProgress {
        if self.done {
            return ConnectProgress::Failed(self.final_error());
        }
        let mut i = 0;
        while i < self.attempts.len() {
            match check(&self.attempts[i].0) {
                Check::Connected => {
                    let (stream, _) = self.attempts.remove(i);
                    for (mut other, _) in self.attempts.drain(..) {
                        let _ = registry.deregister(&mut other);
                    }
                    // Best effort: a failure only costs latency.
                    let _ = stream.set_nodelay(true);
                    self.remaining.clear();
                    self.done = true;
                    self.connected = true;
                    self.last_error = None;
                    return ConnectProgress::Connected(stream);
                }
                Check::Pending => i += 1,
                Check::Failed(e) => {
                    let (mut stream, _) = self.attempts.remove(i);
                    let _ = registry.deregister(&mut stream);
                    self.last_error = Some(e);
                }
            }
        }
        let delay_passed = self.next_attempt.is_some_and(|t| now >= t);
        if self.attempts.is_empty() || (delay_passed && self.attempts.len() < MAX_IN_FLIGHT) {
            self.begin_next(registry, now);
        }
        if self.attempts.is_empty() {
            self.done = true;
            return ConnectProgress::Failed(self.final_error());
        }
        ConnectProgress::Pending
    }

    /// Abandons the oldest attempt in flight, recording `reason` as the last
    /// error; the next address starts at the next [`poll`](Self::poll).
    /// Never blocks.
    #[cfg(test)]
    pub fn fail_current(&mut self, registry: &Registry, reason: io::Error) {
        if !self.attempts.is_empty() {
            let (mut stream, _) = self.attempts.remove(0);
            let _ = registry.deregister(&mut stream);
            self.last_error = Some(reason);
        }
    }

    /// Stops connecting: deregisters and closes the attempts and forgets the
    /// remaining addresses. Never blocks.
    pub fn cancel(&mut self, registry: &Registry) {
        for (mut stream, _) in self.attempts.drain(..) {
            let _ = registry.deregister(&mut stream);
        }
        self.remaining.clear();
        self.done = true;
    }

    /// The address most recently started, if an attempt is in flight.
    #[cfg(test)]
    pub fn current_addr(&self) -> Option<SocketAddr> {
        self.attempts.last().map(|(_, a)| *a)
    }

    /// How many addresses are not started yet.
    #[cfg(test)]
    pub fn remaining(&self) -> usize {
        self.remaining.len()
    }

    /// How many attempts are in flight.
    #[cfg(test)]
    pub fn in_flight(&self) -> usize {
        self.attempts.len()
    }

    /// The error of the most recent failed attempt, if any.
    #[cfg(test)]
    pub fn last_error(&self) -> Option<&io::Error> {
        self.last_error.as_ref()
    }

    fn final_error(&mut self) -> io::Error {
        if self.connected {
            return io::Error::other("connector already returned its connection");
        }
        match self.last_error.take() {
            Some(e) => {
                // Keep a copy so repeated calls report the same thing.
                let copy = io::Error::new(e.kind(), e.to_string());
                self.last_error = Some(e);
                copy
            }
            None => io::Error::new(io::ErrorKind::InvalidInput, "no addresses to connect to"),
        }
    }

    /// Issues a non-blocking connect to the next address (immediate
    /// failures, e.g. no route, fall through to the one after), and arms the
    /// attempt delay.
    fn begin_next(&mut self, registry: &Registry, now: Instant) {
        while let Some(addr) = self.remaining.pop_front() {
            let mut stream = match open(addr, self.recv_buffer) {
                Ok(s) => s,
                Err(e) => {
                    self.last_error = Some(e);
                    continue;
                }
            };
            if let Err(e) = registry.register(&mut stream, self.token, Interest::WRITABLE) {
                self.last_error = Some(e);
                continue;
            }
            self.attempts.push((stream, addr));
            self.next_attempt = Some(now + self.delay);
            return;
        }
        self.next_attempt = None;
    }
}

/// Where one connect attempt is.
enum Check {
    /// The handshake has not completed.
    Pending,
    /// The connection was established (it may have ended since: the
    /// exchange on it finds out).
    Connected,
    /// The connect failed (refused, unreachable, timed out...).
    Failed(io::Error),
}

/// Checks an attempt with two cheap syscalls, never blocking. `peer_addr()`
/// comes first: with a peer the connection is established, and an error
/// that came after (a reset) is left on the socket for the first read or
/// write, where it belongs. Without a peer, the socket is still connecting
/// or has ended, and only then is `take_error()` read (it clears the error):
/// none means not yet; an error only an established connection gets
/// ([`ended_after_connecting`]) means it was connected and is closed now;
/// any other error is a failed connect.
fn check(stream: &TcpStream) -> Check {
    match stream.peer_addr() {
        Ok(_) => return Check::Connected,
        Err(e) if !is_not_yet_connected(&e) => return Check::Failed(e),
        Err(_) => {}
    }
    match stream.take_error() {
        Ok(None) => Check::Pending,
        Ok(Some(e)) if ended_after_connecting(&e) => Check::Connected,
        Ok(Some(e)) | Err(e) => Check::Failed(e),
    }
}

/// Errors a socket gets only once its connection was established: a reset
/// (`ECONNRESET`; `EPIPE` when it came after the peer's FIN) or an abort
/// (`ECONNABORTED`). A connect the peer refuses gets `ECONNREFUSED`
/// instead, so a server that accepts and resets at once is always a
/// connection that failed after connecting, never a failed connect.
fn ended_after_connecting(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionReset
            | io::ErrorKind::BrokenPipe
            | io::ErrorKind::ConnectionAborted
    )
}

/// A non-blocking socket connecting to `addr`, with its receive buffer set
/// first when `recv_buffer` is given (best effort: a kernel that refuses the
/// size keeps its own).
fn open(addr: SocketAddr, recv_buffer: Option<usize>) -> io::Result<TcpStream> {
    let Some(size) = recv_buffer else {
        return TcpStream::connect(addr);
    };
    let socket = socket2::Socket::new(
        socket2::Domain::for_address(addr),
        socket2::Type::STREAM,
        Some(socket2::Protocol::TCP),
    )?;
    socket.set_nonblocking(true)?;
    let _ = socket.set_recv_buffer_size(size);
    match socket.connect(&addr.into()) {
        Ok(()) => {}
        Err(e) if is_not_yet_connected(&e) => {}
        Err(e) => return Err(e),
    }
    Ok(TcpStream::from_std(socket.into()))
}

/// `peer_addr()` errors that mean "connect still in progress".
fn is_not_yet_connected(e: &io::Error) -> bool {
    if matches!(
        e.kind(),
        io::ErrorKind::NotConnected | io::ErrorKind::WouldBlock
    ) {
        return true;
    }
    #[cfg(any(target_os = "linux", target_os = "android"))]
    const EINPROGRESS: i32 = 115;
    #[cfg(any(
        target_os = "macos",
        target_os = "ios",
        target_os = "freebsd",
        target_os = "openbsd",
        target_os = "netbsd",
        target_os = "dragonfly"
    ))]
    const EINPROGRESS: i32 = 36;
    #[cfg(windows)]
    const EINPROGRESS: i32 = 10036; // WSAEINPROGRESS
    #[cfg(not(any(
        target_os = "linux",
        target_os = "android",
        target_os = "macos",
        target_os = "ios",
        target_os = "freebsd",
        target_os = "openbsd",
        target_os = "netbsd",
        target_os = "dragonfly",
        windows
    )))]
    const EINPROGRESS: i32 = i32::MIN;
    e.raw_os_error() == Some(EINPROGRESS)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    const TOKEN: Token = Token(1);
    const DELAY: Duration = Duration::from_millis(250);

    fn closed_port_addr() -> SocketAddr {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let a = l.local_addr().unwrap();
        drop(l);
        a
    }

    /// Drives the connector with real events until it finishes (bounded).
    fn drive(poll: &mut mio::Poll, c: &mut Connector) -> Result<TcpStream, io::Error> {
        let deadline = Instant::now() + Duration::from_secs(5);
        let mut events = mio::Events::with_capacity(8);
        loop {
            match c.poll(poll.registry(), Instant::now()) {
                ConnectProgress::Pending => {}
                ConnectProgress::Connected(s) => return Ok(s),
                ConnectProgress::Failed(e) => return Err(e),
            }
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(!left.is_zero(), "connect did not finish in time");
            poll.poll(&mut events, Some(left.min(Duration::from_millis(100))))
                .unwrap();
        }
    }

    #[test]
    fn connects_to_listener() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let mut poll = mio::Poll::new().unwrap();
        let mut c = Connector::start(vec![addr], poll.registry(), TOKEN, DELAY, Instant::now());
        assert_eq!(c.current_addr(), Some(addr));
        let s = drive(&mut poll, &mut c).unwrap();
        assert_eq!(s.peer_addr().unwrap(), addr);
        assert!(s.nodelay().unwrap());
        let (_server, peer) = listener.accept().unwrap();
        assert_eq!(peer, s.local_addr().unwrap());
        // Finished connector keeps reporting a terminal state.
        assert!(matches!(
            c.poll(poll.registry(), Instant::now()),
            ConnectProgress::Failed(_)
        ));
    }

    #[test]
    fn receive_buffer_is_set_before_connecting() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let mut poll = mio::Poll::new().unwrap();
        let mut plain = Connector::start(vec![addr], poll.registry(), TOKEN, DELAY, Instant::now());
        let default = socket2::SockRef::from(&drive(&mut poll, &mut plain).unwrap())
            .recv_buffer_size()
            .unwrap();
        // Smaller than any kernel's default: the clamp cannot hide it.
        let size = 8 * 1024;
        let mut c = Connector::start_with(
            vec![addr],
            poll.registry(),
            Token(8),
            DELAY,
            Some(size),
            Instant::now(),
        );
        let s = drive(&mut poll, &mut c).unwrap();
        assert_eq!(s.peer_addr().unwrap(), addr);
        assert!(s.nodelay().unwrap());
        let got = socket2::SockRef::from(&s).recv_buffer_size().unwrap();
        // Linux doubles the asked size for its bookkeeping.
        assert!(
            got >= size && got <= 2 * size && got != default,
            "{got} (default {default})"
        );
        listener.accept().unwrap();
        listener.accept().unwrap();
    }

    #[test]
    fn spurious_polls_are_harmless() {
        // Call poll() many times without waiting for events, like a game
        // calling it once per frame.
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let poll = mio::Poll::new().unwrap();
        let mut c = Connector::start(vec![addr], poll.registry(), TOKEN, DELAY, Instant::now());
        let deadline = Instant::now() + Duration::from_secs(5);
        let mut pendings = 0u32;
        let s = loop {
            match c.poll(poll.registry(), Instant::now()) {
                ConnectProgress::Pending => pendings += 1,
                ConnectProgress::Connected(s) => break s,
                ConnectProgress::Failed(e) => panic!("failed: {e}"),
            }
            assert!(Instant::now() < deadline);
            std::thread::sleep(Duration::from_millis(1));
        };
        assert_eq!(s.peer_addr().unwrap(), addr);
        eprintln!("spurious polls before connected: {pendings}");
    }

    #[test]
    fn refused_port_fails() {
        let mut poll = mio::Poll::new().unwrap();
        let mut c = Connector::start(
            vec![closed_port_addr()],
            poll.registry(),
            TOKEN,
            DELAY,
            Instant::now(),
        );
        let e = drive(&mut poll, &mut c).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::ConnectionRefused, "{e:?}");
        assert_eq!(c.remaining(), 0);
    }

    /// Accepts the one connection of `listener` (bounded wait) and resets it:
    /// `SO_LINGER` 0, then close.
    fn accept_and_reset(listener: &TcpListener) {
        listener.set_nonblocking(true).unwrap();
        let deadline = Instant::now() + Duration::from_secs(5);
        let server = loop {
            match listener.accept() {
                Ok((s, _)) => break s,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    assert!(Instant::now() < deadline, "nothing to accept");
                    std::thread::sleep(Duration::from_millis(1));
                }
                Err(e) => panic!("accept: {e}"),
            }
        };
        socket2::SockRef::from(&server)
            .set_linger(Some(Duration::ZERO))
            .unwrap();
        drop(server);
    }

    /// Waits (bounded) until the poller reports an error on `token`: the
    /// reset reached the client socket. Reading readiness leaves the
    /// socket's error in place.
    fn wait_for_error_event(poll: &mut mio::Poll, token: Token) {
        let deadline = Instant::now() + Duration::from_secs(5);
        let mut events = mio::Events::with_capacity(8);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(!left.is_zero(), "the reset never arrived");
            poll.poll(&mut events, Some(left)).unwrap();
            if events.iter().any(|e| e.token() == token && e.is_error()) {
                return;
            }
        }
    }

    #[test]
    fn a_reset_before_the_first_check_is_a_connection_not_a_failed_connect() {
        // The server accepts and resets before the connector looks: the
        // socket has no peer any more and its error is ECONNRESET. It was
        // connected, so it is reported connected, with the socket closed.
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let mut poll = mio::Poll::new().unwrap();
        let mut c = Connector::start(vec![addr], poll.registry(), TOKEN, DELAY, Instant::now());
        accept_and_reset(&listener);
        wait_for_error_event(&mut poll, TOKEN);
        let mut s = match c.poll(poll.registry(), Instant::now()) {
            ConnectProgress::Connected(s) => s,
            other => panic!("expected Connected, got {other:?}"),
        };
        // The connector read the reset (take_error clears it): the socket
        // is closed, and reads end at once.
        let mut buf = [0u8; 8];
        assert_eq!(io::Read::read(&mut s, &mut buf).unwrap(), 0);
    }

    #[test]
    fn a_reset_after_the_check_stays_for_the_first_read() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let mut poll = mio::Poll::new().unwrap();
        let mut c = Connector::start(vec![addr], poll.registry(), TOKEN, DELAY, Instant::now());
        let mut s = drive(&mut poll, &mut c).unwrap();
        accept_and_reset(&listener);
        wait_for_error_event(&mut poll, TOKEN);
        let mut buf = [0u8; 8];
        let e = io::Read::read(&mut s, &mut buf).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::ConnectionReset, "{e:?}");
    }

    #[test]
    fn a_server_that_accepts_and_resets_is_always_connected() {
        // The reset races the connector's checks: whichever comes first, the
        // result is the same, 30 times out of 30.
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let mut poll = mio::Poll::new().unwrap();
        for _ in 0..30 {
            let mut c = Connector::start(vec![addr], poll.registry(), TOKEN, DELAY, Instant::now());
            std::thread::scope(|scope| {
                scope.spawn(|| accept_and_reset(&listener));
                let got = drive(&mut poll, &mut c);
                assert!(got.is_ok(), "{got:?}");
            });
        }
    }

    #[test]
    fn empty_list_fails() {
        let mut poll = mio::Poll::new().unwrap();
        let mut c = Connector::start(Vec::new(), poll.registry(), TOKEN, DELAY, Instant::now());
        let e = drive(&mut poll, &mut c).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
    }

    #[test]
    fn falls_through_to_good_address() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let good = listener.local_addr().unwrap();
        let bad = closed_port_addr();
        let mut poll = mio::Poll::new().unwrap();
        let mut c = Connector::start(
            vec![bad, bad, good],
            poll.registry(),
            TOKEN,
            DELAY,
            Instant::now(),
        );
        let s = drive(&mut poll, &mut c).unwrap();
        assert_eq!(s.peer_addr().unwrap(), good);
    }

    #[test]
    fn fail_current_moves_on() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let good = listener.local_addr().unwrap();
        let mut poll = mio::Poll::new().unwrap();
        let mut c = Connector::start(
            vec![good, good],
            poll.registry(),
            TOKEN,
            DELAY,
            Instant::now(),
        );
        c.fail_current(
            poll.registry(),
            io::Error::new(io::ErrorKind::TimedOut, "attempt timed out"),
        );
        // The next address starts at the next poll.
        assert_eq!((c.in_flight(), c.remaining()), (0, 1));
        assert_eq!(c.last_error().unwrap().kind(), io::ErrorKind::TimedOut);
        let s = drive(&mut poll, &mut c).unwrap();
        assert_eq!(s.peer_addr().unwrap(), good);

        // Abandoning the only attempt reports the given reason.
        let mut c = Connector::start(vec![good], poll.registry(), TOKEN, DELAY, Instant::now());
        c.fail_current(
            poll.registry(),
            io::Error::new(io::ErrorKind::TimedOut, "t"),
        );
        let e = drive(&mut poll, &mut c).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::TimedOut);
    }

    #[test]
    fn cancel_stops() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let good = listener.local_addr().unwrap();
        let poll = mio::Poll::new().unwrap();
        let mut c = Connector::start(
            vec![good, good],
            poll.registry(),
            TOKEN,
            DELAY,
            Instant::now(),
        );
        c.cancel(poll.registry());
        assert_eq!(c.current_addr(), None);
        assert!(matches!(
            c.poll(poll.registry(), Instant::now()),
            ConnectProgress::Failed(_)
        ));
    }

    #[test]
    fn families_are_interleaved_starting_with_the_first() {
        let a = |s: &str| s.parse::<SocketAddr>().unwrap();
        let got = interleave(vec![
            a("[::1]:1"),
            a("[::2]:1"),
            a("[::3]:1"),
            a("10.0.0.1:1"),
            a("10.0.0.2:1"),
        ]);
        let want = [
            a("[::1]:1"),
            a("10.0.0.1:1"),
            a("[::2]:1"),
            a("10.0.0.2:1"),
            a("[::3]:1"),
        ];
        assert_eq!(got, want);
        let got = interleave(vec![a("10.0.0.1:1"), a("[::1]:1")]);
        assert_eq!(got, [a("10.0.0.1:1"), a("[::1]:1")]);
        assert!(interleave(Vec::new()).is_empty());
    }

    #[test]
    fn the_next_attempt_starts_after_the_delay_beside_a_pending_one() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let good = listener.local_addr().unwrap();
        let poll = mio::Poll::new().unwrap();
        let t0 = Instant::now();
        // An address that answers too, but is not polled as connected before
        // the delay: the fake times drive the decision.
        let mut c = Connector::start(vec![good, good], poll.registry(), TOKEN, DELAY, t0);
        assert_eq!((c.in_flight(), c.remaining()), (1, 1));
        assert_eq!(c.next_attempt(), Some(t0 + DELAY));
        c.fail_current(poll.registry(), io::Error::other("x"));
        // Before the delay a failed attempt starts the next one at once.
        assert!(matches!(
            c.poll(poll.registry(), t0),
            ConnectProgress::Pending | ConnectProgress::Connected(_)
        ));
        assert_eq!(c.remaining(), 0);
    }
}
