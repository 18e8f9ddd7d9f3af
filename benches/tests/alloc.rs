//! Allocation counts of `pollhttp-proto` in steady state on a reused
//! connection, measured with a counting global allocator.
//!
//! Everything runs in one `#[test]`, in sequence, and only allocations made
//! by the test's own thread while a measurement is on are counted (the
//! harness's threads cannot disturb the counts).
//!
//! Run: `cargo test -p pollhttp-benches --test alloc -- --nocapture` to see
//! the figures. With `ALLOC_BACKTRACE=1` every counted allocation also prints
//! a backtrace (to find where one comes from).
//!
//! Targets (asserted): after warm-up, 0 allocations per body event and at most
//! 1 per response head (send_request of the next request included), when the
//! consumer drops each event before the next poll, for Content-Length and
//! chunked bodies fed as a socket would through `recv_buf`/`receive_filled`.
//! When the consumer keeps the body `Bytes` alive the receive buffer cannot
//! be reclaimed, so refills allocate: the test reports how many, and asserts
//! only that it is per refill, never per event.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};

use pollhttp_benches::proto_fixtures::{
    chunked_response, content_length_response, BODY_LEN, HEAD_20, REQUEST_FIELDS,
};
use pollhttp_proto::{method, Bytes, Config, Connection, Event};

// ------------------------------------------------------------ the allocator

/// `System`, counting `alloc`, `alloc_zeroed` and `realloc` calls made by a
/// thread whose `TRACK` flag is on.
struct Counting;

static ALLOCS: AtomicU64 = AtomicU64::new(0);
static BACKTRACE: AtomicBool = AtomicBool::new(false);

thread_local! {
    /// Count this thread's allocations.
    static TRACK: Cell<bool> = const { Cell::new(false) };
    /// Inside the backtrace hook: don't count, don't recurse.
    static IN_HOOK: Cell<bool> = const { Cell::new(false) };
}

fn note(kind: &str, size: usize) {
    let tracked =
        TRACK.try_with(Cell::get).unwrap_or(false) && !IN_HOOK.try_with(Cell::get).unwrap_or(true);
    if !tracked {
        return;
    }
    ALLOCS.fetch_add(1, Relaxed);
    if BACKTRACE.load(Relaxed) {
        IN_HOOK.with(|h| h.set(true));
        let bt = std::backtrace::Backtrace::force_capture();
        eprintln!("counted {kind} of {size} bytes at:\n{bt}");
        IN_HOOK.with(|h| h.set(false));
    }
}

// The one unsafe item of this crate (see the [lints] note in Cargo.toml): a
// GlobalAlloc impl is `unsafe` by definition. Every method forwards to
// `System` with the caller's arguments unchanged, so it upholds exactly the
// contract `System` does.
#[allow(unsafe_code)]
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note("alloc", layout.size());
        // SAFETY: forwarded as is; the caller upholds GlobalAlloc::alloc's contract.
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note("alloc_zeroed", layout.size());
        // SAFETY: as above.
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note("realloc", new_size);
        // SAFETY: as above; `ptr` was allocated by `System` through this wrapper.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: as above.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Allocations counted so far (only while tracking is on).
fn allocs() -> u64 {
    ALLOCS.load(Relaxed)
}

fn track(on: bool) {
    TRACK.with(|t| t.set(on));
}

// ------------------------------------------------------------ the driver

/// Where the allocations of one response went.
#[derive(Debug, Default, Clone, Copy)]
struct Tally {
    /// From `reset` + `send_request` up to and including the poll that
    /// returned `Head` (reads in between included).
    head: u64,
    /// After `Head`, up to the `End` poll: polls returning `Body`, polls
    /// returning `None` and `recv_buf`/`receive_filled` calls.
    body: u64,
    /// The poll that returned `End`.
    end: u64,
    heads: u64,
    body_events: u64,
    /// `recv_buf` refills after the head (reads).
    body_reads: u64,
}

