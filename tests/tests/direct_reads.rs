//! Body bytes read from the socket straight into the body's memory (a
//! Content-Length body kept in memory as it is, nothing buffered: proto's
//! `direct_body_room`), skipping the receive buffer and the copy out of it.
//! Each test sends the head first and the body later, in pieces with pauses,
//! so the body arrives while nothing is buffered; each checks that what the
//! features meeting there do is what they do through the receive buffer:
//! the body whole and in order, the next response on the kept connection,
//! the caller's allocation (`collect_into`),
//! the expected SHA-256, the cache's copy, a cut body's partial bytes (not
//! retried), a retried 503's drained body, and `HttpRequest`.

use std::time::{Duration, Instant};

use pollhttp::web::RetryPolicy;
use pollhttp::{
    Cache, CacheStatus, Completed, HttpRequest, RequestId, RequestPool, RequestResult, Settings,
    StoreLimits,
};
use pollhttp_tests::pseudo_random_bytes;
use pollhttp_tests::script::{ScriptServer, Step};

const PAUSE: Duration = Duration::from_millis(30);

/// The steps of one exchange: read the request, write `head`, then each
/// piece of `body` after a pause.
fn staged(head: &str, body: &[u8], pieces: usize) -> Vec<Step> {
    let mut steps = vec![Step::ReadRequest, Step::write(head)];
    for piece in body.chunks(body.len().div_ceil(pieces).max(1)) {
        steps.push(Step::Sleep(PAUSE));
        steps.push(Step::write(piece));
    }
    steps
}

fn head_for(len: usize, extra: &str) -> String {
    format!("HTTP/1.1 200 OK\r\nContent-Length: {len}\r\n{extra}\r\n")
}

/// Poll until `id` completes (bounded: 2 000 polls, 30 s).
fn finish(pool: &mut RequestPool, id: RequestId) -> Completed {
    let start = Instant::now();
    for _ in 0..2_000 {
        pool.poll();
        if let Some(done) = pool.take_completed(id) {
            return done;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "not done in 30 s"
        );
        pool.wait(Some(Duration::from_millis(50)));
    }
    panic!("{id} did not complete in 2 000 polls");
}

fn sha256(data: &[u8]) -> [u8; 32] {
    use sha2::Digest;
    sha2::Sha256::digest(data).into()
}

#[test]
fn a_body_arriving_after_its_head_is_whole_and_in_order() {
    let body = pseudo_random_bytes(700_000);
    let srv = ScriptServer::start(vec![staged(&head_for(body.len(), ""), &body, 5)]);
    let mut pool = RequestPool::new().unwrap();
    let id = pool.get(srv.base_url(), &Settings::default()).unwrap();
    let done = finish(&mut pool, id);
    assert_eq!(done.result, RequestResult::Success, "{}", done.reason);
    assert!(done.body == body, "the body whole and in order");
    assert_eq!(pool.progress(id), None);
}

#[test]
fn a_kept_connection_carries_the_next_response_after_a_body_read_directly() {
    // Two exchanges on one connection: the direct reads stop at the first
    // body's end, so the second head is parsed from the next bytes.
    let first = pseudo_random_bytes(300_000);
    let second = pseudo_random_bytes(200_000)
        .into_iter()
        .rev()
        .collect::<Vec<u8>>();
    let mut steps = staged(&head_for(first.len(), ""), &first, 3);
    steps.extend(staged(&head_for(second.len(), ""), &second, 3));
    let srv = ScriptServer::start(vec![steps]);
    let mut pool = RequestPool::new().unwrap();
    for body in [&first, &second] {
        let id = pool.get(srv.base_url(), &Settings::default()).unwrap();
        let done = finish(&mut pool, id);
        assert_eq!(done.result, RequestResult::Success, "{}", done.reason);
        assert!(done.body == *body);
    }
    assert_eq!(srv.connections_accepted(), 1, "the connection was kept");
}

#[test]
fn collect_into_gets_the_body_in_the_callers_allocation_whatever_it_held() {
    let body = pseudo_random_bytes(300_000);
    let srv = ScriptServer::start(vec![staged(&head_for(body.len(), ""), &body, 3)]);
    let mut pool = RequestPool::new().unwrap();
    // Room for more than the body, holding old bytes: none of them shows.
    let mut buffer = vec![0xAA; 400_000];
    buffer.truncate(10);
    let at = buffer.as_ptr();
    let id = pool.get(srv.base_url(), &Settings::default()).unwrap();
    pool.collect_into(id, buffer).unwrap();
    let done = finish(&mut pool, id);
    assert_eq!(done.result, RequestResult::Success, "{}", done.reason);
    assert_eq!(done.body.len(), body.len());
    assert!(done.body == body);
    assert_eq!(done.body.as_ptr(), at, "the caller's allocation");
    let back = Vec::from(done.body);
    assert_eq!((back.as_ptr(), back.capacity()), (at, 400_000));
}

