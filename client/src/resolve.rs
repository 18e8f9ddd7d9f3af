//! Non-blocking host name resolution.
//!
//! Every lookup runs on its own short-lived thread (the system resolver,
//! `getaddrinfo` behind [`std::net::ToSocketAddrs`], only offers a blocking
//! API). One thread per lookup means a slow lookup for one host never delays
//! another client's lookup, unlike a single sequential resolver thread.
//!
//! The result lands in a slot shared with the [`PendingLookup`] handle, and an
//! optional [`mio::Waker`] is woken so a caller sleeping in [`mio::Poll::poll`]
//! notices. The caller collects the result with [`PendingLookup::try_take`],
//! which never blocks. Dropping the handle never blocks either: the thread
//! finishes on its own and its result is discarded.
//!
//! IP literals (`127.0.0.1`, `::1`, `[::1]`) never start a thread.
// Building blocks for the HttpClient; until it uses all of them, unused
// items are expected outside tests.

use std::fmt;
use std::io;
use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, TryLockError};

/// A blocking lookup function: host (without brackets) and port in, addresses
/// out. It runs on a resolver thread, never on the caller's thread.
pub type LookupFn = Arc<dyn Fn(&str, u16) -> io::Result<Vec<SocketAddr>> + Send + Sync>;

/// The result of a lookup: every address the resolver returned, in its order.
pub type LookupResult = io::Result<Vec<SocketAddr>>;

/// The system resolver, via [`std::net::ToSocketAddrs`]. Blocks the calling
/// thread; [`Resolver`] only ever calls it from a resolver thread.
///
/// Keeps the system's order (which already follows RFC 6724 preferences) and
/// both address families; only exact duplicates are removed. An empty answer
/// is turned into an [`io::ErrorKind::NotFound`] error.
pub fn system_lookup(host: &str, port: u16) -> LookupResult {
    let mut addrs: Vec<SocketAddr> = Vec::new();
    for addr in (host, port).to_socket_addrs()? {
        if !addrs.contains(&addr) {
            addrs.push(addr);
        }
    }
    if addrs.is_empty() {
        return Err(io::Error::new(
            io::ErrorKind::NotFound,
            format!("no addresses found for host {host:?}"),
        ));
    }
    Ok(addrs)
}

/// Parses `host` as an IP address literal: IPv4 (`127.0.0.1`), IPv6 (`::1`)
/// or bracketed IPv6 as written in URLs (`[::1]`). Returns `None` for
/// anything else (a name that needs resolving).
pub fn parse_ip_literal(host: &str) -> Option<IpAddr> {
    let inner = match host.strip_prefix('[') {
        Some(rest) => rest.strip_suffix(']')?,
        None => host,
    };
    if let Ok(v6) = inner.parse::<std::net::Ipv6Addr>() {
        return Some(IpAddr::V6(v6));
    }
    // Brackets are only valid around IPv6.
    if inner.len() != host.len() {
        return None;
    }
    inner.parse::<std::net::Ipv4Addr>().ok().map(IpAddr::V4)
}

/// Starts host name lookups, each on its own thread. Cheap to clone.
#[derive(Clone)]
pub struct Resolver {
    lookup: LookupFn,
}

impl Default for Resolver {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for Resolver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Resolver").finish_non_exhaustive()
    }
}

impl Resolver {
    /// A resolver using the system resolver ([`system_lookup`]).
    pub fn new() -> Self {
        Self {
            lookup: Arc::new(system_lookup),
        }
    }

    /// A resolver using `lookup` instead of the system resolver (tests,
    /// custom DNS). `lookup` may block; it runs on a resolver thread.
    pub fn with_lookup(lookup: LookupFn) -> Self {
        Self { lookup }
    }

    /// Starts resolving `host` (a name, an IP literal, or a bracketed IPv6
    /// literal) for `port`. Never blocks.
    ///
    /// IP literals and the empty host are answered immediately without a
    /// thread; `waker` is not woken for them (the result is ready before this
    /// returns). Otherwise a thread is spawned that runs the lookup, stores the
    /// result and wakes `waker` (if any). If the thread cannot be spawned, the
    /// spawn error is the result.
    ///
    /// Keep your own clone of `waker` alive (e.g. in the client) for as long
    /// as you wait on it: if the resolver thread held the last reference,
    /// dropping it right after waking would close the waker and the wake-up
    /// could be lost.
    pub fn start(&self, host: &str, port: u16, waker: Option<Arc<mio::Waker>>) -> PendingLookup {
        if let Some(ip) = parse_ip_literal(host) {
            return PendingLookup::ready(Ok(vec![SocketAddr::new(ip, port)]));
        }
        if host.is_empty() {
            return PendingLookup::ready(Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "empty host name",
            )));
        }
        let shared = Arc::new(Shared {
            slot: Mutex::new(None),
            cancelled: AtomicBool::new(false),
        });
        let thread_shared = Arc::clone(&shared);
        let lookup = Arc::clone(&self.lookup);
        let host_owned = host.to_owned();
        let spawned = std::thread::Builder::new()
            .name("pollhttp-resolve".into())
            .spawn(move || {
                let result = lookup(&host_owned, port);
                if thread_shared.cancelled.load(Ordering::Acquire) {
                    return;
                }
                match thread_shared.slot.lock() {
                    Ok(mut slot) => *slot = Some(result),
                    Err(poisoned) => *poisoned.into_inner() = Some(result),
                }
                if let Some(waker) = waker {
                    // A failed wake only means the poll is gone; nothing to do.
                    let _ = waker.wake();
                }
            });
        match spawned {
            Ok(_detached) => PendingLookup {
                state: State::Running(shared),
            },
            Err(e) => PendingLookup::ready(Err(e)),
        }
    }
}

