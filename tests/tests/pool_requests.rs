//! RequestPool against real nginx servers and scripted ones: many requests
//! under one poll, per-origin limits and reuse, cancel, stalls, stale
//! keep-alive, the budget, and the fake clock.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use pollhttp::{
    PoolSettings, RequestBody, RequestId, RequestPool, RequestResult, Settings, TlsOptions,
};
use pollhttp_tests::nginx::{Nginx, HELLO_BODY, ONE_K_LEN, ONE_M_LEN};
use pollhttp_tests::proxy::{Proxy, ProxyOptions};
use pollhttp_tests::script::{ok_response, ScriptServer, Step};
use pollhttp_tests::{pseudo_random_bytes, sha256_hex};

/// Poll (and wait between polls) until `n` completions arrived; bounded in
/// polls and in time.
fn run_until(
    pool: &mut RequestPool,
    n: usize,
    max_polls: usize,
) -> (Vec<(RequestId, pollhttp::Completed)>, usize) {
    let start = Instant::now();
    let mut out = Vec::new();
    let mut polls = 0;
    while out.len() < n {
        assert!(
            polls < max_polls,
            "{polls} polls, {} of {n} done",
            out.len()
        );
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "not done in 60 s: {} of {n}",
            out.len()
        );
        pool.wait(Some(Duration::from_millis(100)));
        pool.poll();
        polls += 1;
        out.extend(pool.drain_completed());
    }
    (out, polls)
}

/// Our requests in an access log (not the harness's readiness probes).
fn our_lines(log: &str) -> Vec<&str> {
    log.lines()
        .filter(|l| !l.contains("/.pollhttp-instance"))
        .collect()
}

fn connections_in(log: &str) -> HashSet<String> {
    our_lines(log)
        .into_iter()
        .filter_map(|l| l.split(' ').next())
        .map(str::to_string)
        .collect()
}

#[test]
fn five_hundred_requests_over_four_origins_share_six_connections_each() {
    let servers: Vec<Nginx> = (0..4).map(|_| Nginx::start()).collect();
    let mut pool = RequestPool::new().unwrap();
    let files = [
        ("/hello.txt", sha256_hex(HELLO_BODY.as_bytes())),
        ("/1k.bin", sha256_hex(&pseudo_random_bytes(ONE_K_LEN))),
        ("/1m.bin", sha256_hex(&pseudo_random_bytes(ONE_M_LEN))),
    ];
    let mut expected = HashMap::new();
    for i in 0..500 {
        let server = &servers[i % 4];
        // Mostly small files, a 1 MiB one every 25th.
        let (path, sha) = if i % 25 == 0 {
            &files[2]
        } else {
            &files[i % 2]
        };
        let id = pool.get(server.url(path), &Settings::default()).unwrap();
        expected.insert(id, sha.clone());
    }
    assert_eq!(pool.in_flight(), 500);
    let (done, _) = run_until(&mut pool, 500, 100_000);
    for (id, c) in &done {
        assert_eq!(c.result, RequestResult::Success, "{id}: {}", c.reason);
        assert_eq!(sha256_hex(&c.body), expected[id], "{id}");
    }
    let ids: HashSet<_> = done.iter().map(|(id, _)| *id).collect();
    assert_eq!(ids.len(), 500, "each request completes once");
    assert_eq!(pool.in_flight(), 0);
    for server in &servers {
        let log = server.wait_access_log(125, Duration::from_secs(10));
        assert_eq!(our_lines(&log).len(), 125, "{log}");
        let conns = connections_in(&log);
        assert!(
            (1..=6).contains(&conns.len()),
            "{} connections to one origin:\n{log}",
            conns.len()
        );
    }
    assert!(pool.connections() <= 24);
    assert!(
        pool.connections_opened() <= 24,
        "{}",
        pool.connections_opened()
    );
}

#[test]
fn cancelled_requests_complete_nothing_and_the_others_are_intact() {
    let nginx = Nginx::start();
    let mut pool = RequestPool::new().unwrap();
    let ids: Vec<RequestId> = (0..50)
        .map(|i| {
            // The slow ones (64 KiB/s) are still running when cancelled.
            let path = if i % 5 == 0 {
                "/slow/1m.bin"
            } else {
                "/1k.bin"
            };
            pool.get(nginx.url(path), &Settings::default()).unwrap()
        })
        .collect();
    for _ in 0..5 {
        pool.poll();
    }
    let cancelled: HashSet<RequestId> = ids.iter().copied().step_by(5).collect();
    for id in &cancelled {
        assert!(pool.cancel(*id), "{id} was in flight");
        assert!(!pool.cancel(*id), "a second cancel finds nothing");
        assert_eq!(pool.progress(*id), None);
    }
    let (done, _) = run_until(&mut pool, 40, 100_000);
    let want = pseudo_random_bytes(ONE_K_LEN);
    for (id, c) in &done {
        assert!(!cancelled.contains(id), "{id} completed after cancel");
        assert_eq!(c.result, RequestResult::Success, "{}", c.reason);
        assert_eq!(&c.body[..], &want[..]);
    }
    // Nothing more comes, for any id.
    for _ in 0..20 {
        pool.poll();
        assert!(pool.poll_completed().is_none());
    }
    assert_eq!(pool.in_flight(), 0);
}

