//! Request priorities in the pool's wait queue, on the simulated network
//! (fake clock, scripted peers): the order of admission under a full queue,
//! FIFO among equals, a priority changed while waiting, cancellation of a
//! waiting high-priority request, the no-starvation rule, and priorities
//! across origins under a total connection limit.

use pollhttp::{PoolSettings, RequestBody, RequestId, RequestPool, RequestResult, Settings};
use pollhttp_tests::simnet::{ok, Answer, Reply, SimNet};

/// One origin with a route per name, and a pool allowed `per_origin`
/// connections to it, `oldest_every` its no-starvation rule.
fn origin(names: &[&str], per_origin: usize, oldest_every: u32) -> (SimNet, RequestPool) {
    let mut net = SimNet::new();
    net.add_peer("a.test", Answer::Now);
    for n in names {
        net.route(
            "a.test",
            &format!("/{n}"),
            vec![Reply::Send(ok(n.as_bytes()))],
        );
    }
    let pool = net.pool(PoolSettings {
        max_connections_per_origin: per_origin,
        oldest_every,
        ..PoolSettings::default()
    });
    (net, pool)
}

fn queue(net: &SimNet, pool: &mut RequestPool, host: &str, name: &str, priority: i32) -> RequestId {
    pool.request_with_priority(
        priority,
        net.url(host, &format!("/{name}")),
        &[],
        "GET",
        RequestBody::Empty,
        &Settings::default(),
    )
    .unwrap()
}

/// The bodies in completion order (one connection: admission order).
fn settle(net: &mut SimNet, pool: &mut RequestPool) -> Vec<String> {
    net.settle(pool, 2000)
        .into_iter()
        .map(|(_, c)| {
            assert_eq!(c.result, RequestResult::Success, "{}", c.reason);
            String::from_utf8(c.body.to_vec()).unwrap()
        })
        .collect()
}

#[test]
fn a_full_queue_admits_highest_first_fifo_among_equals() {
    let names = ["first", "p1", "p5a", "p3", "p5b", "p0", "p9"];
    let (mut net, mut pool) = origin(&names, 1, 0);
    // `first` takes the one connection (admitted at the first poll); the
    // others wait, whatever order they came in.
    let first = queue(&net, &mut pool, "a.test", "first", 0);
    pool.poll();
    for (name, p) in [
        ("p1", 1),
        ("p5a", 5),
        ("p3", 3),
        ("p5b", 5),
        ("p0", 0),
        ("p9", 9),
    ] {
        queue(&net, &mut pool, "a.test", name, p);
    }
    assert_eq!(pool.priority(first), Some(0));
    assert_eq!(
        settle(&mut net, &mut pool),
        ["first", "p9", "p5a", "p5b", "p3", "p1", "p0"]
    );
    assert_eq!(net.accepted("a.test"), 1, "one connection, kept");
    assert_eq!(pool.priority(first), None, "done");
}

#[test]
fn without_priorities_the_queue_stays_fifo() {
    let names = ["a", "b", "c", "d"];
    let (mut net, mut pool) = origin(&names, 1, 8);
    for n in names {
        pool.get(net.url("a.test", &format!("/{n}")), &Settings::default())
            .unwrap();
    }
    assert_eq!(settle(&mut net, &mut pool), names);
}

#[test]
fn a_priority_changed_while_waiting_moves_the_request() {
    let names = ["first", "a", "b", "c", "d"];
    let (mut net, mut pool) = origin(&names, 1, 0);
    queue(&net, &mut pool, "a.test", "first", 0);
    pool.poll();
    let a = queue(&net, &mut pool, "a.test", "a", 0);
    let b = queue(&net, &mut pool, "a.test", "b", 0);
    let c = queue(&net, &mut pool, "a.test", "c", 0);
    let d = queue(&net, &mut pool, "a.test", "d", 2);
    // The camera moved: c matters most now, d less, and a and b go up
    // together (keeping their order among equals).
    assert!(pool.set_priority(c, 10));
    assert!(pool.set_priority(d, -1));
    assert!(pool.set_priority(b, 1));
    assert!(pool.set_priority(a, 1));
    assert_eq!(pool.priority(c), Some(10));
    assert_eq!(settle(&mut net, &mut pool), ["first", "c", "a", "b", "d"]);
    assert!(!pool.set_priority(c, 3), "no longer in flight");
}

