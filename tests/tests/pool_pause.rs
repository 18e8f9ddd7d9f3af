//! Pausing requests in the pool (`RequestPool::pause` / `resume`), on the
//! simulated network (fake clock, scripted peers): a paused download reads
//! no byte however long the peer has more, loses none and keeps its
//! connection; taking its streamed pieces does not restart it; cancel while
//! paused; the idle timeout held while paused (and while a stream waits for
//! its caller to take pieces), the total timeout not; a rate-limited
//! request resumed after a long pause reads at its rate, not the backlog; a
//! request paused while it waits for a connection keeps its place and sends
//! nothing until resumed.

use std::time::Duration;

use pollhttp::{
    Completed, PollBudget, PoolSettings, RequestId, RequestPool, RequestResult, Settings,
};
use pollhttp_tests::simnet::{ok, Answer, Reply, SimNet};

const LEN: usize = 4 << 20;

fn body() -> Vec<u8> {
    pollhttp_tests::pseudo_random_bytes(LEN)
}

/// Most socket bytes one poll reads here (the fake clock does not move, so
/// only the byte budget applies): a 4 MiB body takes at least 64 polls,
/// whatever the kernel buffers.
const POLL_BYTES: usize = 64 << 10;

/// A peer serving `/big` (4 MiB) and `/small`, and a pool on it reading at
/// most [`POLL_BYTES`] per poll.
fn net_with(settings: PoolSettings) -> (SimNet, RequestPool) {
    let mut net = SimNet::new();
    net.add_peer("a.test", Answer::Now);
    net.route("a.test", "/big", vec![Reply::Send(ok(&body()))]);
    net.route("a.test", "/small", vec![Reply::Send(ok(b"small"))]);
    let pool = net.pool(PoolSettings {
        poll_budget: PollBudget::new(POLL_BYTES, None),
        ..settings
    });
    (net, pool)
}

fn streamed() -> Settings {
    let mut s = Settings::default();
    s.body.stream = true;
    s
}

/// Peer steps and polls until `id` has some body bytes (bounded).
fn until_started(net: &mut SimNet, pool: &mut RequestPool, id: RequestId) {
    for _ in 0..200 {
        net.step();
        pool.poll();
        if pool.progress(id).is_some_and(|p| p.downloaded > 0) {
            return;
        }
        pool.wait(Some(Duration::from_millis(20)));
    }
    panic!("no body byte arrived");
}

/// `rounds` peer steps and polls, with the clock moved `tick` each; the
/// streamed pieces taken on the way (when `take`). Returns the socket bytes
/// the pool read meanwhile.
fn rounds(
    net: &mut SimNet,
    pool: &mut RequestPool,
    id: RequestId,
    n: usize,
    tick: Duration,
    taken: Option<&mut Vec<u8>>,
) -> u64 {
    let before = pool.bytes_read();
    let mut taken = taken;
    for _ in 0..n {
        net.step();
        net.clock.advance(tick);
        pool.poll();
        if let Some(out) = taken.as_deref_mut() {
            while let Some(p) = pool.read_body(id) {
                out.extend_from_slice(&p);
            }
        }
        assert_eq!(
            pool.poll_completed().map(|(i, _)| i),
            None,
            "nothing completes"
        );
    }
    pool.bytes_read() - before
}

/// Steps and polls until `id` completes, taking its streamed pieces.
fn finish(net: &mut SimNet, pool: &mut RequestPool, id: RequestId, out: &mut Vec<u8>) -> Completed {
    for _ in 0..20_000 {
        net.step();
        pool.poll();
        while let Some(p) = pool.read_body(id) {
            out.extend_from_slice(&p);
        }
        if let Some(done) = pool.take_completed(id) {
            out.extend_from_slice(&done.body);
            return done;
        }
        pool.wait(Some(Duration::from_millis(1)));
    }
    panic!("{id} did not complete");
}

#[test]
fn a_paused_stream_reads_nothing_loses_nothing_and_keeps_its_connection() {
    let (mut net, mut pool) = net_with(PoolSettings::default());
    let id = pool.get(net.url("a.test", "/big"), &streamed()).unwrap();
    let mut got = Vec::new();
    until_started(&mut net, &mut pool, id);
    assert!(pool.pause(id));
    assert_eq!(pool.is_paused(id), Some(true));
    assert!(pool.pause(id), "pausing twice is pausing once");
    let downloaded = pool.progress(id).unwrap().downloaded;
    // The peer has megabytes more to send; the pieces decoded before the
    // pause can still be taken, and taking them restarts nothing.
    let read = rounds(
        &mut net,
        &mut pool,
        id,
        200,
        Duration::from_millis(10),
        Some(&mut got),
    );
    assert_eq!(read, 0, "socket bytes read while paused");
    assert_eq!(pool.progress(id).unwrap().downloaded, downloaded);
    assert!(got.len() as u64 <= downloaded);
    assert!(downloaded < LEN as u64, "paused before the end");
    assert!(pool.resume(id));
    assert_eq!(pool.is_paused(id), Some(false));
    let done = finish(&mut net, &mut pool, id, &mut got);
    assert_eq!(done.result, RequestResult::Success, "{}", done.reason);
    assert!(
        got == body(),
        "every byte, in order ({} of {LEN})",
        got.len()
    );
    assert_eq!(pool.is_paused(id), None, "done");
    assert!(!pool.pause(id) && !pool.resume(id), "not in flight");
    // Its connection was kept: the next request reuses it.
    let small = pool
        .get(net.url("a.test", "/small"), &Settings::default())
        .unwrap();
    let done = finish(&mut net, &mut pool, small, &mut Vec::new());
    assert_eq!(
        (done.result, &done.body[..]),
        (RequestResult::Success, &b"small"[..])
    );
    assert_eq!(net.accepted("a.test"), 1, "one connection for both");
}