#[test]
fn a_stalled_origin_does_not_delay_the_others() {
    let nginx = Nginx::start();
    // Head and half the body, then nothing for 20 s.
    let stalled = ScriptServer::start_with_timeout(
        vec![vec![
            Step::ReadRequest,
            Step::write("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nhalf"),
            Step::Sleep(Duration::from_secs(20)),
        ]],
        Duration::from_secs(30),
    );
    let run = |with_stall: bool| {
        let mut pool = RequestPool::new().unwrap();
        let stall_id =
            with_stall.then(|| pool.get(stalled.base_url(), &Settings::default()).unwrap());
        for _ in 0..20 {
            pool.get(nginx.url("/1k.bin"), &Settings::default())
                .unwrap();
        }
        let (done, polls) = run_until(&mut pool, 20, 10_000);
        assert!(done
            .iter()
            .all(|(id, c)| Some(*id) != stall_id && c.result == RequestResult::Success));
        if let Some(id) = stall_id {
            let p = pool.progress(id).expect("still in flight");
            // Its half body may or may not have arrived by now.
            assert!(
                matches!(
                    p.status,
                    pollhttp::Status::Requesting | pollhttp::Status::Body
                ) && p.downloaded <= 4,
                "{p:?}"
            );
        }
        polls
    };
    // The poll count of 20 small downloads varies with wakeups (9 to 22
    // seen here alone); the stalled origin must not add to it beyond that.
    let alone = run(false);
    let beside = run(true);
    assert!(
        beside <= 2 * alone + 20,
        "with a stalled origin: {beside} polls, without: {alone}"
    );
}

#[test]
fn a_stale_keep_alive_connection_is_replaced_without_an_error() {
    // Connection 1 answers, then the server closes it while idle.
    let server = ScriptServer::start(vec![
        vec![
            Step::ReadRequest,
            Step::Write(ok_response("first")),
            Step::Sleep(Duration::from_millis(200)),
            Step::Close,
        ],
        vec![
            Step::ReadRequest,
            Step::Write(ok_response("second")),
            Step::ReadRequest,
            Step::Write(ok_response("third")),
        ],
    ]);
    let mut pool = RequestPool::new().unwrap();
    pool.get(server.base_url(), &Settings::default()).unwrap();
    let (done, _) = run_until(&mut pool, 1, 1000);
    assert_eq!(&done[0].1.body[..], b"first");
    assert_eq!(pool.idle_connections(), 1);
    std::thread::sleep(Duration::from_millis(500));
    pool.get(server.base_url(), &Settings::default()).unwrap();
    let (done, _) = run_until(&mut pool, 1, 1000);
    assert_eq!(
        (done[0].1.result, &done[0].1.body[..]),
        (RequestResult::Success, &b"second"[..]),
        "{}",
        done[0].1.reason
    );
    // A POST on the connection that is still good reuses it.
    pool.request(
        server.base_url(),
        &[],
        "POST",
        RequestBody::from("data"),
        &Settings::default(),
    )
    .unwrap();
    let (done, _) = run_until(&mut pool, 1, 1000);
    assert_eq!(
        done[0].1.result,
        RequestResult::Success,
        "{}",
        done[0].1.reason
    );
    assert_eq!(server.connections_accepted(), 2);
    let posted = String::from_utf8_lossy(&server.requests()[2]).into_owned();
    assert!(posted.starts_with("POST / HTTP/1.1\r\n") && posted.ends_with("data"));
}

#[test]
fn wait_sleeps_while_fifty_requests_drip() {
    // Fifty connections, each dripping a 10-byte body at 20 ms a byte.
    let body = "0123456789";
    let head = format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n", body.len());
    let scripts = (0..50)
        .map(|_| {
            vec![
                Step::ReadRequest,
                Step::write(&head),
                Step::write_slowly(body, Duration::from_millis(20)),
            ]
        })
        .collect();
    let server = ScriptServer::start(scripts);
    let mut pool = RequestPool::with_settings(PoolSettings {
        max_connections_per_origin: 50,
        ..PoolSettings::default()
    })
    .unwrap();
    for _ in 0..50 {
        pool.get(server.base_url(), &Settings::default()).unwrap();
    }
    let mut polls = 0;
    let mut done = 0;
    let start = Instant::now();
    while done < 50 {
        assert!(start.elapsed() < Duration::from_secs(30));
        pool.wait(None);
        pool.poll();
        polls += 1;
        done += pool.drain_completed().count();
    }
    // Each poll follows at least one event: 50 connects, 50 heads, 500 body
    // bytes (often coalesced), nothing like a spin.
    assert!(polls <= 50 * 12 + 50, "{polls} polls");
}

#[test]
fn the_byte_budget_bounds_every_poll() {
    let nginx = Nginx::start();
    let budget = 256 * 1024;
    let mut pool = RequestPool::with_settings(PoolSettings {
        poll_budget: pollhttp::PollBudget::new(budget, Some(Duration::from_secs(1))),
        ..PoolSettings::default()
    })
    .unwrap();
    for _ in 0..8 {
        pool.get(nginx.url("/1m.bin"), &Settings::default())
            .unwrap();
    }
    let mut done = 0;
    let mut polls = 0;
    let start = Instant::now();
    while done < 8 {
        assert!(start.elapsed() < Duration::from_secs(30) && polls < 100_000);
        pool.wait(Some(Duration::from_millis(100)));
        let before = pool.bytes_read();
        pool.poll();
        polls += 1;
        assert!(pool.bytes_read() - before <= budget as u64);
        for (_, c) in pool.drain_completed() {
            assert_eq!(c.body.len(), ONE_M_LEN);
            done += 1;
        }
    }
    assert!(polls >= 8 * ONE_M_LEN / budget, "{polls}");
}

