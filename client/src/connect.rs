//! Non-blocking TCP connect over a list of addresses.
//!
//! Follows the steps documented on [`mio::net::TcpStream::connect`]: issue a
//! non-blocking connect, register for WRITABLE, and on every check call
//! `take_error()` (an error means this address failed: try the next) and then
//! `peer_addr()` (`NotConnected` / in-progress means "not yet": keep waiting;
//! an address means connected).
//!
//! [`Connector::poll`] is safe to call at any time, with or without a
//! readiness event (e.g. once per frame): a spurious call costs two cheap
//! syscalls and reports [`ConnectProgress::Pending`]. Deadlines are not the
//! connector's business; the owner calls [`Connector::fail_current`] when an
//! attempt has taken too long.
// Building blocks for the HttpClient; until it uses all of them, unused
// items are expected outside tests.

use std::collections::VecDeque;
use std::fmt;
use std::io;
use std::net::SocketAddr;

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
    Connected(TcpStream),
    /// Every address failed. Carries the error of the last attempt (or
    /// [`io::ErrorKind::InvalidInput`] if the address list was empty). The
    /// connector is finished; further calls keep returning `Failed` (as do
    /// calls after `Connected` or [`Connector::cancel`]).
    Failed(io::Error),
}

/// Connects to the first address of a list that accepts, one attempt at a
/// time, in list order. Never blocks.
pub struct Connector {
    remaining: VecDeque<SocketAddr>,
    current: Option<(TcpStream, SocketAddr)>,
    last_error: Option<io::Error>,
    token: Token,
    done: bool,
    connected: bool,
}

impl fmt::Debug for Connector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Connector")
            .field("current", &self.current.as_ref().map(|(_, a)| a))
            .field("remaining", &self.remaining)
            .field("last_error", &self.last_error)
            .field("token", &self.token)
            .finish()
    }
}

impl Connector {
    /// Starts connecting to `addrs` (tried in order), registering each
    /// attempt's socket with `registry` under `token`. Never blocks; errors
    /// (including an empty list) are reported by [`poll`](Self::poll).
    pub fn start(addrs: Vec<SocketAddr>, registry: &Registry, token: Token) -> Self {
        let mut c = Connector {
            remaining: addrs.into(),
            current: None,
            last_error: None,
            token,
            done: false,
            connected: false,
        };
        c.begin_next(registry);
        c
    }

    /// Checks the current attempt and advances through the address list.
    /// Call it on a readiness event for the connector's token, or at any
    /// other time (spurious calls are fine). Never blocks.
    pub fn poll(&mut self, registry: &Registry) -> ConnectProgress {
        loop {
            if self.done {
                return ConnectProgress::Failed(self.final_error());
            }
            let Some((stream, _)) = self.current.as_ref() else {
                self.begin_next(registry);
                if self.current.is_none() {
                    self.done = true;
                }
                continue;
            };
            match stream.take_error() {
                Ok(None) => {}
                Ok(Some(e)) | Err(e) => {
                    self.abandon(registry, e);
                    continue;
                }
            }
            match stream.peer_addr() {
                Ok(_) => {
                    let (stream, _) = self.current.take().expect("checked above");
                    // Best effort: a failure only costs latency, never correctness.
                    let _ = stream.set_nodelay(true);
                    self.remaining.clear();
                    self.done = true;
                    self.connected = true;
                    self.last_error = None;
                    return ConnectProgress::Connected(stream);
                }
                Err(e) if is_not_yet_connected(&e) => return ConnectProgress::Pending,
                Err(e) => {
                    self.abandon(registry, e);
                    continue;
                }
            }
        }
    }

    /// Abandons the current attempt (e.g. its deadline passed), recording
    /// `reason` as the last error, and starts the next address, if any. The
    /// outcome shows on the next [`poll`](Self::poll). Never blocks.
    pub fn fail_current(&mut self, registry: &Registry, reason: io::Error) {
        if self.current.is_some() {
            self.abandon(registry, reason);
        }
    }

    /// Stops connecting: deregisters and closes the current attempt and
    /// forgets the remaining addresses. Never blocks.
    pub fn cancel(&mut self, registry: &Registry) {
        if let Some((mut stream, _)) = self.current.take() {
            let _ = registry.deregister(&mut stream);
        }
        self.remaining.clear();
        self.done = true;
    }

