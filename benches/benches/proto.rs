//! Micro-benchmarks of the sans-IO core, `pollhttp-proto`, side by side with
//! raw httparse on the same inputs.
//!
//! * `proto_head/*`: one steady-state request/response cycle on a reused
//!   connection (`reset`, `send_request` of a tiny GET, `advance_transmit`,
//!   `receive(head)`, poll `Head`, poll `End`) against `httparse` parsing the
//!   same head with 100 headers (what proto allows by default; initialised
//!   and uninitialised header arrays) and with 16 (32 for the 20-field head).
//!   `proto_cycle_recv_buf` reads the head into `recv_buf` instead.
//!   `send_request` is measured alone so it can be subtracted: proto head
//!   cost = `proto_cycle` − `send_request`.
//! * `proto_body/*`: a whole ~1 MiB response (head + body) per iteration,
//!   every event drained and dropped, fed through `recv_buf`/`receive_filled`
//!   in reads of up to 64 KiB (the socket path: `recv_buf`), through a
//!   caller-owned 64 KiB buffer and `receive(&[u8])` (`copy_receive`: the
//!   same work for a caller that reads into its own buffer), and through
//!   `receive(&[u8])` straight from the wire bytes (`receive`: decoding plus
//!   proto's one copy, no socket read). `memcpy_floor` copies the same wire
//!   bytes through a 64 KiB buffer: the socket read a client cannot avoid.
//!
//! * `proto_drip/*`: a large head (16 KiB and 64 KiB, 100 fields: cookies and
//!   policies) fed whole and fed one byte per `receive` + `poll_event`, as a
//!   slowloris peer would send it. The head parser scans only new bytes for
//!   the end of the head and parses at doubling sizes, so `drip_1B` stays a
//!   constant multiple of `whole` (per-call overhead, not re-scanning); it
//!   was quadratic before.
//!
//! Run: `cargo bench -p pollhttp-benches --bench proto -- --warm-up-time 1 --measurement-time 3`.
//! On a loaded machine prefer `PROTO_RATIOS=1 cargo bench -p pollhttp-benches
//! --bench proto`: every variant timed in turn, round after round, and
//! ratios taken between each variant's min and lower quartile (see
//! [`interleaved`]).
// `criterion_group!` defines an undocumented `pub fn`.
#![allow(missing_docs)]

use std::hint::black_box;

use criterion::{criterion_group, BatchSize, Criterion, Throughput};
use pollhttp_benches::proto_fixtures::{
    chunked_response, content_length_response, BODY_LEN, HEAD_20, HEAD_9, REQUEST_FIELDS,
};
use pollhttp_proto::{method, Config, Connection, Event};

/// Largest read a simulated socket hands in at once.
const READ: usize = 64 * 1024;

/// `reset` (when a response ended), `send_request` of the tiny GET, and
/// writing out the request bytes.
fn start_request(conn: &mut Connection) {
    if conn.is_response_complete() {
        conn.reset().unwrap();
    }
    conn.send_request(method::GET, "/", REQUEST_FIELDS).unwrap();
    let n = conn.transmit_buf().len();
    conn.advance_transmit(n);
}

/// One full cycle for a Content-Length: 0 response head: request out, head
/// in (through `receive(&[u8])`), `Head` and `End` polled and dropped.
fn head_cycle(conn: &mut Connection, head: &[u8]) {
    start_request(conn);
    conn.receive(head);
    poll_head_end(conn);
}

/// The same cycle with the head read into `recv_buf` (the socket path).
fn head_cycle_recv_buf(conn: &mut Connection, head: &[u8]) {
    start_request(conn);
    let buf = conn.recv_buf();
    buf[..head.len()].copy_from_slice(head);
    conn.receive_filled(head.len());
    poll_head_end(conn);
}

fn poll_head_end(conn: &mut Connection) {
    match conn.poll_event() {
        Ok(Some(Event::Head(h))) => {
            black_box(h.status());
            black_box(h.fields().len());
        }
        other => panic!("expected Head, got {other:?}"),
    }
    match conn.poll_event() {
        Ok(Some(Event::End)) => {}
        other => panic!("expected End, got {other:?}"),
    }
}