/// A clock that moves only when told to, plus `tick` per reading.
fn fake_clock(tick: Duration) -> (pollhttp::Clock, Arc<AtomicU64>) {
    let base = Instant::now();
    let nanos = Arc::new(AtomicU64::new(0));
    let n = Arc::clone(&nanos);
    let clock: pollhttp::Clock = Arc::new(move || {
        let t = n.fetch_add(tick.as_nanos() as u64, Ordering::SeqCst);
        base + Duration::from_nanos(t)
    });
    (clock, nanos)
}

#[test]
fn the_time_budget_stops_a_poll_after_one_turn_past_it() {
    let nginx = Nginx::start();
    // Every clock reading moves time by 0.6 ms: with a 1 ms budget a poll
    // gets two turns at most (the check runs before each turn).
    let (clock, _) = fake_clock(Duration::from_micros(600));
    let mut pool = RequestPool::with_clock(
        PoolSettings {
            poll_budget: pollhttp::PollBudget::new(usize::MAX, Some(Duration::from_millis(1))),
            ..PoolSettings::default()
        },
        clock,
    )
    .unwrap();
    for _ in 0..8 {
        pool.get(nginx.url("/1m.bin"), &Settings::default())
            .unwrap();
    }
    let mut done = 0;
    let mut polls = 0;
    while done < 8 {
        assert!(polls < 100_000);
        pool.wait(Some(Duration::from_millis(100)));
        let before = pool.bytes_read();
        pool.poll();
        polls += 1;
        // A turn not measured yet reads at most 16 KiB, a measured one what
        // its cost fits in the time left (here the 4 KiB floor), and the
        // budget check before the third turn stops the poll.
        assert!(pool.bytes_read() - before <= 2 * 16 * 1024);
        done += pool.drain_completed().count();
    }
}

#[test]
fn limits_queue_requests_first_in_first_out() {
    // Two origins, one connection in all: the requests take turns in the
    // order they were made, whichever origin they are for (the idle
    // connection of one origin is closed to make room for the other).
    // Requests 0 1 [2] 3 4 [5] (b in brackets): a serves two on each of
    // its two connections, b one on each of its two; the client then closes
    // the connection (to make room, or when the pool drops).
    let answers = |tag: &str, per_conn: usize| {
        let conn = |c: usize| {
            let mut steps = Vec::new();
            for k in 0..per_conn {
                steps.push(Step::ReadRequest);
                steps.push(Step::Write(ok_response(format!("{tag}{c}{k}"))));
            }
            steps.push(Step::ReadToEof);
            steps
        };
        vec![conn(0), conn(1)]
    };
    let a = ScriptServer::start(answers("a", 2));
    let b = ScriptServer::start(answers("b", 1));
    let (clock, _) = fake_clock(Duration::ZERO);
    let mut pool = RequestPool::with_clock(
        PoolSettings {
            max_connections: 1,
            ..PoolSettings::default()
        },
        clock,
    )
    .unwrap();
    let ids: Vec<RequestId> = (0..6)
        .map(|i| {
            let server = if i % 3 == 2 { &b } else { &a };
            pool.get(format!("{}/{i}", server.base_url()), &Settings::default())
                .unwrap()
        })
        .collect();
    let (done, _) = run_until(&mut pool, 6, 10_000);
    assert!(
        done.iter().all(|(_, c)| c.result == RequestResult::Success),
        "{:?}",
        done.iter().map(|(_, c)| &c.reason).collect::<Vec<_>>()
    );
    let order: Vec<RequestId> = done.iter().map(|(id, _)| *id).collect();
    assert_eq!(order, ids, "completed in the order made");
    assert!(pool.connections() <= 1);
    // a: /0 /1 on one connection, then b, then a again on a new one...
    let bodies: Vec<&[u8]> = done.iter().map(|(_, c)| &c.body[..]).collect();
    assert_eq!(
        bodies,
        [&b"a00"[..], b"a01", b"b00", b"a10", b"a11", b"b10"],
        "which connection answered each"
    );
    assert_eq!((a.connections_accepted(), b.connections_accepted()), (2, 2));
}