#[test]
fn the_expected_sha256_checks_a_body_read_directly() {
    let body = pseudo_random_bytes(200_000);
    let head = head_for(body.len(), "");
    let srv = ScriptServer::start(vec![staged(&head, &body, 4), staged(&head, &body, 4)]);
    let mut pool = RequestPool::new().unwrap();
    let mut settings = Settings::default();
    settings.body.expected_sha256 = Some(sha256(&body));
    let id = pool.get(srv.base_url(), &settings).unwrap();
    let done = finish(&mut pool, id);
    assert_eq!(done.result, RequestResult::Success, "{}", done.reason);
    assert!(done.body == body);
    let mut other = body.clone();
    other[0] ^= 1;
    settings.body.expected_sha256 = Some(sha256(&other));
    let id = pool.get(srv.base_url(), &settings).unwrap();
    let done = finish(&mut pool, id);
    assert_eq!(
        done.result,
        RequestResult::IntegrityFailed,
        "{}",
        done.reason
    );
    assert!(done.body.is_empty());
}

#[test]
fn a_body_read_directly_is_stored_whole_and_served_from_the_cache() {
    let body = pseudo_random_bytes(250_000);
    let head = head_for(body.len(), "Cache-Control: max-age=600\r\n");
    let srv = ScriptServer::start(vec![staged(&head, &body, 4)]);
    let mut pool = RequestPool::new().unwrap();
    let mut settings = Settings::default();
    settings.cache.cache = Some(Cache::memory(StoreLimits::default()));
    let id = pool.get(srv.base_url(), &settings).unwrap();
    let first = finish(&mut pool, id);
    assert_eq!(first.result, RequestResult::Success, "{}", first.reason);
    assert_eq!(first.cache, CacheStatus::Miss { stored: true });
    let id = pool.get(srv.base_url(), &settings).unwrap();
    let second = finish(&mut pool, id);
    assert_eq!(second.cache, CacheStatus::Hit);
    assert!(second.body == body, "the stored copy is the body");
    assert_eq!(srv.connections_accepted(), 1);
}

#[test]
fn a_body_cut_while_read_directly_hands_out_what_arrived() {
    let body = pseudo_random_bytes(200_000);
    let mut steps = staged(&head_for(300_000, ""), &body, 4);
    steps.push(Step::Close);
    let srv = ScriptServer::start(vec![steps]);
    let mut pool = RequestPool::new().unwrap();
    let id = pool.get(srv.base_url(), &Settings::default()).unwrap();
    let done = finish(&mut pool, id);
    assert_eq!(
        done.result,
        RequestResult::ChunkedBodySizeMismatch,
        "{}",
        done.reason
    );
    assert!(done.body.is_empty());
    assert!(
        done.partial_body == body,
        "every byte that arrived, no more"
    );
}

#[test]
fn a_cut_body_is_not_retried_and_a_503s_body_never_reaches_the_buffer() {
    let mut settings = Settings::default();
    let mut retry = RetryPolicy::new(1);
    retry.base_delay = Duration::from_millis(1);
    settings.retry = Some(retry);
    // Body bytes were handed to the sink when the connection was cut: the
    // request is not tried again (curl's `--retry` neither), and what
    // arrived is handed out.
    let long = vec![b'A'; 150_000];
    let mut cut = staged(&head_for(200_000, ""), &long, 3);
    cut.push(Step::Close);
    let srv = ScriptServer::start(vec![cut]);
    let mut pool = RequestPool::new().unwrap();
    let id = pool.get(srv.base_url(), &settings).unwrap();
    let done = finish(&mut pool, id);
    assert_eq!(
        (done.result, done.attempts),
        (RequestResult::ChunkedBodySizeMismatch, 1),
        "{}",
        done.reason
    );
    assert!(done.partial_body == long);
    // A 503's body (read while nothing is buffered) is drained, not
    // collected: the retry's shorter body alone is in the caller's buffer.
    let unavailable = format!(
        "HTTP/1.1 503 Service Unavailable\r\nContent-Length: {}\r\nRetry-After: 0\r\n\r\n",
        long.len()
    );
    let short = vec![b'B'; 50_000];
    let srv = ScriptServer::start(vec![
        staged(&unavailable, &long, 3),
        staged(&head_for(short.len(), ""), &short, 2),
    ]);
    let buffer = Vec::with_capacity(256 * 1024);
    let at = buffer.as_ptr();
    let id = pool.get(srv.base_url(), &settings).unwrap();
    pool.collect_into(id, buffer).unwrap();
    let done = finish(&mut pool, id);
    assert_eq!(
        (done.result, done.attempts),
        (RequestResult::Success, 2),
        "{}",
        done.reason
    );
    assert!(done.body == short, "the retry's body alone");
    assert_eq!(done.body.as_ptr(), at);
}

#[test]
fn http_request_reads_a_body_directly_too() {
    let body = pseudo_random_bytes(400_000);
    let srv = ScriptServer::start(vec![staged(&head_for(body.len(), ""), &body, 4)]);
    let mut req = HttpRequest::new();
    req.request(&srv.base_url(), &[], "GET", "").unwrap();
    let start = Instant::now();
    let done = loop {
        if let Some(done) = req.poll() {
            break done;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "not done in 30 s"
        );
        req.wait(Some(Duration::from_millis(50)));
    };
    assert_eq!(done.result, RequestResult::Success, "{}", done.reason);
    assert!(done.body == body);
}
