//! Generated combinations on the simulated network: each seed builds a few
//! requests over two origins from a menu of peer behaviours (plain answers,
//! chunked, a redirect across origins, a closed or reset connection before
//! the answer, a stall, a drip, stray bytes after a response, a 503 then an
//! answer, a HEAD with a content coding) and of request settings (timeouts,
//! a retry policy), runs them together in one pool, and checks the
//! invariants on every run:
//!
//! - every request completes exactly once;
//! - none completes after its deadline (time is the fake clock's);
//! - nothing waits without a wake-up or a timer: when the network is quiet,
//!   moving the clock to the pool's next timeout makes progress, and every
//!   request ends within a bounded number of such moves;
//! - no body is reported complete that was not: a `Success` carries exactly
//!   the body its route serves.
//!
//! Deterministic: the seeds are fixed (xorshift), the peers are stepped from
//! this thread and time moves only when the test moves it.

use std::collections::HashMap;
use std::time::Duration;

use pollhttp::web::{RetryBudget, RetryPolicy};
use pollhttp::{PoolSettings, RequestBody, RequestId, RequestResult, Settings};
use pollhttp_tests::simnet::{ok, redirect, response, Answer, Reply, SimNet};

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// A route: its replies and the body a `Success` must carry (`None`: a
/// success is not possible, e.g. a stall).
struct Route {
    host: &'static str,
    path: String,
    method: &'static str,
    replies: Vec<Reply>,
    success_body: Option<Vec<u8>>,
    /// Needs a timeout to end (it stalls).
    stalls: bool,
}

fn body_of(tag: &str, len: usize) -> Vec<u8> {
    tag.bytes().cycle().take(len).collect()
}

fn chunked(body: &[u8]) -> Vec<u8> {
    let mut out = response("200 OK", &[("Transfer-Encoding", "chunked")], b"");
    for piece in body.chunks(7) {
        out.extend_from_slice(format!("{:x}\r\n", piece.len()).as_bytes());
        out.extend_from_slice(piece);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"0\r\n\r\n");
    out
}

fn route(rng: &mut Rng, net: &SimNet, n: usize) -> Route {
    let host = if rng.below(2) == 0 {
        "a.test"
    } else {
        "b.test"
    };
    let path = format!("/r{n}");
    let body = body_of(&format!("body-{n}-"), 1 + rng.below(3000) as usize);
    let plain = |replies, success: Option<Vec<u8>>| Route {
        host,
        path: path.clone(),
        method: "GET",
        replies,
        success_body: success,
        stalls: false,
    };
    match rng.below(10) {
        0 => plain(vec![Reply::Send(ok(&body))], Some(body)),
        1 => plain(vec![Reply::Send(chunked(&body))], Some(body)),
        2 => {
            // Across origins: the other host serves the target.
            let other = if host == "a.test" { "b.test" } else { "a.test" };
            let target = format!("/t{n}");
            Route {
                host,
                path: path.clone(),
                method: "GET",
                replies: vec![Reply::Send(redirect("302 Found", &net.url(other, &target)))],
                success_body: Some(body),
                stalls: false,
            }
        }
        3 => plain(vec![Reply::Close, Reply::Send(ok(&body))], Some(body)),
        4 => plain(vec![Reply::Reset, Reply::Send(ok(&body))], Some(body)),
        5 => Route {
            stalls: true,
            ..plain(vec![Reply::Stall], None)
        },
        6 => plain(vec![Reply::Drip(ok(&body[..body.len().min(40)]))], {
            Some(body[..body.len().min(40)].to_vec())
        }),
        7 => {
            let mut stray = ok(&body);
            stray.extend_from_slice(&ok(b"forged"));
            plain(vec![Reply::Send(stray)], Some(body))
        }
        8 => plain(
            vec![
                Reply::Send(response("503 Service Unavailable", &[], b"busy")),
                Reply::Send(ok(&body)),
            ],
            Some(body),
        ),
        _ => Route {
            method: "HEAD",
            ..plain(
                vec![Reply::Send(response(
                    "200 OK",
                    &[("Content-Encoding", "gzip"), ("Content-Length", "99")],
                    b"",
                ))],
                Some(Vec::new()),
            )
        },
    }
}