    /// The address currently being tried, if any.
    #[cfg(test)]
    pub fn current_addr(&self) -> Option<SocketAddr> {
        self.current.as_ref().map(|(_, a)| *a)
    }

    /// How many addresses are left after the current one.
    #[cfg(test)]
    pub fn remaining(&self) -> usize {
        self.remaining.len()
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

    /// Drops the current attempt and immediately starts the next address.
    fn abandon(&mut self, registry: &Registry, e: io::Error) {
        if let Some((mut stream, _)) = self.current.take() {
            let _ = registry.deregister(&mut stream);
        }
        self.last_error = Some(e);
        self.begin_next(registry);
    }

    /// Issues non-blocking connects until one is in flight or the list is
    /// exhausted (immediate failures, e.g. no route, fall through).
    fn begin_next(&mut self, registry: &Registry) {
        debug_assert!(self.current.is_none());
        while let Some(addr) = self.remaining.pop_front() {
            let mut stream = match TcpStream::connect(addr) {
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
            self.current = Some((stream, addr));
            return;
        }
    }
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
    use std::time::{Duration, Instant};

    const TOKEN: Token = Token(1);

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
            match c.poll(poll.registry()) {
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
        let mut c = Connector::start(vec![addr], poll.registry(), TOKEN);
        assert_eq!(c.current_addr(), Some(addr));
        let s = drive(&mut poll, &mut c).unwrap();
        assert_eq!(s.peer_addr().unwrap(), addr);
        assert!(s.nodelay().unwrap());
        let (_server, peer) = listener.accept().unwrap();
        assert_eq!(peer, s.local_addr().unwrap());
        // Finished connector keeps reporting a terminal state.
        assert!(matches!(
            c.poll(poll.registry()),
            ConnectProgress::Failed(_)
        ));
    }

    #[test]
    fn spurious_polls_are_harmless() {
        // Call poll() many times without waiting for events, like a game
        // calling it once per frame.
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let poll = mio::Poll::new().unwrap();
        let mut c = Connector::start(vec![addr], poll.registry(), TOKEN);
        let deadline = Instant::now() + Duration::from_secs(5);
        let mut pendings = 0u32;
        let s = loop {
            match c.poll(poll.registry()) {
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
        let mut c = Connector::start(vec![closed_port_addr()], poll.registry(), TOKEN);
        let e = drive(&mut poll, &mut c).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::ConnectionRefused, "{e:?}");
        assert_eq!(c.remaining(), 0);
    }

    #[test]
    fn empty_list_fails() {
        let mut poll = mio::Poll::new().unwrap();
        let mut c = Connector::start(Vec::new(), poll.registry(), TOKEN);
        let e = drive(&mut poll, &mut c).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
    }

    #[test]
    fn falls_through_to_good_address() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let good = listener.local_addr().unwrap();
        let bad = closed_port_addr();
        let mut poll = mio::Poll::new().unwrap();
        let mut c = Connector::start(vec![bad, bad, good], poll.registry(), TOKEN);
        let s = drive(&mut poll, &mut c).unwrap();
        assert_eq!(s.peer_addr().unwrap(), good);
    }

    #[test]
    fn fail_current_moves_on() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let good = listener.local_addr().unwrap();
        let mut poll = mio::Poll::new().unwrap();
        let mut c = Connector::start(vec![good, good], poll.registry(), TOKEN);
        c.fail_current(
            poll.registry(),
            io::Error::new(io::ErrorKind::TimedOut, "attempt timed out"),
        );
        assert_eq!(c.remaining(), 0);
        assert_eq!(c.last_error().unwrap().kind(), io::ErrorKind::TimedOut);
        let s = drive(&mut poll, &mut c).unwrap();
        assert_eq!(s.peer_addr().unwrap(), good);

        // Abandoning the only attempt reports the given reason.
        let mut c = Connector::start(vec![good], poll.registry(), TOKEN);
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
        let mut c = Connector::start(vec![good, good], poll.registry(), TOKEN);
        c.cancel(poll.registry());
        assert_eq!(c.current_addr(), None);
        assert!(matches!(
            c.poll(poll.registry()),
            ConnectProgress::Failed(_)
        ));
    }
}