#[test]
fn a_cancelled_waiting_high_priority_request_never_runs() {
    let names = ["first", "low", "high", "mid"];
    let (mut net, mut pool) = origin(&names, 1, 0);
    queue(&net, &mut pool, "a.test", "first", 0);
    pool.poll();
    queue(&net, &mut pool, "a.test", "low", 0);
    let high = queue(&net, &mut pool, "a.test", "high", 9);
    queue(&net, &mut pool, "a.test", "mid", 5);
    assert!(pool.cancel(high));
    assert!(!pool.set_priority(high, 1));
    assert_eq!(pool.priority(high), None);
    assert_eq!(settle(&mut net, &mut pool), ["first", "mid", "low"]);
    let asked = net.request_lines("a.test");
    assert!(!asked.iter().any(|l| l.contains("/high")), "{asked:?}");
}

#[test]
fn every_nth_admission_goes_to_the_oldest_so_nothing_starves() {
    let names = ["first", "low", "h1", "h2", "h3", "h4"];
    // Strict priority: low goes last.
    let (mut net, mut pool) = origin(&names, 1, 0);
    queue(&net, &mut pool, "a.test", "first", 0);
    pool.poll();
    queue(&net, &mut pool, "a.test", "low", 0);
    for h in ["h1", "h2", "h3", "h4"] {
        queue(&net, &mut pool, "a.test", h, 9);
    }
    assert_eq!(
        settle(&mut net, &mut pool),
        ["first", "h1", "h2", "h3", "h4", "low"]
    );
    // Every third admission to the oldest: `first` (1), h1 (2), then the
    // oldest waiting, low (3); then h2, h3, and h4 as the oldest.
    let (mut net, mut pool) = origin(&names, 1, 3);
    queue(&net, &mut pool, "a.test", "first", 0);
    pool.poll();
    queue(&net, &mut pool, "a.test", "low", 0);
    for h in ["h1", "h2", "h3", "h4"] {
        queue(&net, &mut pool, "a.test", h, 9);
    }
    assert_eq!(
        settle(&mut net, &mut pool),
        ["first", "h1", "low", "h2", "h3", "h4"]
    );
}

#[test]
fn priorities_order_origins_under_a_total_limit_with_cancel() {
    let mut net = SimNet::new();
    for host in ["a.test", "b.test", "c.test"] {
        net.add_peer(host, Answer::Now);
        for n in ["first", "x", "y"] {
            net.route(
                host,
                &format!("/{n}"),
                vec![Reply::Send(ok(format!("{host}{n}").as_bytes()))],
            );
        }
    }
    let mut pool = net.pool(PoolSettings {
        max_connections: 1,
        max_idle: 0,
        oldest_every: 0,
        ..PoolSettings::default()
    });
    queue(&net, &mut pool, "a.test", "first", 0);
    pool.poll();
    queue(&net, &mut pool, "b.test", "x", 1);
    let cancelled = queue(&net, &mut pool, "c.test", "x", 8);
    queue(&net, &mut pool, "c.test", "y", 4);
    queue(&net, &mut pool, "a.test", "x", 4);
    let b_y = queue(&net, &mut pool, "b.test", "y", 0);
    assert!(pool.cancel(cancelled));
    assert!(pool.set_priority(b_y, 6));
    assert_eq!(
        settle(&mut net, &mut pool),
        ["a.testfirst", "b.testy", "c.testy", "a.testx", "b.testx"]
    );
    assert_eq!(net.received("c.test").len(), 1);
}