struct Shared {
    slot: Mutex<Option<LookupResult>>,
    cancelled: AtomicBool,
}

enum State {
    Ready(Option<LookupResult>),
    Running(Arc<Shared>),
}

/// A lookup in progress. Poll it with [`try_take`](Self::try_take); drop it
/// (or call [`cancel`](Self::cancel)) to abandon it. Neither blocks.
pub struct PendingLookup {
    state: State,
}

impl fmt::Debug for PendingLookup {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match &self.state {
            State::Ready(Some(_)) => "ready",
            State::Ready(None) => "taken",
            State::Running(_) => "running",
        };
        f.debug_struct("PendingLookup")
            .field("state", &state)
            .finish()
    }
}

impl PendingLookup {
    fn ready(result: LookupResult) -> Self {
        Self {
            state: State::Ready(Some(result)),
        }
    }

    /// Returns the result once the lookup has finished, `None` while it is
    /// still running (or after the result was already taken). Never blocks:
    /// if the resolver thread happens to hold the slot's lock at this instant,
    /// this returns `None` and the result is available on a later call (the
    /// waker fires after the lock is released).
    pub fn try_take(&mut self) -> Option<LookupResult> {
        match &mut self.state {
            State::Ready(result) => result.take(),
            State::Running(shared) => {
                let taken = match shared.slot.try_lock() {
                    Ok(mut slot) => slot.take(),
                    Err(TryLockError::Poisoned(p)) => p.into_inner().take(),
                    Err(TryLockError::WouldBlock) => None,
                };
                if taken.is_some() {
                    self.state = State::Ready(None);
                }
                taken
            }
        }
    }

    /// Returns `true` while the lookup thread has not delivered a result yet.
    #[cfg(test)]
    pub fn is_running(&self) -> bool {
        matches!(self.state, State::Running(_))
    }

    /// Abandons the lookup. Never blocks; the thread (if any) finishes on its
    /// own and discards its result without waking the waker (unless the
    /// cancel races with the very end of the lookup, in which case one
    /// harmless spurious wake-up may occur). Same as dropping.
    pub fn cancel(self) {}
}