#[test]
fn deadlines_and_idle_age_follow_the_fake_clock() {
    let server = ScriptServer::start(vec![
        // Never answers.
        vec![Step::ReadRequest, Step::Sleep(Duration::from_secs(5))],
        vec![
            Step::ReadRequest,
            Step::Write(ok_response("kept")),
            Step::Sleep(Duration::from_secs(5)),
        ],
    ]);
    let (clock, now) = fake_clock(Duration::ZERO);
    let mut pool = RequestPool::with_clock(PoolSettings::default(), clock).unwrap();
    let settings = Settings {
        timeouts: pollhttp::Timeouts {
            total: Some(Duration::from_secs(100)),
            ..Default::default()
        },
        ..Settings::default()
    };
    let id = pool.get(server.base_url(), &settings).unwrap();
    for _ in 0..20 {
        pool.poll();
        assert!(pool.poll_completed().is_none());
        std::thread::sleep(Duration::from_millis(5));
    }
    // 100 s pass in no time.
    assert_eq!(pool.next_timeout(), Some(Duration::from_secs(100)));
    now.fetch_add(100_000_000_000, Ordering::SeqCst);
    pool.poll();
    let (got, c) = pool.poll_completed().expect("timed out");
    assert_eq!((got, c.result), (id, RequestResult::Timeout));
    assert!(matches!(
        c.failure,
        Some(pollhttp::RequestFailure::Timeout(t)) if t == Duration::from_secs(100)
    ));
    // A kept connection closes at its idle age.
    pool.get(server.base_url(), &Settings::default()).unwrap();
    let (done, _) = run_until(&mut pool, 1, 1000);
    assert_eq!(&done[0].1.body[..], b"kept");
    assert_eq!(pool.idle_connections(), 1);
    assert_eq!(pool.next_timeout(), Some(Duration::from_secs(60)));
    now.fetch_add(59_000_000_000, Ordering::SeqCst);
    pool.poll();
    assert_eq!(pool.idle_connections(), 1);
    now.fetch_add(1_000_000_000, Ordering::SeqCst);
    pool.poll();
    assert_eq!((pool.idle_connections(), pool.connections()), (0, 0));
}

#[test]
fn a_rate_limited_download_leaves_room_and_does_not_spin() {
    let nginx = Nginx::start();
    let mut pool = RequestPool::new().unwrap();
    let slow = Settings {
        body: pollhttp::BodySettings {
            max_recv_speed: Some(1 << 20), // 1 MiB/s
            ..Default::default()
        },
        ..Settings::default()
    };
    let start = Instant::now();
    let background = pool.get(nginx.url("/1m.bin"), &slow).unwrap();
    let urgent = pool
        .get(nginx.url("/1m.bin"), &Settings::default())
        .unwrap();
    let (done, polls) = run_until(&mut pool, 2, 2_000);
    assert_eq!(done[0].0, urgent, "the unlimited one finishes first");
    assert_eq!(done[1].0, background);
    for (_, c) in &done {
        assert_eq!(
            (c.result, c.body.len()),
            (RequestResult::Success, ONE_M_LEN)
        );
    }
    // 1 MiB less a 100 ms burst at 1 MiB/s: at least about 0.9 s (a lower
    // bound: a slow machine only makes it longer).
    assert!(
        start.elapsed() >= Duration::from_millis(800),
        "{:?}",
        start.elapsed()
    );
    // The paused request sleeps on a timer: a few polls per 100 ms read.
    assert!(polls < 400, "{polls} polls");
}

#[test]
fn happy_eyeballs_connects_after_the_attempt_delay_not_the_timeout() {
    // A listener whose accept queue is full drops further SYNs: a connect
    // to it hangs, as to a dead address.
    let sock = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    sock.bind(
        &"127.0.0.1:0"
            .parse::<std::net::SocketAddr>()
            .unwrap()
            .into(),
    )
    .unwrap();
    sock.listen(0).unwrap();
    let dead = sock.local_addr().unwrap().as_socket().unwrap();
    let _fill: Vec<_> = (0..4)
        .filter_map(|_| {
            std::net::TcpStream::connect_timeout(&dead, Duration::from_millis(200)).ok()
        })
        .collect();
    let server = ScriptServer::start(vec![vec![
        Step::ReadRequest,
        Step::Write(ok_response("up")),
    ]]);
    let good = server.addr();
    // Time is the test's: nothing but the clock moving starts the second
    // attempt, and the 20 s connect timeout never comes.
    let (clock, now) = fake_clock(Duration::ZERO);
    let mut pool = RequestPool::with_clock(PoolSettings::default(), clock).unwrap();
    let lookups = Arc::new(AtomicU64::new(0));
    let counted = Arc::clone(&lookups);
    pool.set_lookup(Arc::new(move |_: &str, _: u16| {
        counted.fetch_add(1, Ordering::SeqCst);
        Ok(vec![dead, good])
    }));
    let settings = Settings {
        timeouts: pollhttp::Timeouts {
            attempt_delay: Duration::from_millis(300),
            connect: Duration::from_secs(20),
            ..Default::default()
        },
        ..Settings::default()
    };
    pool.get("http://dual.test/", &settings).unwrap();
    // The name is answered and the first (dead) address tried; 20 more
    // rounds at 299 ms of the delay start nothing else.
    let mut rounds = 0;
    while lookups.load(Ordering::SeqCst) == 0 {
        rounds += 1;
        assert!(rounds < 500, "no lookup");
        pool.wait(Some(Duration::from_millis(10)));
        pool.poll();
    }
    now.store(299_000_000, Ordering::SeqCst);
    for _ in 0..20 {
        pool.wait(Some(Duration::from_millis(10)));
        pool.poll();
        assert_eq!(pool.drain_completed().count(), 0);
    }
    assert_eq!(server.connections_accepted(), 0, "second address early");
    // At the delay the second address is tried, and answers.
    now.store(300_000_000, Ordering::SeqCst);
    let (done, polls) = run_until(&mut pool, 1, 100);
    assert_eq!(
        (done[0].1.result, &done[0].1.body[..]),
        (RequestResult::Success, &b"up"[..]),
        "{}",
        done[0].1.reason
    );
    assert_eq!(server.connections_accepted(), 1);
    assert_eq!(lookups.load(Ordering::SeqCst), 1);
    eprintln!("happy eyeballs: connected {polls} polls after the delay");
}