/// A connection that has completed a few cycles with `head` (buffers grown,
/// arena allocated) and is waiting for `reset`.
fn warmed(head: &[u8]) -> Connection {
    let mut conn = Connection::new(Config::default());
    for _ in 0..4 {
        head_cycle(&mut conn, head);
    }
    conn
}

/// A response head of exactly `len` bytes: the status line, 98 cookie and
/// policy fields, `Content-Length: 0` (100 fields, the default limit).
fn large_head(len: usize) -> Vec<u8> {
    let start = b"HTTP/1.1 200 OK\r\n";
    let end = b"Content-Length: 0\r\n\r\n";
    let fields = 98;
    let mut head = start.to_vec();
    let fixed: usize = (0..fields)
        .map(|i| format!("Set-Cookie: c{i:02}=; Path=/; Secure\r\n").len())
        .sum();
    let room = len - start.len() - end.len() - fixed;
    for i in 0..fields {
        let n = room / fields + usize::from(i < room % fields);
        let value: String = (0..n).map(|k| (b'a' + (k % 26) as u8) as char).collect();
        head.extend_from_slice(
            format!("Set-Cookie: c{i:02}={value}; Path=/; Secure\r\n").as_bytes(),
        );
    }
    head.extend_from_slice(end);
    assert_eq!(head.len(), len);
    head
}

/// The head cycle with the head handed in one byte per `receive`, polling
/// after each byte.
fn drip_cycle(conn: &mut Connection, head: &[u8]) {
    start_request(conn);
    let (last, body) = head.split_last().unwrap();
    for byte in body.chunks(1) {
        conn.receive(byte);
        assert!(matches!(conn.poll_event(), Ok(None)));
    }
    conn.receive(std::slice::from_ref(last));
    poll_head_end(conn);
}

fn drips(c: &mut Criterion) {
    let mut g = c.benchmark_group("proto_drip");
    for (name, len) in [("16KiB", 16 * 1024), ("64KiB", 64 * 1024)] {
        let head = large_head(len);
        g.throughput(Throughput::Bytes(len as u64));
        g.bench_function(format!("{name}/whole"), |b| {
            let mut conn = warmed(&head);
            b.iter(|| head_cycle(&mut conn, black_box(&head)));
        });
        g.bench_function(format!("{name}/drip_1B"), |b| {
            let mut conn = warmed(&head);
            b.iter(|| drip_cycle(&mut conn, black_box(&head)));
        });
    }
    g.finish();
}

fn raw_parse<const N: usize>(head: &[u8]) {
    let mut headers = [httparse::EMPTY_HEADER; N];
    let mut resp = httparse::Response::new(&mut headers);
    let status = resp.parse(head).unwrap();
    assert!(status.is_complete());
    black_box(resp.code);
    black_box(resp.headers.len());
}