impl Drop for PendingLookup {
    fn drop(&mut self) {
        if let State::Running(shared) = &self.state {
            shared.cancelled.store(true, Ordering::Release);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, Ipv6Addr};
    use std::time::{Duration, Instant};

    const WAKE: mio::Token = mio::Token(7);

    /// Polls `poll` until the lookup yields, failing after `limit`.
    fn wait(poll: &mut mio::Poll, lookup: &mut PendingLookup, limit: Duration) -> LookupResult {
        let deadline = Instant::now() + limit;
        let mut events = mio::Events::with_capacity(8);
        loop {
            if let Some(r) = lookup.try_take() {
                return r;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(!left.is_zero(), "lookup did not finish within {limit:?}");
            poll.poll(&mut events, Some(left)).unwrap();
        }
    }

    #[test]
    fn ip_literals() {
        assert_eq!(
            parse_ip_literal("127.0.0.1"),
            Some(IpAddr::V4(Ipv4Addr::LOCALHOST))
        );
        assert_eq!(
            parse_ip_literal("::1"),
            Some(IpAddr::V6(Ipv6Addr::LOCALHOST))
        );
        assert_eq!(
            parse_ip_literal("[::1]"),
            Some(IpAddr::V6(Ipv6Addr::LOCALHOST))
        );
        assert_eq!(parse_ip_literal("[127.0.0.1]"), None);
        assert_eq!(parse_ip_literal("[::1"), None);
        assert_eq!(parse_ip_literal("localhost"), None);
        assert_eq!(parse_ip_literal("example.com"), None);
        assert_eq!(parse_ip_literal(""), None);
    }

    #[test]
    fn ip_literal_skips_thread() {
        // A lookup function that must never run.
        let resolver = Resolver::with_lookup(Arc::new(|_: &str, _: u16| -> LookupResult {
            panic!("lookup called for an IP literal")
        }));
        let mut l = resolver.start("[::1]", 8080, None);
        assert!(!l.is_running());
        let addrs = l.try_take().unwrap().unwrap();
        assert_eq!(addrs, vec!["[::1]:8080".parse().unwrap()]);
        assert!(l.try_take().is_none());
        let addrs = resolver
            .start("10.1.2.3", 1, None)
            .try_take()
            .unwrap()
            .unwrap();
        assert_eq!(addrs, vec!["10.1.2.3:1".parse().unwrap()]);
        let err = resolver.start("", 1, None).try_take().unwrap().unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
    }

    #[test]
    fn localhost_resolves_and_wakes() {
        let mut poll = mio::Poll::new().unwrap();
        let waker = Arc::new(mio::Waker::new(poll.registry(), WAKE).unwrap());
        // Keep a clone: the waker must outlive the wake-up (see `start`).
        let mut lookup = Resolver::new().start("localhost", 80, Some(Arc::clone(&waker)));
        let mut events = mio::Events::with_capacity(8);
        let deadline = Instant::now() + Duration::from_secs(5);
        let mut woken = false;
        while !woken {
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(!left.is_zero(), "waker never fired");
            poll.poll(&mut events, Some(left)).unwrap();
            woken = events.iter().any(|e| e.token() == WAKE);
        }
        let addrs = lookup.try_take().expect("woken but no result").unwrap();
        assert!(!addrs.is_empty());
        assert!(addrs.iter().all(|a| a.ip().is_loopback() && a.port() == 80));
    }

    #[test]
    fn unresolvable_name_fails_fast() {
        let mut poll = mio::Poll::new().unwrap();
        let waker = Arc::new(mio::Waker::new(poll.registry(), WAKE).unwrap());
        let start = Instant::now();
        let mut lookup = Resolver::new().start("nonexistent.invalid", 80, Some(Arc::clone(&waker)));
        let r = wait(&mut poll, &mut lookup, Duration::from_secs(10));
        let took = start.elapsed();
        assert!(r.is_err(), "resolved nonexistent.invalid: {r:?}");
        eprintln!("nonexistent.invalid failed in {took:?}: {}", r.unwrap_err());
        // .invalid never exists (RFC 2606); resolvers answer NXDOMAIN at once.
        assert!(took < Duration::from_secs(5), "took {took:?}");
    }

    fn slow_resolver() -> Resolver {
        Resolver::with_lookup(Arc::new(|host: &str, port: u16| {
            if host == "slow.test" {
                std::thread::sleep(Duration::from_secs(2));
            }
            Ok(vec![SocketAddr::new(Ipv4Addr::LOCALHOST.into(), port)])
        }))
    }

    #[test]
    fn slow_lookup_does_not_delay_another() {
        let mut poll = mio::Poll::new().unwrap();
        let waker = Arc::new(mio::Waker::new(poll.registry(), WAKE).unwrap());
        let resolver = slow_resolver();
        let t0 = Instant::now();
        let mut slow = resolver.start("slow.test", 1, Some(Arc::clone(&waker)));
        let mut fast = resolver.start("fast.test", 2, Some(Arc::clone(&waker)));
        let started = t0.elapsed();
        assert!(
            started < Duration::from_millis(200),
            "start blocked: {started:?}"
        );
        let r = wait(&mut poll, &mut fast, Duration::from_secs(1)).unwrap();
        let fast_took = t0.elapsed();
        assert_eq!(r[0].port(), 2);
        assert!(fast_took < Duration::from_millis(1000), "{fast_took:?}");
        assert!(slow.try_take().is_none(), "slow lookup finished too early");
        assert!(slow.is_running());
        let r = wait(&mut poll, &mut slow, Duration::from_secs(5)).unwrap();
        assert_eq!(r[0].port(), 1);
        assert!(t0.elapsed() >= Duration::from_secs(2));
    }

    #[test]
    fn dropping_a_running_lookup_does_not_block() {
        let resolver = slow_resolver();
        let lookup = resolver.start("slow.test", 1, None);
        let t0 = Instant::now();
        lookup.cancel();
        let lookup = resolver.start("slow.test", 1, None);
        drop(lookup);
        assert!(t0.elapsed() < Duration::from_millis(100));
    }

    #[test]
    fn cancelled_lookup_does_not_wake() {
        let mut poll = mio::Poll::new().unwrap();
        let waker = Arc::new(mio::Waker::new(poll.registry(), WAKE).unwrap());
        let resolver = Resolver::with_lookup(Arc::new(|_: &str, port: u16| {
            std::thread::sleep(Duration::from_millis(200));
            Ok(vec![SocketAddr::new(Ipv4Addr::LOCALHOST.into(), port)])
        }));
        drop(resolver.start("x.test", 1, Some(Arc::clone(&waker))));
        let mut events = mio::Events::with_capacity(8);
        poll.poll(&mut events, Some(Duration::from_millis(600)))
            .unwrap();
        assert!(events.is_empty(), "cancelled lookup woke the poll");
    }
}