#[test]
fn a_streamed_body_comes_in_pieces_with_back_pressure() {
    let nginx = pollhttp_tests::nginx::Nginx::start_with(pollhttp_tests::nginx::NginxOptions {
        big_file_len: 64 << 20,
        ..Default::default()
    });
    // The backlog's high water: 1 MiB here.
    let mut pool = RequestPool::with_settings(PoolSettings {
        stream_high_water: 1 << 20,
        ..PoolSettings::default()
    })
    .unwrap();
    let settings = Settings {
        body: pollhttp::BodySettings {
            stream: true,
            ..Default::default()
        },
        ..Settings::default()
    };
    let id = pool.get(nginx.url("/big.bin"), &settings).unwrap();
    let mut taken = 0u64;
    let mut most_held = 0u64;
    let start = Instant::now();
    let completed = loop {
        assert!(start.elapsed() < Duration::from_secs(60));
        // A consumer paced by its own loop (1 ms), not by the pool.
        pool.wait(Some(Duration::from_millis(1)));
        pool.poll();
        // A slow consumer: at most 256 KiB per poll.
        let mut this_poll = 0;
        while this_poll < 256 * 1024 {
            let Some(piece) = pool.read_body(id) else {
                break;
            };
            assert!(piece.iter().all(|&b| b == 0));
            this_poll += piece.len();
        }
        taken += this_poll as u64;
        most_held = most_held.max(pool.bytes_read() - taken);
        if let Some((got, c)) = pool.poll_completed() {
            assert_eq!(got, id);
            break c;
        }
    };
    assert_eq!(
        completed.result,
        RequestResult::Success,
        "{}",
        completed.reason
    );
    // Pieces not taken before the end come in the completion.
    assert_eq!(taken + completed.body.len() as u64, 64 << 20);
    assert_eq!(completed.body_bytes, 64 << 20);
    // Read ahead of the consumer: the 1 MiB backlog, proto's buffer and one
    // turn (heads are counted too).
    assert!(
        most_held <= 2 << 20,
        "held {most_held} bytes ahead of the consumer"
    );
}

#[test]
fn a_request_cancelled_while_waiting_never_starts_its_slots_next_request() {
    // The cancelled request's slot is reused at once; the queue entry it
    // left must not start the new request a second time (a second
    // connection, the first one closed under it).
    let srv = ScriptServer::start(vec![vec![
        Step::ReadRequest,
        Step::write(ok_response("one")),
    ]]);
    let mut pool = RequestPool::new().unwrap();
    let gone = pool
        .get("http://127.0.0.1:9/", &Settings::default())
        .unwrap();
    assert!(pool.cancel(gone));
    let id = pool
        .get(format!("{}/x", srv.base_url()), &Settings::default())
        .unwrap();
    let (done, _) = run_until(&mut pool, 1, 200);
    assert_eq!(done[0].0, id);
    assert_eq!(
        (done[0].1.result, &done[0].1.body[..]),
        (RequestResult::Success, &b"one"[..]),
        "{}",
        done[0].1.reason
    );
    assert_eq!(srv.connections_accepted(), 1);
    assert_eq!(pool.connections_opened(), 1);
}