fn run_seed(seed: u64) {
    let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
    let mut net = SimNet::new();
    net.add_peer("a.test", Answer::Now);
    net.add_peer("b.test", Answer::Now);
    let count = 1 + rng.below(5) as usize;
    let routes: Vec<Route> = (0..count).map(|n| route(&mut rng, &net, n)).collect();
    for (n, r) in routes.iter().enumerate() {
        net.route(r.host, &r.path, r.replies.clone());
        // A redirect's target, on the other host.
        if let Some(body) = &r.success_body {
            let other = if r.host == "a.test" {
                "b.test"
            } else {
                "a.test"
            };
            net.route(other, &format!("/t{n}"), vec![Reply::Send(ok(body))]);
        }
    }
    let mut pool = net.pool(PoolSettings {
        max_connections_per_origin: 1 + rng.below(3) as usize,
        ..PoolSettings::default()
    });
    let start = net.clock.now();
    let mut expected: HashMap<RequestId, (usize, Option<std::time::Instant>)> = HashMap::new();
    for (n, r) in routes.iter().enumerate() {
        let timeout =
            (r.stalls || rng.below(3) == 0).then(|| Duration::from_secs(1 + rng.below(20)));
        let retry = (rng.below(2) == 0).then(|| {
            RetryPolicy::new(2)
                .with_base_delay(Duration::from_millis(200))
                .with_budget(RetryBudget::unlimited())
        });
        let settings = Settings {
            timeouts: pollhttp::Timeouts {
                total: timeout,
                ..Default::default()
            },
            retry,
            ..Settings::default()
        };
        let id = pool
            .request(
                net.url(r.host, &r.path),
                &[],
                r.method,
                RequestBody::Empty,
                &settings,
            )
            .unwrap();
        expected.insert(id, (n, timeout.map(|t| start + t)));
    }

    let mut done: HashMap<RequestId, pollhttp::Completed> = HashMap::new();
    let mut moves = 0;
    loop {
        let now = net.clock.now();
        for (id, c) in net.settle(&mut pool, 400) {
            let (n, deadline) = expected[&id];
            if let Some(d) = deadline {
                assert!(
                    now <= d,
                    "seed {seed}: request {n} completed after its deadline"
                );
            }
            assert!(
                done.insert(id, c).is_none(),
                "seed {seed}: request {n} completed twice"
            );
        }
        if pool.in_flight() == 0 {
            break;
        }
        // The network is quiet: only a timer can bring progress.
        let Some(wait) = pool.next_timeout() else {
            panic!(
                "seed {seed}: {} request(s) wait for a wake-up no one will send",
                pool.in_flight()
            );
        };
        moves += 1;
        assert!(
            moves <= 60,
            "seed {seed}: {} request(s) never end",
            pool.in_flight()
        );
        net.clock.advance(wait.max(Duration::from_millis(1)));
    }

    assert_eq!(
        done.len(),
        expected.len(),
        "seed {seed}: every request completes"
    );
    for (id, c) in &done {
        let (n, _) = expected[id];
        let r = &routes[n];
        if c.result == RequestResult::Success {
            let want = r
                .success_body
                .as_ref()
                .unwrap_or_else(|| panic!("seed {seed}: request {n} cannot succeed"));
            if c.response_code() == 200 {
                assert!(
                    c.body[..] == want[..],
                    "seed {seed}: request {n} ({}) reported a body it was not sent",
                    r.path
                );
            }
        } else {
            assert!(
                c.failure.is_some(),
                "seed {seed}: request {n}: a failure says why"
            );
            assert!(
                c.body.is_empty(),
                "seed {seed}: request {n}: no body on failure"
            );
        }
    }
}

/// 40 seeds by default (about 10 s: each quiet network is confirmed with a
/// few bounded waits for the resolver's threads); `POLLHTTP_SIM_SEEDS=N`
/// runs N.
#[test]
fn generated_combinations_keep_the_invariants() {
    let seeds: u64 = std::env::var("POLLHTTP_SIM_SEEDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(40);
    for seed in 1..=seeds {
        run_seed(seed);
    }
}
