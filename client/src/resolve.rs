//! Non-blocking host name resolution.
//!
//! Lookups run on a bounded set of worker threads (the system resolver,
//! `getaddrinfo` behind [`std::net::ToSocketAddrs`], only offers a blocking
//! API): a slow lookup holds one worker, so it never delays a lookup that
//! finds another worker free, and a burst of names never starts more than a
//! few threads. Answers are cached (successes for a minute, failures for a
//! few seconds).
//!
//! The result lands in a slot shared with the [`PendingLookup`] handle, and an
//! optional [`mio::Waker`] is woken so a caller sleeping in [`mio::Poll::poll`]
//! notices. The caller collects the result with [`PendingLookup::try_take`],
//! which never blocks. Dropping the handle never blocks either: the thread
//! finishes on its own and its result is discarded.
//!
//! IP literals (`127.0.0.1`, `::1`, `[::1]`) never start a thread.

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::io;
use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, TryLockError};
use std::time::{Duration, Instant};

use crate::time::Clock;

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

/// How a [`Resolver`] runs lookups and keeps their answers.
#[derive(Debug, Clone)]
pub(crate) struct ResolverConfig {
    /// Most lookup threads at once; further lookups wait in a FIFO queue.
    pub(crate) workers: usize,
    /// How long an answer is reused.
    pub(crate) ttl: Duration,
    /// How long a failure is reused (shorter: a name may come back).
    pub(crate) failure_ttl: Duration,
    /// Most names cached (the oldest goes first).
    pub(crate) max_entries: usize,
}

impl Default for ResolverConfig {
    fn default() -> ResolverConfig {
        ResolverConfig {
            workers: 4,
            ttl: Duration::from_secs(60),
            failure_ttl: Duration::from_secs(5),
            max_entries: 256,
        }
    }
}

/// Starts host name lookups on a bounded set of worker threads (a slow name
/// holds one worker, never the caller, and never another lookup while a
/// worker is free), and caches answers (successes for a minute, failures for
/// a few seconds, a bounded number of names). Cheap to clone: clones share
/// the workers and the cache.
#[derive(Clone)]
pub struct Resolver {
    inner: Arc<Inner>,
}

struct Inner {
    lookup: LookupFn,
    config: ResolverConfig,
    clock: Clock,
    state: Mutex<Shared>,
}

type CachedAnswer = Result<Vec<SocketAddr>, (io::ErrorKind, String)>;

#[derive(Default)]
struct Shared {
    running: usize,
    queue: VecDeque<QueuedLookup>,
    cache: HashMap<(String, u16), (Instant, CachedAnswer)>,
    /// Cache keys, oldest first.
    order: VecDeque<(String, u16)>,
}

struct QueuedLookup {
    host: String,
    port: u16,
    slot: Arc<Slot>,
    waker: Option<Arc<mio::Waker>>,
}

impl Default for Resolver {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for Resolver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Resolver")
            .field("config", &self.inner.config)
            .finish_non_exhaustive()
    }
}

fn answer_of(result: &LookupResult) -> CachedAnswer {
    match result {
        Ok(a) => Ok(a.clone()),
        Err(e) => Err((e.kind(), e.to_string())),
    }
}

fn result_of(answer: &CachedAnswer) -> LookupResult {
    match answer {
        Ok(a) => Ok(a.clone()),
        Err((kind, msg)) => Err(io::Error::new(*kind, msg.clone())),
    }
}

impl Resolver {
    /// A resolver using the system resolver ([`system_lookup`]).
    pub fn new() -> Self {
        Self::with_lookup(Arc::new(system_lookup))
    }

    /// A resolver using `lookup` instead of the system resolver (tests,
    /// custom DNS). `lookup` may block; it runs on a resolver thread.
    pub fn with_lookup(lookup: LookupFn) -> Self {
        Self::with_config(lookup, ResolverConfig::default(), Arc::new(Instant::now))
    }