#[test]
fn nginx_closing_idle_connections_after_1s_costs_the_caller_nothing() {
    use pollhttp_tests::nginx::NginxOptions;
    let Some(nginx) = Nginx::try_start_with(NginxOptions {
        keepalive_timeout_secs: 1,
        ..NginxOptions::default()
    }) else {
        return; // nginx not installed and skipping allowed
    };
    let mut pool = RequestPool::new().unwrap();
    pool.get(nginx.url("/hello.txt"), &Settings::default())
        .unwrap();
    let (done, _) = run_until(&mut pool, 1, 1000);
    assert_eq!(&done[0].1.body[..], HELLO_BODY.as_bytes());
    assert_eq!(pool.idle_connections(), 1);
    // nginx closes the kept connection after 1 s idle.
    std::thread::sleep(Duration::from_millis(1500));
    pool.get(nginx.url("/hello.txt"), &Settings::default())
        .unwrap();
    let (done, _) = run_until(&mut pool, 1, 1000);
    assert_eq!(
        (done[0].1.result, &done[0].1.body[..]),
        (RequestResult::Success, HELLO_BODY.as_bytes()),
        "{}",
        done[0].1.reason
    );
    assert_eq!(done[0].1.attempts, 1);
    // A POST in the same situation: the closed connection is noticed before
    // anything is sent, so the POST goes once, on a new connection.
    std::thread::sleep(Duration::from_millis(1500));
    pool.request(
        nginx.url("/hello.txt"),
        &[],
        "POST",
        RequestBody::from("once"),
        &Settings::default(),
    )
    .unwrap();
    let (done, _) = run_until(&mut pool, 1, 1000);
    assert_ne!(done[0].1.response_code(), 0, "{}", done[0].1.reason);
    assert_eq!(pool.connections_opened(), 3);
    // nginx logs a request after answering it: wait (bounded) for our
    // three lines.
    let mut log = nginx.access_log();
    for _ in 0..50 {
        if our_lines(&log).len() >= 3 {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
        log = nginx.access_log();
    }
    let lines = our_lines(&log);
    let posts = lines
        .iter()
        .filter(|l| l.contains("\"POST /hello.txt"))
        .count();
    assert_eq!(posts, 1, "{log}");
    assert_eq!(connections_in(&log).len(), 3, "{log}");
}

#[test]
fn a_streamed_body_that_ends_with_pieces_waiting_completes_one_poll_later() {
    // Three chunks and the last-chunk in one write: one turn reads them all,
    // so the body ends with three pieces not taken yet. The completion waits
    // one poll (the pieces are not copied into one body inside that poll).
    let mut response = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
    for part in [&b"a"[..], b"b", b"c"] {
        response.extend_from_slice(
            format!(
                "3e8\r\n{}\r\n",
                String::from_utf8(part.repeat(1000)).unwrap()
            )
            .as_bytes(),
        );
    }
    response.extend_from_slice(b"0\r\n\r\n");
    let srv = ScriptServer::start(vec![vec![Step::ReadRequest, Step::write(response)]]);
    let mut pool = RequestPool::new().unwrap();
    let settings = Settings {
        body: pollhttp::BodySettings {
            stream: true,
            ..Default::default()
        },
        ..Settings::default()
    };
    let id = pool
        .get(format!("{}/s", srv.base_url()), &settings)
        .unwrap();
    let start = Instant::now();
    let mut polls = 0;
    // Until the body has arrived whole (the progress says so).
    loop {
        assert!(polls < 500 && start.elapsed() < Duration::from_secs(20));
        pool.wait(Some(Duration::from_millis(50)));
        assert_eq!(pool.poll(), 0, "completed with its pieces still waiting");
        polls += 1;
        if pool.progress(id).is_some_and(|p| p.downloaded == 3000) {
            break;
        }
    }
    let mut taken = Vec::new();
    while let Some(piece) = pool.read_body(id) {
        taken.extend_from_slice(&piece);
    }
    let expected: Vec<u8> = [&b"a"[..], b"b", b"c"]
        .iter()
        .flat_map(|p| p.repeat(1000))
        .collect();
    assert_eq!(taken, expected);
    // The next poll completes it, with nothing left to copy.
    assert_eq!(pool.poll(), 1);
    let done: Vec<_> = pool.drain_completed().collect();
    assert_eq!(done.len(), 1);
    assert_eq!(done[0].0, id);
    assert_eq!(
        done[0].1.result,
        RequestResult::Success,
        "{}",
        done[0].1.reason
    );
    assert!(done[0].1.body.is_empty());
    assert_eq!(done[0].1.body_bytes, 3000);
    assert_eq!(pool.in_flight(), 0);
    assert_eq!(pool.connections_opened(), 1);
}

#[test]
fn a_body_collected_into_the_callers_buffer_is_that_buffer() {
    let body: Vec<u8> = (0..5000u32).map(|i| b'a' + (i % 26) as u8).collect();
    let mut partial =
        format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n", body.len()).into_bytes();
    partial.extend_from_slice(&body[..1000]);
    let srv = ScriptServer::start(vec![vec![
        Step::ReadRequest,
        Step::write(ok_response(&body)),
        Step::ReadRequest,
        Step::write(ok_response(&body)),
        Step::ReadRequest,
        Step::write(partial),
        Step::Sleep(Duration::from_millis(300)),
        Step::write(&body[1000..]),
    ]]);
    let url = format!("{}/b", srv.base_url());
    let mut pool = RequestPool::new().unwrap();
    let settings = Settings::default();

    // A buffer with room: the body is that allocation (cleared first).
    let mut buffer = Vec::with_capacity(8192);
    buffer.extend_from_slice(b"stale bytes");
    let ptr = buffer.as_ptr();
    let id = pool.get(&url, &settings).unwrap();
    pool.collect_into(id, buffer).unwrap();
    let (mut done, _) = run_until(&mut pool, 1, 200);
    assert_eq!(
        done[0].1.result,
        RequestResult::Success,
        "{}",
        done[0].1.reason
    );
    assert_eq!(done[0].1.body, body);
    assert_eq!(done[0].1.body.as_ptr(), ptr);
    // Given back whole: the same allocation, to use again.
    let back = Vec::from(std::mem::take(&mut done[0].1.body));
    assert_eq!((back.as_ptr(), back.capacity()), (ptr, 8192));

    // A completed id gives the buffer back untouched.
    let refused = pool.collect_into(id, back).unwrap_err();
    assert_eq!((refused.as_ptr(), refused.len()), (ptr, body.len()));

    // A buffer too small: the body outgrows it, whole.
    let id = pool.get(&url, &settings).unwrap();
    pool.collect_into(id, Vec::with_capacity(16)).unwrap();
    let (done, _) = run_until(&mut pool, 1, 200);
    assert_eq!(done[0].1.body, body);

    // Once the body has started arriving, the buffer comes back.
    let id = pool.get(&url, &settings).unwrap();
    let start = Instant::now();
    while pool.progress(id).is_none_or(|p| p.downloaded < 1000) {
        assert!(start.elapsed() < Duration::from_secs(20), "no body bytes");
        pool.wait(Some(Duration::from_millis(50)));
        assert_eq!(pool.poll(), 0);
    }
    let late = vec![7u8; 3];
    assert_eq!(pool.collect_into(id, late).unwrap_err(), vec![7u8; 3]);
    let (done, _) = run_until(&mut pool, 1, 200);
    assert_eq!(done[0].1.body, body);
    assert_eq!(pool.connections_opened(), 1);
}

#[test]
fn requests_queued_back_to_back_keep_their_own_settings() {
    // The pool shares one copy of equal settings between requests; each of
    // these must still run under its own.
    let body = vec![b'x'; 100];
    let script = vec![Step::ReadRequest, Step::write(ok_response(&body))];
    let srv = ScriptServer::start(vec![script.clone(), script.clone(), script.clone(), script]);
    let url = format!("{}/s", srv.base_url());
    let mut pool = RequestPool::new().unwrap();
    let limited = Settings {
        body: pollhttp::BodySettings {
            size_limit: Some(10),
            ..Default::default()
        },
        ..Settings::default()
    };
    let plain = Settings::default();
    let ids = [
        pool.get(&url, &limited).unwrap(),
        pool.get(&url, &plain).unwrap(),
        pool.get(&url, &limited).unwrap(),
        pool.get(&url, &plain).unwrap(),
    ];
    let (done, _) = run_until(&mut pool, 4, 400);
    let results: HashMap<RequestId, RequestResult> =
        done.into_iter().map(|(id, c)| (id, c.result)).collect();
    assert_eq!(
        ids.map(|id| results[&id]),
        [
            RequestResult::BodySizeLimitExceeded,
            RequestResult::Success,
            RequestResult::BodySizeLimitExceeded,
            RequestResult::Success,
        ]
    );
}

#[test]
fn a_connection_given_back_serves_the_next_waiting_request_in_the_same_poll() {
    // One connection per origin: B waits for A's connection. The poll that
    // completes A sends B's request on it (no poll in between).
    let srv = ScriptServer::start(vec![vec![
        Step::ReadRequest,
        Step::write(ok_response("a")),
        Step::ReadRequest,
        Step::write(ok_response("b")),
    ]]);
    let mut pool = RequestPool::with_settings(PoolSettings {
        max_connections_per_origin: 1,
        ..PoolSettings::default()
    })
    .unwrap();
    let a = pool
        .get(format!("{}/a", srv.base_url()), &Settings::default())
        .unwrap();
    let b = pool
        .get(format!("{}/b", srv.base_url()), &Settings::default())
        .unwrap();
    let start = Instant::now();
    let mut polls = 0;
    while pool.poll() == 0 {
        polls += 1;
        assert!(
            polls < 500 && start.elapsed() < Duration::from_secs(20),
            "A not done"
        );
        pool.wait(Some(Duration::from_millis(50)));
    }
    let done: Vec<_> = pool.drain_completed().collect();
    assert_eq!(done.iter().map(|d| d.0).collect::<Vec<_>>(), [a]);
    assert!(
        srv.wait_for_requests(2, Duration::from_secs(10)),
        "B's request was not sent in the poll that completed A"
    );
    let (done, _) = run_until(&mut pool, 1, 200);
    assert_eq!(done[0].0, b);
    assert_eq!(&done[0].1.body[..], b"b");
    assert_eq!(pool.connections_opened(), 1);
}

/// A pool with one connection per origin, on a fake clock (and the clock's
/// nanoseconds, to move it).
fn one_connection_per_origin_on_a_fake_clock() -> (RequestPool, Arc<AtomicU64>) {
    let (clock, now) = fake_clock(Duration::ZERO);
    let pool = RequestPool::with_clock(
        PoolSettings {
            max_connections_per_origin: 1,
            ..PoolSettings::default()
        },
        clock,
    )
    .unwrap();
    (pool, now)
}

#[test]
fn a_request_waiting_for_a_connection_times_out_at_its_own_deadline() {
    // One connection per origin, held by A (the server never answers): B
    // waits in the queue, and its timeout counts from its request(), so it
    // ends at 10 s, not when A's connection frees up.
    let server = ScriptServer::start(vec![vec![
        Step::ReadRequest,
        Step::Sleep(Duration::from_secs(5)),
    ]]);
    let (mut pool, now) = one_connection_per_origin_on_a_fake_clock();
    let a = pool
        .get(
            server.base_url(),
            &Settings {
                timeouts: pollhttp::Timeouts {
                    total: Some(Duration::from_secs(100)),
                    ..Default::default()
                },
                ..Settings::default()
            },
        )
        .unwrap();
    let b = pool
        .get(
            server.base_url(),
            &Settings {
                timeouts: pollhttp::Timeouts {
                    total: Some(Duration::from_secs(10)),
                    ..Default::default()
                },
                ..Settings::default()
            },
        )
        .unwrap();
    for _ in 0..20 {
        pool.poll();
        assert!(pool.poll_completed().is_none());
        std::thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(pool.next_timeout(), Some(Duration::from_secs(10)));
    now.fetch_add(10_000_000_000, Ordering::SeqCst);
    pool.poll();
    let (got, c) = pool.poll_completed().expect("B timed out");
    assert_eq!((got, c.result), (b, RequestResult::Timeout));
    assert!(pool.poll_completed().is_none(), "A is still in flight");
    assert!(pool.progress(a).is_some());
}

#[test]
fn the_idle_timeout_of_a_queued_request_starts_when_it_gets_a_connection() {
    // B waits 10 s (fake) behind A with a 5 s idle timeout: no byte can
    // arrive while it waits, so it does not fail then, nor when it is
    // finally admitted; it gets its answer.
    let server = ScriptServer::start(vec![
        vec![Step::ReadRequest, Step::Sleep(Duration::from_secs(5))],
        vec![Step::ReadRequest, Step::Write(ok_response("b"))],
    ]);
    let (mut pool, now) = one_connection_per_origin_on_a_fake_clock();
    let a = pool.get(server.base_url(), &Settings::default()).unwrap();
    let b = pool
        .get(
            server.base_url(),
            &Settings {
                timeouts: pollhttp::Timeouts {
                    idle: Some(Duration::from_secs(5)),
                    ..Default::default()
                },
                ..Settings::default()
            },
        )
        .unwrap();
    for _ in 0..20 {
        pool.poll();
        std::thread::sleep(Duration::from_millis(5));
    }
    now.fetch_add(10_000_000_000, Ordering::SeqCst);
    pool.poll();
    assert!(pool.poll_completed().is_none(), "B failed while it waited");
    assert!(pool.cancel(a));
    let (done, _) = run_until(&mut pool, 1, 500);
    assert_eq!(done[0].0, b);
    assert_eq!(
        (done[0].1.result, &done[0].1.body[..]),
        (RequestResult::Success, &b"b"[..]),
        "{}",
        done[0].1.reason
    );
}

/// The request lines in an access log, in order (`"$request"`).
fn requests_in(log: &str) -> Vec<String> {
    our_lines(log)
        .into_iter()
        .filter_map(|l| l.split('"').nth(1))
        .map(str::to_string)
        .collect()
}

#[test]
fn requests_to_two_origins_through_one_http_proxy_share_its_connection() {
    // D11. Two origins, localhost and 127.0.0.1, one nginx behind both:
    // the test proxy pipes a client connection to the origin of its first
    // request, so only origins of one server can share a connection here
    // (request_simnet.rs has distinct servers behind a scripted proxy).
    let nginx = Nginx::start();
    let proxy = Proxy::start(ProxyOptions::default());
    let settings = Settings {
        proxy: pollhttp::ProxySettings {
            http: Some(("127.0.0.1".into(), proxy.port())),
            ..Default::default()
        },
        ..Settings::default()
    };
    let mut pool = RequestPool::new().unwrap();
    let p = nginx.http_port;
    // The last one is a cross-origin redirect (to 127.0.0.1).
    let urls = [
        format!("http://localhost:{p}/hello.txt"),
        format!("http://127.0.0.1:{p}/hello.txt"),
        format!("http://localhost:{p}/redirect/to-http"),
    ];
    for url in &urls {
        let id = pool.get(url.as_str(), &settings).unwrap();
        let (done, _) = run_until(&mut pool, 1, 1000);
        let (got, c) = &done[0];
        assert_eq!(*got, id);
        assert_eq!(c.result, RequestResult::Success, "{url}: {}", c.reason);
        assert_eq!(c.body, HELLO_BODY.as_bytes(), "{url}");
    }
    assert_eq!(
        proxy.connections_accepted(),
        1,
        "{:?}",
        proxy.request_lines()
    );
    assert_eq!(pool.connections_opened(), 1);
    // The proxy and nginx saw the same four requests as sent (absolute-form),
    // all on one connection.
    let sent = [
        format!("GET http://localhost:{p}/hello.txt HTTP/1.1"),
        format!("GET http://127.0.0.1:{p}/hello.txt HTTP/1.1"),
        format!("GET http://localhost:{p}/redirect/to-http HTTP/1.1"),
        format!("GET http://127.0.0.1:{p}/hello.txt HTTP/1.1"),
    ];
    assert_eq!(proxy.request_lines(), sent);
    let log = nginx.wait_access_log(2 + 4, Duration::from_secs(5));
    assert_eq!(requests_in(&log), sent, "{log}");
    assert_eq!(connections_in(&log).len(), 1, "{log}");
}

#[test]
fn https_through_a_proxy_keeps_one_tunnel_per_origin() {
    // A CONNECT tunnel leads to one origin: another origin through the same
    // proxy takes another tunnel; the same origin reuses its own.
    let nginx = Nginx::start();
    let proxy = Proxy::start(ProxyOptions::default());
    let settings = Settings {
        proxy: pollhttp::ProxySettings {
            https: Some(("127.0.0.1".into(), proxy.port())),
            ..Default::default()
        },
        tls: Some(TlsOptions::with_root_pem(nginx.ca_pem.as_bytes()).unwrap()),
        ..Settings::default()
    };
    let mut pool = RequestPool::new().unwrap();
    let p = nginx.https_port;
    for url in [
        format!("https://localhost:{p}/hello.txt"),
        format!("https://127.0.0.1:{p}/hello.txt"),
        format!("https://localhost:{p}/hello.txt"),
        format!("https://127.0.0.1:{p}/hello.txt"),
    ] {
        let id = pool.get(url.as_str(), &settings).unwrap();
        let (done, _) = run_until(&mut pool, 1, 1000);
        let (got, c) = &done[0];
        assert_eq!(*got, id);
        assert_eq!(c.result, RequestResult::Success, "{url}: {}", c.reason);
        assert_eq!(c.body, HELLO_BODY.as_bytes(), "{url}");
    }
    assert_eq!(
        proxy.request_lines(),
        [
            format!("CONNECT localhost:{p} HTTP/1.1"),
            format!("CONNECT 127.0.0.1:{p} HTTP/1.1"),
        ]
    );
    assert_eq!(proxy.connections_accepted(), 2);
    assert_eq!(pool.connections_opened(), 2);
    assert_eq!(pool.idle_connections(), 2);
}