#[test]
fn a_paused_body_in_memory_resumes_whole_after_any_number_of_pauses() {
    let (mut net, mut pool) = net_with(PoolSettings::default());
    let id = pool
        .get(net.url("a.test", "/big"), &Settings::default())
        .unwrap();
    until_started(&mut net, &mut pool, id);
    let mut pauses = 0;
    loop {
        assert!(pool.pause(id));
        pauses += 1;
        let read = rounds(&mut net, &mut pool, id, 20, Duration::ZERO, None);
        assert_eq!(read, 0, "pause {pauses}");
        assert!(pool.resume(id));
        // One poll's worth of reading, then pause again.
        net.step();
        pool.poll();
        if let Some(done) = pool.take_completed(id) {
            assert_eq!(done.result, RequestResult::Success, "{}", done.reason);
            assert!(done.body[..] == body()[..], "body after {pauses} pauses");
            break;
        }
        assert!(pauses < 10_000, "bounded");
    }
    // One poll's budget read between pauses: the body took that many.
    assert!(
        pauses >= LEN / POLL_BYTES,
        "{pauses}: paused once per poll's budget"
    );
    assert_eq!(net.accepted("a.test"), 1);
}

#[test]
fn a_request_cancelled_while_paused_closes_its_connection_and_never_completes() {
    let (mut net, mut pool) = net_with(PoolSettings::default());
    let id = pool.get(net.url("a.test", "/big"), &streamed()).unwrap();
    until_started(&mut net, &mut pool, id);
    assert!(pool.pause(id));
    assert!(pool.cancel(id));
    assert_eq!(pool.is_paused(id), None);
    assert!(!pool.resume(id));
    assert_eq!(pool.connections(), 0, "closed, not kept half-read");
    let read = rounds(&mut net, &mut pool, id, 20, Duration::from_secs(1), None);
    assert_eq!(read, 0);
    assert_eq!(pool.in_flight(), 0);
    // The next request needs a new connection.
    let small = pool
        .get(net.url("a.test", "/small"), &Settings::default())
        .unwrap();
    let done = finish(&mut net, &mut pool, small, &mut Vec::new());
    assert_eq!(done.result, RequestResult::Success);
    assert_eq!(net.accepted("a.test"), 2);
}

#[test]
fn the_idle_timeout_is_held_while_paused_and_restarts_whole_at_resume() {
    let (mut net, mut pool) = net_with(PoolSettings::default());
    // Half a body, then silence (the connection stays open).
    let mut partial = b"HTTP/1.1 200 OK\r\nContent-Length: 2000\r\n\r\n".to_vec();
    partial.extend_from_slice(&[b'x'; 1000]);
    net.route("a.test", "/partial", vec![Reply::Send(partial)]);
    let mut settings = streamed();
    settings.timeouts.idle = Some(Duration::from_secs(5));
    settings.timeouts.total = Some(Duration::from_secs(600));
    let id = pool.get(net.url("a.test", "/partial"), &settings).unwrap();
    for _ in 0..200 {
        net.step();
        pool.poll();
        if pool.progress(id).is_some_and(|p| p.downloaded == 1000) {
            break;
        }
        pool.wait(Some(Duration::from_millis(20)));
    }
    assert_eq!(pool.progress(id).map(|p| p.downloaded), Some(1000));
    assert!(pool.pause(id));
    // Ten idle timeouts pass while paused: nothing fires.
    let read = rounds(&mut net, &mut pool, id, 50, Duration::from_secs(1), None);
    assert_eq!(read, 0);
    assert!(pool.resume(id));
    // The idle timeout counts from the resume (no byte comes): not at 4 s,
    // at 5 s.
    net.clock.advance(Duration::from_secs(4));
    net.step();
    pool.poll();
    assert!(
        pool.poll_completed().is_none(),
        "idle timeout restarted at resume"
    );
    net.clock.advance(Duration::from_millis(1001));
    pool.poll();
    let (done_id, done) = pool.poll_completed().expect("idle timeout");
    assert_eq!((done_id, done.result), (id, RequestResult::Timeout));
    assert!(
        matches!(done.failure, Some(pollhttp::RequestFailure::IdleTimeout(_))),
        "{:?}",
        done.failure
    );
}