    pub(crate) fn with_config(lookup: LookupFn, config: ResolverConfig, clock: Clock) -> Self {
        Resolver {
            inner: Arc::new(Inner {
                lookup,
                config,
                clock,
                state: Mutex::new(Shared::default()),
            }),
        }
    }

    /// Starts resolving `host` (a name, an IP literal, or a bracketed IPv6
    /// literal) for `port`. Never blocks (it takes the resolver's lock only
    /// to look at the cache and queue the lookup).
    ///
    /// IP literals, the empty host and cached answers are answered
    /// immediately without a thread; `waker` is not woken for them (the
    /// result is ready before this returns). Otherwise the lookup is queued
    /// for a worker thread (one is started if fewer than the limit run),
    /// which stores the result and wakes `waker` (if any). If no worker can be
    /// spawned, the spawn error is the result.
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
        let now = (self.inner.clock)();
        let key = (host.to_ascii_lowercase(), port);
        let mut state = match self.inner.state.lock() {
            Ok(s) => s,
            Err(p) => p.into_inner(),
        };
        if let Some((expires, answer)) = state.cache.get(&key) {
            if *expires > now {
                return PendingLookup::ready(result_of(answer));
            }
        }
        let slot = Arc::new(Slot {
            result: Mutex::new(None),
            cancelled: AtomicBool::new(false),
        });
        state.queue.push_back(QueuedLookup {
            host: host.to_owned(),
            port,
            slot: Arc::clone(&slot),
            waker,
        });
        if state.running < self.inner.config.workers.max(1) {
            let inner = Arc::clone(&self.inner);
            let spawned = std::thread::Builder::new()
                .name("pollhttp-resolve".into())
                .spawn(move || worker(inner));
            match spawned {
                Ok(_detached) => state.running += 1,
                Err(e) if state.running == 0 => {
                    state.queue.pop_back();
                    return PendingLookup::ready(Err(e));
                }
                // The running workers will get to it.
                Err(_) => {}
            }
        }
        PendingLookup {
            state: State::Running(slot),
        }
    }
}

/// A worker: take queued lookups until none is left, then end.
fn worker(inner: Arc<Inner>) {
    loop {
        let job = {
            let mut state = match inner.state.lock() {
                Ok(s) => s,
                Err(p) => p.into_inner(),
            };
            match state.queue.pop_front() {
                Some(job) => job,
                None => {
                    state.running -= 1;
                    return;
                }
            }
        };
        if job.slot.cancelled.load(Ordering::Acquire) {
            continue;
        }
        let result = (inner.lookup)(&job.host, job.port);
        {
            let now = (inner.clock)();
            let ttl = if result.is_ok() {
                inner.config.ttl
            } else {
                inner.config.failure_ttl
            };
            let mut state = match inner.state.lock() {
                Ok(s) => s,
                Err(p) => p.into_inner(),
            };
            let key = (job.host.to_ascii_lowercase(), job.port);
            if state
                .cache
                .insert(key.clone(), (now + ttl, answer_of(&result)))
                .is_none()
            {
                state.order.push_back(key);
            }
            while state.cache.len() > inner.config.max_entries {
                match state.order.pop_front() {
                    Some(old) => {
                        state.cache.remove(&old);
                    }
                    None => break,
                }
            }
        }
        if job.slot.cancelled.load(Ordering::Acquire) {
            continue;
        }
        match job.slot.result.lock() {
            Ok(mut r) => *r = Some(result),
            Err(p) => *p.into_inner() = Some(result),
        }
        if let Some(waker) = job.waker {
            // A failed wake only means the poll is gone; nothing to do.
            let _ = waker.wake();
        }
    }
}

struct Slot {
    result: Mutex<Option<LookupResult>>,
    cancelled: AtomicBool,
}