impl std::ops::AddAssign for Tally {
    fn add_assign(&mut self, o: Tally) {
        self.head += o.head;
        self.body += o.body;
        self.end += o.end;
        self.heads += o.heads;
        self.body_events += o.body_events;
        self.body_reads += o.body_reads;
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Feed {
    /// `recv_buf` + `receive_filled`, at most this many bytes per read.
    RecvBuf(usize),
    /// `receive(&[u8])` with slices of this many bytes.
    Receive(usize),
}

/// One request/response cycle on `conn`, counting allocations per phase.
/// `keep` holds every body `Bytes` until the response ends (a consumer that
/// keeps the data) when `Some`; otherwise each event is dropped before the
/// next poll (a consumer streaming to disk). `keep` must have room for every
/// event (pushing must not allocate).
fn cycle(
    conn: &mut Connection,
    wire: &[u8],
    feed: Feed,
    mut keep: Option<&mut Vec<Bytes>>,
) -> Tally {
    #[derive(PartialEq)]
    enum Phase {
        Head,
        Body,
    }
    let mut t = Tally::default();
    let mut phase = Phase::Head;
    let mut body_len = 0usize;
    let add = |t: &mut Tally, phase: &Phase, n: u64| match phase {
        Phase::Head => t.head += n,
        Phase::Body => t.body += n,
    };

    let a = allocs();
    if conn.is_response_complete() {
        conn.reset().unwrap();
    }
    conn.send_request(method::GET, "/", REQUEST_FIELDS).unwrap();
    let n = conn.transmit_buf().len();
    conn.advance_transmit(n);
    t.head += allocs() - a;

    let mut pos = 0;
    'outer: loop {
        assert!(pos < wire.len(), "input exhausted before End");
        let a = allocs();
        match feed {
            Feed::RecvBuf(read) => {
                let buf = conn.recv_buf();
                let n = buf.len().min(read).min(wire.len() - pos);
                assert!(n > 0);
                buf[..n].copy_from_slice(&wire[pos..pos + n]);
                conn.receive_filled(n);
                pos += n;
            }
            Feed::Receive(read) => {
                let n = read.min(wire.len() - pos);
                conn.receive(&wire[pos..pos + n]);
                pos += n;
            }
        }
        add(&mut t, &phase, allocs() - a);
        if phase == Phase::Body {
            t.body_reads += 1;
        }
        loop {
            let a = allocs();
            let ev = conn.poll_event().unwrap();
            let d = allocs() - a;
            match ev {
                None => {
                    add(&mut t, &phase, d);
                    break;
                }
                Some(Event::Head(h)) => {
                    assert_eq!(h.status(), 200);
                    t.head += d;
                    t.heads += 1;
                    phase = Phase::Body;
                }
                Some(Event::Body(b)) => {
                    t.body += d;
                    t.body_events += 1;
                    body_len += b.len();
                    if let Some(keep) = keep.as_deref_mut() {
                        assert!(keep.len() < keep.capacity(), "keep must not grow");
                        keep.push(b);
                    }
                }
                Some(Event::End) => {
                    t.end += d;
                    break 'outer;
                }
                Some(other) => panic!("unexpected {other:?}"),
            }
        }
    }
    assert_eq!(pos, wire.len());
    assert_eq!(body_len, BODY_LEN);
    t
}

const WARM_UP: usize = 3;
const MEASURED: usize = 5;

/// Warm a fresh connection up, then count allocations over `MEASURED`
/// responses (tracking on only during the measured cycles).
fn scenario(name: &str, wire: &[u8], feed: Feed, keep_bytes: bool) -> Tally {
    let mut conn = Connection::new(Config::default());
    let mut keep: Vec<Bytes> = Vec::with_capacity(2 * BODY_LEN / 16 + 16);
    for _ in 0..WARM_UP {
        cycle(&mut conn, wire, feed, keep_bytes.then_some(&mut keep));
        keep.clear();
    }
    let mut total = Tally::default();
    for _ in 0..MEASURED {
        track(true);
        let t = cycle(&mut conn, wire, feed, keep_bytes.then_some(&mut keep));
        track(false);
        keep.clear(); // dropping is not counted
        total += t;
    }
    eprintln!(
        "{name:<44} heads {:>2}: {:>3} allocs ({:.2}/head) | body events {:>6}, reads {:>4}: {:>4} allocs ({:.4}/event, {:.3}/read) | End: {}",
        total.heads,
        total.head,
        total.head as f64 / total.heads as f64,
        total.body_events,
        total.body_reads,
        total.body,
        total.body as f64 / total.body_events as f64,
        total.body as f64 / total.body_reads.max(1) as f64,
        total.end,
    );
    total
}

/// Heads only: many Content-Length: 0 responses with a 20-field head, enough
/// to wrap the field-index arena several times. Returns allocations per head.
fn heads_only(keep_heads: bool) -> f64 {
    const N: usize = 600;
    let mut conn = Connection::new(Config::default());
    let mut kept = Vec::with_capacity(N + 8);
    let run = |conn: &mut Connection, kept: &mut Vec<_>| {
        if conn.is_response_complete() {
            conn.reset().unwrap();
        }
        conn.send_request(method::GET, "/", REQUEST_FIELDS).unwrap();
        let n = conn.transmit_buf().len();
        conn.advance_transmit(n);
        let buf = conn.recv_buf();
        buf[..HEAD_20.len()].copy_from_slice(HEAD_20);
        conn.receive_filled(HEAD_20.len());
        let Some(Event::Head(h)) = conn.poll_event().unwrap() else {
            panic!("expected Head")
        };
        if keep_heads {
            kept.push(h);
        }
        assert_eq!(conn.poll_event().unwrap(), Some(Event::End));
    };
    for _ in 0..WARM_UP {
        run(&mut conn, &mut kept);
    }
    kept.clear();
    track(true);
    let a = allocs();
    for _ in 0..N {
        run(&mut conn, &mut kept);
    }
    let d = allocs() - a;
    track(false);
    let per = d as f64 / N as f64;
    eprintln!(
        "heads only, 20-field head, {N} cycles, {:<14} {d:>4} allocs ({per:.3}/head)",
        if keep_heads {
            "heads kept:"
        } else {
            "heads dropped:"
        }
    );
    per
}

#[test]
fn steady_state_allocations() {
    BACKTRACE.store(std::env::var_os("ALLOC_BACKTRACE").is_some(), Relaxed);

    // Sanity: the counter sees this thread's allocations while tracking.
    track(true);
    let a = allocs();
    let v = std::hint::black_box(Vec::<u8>::with_capacity(10));
    let d = allocs() - a;
    track(false);
    drop(v);
    assert_eq!(d, 1, "the counting allocator is not in effect");

    let cl = content_length_response();
    let c1k = chunked_response(1024);
    let c64k = chunked_response(64 * 1024);
    let cases: [(&str, &[u8]); 3] = [
        ("content-length 1 MiB", &cl),
        ("chunked 1 KiB chunks", &c1k),
        ("chunked 64 KiB chunks", &c64k),
    ];
    let feeds = [
        ("recv_buf 16 KiB reads", Feed::RecvBuf(16 * 1024)),
        ("receive 16 KiB slices", Feed::Receive(16 * 1024)),
    ];

    eprintln!("-- consumer drops each event before the next poll");
    for (feed_name, feed) in feeds {
        for (case, wire) in cases {
            let t = scenario(&format!("{case}, {feed_name}"), wire, feed, false);
            assert_eq!(t.heads, MEASURED as u64);
            assert!(
                t.head <= t.heads,
                "{case}, {feed_name}: {} allocations for {} heads (target ≤ 1 per head)",
                t.head,
                t.heads
            );
            assert_eq!(
                t.body, 0,
                "{case}, {feed_name}: {} allocations over {} body events (target 0)",
                t.body, t.body_events
            );
            assert_eq!(t.end, 0, "{case}, {feed_name}: allocation at End");
        }
    }

    eprintln!("-- consumer keeps every body Bytes until End (allocations expected)");
    for (feed_name, feed) in feeds {
        for (case, wire) in cases {
            let t = scenario(&format!("{case}, {feed_name}, kept"), wire, feed, true);
            assert!(
                t.head <= t.heads,
                "{case}, {feed_name}, kept: head allocations"
            );
            // The receive buffer cannot be reclaimed while the consumer holds
            // its bytes, so a refill allocates; but never per event.
            assert!(
                t.body <= 2 * t.body_reads,
                "{case}, {feed_name}, kept: {} allocations over {} reads",
                t.body,
                t.body_reads
            );
        }
    }

    eprintln!("-- heads only");
    let dropped = heads_only(false);
    assert!(dropped <= 1.0, "{dropped} allocations per head");
    // Kept heads hold the receive buffer, so it cannot be reclaimed: once at
    // least half a buffer was consumed, a refill allocates a new buffer and,
    // at its first split, the header that shares it (two allocations). Each
    // response starts with 8 KiB of room (recv_buf's docs), and a head
    // never fills it, so the buffers stay that size.
    let kept = heads_only(true);
    let half = (Config::default().recv_buf_size.min(8 * 1024) / 2) as f64;
    let refills = 2.0 * HEAD_20.len() as f64 / half;
    assert!(
        kept <= 1.0 + refills,
        "{kept} allocations per kept head (1 + {refills:.3} refills allowed)"
    );
}