#[test]
fn a_stream_waiting_for_its_caller_to_take_pieces_does_not_time_out_idle() {
    let (mut net, mut pool) = net_with(PoolSettings {
        stream_high_water: 64 << 10,
        ..PoolSettings::default()
    });
    let mut settings = streamed();
    settings.timeouts.idle = Some(Duration::from_secs(5));
    settings.timeouts.total = Some(Duration::from_secs(600));
    let id = pool.get(net.url("a.test", "/big"), &settings).unwrap();
    until_started(&mut net, &mut pool, id);
    // Nothing taken: the backlog passes its high water and reading stops...
    let read = rounds(&mut net, &mut pool, id, 5, Duration::ZERO, None);
    assert!(read < LEN as u64 / 4, "{read}");
    // ...for ten idle timeouts while the peer has more to send: the wait
    // is the caller's, not the server's, so nothing times out.
    let read = rounds(&mut net, &mut pool, id, 50, Duration::from_secs(1), None);
    assert_eq!(read, 0);
    // Taking the pieces resumes it with a whole idle timeout, and the body
    // arrives whole.
    let mut out = Vec::new();
    while let Some(p) = pool.read_body(id) {
        out.extend_from_slice(&p);
    }
    let read = rounds(
        &mut net,
        &mut pool,
        id,
        4,
        Duration::from_secs(1),
        Some(&mut out),
    );
    assert!(read > 0);
    let done = finish(&mut net, &mut pool, id, &mut out);
    assert_eq!(done.result, RequestResult::Success, "{:?}", done.failure);
    assert!(out == body(), "the body arrives whole, in order");
}

#[test]
fn a_rate_limited_download_resumed_after_a_long_pause_gets_one_burst_not_the_backlog() {
    let (mut net, mut pool) = net_with(PoolSettings::default());
    let mut settings = Settings::default();
    // 100 kB/s: a burst of 16 KiB (the floor), 4 MiB in about 40 s.
    settings.body.max_recv_speed = Some(100_000);
    settings.timeouts.total = Some(Duration::from_secs(600));
    let id = pool.get(net.url("a.test", "/big"), &settings).unwrap();
    until_started(&mut net, &mut pool, id);
    let tick = Duration::from_millis(100);
    let read = rounds(&mut net, &mut pool, id, 20, tick, None);
    assert!(
        (150_000..=260_000).contains(&read),
        "2 s at the rate: {read}"
    );
    assert!(pool.pause(id));
    assert_eq!(
        rounds(&mut net, &mut pool, id, 60, Duration::from_secs(1), None),
        0
    );
    assert!(pool.resume(id));
    // The second after the resume reads a second's worth and one burst,
    // not the minute it was paused (6 MB, the rest of the body at once).
    let read = rounds(&mut net, &mut pool, id, 10, tick, None);
    assert!(
        (60_000..=150_000).contains(&read),
        "1 s after the resume: {read}"
    );
}

#[test]
fn the_total_timeout_ends_a_paused_request() {
    let (mut net, mut pool) = net_with(PoolSettings::default());
    let mut settings = streamed();
    settings.timeouts.total = Some(Duration::from_secs(10));
    let id = pool.get(net.url("a.test", "/big"), &settings).unwrap();
    until_started(&mut net, &mut pool, id);
    assert!(pool.pause(id));
    let read = rounds(&mut net, &mut pool, id, 9, Duration::from_secs(1), None);
    assert_eq!(read, 0);
    net.clock.advance(Duration::from_secs(2));
    pool.poll();
    let (done_id, done) = pool.poll_completed().expect("timed out");
    assert_eq!((done_id, done.result), (id, RequestResult::Timeout));
    assert_eq!(pool.connections(), 0, "a half-read connection is not kept");
}

#[test]
fn a_request_paused_while_waiting_keeps_its_place_and_sends_nothing_until_resumed() {
    let (mut net, mut pool) = net_with(PoolSettings {
        max_connections_per_origin: 1,
        oldest_every: 0,
        ..PoolSettings::default()
    });
    let big = pool
        .get(net.url("a.test", "/big"), &Settings::default())
        .unwrap();
    pool.poll();
    let paused = pool
        .get(net.url("a.test", "/small"), &Settings::default())
        .unwrap();
    let after = pool
        .request_with_priority(
            -1,
            net.url("a.test", "/small?after"),
            &[],
            "GET",
            pollhttp::RequestBody::Empty,
            &Settings::default(),
        )
        .unwrap();
    assert!(pool.pause(paused));
    let done = net.settle(&mut pool, 5000);
    let order: Vec<RequestId> = done.iter().map(|(i, _)| *i).collect();
    // `paused` was admitted before `after` (its place kept), connected on
    // the kept connection and stopped there: `after` waits behind it.
    assert_eq!(order, [big], "only the first completed");
    let asked = net.request_lines("a.test");
    assert_eq!(asked, ["GET /big HTTP/1.1"], "nothing sent while paused");
    assert!(pool.resume(paused));
    let done = net.settle(&mut pool, 5000);
    let order: Vec<RequestId> = done.iter().map(|(i, _)| *i).collect();
    assert_eq!(order, [paused, after]);
    assert!(done.iter().all(|(_, c)| c.result == RequestResult::Success));
    assert_eq!(net.accepted("a.test"), 1);
}