enum State {
    Ready(Option<LookupResult>),
    Running(Arc<Slot>),
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
            State::Running(slot) => {
                let taken = match slot.result.try_lock() {
                    Ok(mut r) => r.take(),
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

    /// Whether the result is here and not taken yet (an IP literal, a
    /// cached name, or a finished lookup already collected): a step takes
    /// it at once, without waiting for a wake-up.
    pub(crate) fn is_answered(&self) -> bool {
        matches!(self.state, State::Ready(Some(_)))
    }

    /// Whether the result is here, not taken yet, and addresses.
    pub(crate) fn has_addresses(&self) -> bool {
        matches!(self.state, State::Ready(Some(Ok(_))))
    }

    /// Returns `true` while the lookup has not delivered a result yet.
    #[cfg(test)]
    pub fn is_running(&self) -> bool {
        matches!(self.state, State::Running(_))
    }

    /// Abandons the lookup. Never blocks; a queued lookup is skipped, a
    /// running one finishes on its thread and its result is discarded without
    /// waking the waker (unless the cancel races with the very end of the
    /// lookup: then one harmless spurious wake-up may occur). Same as
    /// dropping.
    pub fn cancel(self) {}
}

impl Drop for PendingLookup {
    fn drop(&mut self) {
        if let State::Running(slot) = &self.state {
            slot.cancelled.store(true, Ordering::Release);
        }
    }
}

#[cfg(test)]
mod tests {
    //! No test here reads the wall clock or asks the system resolver: the
    //! lookups are functions the tests control (a [`Gate`] holds a lookup
    //! until the test opens it), the order of events is asserted through
    //! counts and wake-ups, and the cache's time is a fake clock.

    use super::*;
    use std::net::{Ipv4Addr, Ipv6Addr};
    use std::sync::atomic::{AtomicU64, AtomicUsize};
    use std::sync::Condvar;
    use std::time::Duration;

    const WAKE: mio::Token = mio::Token(7);

    /// Most polls of 100 ms a test waits for a wake-up: a hang guard, never
    /// a measurement.
    const MAX_POLLS: usize = 300;

    /// Polls `poll` until the lookup yields (at most [`MAX_POLLS`] polls).
    fn wait(poll: &mut mio::Poll, lookup: &mut PendingLookup) -> LookupResult {
        let mut events = mio::Events::with_capacity(8);
        for _ in 0..MAX_POLLS {
            if let Some(r) = lookup.try_take() {
                return r;
            }
            poll.poll(&mut events, Some(Duration::from_millis(100)))
                .unwrap();
        }
        panic!("the lookup never finished ({MAX_POLLS} polls)");
    }

    /// Polls `poll` until its waker fires (at most [`MAX_POLLS`] polls).
    fn wait_for_wake(poll: &mut mio::Poll) {
        let mut events = mio::Events::with_capacity(8);
        for _ in 0..MAX_POLLS {
            poll.poll(&mut events, Some(Duration::from_millis(100)))
                .unwrap();
            if events.iter().any(|e| e.token() == WAKE) {
                return;
            }
        }
        panic!("the waker never fired ({MAX_POLLS} polls)");
    }

    /// A poll and its waker (keep the waker alive: see `Resolver::start`).
    fn poll_and_waker() -> (mio::Poll, Arc<mio::Waker>) {
        let poll = mio::Poll::new().unwrap();
        let waker = Arc::new(mio::Waker::new(poll.registry(), WAKE).unwrap());
        (poll, waker)
    }

    fn loopback(port: u16) -> LookupResult {
        Ok(vec![SocketAddr::new(Ipv4Addr::LOCALHOST.into(), port)])
    }

    #[derive(Default)]
    struct GateState {
        open: bool,
        /// Lookups of the gated name that started / returned.
        entered: usize,
        exited: usize,
    }

    /// Holds every lookup of one name until the test opens it, and counts
    /// the lookups that entered and left. A lookup never released gives up
    /// after 30 s (so a broken test fails instead of hanging).
    #[derive(Default)]
    struct Gate {
        state: Mutex<GateState>,
        changed: Condvar,
    }

    impl Gate {
        /// A lookup function: `gated` waits for the gate, any other name
        /// answers at once; both answer 127.0.0.1 at the asked port.
        fn lookup(self: &Arc<Self>, gated: &'static str) -> LookupFn {
            let gate = Arc::clone(self);
            Arc::new(move |host: &str, port: u16| {
                if host != gated {
                    return loopback(port);
                }
                let mut s = gate.state.lock().unwrap();
                s.entered += 1;
                gate.changed.notify_all();
                let (mut s, timeout) = gate
                    .changed
                    .wait_timeout_while(s, Duration::from_secs(30), |s| !s.open)
                    .unwrap();
                s.exited += 1;
                gate.changed.notify_all();
                if timeout.timed_out() {
                    return Err(io::Error::new(io::ErrorKind::TimedOut, "gate never opened"));
                }
                loopback(port)
            })
        }

        fn open(&self) {
            self.state.lock().unwrap().open = true;
            self.changed.notify_all();
        }

        /// (entered, exited) now.
        fn counts(&self) -> (usize, usize) {
            let s = self.state.lock().unwrap();
            (s.entered, s.exited)
        }

        /// Blocks until `(entered, exited)` reach at least these counts (a
        /// hang guard of 30 s).
        fn wait_for(&self, entered: usize, exited: usize) {
            let s = self.state.lock().unwrap();
            let (s, timeout) = self
                .changed
                .wait_timeout_while(s, Duration::from_secs(30), |s| {
                    s.entered < entered || s.exited < exited
                })
                .unwrap();
            assert!(
                !timeout.timed_out(),
                "gate: {}/{} entered, {}/{} exited",
                s.entered,
                entered,
                s.exited,
                exited
            );
        }
    }

    /// A fake clock moved by hand, in whole seconds.
    fn fake_clock() -> (Clock, Arc<AtomicU64>) {
        let base = Instant::now();
        let secs = Arc::new(AtomicU64::new(0));
        let s = Arc::clone(&secs);
        let clock: Clock = Arc::new(move || base + Duration::from_secs(s.load(Ordering::SeqCst)));
        (clock, secs)
    }

    /// A resolver on `lookup`, the default config but `workers`, and a
    /// fake clock that never moves.
    fn resolver_with(lookup: LookupFn, workers: usize) -> Resolver {
        let config = ResolverConfig {
            workers,
            ..ResolverConfig::default()
        };
        Resolver::with_config(lookup, config, fake_clock().0)
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
    fn a_lookup_answers_on_its_thread_and_wakes() {
        let (mut poll, waker) = poll_and_waker();
        let caller = std::thread::current().id();
        let ran_on = Arc::new(Mutex::new(None));
        let r = Arc::clone(&ran_on);
        let resolver = resolver_with(
            Arc::new(move |host: &str, port: u16| {
                *r.lock().unwrap() = Some((std::thread::current().id(), host.to_string()));
                Ok(vec![
                    SocketAddr::new(Ipv6Addr::LOCALHOST.into(), port),
                    SocketAddr::new(Ipv4Addr::LOCALHOST.into(), port),
                ])
            }),
            4,
        );
        let mut lookup = resolver.start("Name.Test", 80, Some(Arc::clone(&waker)));
        wait_for_wake(&mut poll);
        let addrs = lookup.try_take().expect("woken but no result").unwrap();
        assert_eq!(
            addrs,
            vec![
                "[::1]:80".parse::<SocketAddr>().unwrap(),
                "127.0.0.1:80".parse().unwrap()
            ],
            "every address, in the lookup's order"
        );
        let (thread, host) = ran_on.lock().unwrap().take().expect("the lookup ran");
        assert_ne!(thread, caller, "the lookup ran on a resolver thread");
        assert_eq!(host, "Name.Test", "the name as given");
    }

    #[test]
    fn a_failed_lookup_is_delivered_and_wakes() {
        let (mut poll, waker) = poll_and_waker();
        let resolver = resolver_with(
            Arc::new(|host: &str, _: u16| {
                Err(io::Error::new(
                    io::ErrorKind::NotFound,
                    format!("{host}: no such name"),
                ))
            }),
            4,
        );
        let mut lookup = resolver.start("gone.test", 80, Some(Arc::clone(&waker)));
        wait_for_wake(&mut poll);
        let e = lookup.try_take().expect("woken but no result").unwrap_err();
        assert_eq!(
            (e.kind(), e.to_string()),
            (io::ErrorKind::NotFound, "gone.test: no such name".into())
        );
    }

    /// One name held by the gate keeps one worker; another name, started
    /// after it, is answered on another worker while the first is still
    /// held: it did not wait for it (if it had, it would never finish).
    #[test]
    fn slow_lookup_does_not_delay_another() {
        let (mut poll, waker) = poll_and_waker();
        let gate = Arc::new(Gate::default());
        let resolver = resolver_with(gate.lookup("slow.test"), 4);
        let mut slow = resolver.start("slow.test", 1, Some(Arc::clone(&waker)));
        // `start` returned while the lookup is held: it did not block.
        gate.wait_for(1, 0);
        let mut fast = resolver.start("fast.test", 2, Some(Arc::clone(&waker)));
        let r = wait(&mut poll, &mut fast).unwrap();
        assert_eq!(r[0].port(), 2);
        // The slow lookup is still held: the fast one went past it.
        assert_eq!(gate.counts(), (1, 0));
        assert!(slow.try_take().is_none(), "slow lookup finished too early");
        assert!(slow.is_running());
        gate.open();
        let r = wait(&mut poll, &mut slow).unwrap();
        assert_eq!(r[0].port(), 1);
        assert_eq!(gate.counts(), (1, 1));
    }

    /// Cancelling or dropping a lookup returns while the lookup is still
    /// held on its thread: neither waits for it.
    #[test]
    fn dropping_a_running_lookup_does_not_block() {
        let gate = Arc::new(Gate::default());
        let resolver = resolver_with(gate.lookup("slow.test"), 4);
        let lookup = resolver.start("slow.test", 1, None);
        gate.wait_for(1, 0);
        lookup.cancel();
        let lookup = resolver.start("slow.test", 1, None);
        gate.wait_for(2, 0);
        drop(lookup);
        // Both lookups are still held (the gate is shut): cancel and drop
        // returned before them.
        assert_eq!(gate.counts(), (2, 0));
        gate.open();
        gate.wait_for(2, 2);
    }

    /// A cancelled lookup that finishes later wakes no one. One worker runs
    /// the cancelled lookup, then another (with its own poll and waker):
    /// once the second has woken its poll, the first is wholly done, and
    /// its poll has no event.
    #[test]
    fn cancelled_lookup_does_not_wake() {
        let (mut poll, waker) = poll_and_waker();
        let (mut other_poll, other_waker) = poll_and_waker();
        let gate = Arc::new(Gate::default());
        let resolver = resolver_with(gate.lookup("x.test"), 1);
        let cancelled = resolver.start("x.test", 1, Some(Arc::clone(&waker)));
        let mut after = resolver.start("y.test", 2, Some(Arc::clone(&other_waker)));
        gate.wait_for(1, 0);
        drop(cancelled);
        gate.open();
        wait_for_wake(&mut other_poll);
        assert_eq!(after.try_take().unwrap().unwrap()[0].port(), 2);
        assert_eq!(gate.counts(), (1, 1));
        let mut events = mio::Events::with_capacity(8);
        poll.poll(&mut events, Some(Duration::ZERO)).unwrap();
        assert!(events.is_empty(), "cancelled lookup woke the poll");
    }

    /// A lookup function that counts its calls and fails for `fail`.
    fn counting(fail: &'static str) -> (LookupFn, Arc<AtomicUsize>) {
        let calls = Arc::new(AtomicUsize::new(0));
        let c = Arc::clone(&calls);
        let f: LookupFn = Arc::new(move |host: &str, port: u16| {
            c.fetch_add(1, Ordering::SeqCst);
            if host == fail {
                return Err(io::Error::new(io::ErrorKind::NotFound, "no such name"));
            }
            loopback(port)
        });
        (f, calls)
    }

    fn resolve(resolver: &Resolver, host: &str) -> LookupResult {
        let (mut poll, waker) = poll_and_waker();
        let mut l = resolver.start(host, 80, Some(Arc::clone(&waker)));
        wait(&mut poll, &mut l)
    }

    #[test]
    fn answers_are_cached_for_their_ttl_and_failures_for_less() {
        let (lookup, calls) = counting("gone.test");
        let (clock, secs) = fake_clock();
        let resolver = Resolver::with_config(lookup, ResolverConfig::default(), clock);
        assert!(resolve(&resolver, "a.test").is_ok());
        // Cached: answered at once, no thread, same answer (any case).
        let mut l = resolver.start("A.TEST", 80, None);
        assert!(!l.is_running());
        assert_eq!(l.try_take().unwrap().unwrap()[0].port(), 80);
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        let e = resolve(&resolver, "gone.test").unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::NotFound);
        let e = resolver
            .start("gone.test", 80, None)
            .try_take()
            .unwrap()
            .unwrap_err();
        assert_eq!(
            (e.kind(), e.to_string()),
            (io::ErrorKind::NotFound, "no such name".into())
        );
        assert_eq!(calls.load(Ordering::SeqCst), 2);
        // Just before 5 s the failure is still cached.
        secs.store(4, Ordering::SeqCst);
        assert!(!resolver.start("gone.test", 80, None).is_running());
        // At 5 s the failure is asked again; the answer is still cached.
        secs.store(5, Ordering::SeqCst);
        assert!(resolver.start("a.test", 80, None).try_take().is_some());
        assert!(resolve(&resolver, "gone.test").is_err());
        assert_eq!(calls.load(Ordering::SeqCst), 3);
        // Just before 60 s the answer is cached; at 60 s it expires too.
        secs.store(59, Ordering::SeqCst);
        assert!(!resolver.start("a.test", 80, None).is_running());
        secs.store(60, Ordering::SeqCst);
        assert!(resolver.start("a.test", 80, None).is_running());
    }

    #[test]
    fn the_cache_is_bounded() {
        let (lookup, calls) = counting("");
        let config = ResolverConfig {
            max_entries: 2,
            ..ResolverConfig::default()
        };
        let resolver = Resolver::with_config(lookup, config, fake_clock().0);
        for h in ["a.test", "b.test", "c.test"] {
            resolve(&resolver, h).unwrap();
        }
        // b and c are answered from the cache; a.test was evicted.
        assert!(!resolver.start("b.test", 80, None).is_running());
        assert!(!resolver.start("c.test", 80, None).is_running());
        assert_eq!(calls.load(Ordering::SeqCst), 3);
        assert!(resolver.start("a.test", 80, None).is_running());
    }

    /// Eight held lookups on two workers: two run, six wait in the queue,
    /// and no third thread is started; opening the gate lets them all
    /// through, in order.
    #[test]
    fn at_most_the_worker_count_of_lookups_run_at_once() {
        let gate = Arc::new(Gate::default());
        let held = gate.lookup("held");
        let lookup: LookupFn = Arc::new(move |_: &str, port: u16| held("held", port));
        let resolver = resolver_with(lookup, 2);
        let (mut poll, waker) = poll_and_waker();
        let mut lookups: Vec<_> = (0..8)
            .map(|i| resolver.start(&format!("h{i}.test"), i, Some(Arc::clone(&waker))))
            .collect();
        gate.wait_for(2, 0);
        {
            let state = resolver.inner.state.lock().unwrap();
            assert_eq!((state.running, state.queue.len()), (2, 6));
        }
        // The two running lookups are held, so the queue cannot move: no
        // more have entered.
        assert_eq!(gate.counts(), (2, 0));
        gate.open();
        for (i, l) in lookups.iter_mut().enumerate() {
            let r = wait(&mut poll, l).unwrap();
            assert_eq!(r[0].port(), i as u16);
        }
        assert_eq!(gate.counts(), (8, 8));
    }
}