fn raw_parse_uninit<const N: usize>(head: &[u8]) {
    let mut headers = [const { std::mem::MaybeUninit::<httparse::Header<'_>>::uninit() }; N];
    let mut resp = httparse::Response::new(&mut []);
    let status = httparse::ParserConfig::default()
        .parse_response_with_uninit_headers(&mut resp, head, &mut headers)
        .unwrap();
    assert!(status.is_complete());
    black_box(resp.code);
    black_box(resp.headers.len());
}

fn heads(c: &mut Criterion) {
    let mut g = c.benchmark_group("proto_head");
    // The small-array baseline: 16 headers, or 32 where 16 cannot hold the
    // head (httparse fails with TooManyHeaders).
    type Raw = fn(&[u8]);
    let cases: [(&str, &[u8], &str, Raw); 2] = [
        ("9_fields_303B", HEAD_9, "raw_httparse_16", raw_parse::<16>),
        (
            "20_fields_790B",
            HEAD_20,
            "raw_httparse_32",
            raw_parse::<32>,
        ),
    ];
    for (name, head, small_name, small) in cases {
        // Same inputs side by side; `black_box` on the input so nothing is
        // constant-folded.
        g.bench_function(format!("{name}/proto_cycle"), |b| {
            let mut conn = warmed(head);
            b.iter(|| head_cycle(&mut conn, black_box(head)));
        });
        g.bench_function(format!("{name}/proto_cycle_recv_buf"), |b| {
            let mut conn = warmed(head);
            b.iter(|| head_cycle_recv_buf(&mut conn, black_box(head)));
        });
        g.bench_function(format!("{name}/raw_httparse_100"), |b| {
            b.iter(|| raw_parse::<100>(black_box(head)));
        });
        g.bench_function(format!("{name}/raw_httparse_100_uninit"), |b| {
            b.iter(|| raw_parse_uninit::<100>(black_box(head)));
        });
        g.bench_function(format!("{name}/{small_name}"), |b| {
            b.iter(|| small(black_box(head)));
        });
    }
    // The request side of every cycle, to subtract: reset + send_request +
    // advance_transmit on connections warmed up and left at `End` (setup,
    // untimed, in batches of 256 connections).
    g.bench_function("send_request", |b| {
        b.iter_batched_ref(
            || warmed(HEAD_9),
            |conn| {
                start_request(conn);
            },
            BatchSize::NumIterations(256),
        );
    });
    // The fixed cost of a cycle: the smallest valid response head.
    g.bench_function("min_head_27B/proto_cycle", |b| {
        const MIN: &[u8] = b"HTTP/1.1 204 No Content\r\n\r\n";
        let mut conn = warmed(MIN);
        b.iter(|| head_cycle(&mut conn, black_box(MIN)));
    });
    g.finish();
}

/// Drain every event; returns the body bytes seen and whether `End` came.
fn drain(conn: &mut Connection, body: &mut usize) -> bool {
    while let Some(ev) = conn.poll_event().unwrap() {
        match ev {
            Event::Body(b) => *body += b.len(),
            Event::End => return true,
            _ => {}
        }
    }
    false
}

/// One whole response read through `recv_buf`/`receive_filled`, in reads of
/// up to [`READ`] bytes (as much of the lent buffer as the socket fills).
fn body_via_recv_buf(conn: &mut Connection, wire: &[u8]) {
    start_request(conn);
    let (mut pos, mut body) = (0, 0);
    loop {
        let buf = conn.recv_buf();
        let n = buf.len().min(READ).min(wire.len() - pos);
        assert!(n > 0, "input exhausted before End");
        buf[..n].copy_from_slice(&wire[pos..pos + n]);
        conn.receive_filled(n);
        pos += n;
        if drain(conn, &mut body) {
            break;
        }
    }
    assert_eq!((pos, body), (wire.len(), BODY_LEN));
}

/// The same through `receive(&[u8])`, in slices of [`READ`] bytes. With
/// `socket` set, each slice is first copied into a caller-owned 64 KiB buffer
/// (the socket read a caller not using `recv_buf` does) and handed in from
/// there; without, it is handed in straight from the wire bytes.
fn body_via_receive(conn: &mut Connection, wire: &[u8], socket: Option<&mut [u8]>) {
    start_request(conn);
    let mut body = 0;
    let mut ended = false;
    let mut socket = socket;
    for piece in wire.chunks(READ) {
        assert!(!ended);
        match socket.as_deref_mut() {
            Some(buf) => {
                buf[..piece.len()].copy_from_slice(piece);
                conn.receive(black_box(&buf[..piece.len()]));
            }
            None => conn.receive(piece),
        }
        ended = drain(conn, &mut body);
    }
    assert!(ended);
    assert_eq!(body, BODY_LEN);
}

fn bodies(c: &mut Criterion) {
    let mut g = c.benchmark_group("proto_body");
    g.throughput(Throughput::Bytes(BODY_LEN as u64));
    let cases = [
        ("content_length_1MiB", content_length_response()),
        ("chunked_16B", chunked_response(16)),
        ("chunked_1KiB", chunked_response(1024)),
        ("chunked_64KiB", chunked_response(64 * 1024)),
    ];
    for (name, wire) in &cases {
        let wire = wire.as_slice();
        g.bench_function(format!("{name}/recv_buf"), |b| {
            let mut conn = Connection::new(Config::default());
            body_via_recv_buf(&mut conn, wire);
            b.iter(|| body_via_recv_buf(&mut conn, black_box(wire)));
        });
        g.bench_function(format!("{name}/copy_receive"), |b| {
            let mut conn = Connection::new(Config::default());
            let mut buf = vec![0u8; READ];
            body_via_receive(&mut conn, wire, Some(&mut buf));
            b.iter(|| body_via_receive(&mut conn, black_box(wire), Some(&mut buf)));
        });
        g.bench_function(format!("{name}/receive"), |b| {
            let mut conn = Connection::new(Config::default());
            body_via_receive(&mut conn, wire, None);
            b.iter(|| body_via_receive(&mut conn, black_box(wire), None));
        });
    }
    // The floor: the wire bytes of the largest case copied through a 64 KiB
    // buffer, as the socket read does.
    let wire = &cases[0].1;
    g.bench_function("memcpy_floor_1MiB", |b| {
        let mut buf = vec![0u8; READ];
        b.iter(|| {
            for piece in black_box(wire.as_slice()).chunks(READ) {
                buf[..piece.len()].copy_from_slice(piece);
                black_box(&mut buf);
            }
        });
    });
    g.finish();
}

// ------------------------------------------------------------ interleaved

/// Side-by-side figures that survive a noisy machine: with `PROTO_RATIOS=1`
/// set, instead of the criterion run, every variant of a group is timed in
/// turn, round after round (each turn ≥ 0.5 ms of iterations), so load
/// changes hit all of them alike. Interference only ever adds time, so each
/// variant is summarised by its minimum and lower quartile (p25) over the
/// rounds, and ratios are taken between those.
mod interleaved {
    use std::time::{Duration, Instant};

    /// A variant: runs `n` iterations and returns the time they took (setup
    /// outside the returned time is allowed).
    pub type Run<'a> = Box<dyn FnMut(u64) -> Duration + 'a>;

    pub const ROUNDS: usize = 150;

    pub fn timed(mut f: impl FnMut()) -> impl FnMut(u64) -> Duration {
        move |n| {
            let t = Instant::now();
            for _ in 0..n {
                f();
            }
            t.elapsed()
        }
    }

    /// Per variant: (min, p25) in ns per iteration.
    pub fn measure(group: &mut [(&str, Run<'_>)]) -> Vec<(f64, f64)> {
        let mut iters = Vec::new();
        for (_, run) in group.iter_mut() {
            run(1); // warm
            let mut n = 1u64;
            while run(n) < Duration::from_micros(500) {
                n *= 2;
            }
            iters.push(n);
        }
        let mut out = vec![Vec::with_capacity(ROUNDS); group.len()];
        for _ in 0..ROUNDS {
            for (i, (_, run)) in group.iter_mut().enumerate() {
                out[i].push(run(iters[i]).as_nanos() as f64 / iters[i] as f64);
            }
        }
        out.into_iter()
            .map(|mut v| {
                v.sort_by(f64::total_cmp);
                (v[0], v[v.len() / 4])
            })
            .collect()
    }
}

fn ratios() {
    use interleaved::{measure, timed, Run, ROUNDS};

    println!("interleaved, {ROUNDS} rounds; ns per iteration as min / p25; ratios as min-based (p25-based)");
    for (name, head) in [("9_fields_303B", HEAD_9), ("20_fields_790B", HEAD_20)] {
        let mut a = warmed(head);
        let mut b = warmed(head);
        // send_request alone: 256 connections left at End (untimed), one
        // request each (timed), then their responses completed (untimed).
        let mut pool: Vec<Connection> = (0..256).map(|_| warmed(head)).collect();
        let send: Run<'_> = Box::new(move |n| {
            let mut total = std::time::Duration::ZERO;
            let mut left = n;
            while left > 0 {
                let k = left.min(pool.len() as u64) as usize;
                let t = std::time::Instant::now();
                for conn in &mut pool[..k] {
                    start_request(conn);
                }
                total += t.elapsed();
                for conn in &mut pool[..k] {
                    conn.receive(head);
                    poll_head_end(conn);
                }
                left -= k as u64;
            }
            total
        });
        let (small_name, small): (&str, fn(&[u8])) = if head == HEAD_9 {
            ("raw_httparse_16", raw_parse::<16>)
        } else {
            ("raw_httparse_32", raw_parse::<32>)
        };
        let mut group: Vec<(&str, Run<'_>)> = vec![
            (
                "proto_cycle",
                Box::new(timed(|| head_cycle(&mut a, black_box(head)))),
            ),
            (
                "proto_cycle_recv_buf",
                Box::new(timed(|| head_cycle_recv_buf(&mut b, black_box(head)))),
            ),
            ("send_request", send),
            (
                "raw_httparse_100",
                Box::new(timed(|| raw_parse::<100>(black_box(head)))),
            ),
            (
                "raw_httparse_100_uninit",
                Box::new(timed(|| raw_parse_uninit::<100>(black_box(head)))),
            ),
            (small_name, Box::new(timed(|| small(black_box(head))))),
        ];
        let r = measure(&mut group);
        println!("{name}");
        for (i, (v, _)) in group.iter().enumerate() {
            println!("  {v:<26} {:>8.1} / {:>8.1}", r[i].0, r[i].1);
        }
        let (cyc, cyc_rb, send) = (r[0], r[1], r[2]);
        for (i, label) in [(3, "raw_100"), (4, "raw_100_uninit"), (5, "raw_small")] {
            let raw = r[i];
            println!(
                "  {label:<15} / proto_cycle {:.3} ({:.3})   / (proto_cycle − send_request) {:.3} ({:.3})   / (proto_cycle_recv_buf − send_request) {:.3} ({:.3})",
                raw.0 / cyc.0,
                raw.1 / cyc.1,
                raw.0 / (cyc.0 - send.0),
                raw.1 / (cyc.1 - send.1),
                raw.0 / (cyc_rb.0 - send.0),
                raw.1 / (cyc_rb.1 - send.1),
            );
        }
    }

    let cases = [
        ("content_length_1MiB", content_length_response()),
        ("chunked_16B", chunked_response(16)),
        ("chunked_1KiB", chunked_response(1024)),
        ("chunked_64KiB", chunked_response(64 * 1024)),
    ];
    let floor_wire = &cases[0].1;
    for (name, wire) in &cases {
        let wire = wire.as_slice();
        let (mut c1, mut c2, mut c3) = (
            Connection::new(Config::default()),
            Connection::new(Config::default()),
            Connection::new(Config::default()),
        );
        let (mut buf, mut fbuf) = (vec![0u8; READ], vec![0u8; READ]);
        let mut group: Vec<(&str, Run<'_>)> = vec![
            (
                "recv_buf",
                Box::new(timed(|| body_via_recv_buf(&mut c1, black_box(wire)))),
            ),
            (
                "copy_receive",
                Box::new(timed(|| {
                    body_via_receive(&mut c2, black_box(wire), Some(&mut buf))
                })),
            ),
            (
                "receive",
                Box::new(timed(|| body_via_receive(&mut c3, black_box(wire), None))),
            ),
            (
                "memcpy_floor_1MiB",
                Box::new(timed(|| {
                    for piece in black_box(floor_wire.as_slice()).chunks(READ) {
                        fbuf[..piece.len()].copy_from_slice(piece);
                        black_box(&mut fbuf);
                    }
                })),
            ),
        ];
        let r = measure(&mut group);
        println!(
            "{name} (wire {} B, body {BODY_LEN} B; GB/s of body)",
            wire.len()
        );
        let gbs = |ns: f64| BODY_LEN as f64 / ns;
        for (i, (v, _)) in group.iter().enumerate() {
            println!(
                "  {v:<26} {:>10.0} / {:>10.0} ns   {:>6.2} / {:>6.2} GB/s",
                r[i].0,
                r[i].1,
                gbs(r[i].0),
                gbs(r[i].1)
            );
        }
        let q = |a: usize, b: usize| format!("{:.3} ({:.3})", r[a].0 / r[b].0, r[a].1 / r[b].1);
        println!(
            "  time ratios: recv_buf/copy_receive {}   recv_buf/receive {}   recv_buf/memcpy_floor {}   receive/memcpy_floor {}",
            q(0, 1),
            q(0, 2),
            q(0, 3),
            q(2, 3)
        );
    }
}

criterion_group!(benches, heads, bodies, drips);

fn main() {
    if std::env::var_os("PROTO_RATIOS").is_some() {
        // `cargo bench` passes `--bench`; the interleaved mode ignores args.
        ratios();
        return;
    }
    benches();
    Criterion::default().configure_from_args().final_summary();
}
