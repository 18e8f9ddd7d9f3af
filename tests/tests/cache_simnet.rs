//! The HTTP cache (RFC 9111, a private cache) under the real request
//! layer, on the simulated network: what reaches the server, what the
//! caller gets, and what `Completed::cache` says. Time is two fake clocks:
//! the network's (deadlines) and the cache's wall clock (HTTP dates, ages).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use pollhttp::{
    Cache, CacheMode, CacheStatus, PollBudget, PoolSettings, RequestFailure, RequestPool,
    RequestResult, Settings, StoreLimits,
};
use pollhttp_tests::simnet::{ok, response, Answer, Reply, SimNet};

/// A wall clock that moves only when told to.
#[derive(Clone)]
struct Wall(Arc<AtomicU64>);

impl Wall {
    fn new() -> Wall {
        Wall(Arc::new(AtomicU64::new(1_700_000_000)))
    }
    fn clock(&self) -> pollhttp::WallClock {
        let secs = Arc::clone(&self.0);
        Arc::new(move || SystemTime::UNIX_EPOCH + Duration::from_secs(secs.load(Ordering::SeqCst)))
    }
    fn advance(&self, secs: u64) {
        self.0.fetch_add(secs, Ordering::SeqCst);
    }
    fn date(&self) -> String {
        httpdate::fmt_http_date(
            SystemTime::UNIX_EPOCH + Duration::from_secs(self.0.load(Ordering::SeqCst)),
        )
    }
}

fn memory_cache(wall: &Wall) -> Cache {
    Cache::memory(StoreLimits::default()).with_wall_clock(wall.clock())
}

fn cached(cache: &Cache, mode: CacheMode) -> Settings {
    Settings {
        cache: pollhttp::CacheSettings {
            cache: Some(cache.clone()),
            mode,
        },
        ..Settings::default()
    }
}

fn get(net: &mut SimNet, pool: &mut RequestPool, path: &str, s: &Settings) -> pollhttp::Completed {
    let id = pool.get(net.url("a.test", path), s).unwrap();
    net.finish(pool, id)
}

fn one_origin() -> (SimNet, RequestPool, Wall) {
    let mut net = SimNet::new();
    net.add_peer("a.test", Answer::Now);
    let pool = net.pool(PoolSettings::default());
    (net, pool, Wall::new())
}

#[test]
fn a_fresh_stored_response_answers_without_a_request() {
    let (mut net, mut pool, wall) = one_origin();
    let cache = memory_cache(&wall);
    let s = cached(&cache, CacheMode::Default);
    net.route(
        "a.test",
        "/asset",
        vec![Reply::Send(response(
            "200 OK",
            &[
                ("Cache-Control", "max-age=60"),
                ("Date", &wall.date()),
                ("ETag", "\"v1\""),
            ],
            b"texture bytes",
        ))],
    );
    let first = get(&mut net, &mut pool, "/asset", &s);
    assert_eq!(first.result, RequestResult::Success, "{}", first.reason);
    assert_eq!(first.cache, CacheStatus::Miss { stored: true });
    wall.advance(30);
    let second = get(&mut net, &mut pool, "/asset", &s);
    assert_eq!(second.result, RequestResult::Success, "{}", second.reason);
    assert_eq!(second.cache, CacheStatus::Hit);
    assert_eq!(&second.body[..], b"texture bytes");
    assert_eq!(second.response_code(), 200);
    let head = second.head.as_ref().unwrap();
    assert_eq!(head.fields().get_str("age"), Some("30"));
    assert_eq!(head.fields().get_str("etag"), Some("\"v1\""));
    assert_eq!(head.reason_str(), "OK");
    assert_eq!((second.wire_bytes, second.body_bytes), (0, 13));
    assert_eq!(net.received("a.test").len(), 1, "the hit made no request");
}

#[test]
fn a_stale_response_is_revalidated_and_a_304_answers_with_the_stored_body() {
    let (mut net, mut pool, wall) = one_origin();
    let cache = memory_cache(&wall);
    let s = cached(&cache, CacheMode::Default);
    net.route(
        "a.test",
        "/level",
        vec![
            Reply::Send(response(
                "200 OK",
                &[
                    ("Cache-Control", "max-age=10"),
                    ("ETag", "\"v1\""),
                    ("X-Version", "1"),
                ],
                b"level data",
            )),
            Reply::Send(response(
                "304 Not Modified",
                &[
                    ("Cache-Control", "max-age=100"),
                    ("ETag", "\"v1\""),
                    ("X-Version", "2"),
                ],
                b"",
            )),
        ],
    );
    assert_eq!(
        get(&mut net, &mut pool, "/level", &s).cache,
        CacheStatus::Miss { stored: true }
    );
    wall.advance(11);
    let second = get(&mut net, &mut pool, "/level", &s);
    assert_eq!(second.result, RequestResult::Success, "{}", second.reason);
    assert_eq!(second.cache, CacheStatus::Revalidated);
    assert_eq!(
        (second.response_code(), &second.body[..]),
        (200, &b"level data"[..])
    );
    assert_eq!(
        second.head.as_ref().unwrap().fields().get_str("x-version"),
        Some("2")
    );
    let sent = net.received("a.test");
    assert_eq!(sent.len(), 2);
    assert_eq!(sent[1].field("if-none-match").as_deref(), Some("\"v1\""));
    // Freshened by the 304's max-age=100: the next one is a hit.
    wall.advance(50);
    let third = get(&mut net, &mut pool, "/level", &s);
    assert_eq!(
        (third.cache, &third.body[..]),
        (CacheStatus::Hit, &b"level data"[..])
    );
    assert_eq!(net.received("a.test").len(), 2);
}

#[test]
fn a_changed_resource_replaces_the_stored_one() {
    let (mut net, mut pool, wall) = one_origin();
    let cache = memory_cache(&wall);
    let s = cached(&cache, CacheMode::Default);
    net.route(
        "a.test",
        "/x",
        vec![
            Reply::Send(response(
                "200 OK",
                &[("Cache-Control", "max-age=1"), ("ETag", "\"a\"")],
                b"old",
            )),
            Reply::Send(response(
                "200 OK",
                &[("Cache-Control", "max-age=60"), ("ETag", "\"b\"")],
                b"new",
            )),
        ],
    );
    get(&mut net, &mut pool, "/x", &s);
    wall.advance(5);
    let second = get(&mut net, &mut pool, "/x", &s);
    assert_eq!(
        (second.cache, &second.body[..]),
        (CacheStatus::Miss { stored: true }, &b"new"[..])
    );
    let third = get(&mut net, &mut pool, "/x", &s);
    assert_eq!(
        (third.cache, &third.body[..]),
        (CacheStatus::Hit, &b"new"[..])
    );
}

#[test]
fn no_store_and_a_vary_mismatch_go_to_the_network() {
    let (mut net, mut pool, wall) = one_origin();
    let cache = memory_cache(&wall);
    let s = cached(&cache, CacheMode::Default);
    net.route(
        "a.test",
        "/secret",
        vec![Reply::Send(response(
            "200 OK",
            &[("Cache-Control", "no-store, max-age=60")],
            b"s",
        ))],
    );
    net.route(
        "a.test",
        "/lang",
        vec![Reply::Send(response(
            "200 OK",
            &[("Cache-Control", "max-age=60"), ("Vary", "Accept-Language")],
            b"hei",
        ))],
    );
    for _ in 0..2 {
        let c = get(&mut net, &mut pool, "/secret", &s);
        assert_eq!(c.cache, CacheStatus::Miss { stored: false });
    }
    let fi = pool
        .request(
            net.url("a.test", "/lang"),
            &[("Accept-Language", "fi")],
            "GET",
            "",
            &s,
        )
        .unwrap();
    assert_eq!(
        net.finish(&mut pool, fi).cache,
        CacheStatus::Miss { stored: true }
    );
    let en = pool
        .request(
            net.url("a.test", "/lang"),
            &[("Accept-Language", "en")],
            "GET",
            "",
            &s,
        )
        .unwrap();
    assert_eq!(
        net.finish(&mut pool, en).cache,
        CacheStatus::Miss { stored: true }
    );
    let en_again = pool
        .request(
            net.url("a.test", "/lang"),
            &[("Accept-Language", "en")],
            "GET",
            "",
            &s,
        )
        .unwrap();
    assert_eq!(net.finish(&mut pool, en_again).cache, CacheStatus::Hit);
    assert_eq!(net.received("a.test").len(), 4);
}

#[test]
fn the_modes_only_if_cached_refresh_and_bypass() {
    let (mut net, mut pool, wall) = one_origin();
    let cache = memory_cache(&wall);
    net.route(
        "a.test",
        "/m",
        vec![Reply::Send(response(
            "200 OK",
            &[("Cache-Control", "max-age=60"), ("ETag", "\"m\"")],
            b"m",
        ))],
    );
    // Nothing stored: only-if-cached fails without asking the network.
    let offline = get(
        &mut net,
        &mut pool,
        "/m",
        &cached(&cache, CacheMode::OnlyIfCached),
    );
    assert_eq!(offline.result, RequestResult::RequestFailed);
    assert!(
        matches!(offline.failure, Some(RequestFailure::NotCached)),
        "{:?}",
        offline.failure
    );
    assert_eq!(net.received("a.test").len(), 0);
    // Bypass: neither read nor written.
    let by = get(
        &mut net,
        &mut pool,
        "/m",
        &cached(&cache, CacheMode::Bypass),
    );
    assert_eq!(by.cache, CacheStatus::NotUsed);
    let offline = get(
        &mut net,
        &mut pool,
        "/m",
        &cached(&cache, CacheMode::OnlyIfCached),
    );
    assert!(matches!(offline.failure, Some(RequestFailure::NotCached)));
    // Stored, then refreshed though fresh: a conditional request.
    get(
        &mut net,
        &mut pool,
        "/m",
        &cached(&cache, CacheMode::Default),
    );
    let refresh = get(
        &mut net,
        &mut pool,
        "/m",
        &cached(&cache, CacheMode::Refresh),
    );
    assert_eq!(refresh.cache, CacheStatus::Miss { stored: true });
    let sent = net.received("a.test");
    assert_eq!(
        sent.last().unwrap().field("if-none-match").as_deref(),
        Some("\"m\"")
    );
    // Offline play: a fresh entry is a hit, a stale one still answers.
    let only = cached(&cache, CacheMode::OnlyIfCached);
    let offline = get(&mut net, &mut pool, "/m", &only);
    assert_eq!(
        (offline.cache, &offline.body[..]),
        (CacheStatus::Hit, &b"m"[..])
    );
    wall.advance(3600);
    let offline = get(&mut net, &mut pool, "/m", &only);
    assert_eq!(
        (offline.cache, &offline.body[..]),
        (CacheStatus::Stale, &b"m"[..])
    );
    assert_eq!(net.received("a.test").len(), 3);
}

#[test]
fn an_unsafe_method_invalidates_the_stored_response() {
    let (mut net, mut pool, wall) = one_origin();
    let cache = memory_cache(&wall);
    let s = cached(&cache, CacheMode::Default);
    net.route(
        "a.test",
        "/save",
        vec![
            Reply::Send(response(
                "200 OK",
                &[("Cache-Control", "max-age=60")],
                b"v1",
            )),
            Reply::Send(ok(b"saved")),
            Reply::Send(response(
                "200 OK",
                &[("Cache-Control", "max-age=60")],
                b"v2",
            )),
        ],
    );
    get(&mut net, &mut pool, "/save", &s);
    assert_eq!(
        get(&mut net, &mut pool, "/save", &s).cache,
        CacheStatus::Hit
    );
    let post = pool
        .request(net.url("a.test", "/save"), &[], "POST", "data", &s)
        .unwrap();
    assert_eq!(net.finish(&mut pool, post).result, RequestResult::Success);
    let after = get(&mut net, &mut pool, "/save", &s);
    assert_eq!(
        (after.cache, &after.body[..]),
        (CacheStatus::Miss { stored: true }, &b"v2"[..])
    );
}

#[test]
fn a_gzip_body_is_stored_coded_and_decoded_on_a_hit_and_head_is_not_cached() {
    use std::io::Write;
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&[b'z'; 5000]).unwrap();
    let coded = gz.finish().unwrap();
    let (mut net, mut pool, wall) = one_origin();
    let cache = memory_cache(&wall);
    let s = cached(&cache, CacheMode::Default);
    net.route(
        "a.test",
        "/z",
        vec![Reply::Send(response(
            "200 OK",
            &[
                ("Cache-Control", "max-age=60"),
                ("Content-Encoding", "gzip"),
            ],
            &coded,
        ))],
    );
    let first = get(&mut net, &mut pool, "/z", &s);
    assert_eq!(
        (first.result, first.body.len()),
        (RequestResult::Success, 5000)
    );
    let hit = get(&mut net, &mut pool, "/z", &s);
    assert_eq!(hit.cache, CacheStatus::Hit);
    assert_eq!(hit.body.len(), 5000);
    assert!(hit.body.iter().all(|&b| b == b'z'));
    let len = coded.len().to_string();
    assert_eq!(
        hit.head
            .as_ref()
            .unwrap()
            .fields()
            .get_str("content-length"),
        Some(len.as_str())
    );
    let head = pool
        .request(net.url("a.test", "/z"), &[], "HEAD", "", &s)
        .unwrap();
    let head = net.finish(&mut pool, head);
    assert_eq!(head.cache, CacheStatus::NotUsed);
    assert_eq!(
        net.received("a.test").len(),
        2,
        "the HEAD went to the server"
    );
}

#[test]
fn a_disk_cache_answers_a_later_process_and_a_hit_respects_the_poll_budget() {
    let dir = std::env::temp_dir().join(format!("pollhttp-cache-simnet-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let wall = Wall::new();
    let big: Vec<u8> = (0..1_000_000u32).map(|i| (i % 253) as u8).collect();
    let mut net = SimNet::new();
    net.add_peer("a.test", Answer::Now);
    net.route(
        "a.test",
        "/big",
        vec![Reply::Send(response(
            "200 OK",
            &[("Cache-Control", "max-age=600")],
            &big,
        ))],
    );
    {
        let mut pool = net.pool(PoolSettings::default());
        let cache = Cache::disk(&dir, StoreLimits::default())
            .unwrap()
            .with_wall_clock(wall.clock());
        let first = get(
            &mut net,
            &mut pool,
            "/big",
            &cached(&cache, CacheMode::Default),
        );
        assert_eq!(first.cache, CacheStatus::Miss { stored: true });
    }
    // A new cache on the same directory (as a new launch would open), and
    // a pool whose poll reads at most 64 KiB.
    let mut pool = net.pool(PoolSettings {
        poll_budget: PollBudget::new(64 << 10, None),
        ..PoolSettings::default()
    });
    let cache = Cache::disk(&dir, StoreLimits::default())
        .unwrap()
        .with_wall_clock(wall.clock());
    let id = pool
        .get(
            net.url("a.test", "/big"),
            &cached(&cache, CacheMode::Default),
        )
        .unwrap();
    let mut polls = 0;
    let done = loop {
        polls += 1;
        assert!(polls < 1000, "{:?}", pool.progress(id));
        let before = pool.progress(id).map_or(0, |p| p.downloaded);
        pool.poll();
        if let Some(done) = pool.take_completed(id) {
            break done;
        }
        let after = pool.progress(id).map_or(0, |p| p.downloaded);
        assert!(
            after - before <= 64 << 10,
            "a poll read {} bytes",
            after - before
        );
    };
    assert_eq!(done.cache, CacheStatus::Hit);
    assert_eq!(done.body.len(), big.len());
    assert!(done.body[..] == big[..]);
    assert!(polls >= 1_000_000 / (64 << 10), "{polls} polls");
    assert_eq!(
        net.received("a.test").len(),
        1,
        "only the first launch asked"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn http_request_answers_from_the_cache_too() {
    let mut net = SimNet::new();
    net.add_peer("a.test", Answer::Now);
    let wall = Wall::new();
    let cache = memory_cache(&wall);
    net.route(
        "a.test",
        "/h",
        vec![Reply::Send(response(
            "200 OK",
            &[("Cache-Control", "max-age=60")],
            b"node",
        ))],
    );
    let mut req = net.http_request();
    *req.settings_mut() = cached(&cache, CacheMode::Default);
    for expected in [CacheStatus::Miss { stored: true }, CacheStatus::Hit] {
        req.request(&net.url("a.test", "/h"), &[], "GET", "")
            .unwrap();
        let done = net.finish_request(&mut req, 200).expect("completes");
        assert_eq!(
            (done.result, done.cache),
            (RequestResult::Success, expected)
        );
        assert_eq!(&done.body[..], b"node");
    }
    assert_eq!(net.received("a.test").len(), 1);
}

#[test]
fn stale_if_error_answers_when_the_origin_fails_or_says_503() {
    let (mut net, mut pool, wall) = one_origin();
    let cache = memory_cache(&wall);
    let s = cached(&cache, CacheMode::Default);
    net.route(
        "a.test",
        "/map",
        vec![
            Reply::Send(response(
                "200 OK",
                &[
                    ("Cache-Control", "max-age=1, stale-if-error=600"),
                    ("ETag", "\"m1\""),
                ],
                b"map v1",
            )),
            Reply::Send(response(
                "503 Service Unavailable",
                &[],
                b"down for maintenance",
            )),
            Reply::Reset,
            Reply::Send(response("503 Service Unavailable", &[], b"still down")),
        ],
    );
    assert_eq!(
        get(&mut net, &mut pool, "/map", &s).cache,
        CacheStatus::Miss { stored: true }
    );
    wall.advance(10);
    // A 503: the stale stored response answers.
    let c = get(&mut net, &mut pool, "/map", &s);
    assert_eq!(
        (c.result, c.cache),
        (RequestResult::Success, CacheStatus::Stale),
        "{}",
        c.reason
    );
    assert_eq!((c.response_code(), &c.body[..]), (200, &b"map v1"[..]));
    // A reset connection: the same.
    let c = get(&mut net, &mut pool, "/map", &s);
    assert_eq!(
        (c.result, c.cache),
        (RequestResult::Success, CacheStatus::Stale),
        "{}",
        c.reason
    );
    assert_eq!(&c.body[..], b"map v1");
    // Past stale-if-error's 600 s: the origin's 503 is the answer.
    wall.advance(700);
    let c = get(&mut net, &mut pool, "/map", &s);
    assert_eq!((c.result, c.response_code()), (RequestResult::Success, 503));
    assert_eq!(c.cache, CacheStatus::Miss { stored: false });
    assert_eq!(&c.body[..], b"still down");
    // The reset one was tried twice (the one safe retry of a request that
    // met a reset on a kept connection) before the stored one answered.
    assert_eq!(net.received("a.test").len(), 5);
}

#[test]
fn stale_while_revalidate_answers_at_once_and_the_pool_refreshes_behind() {
    let (mut net, mut pool, wall) = one_origin();
    let cache = memory_cache(&wall);
    let s = cached(&cache, CacheMode::Default);
    net.route(
        "a.test",
        "/news",
        vec![
            Reply::Send(response(
                "200 OK",
                &[
                    ("Cache-Control", "max-age=1, stale-while-revalidate=60"),
                    ("ETag", "\"n1\""),
                ],
                b"old news",
            )),
            Reply::Send(response(
                "200 OK",
                &[("Cache-Control", "max-age=600"), ("ETag", "\"n2\"")],
                b"new news",
            )),
        ],
    );
    get(&mut net, &mut pool, "/news", &s);
    wall.advance(10);
    // Stale within stale-while-revalidate: the stored answer, at once.
    let stale = get(&mut net, &mut pool, "/news", &s);
    assert_eq!(
        (stale.cache, &stale.body[..]),
        (CacheStatus::Stale, &b"old news"[..])
    );
    assert_eq!(pool.in_flight(), 0, "the revalidation is not the caller's");
    // Behind it, the pool revalidates (If-None-Match) and stores the answer.
    for _ in 0..200 {
        net.step();
        pool.poll();
        assert!(
            pool.poll_completed().is_none(),
            "no completion for the caller"
        );
        if net.received("a.test").len() == 2 && cache_has(&cache, &net) {
            break;
        }
    }
    let sent = net.received("a.test");
    assert_eq!(sent.len(), 2);
    assert_eq!(sent[1].field("if-none-match").as_deref(), Some("\"n1\""));
    let fresh = get(&mut net, &mut pool, "/news", &s);
    assert_eq!(
        (fresh.cache, &fresh.body[..]),
        (CacheStatus::Hit, &b"new news"[..])
    );
    assert_eq!(net.received("a.test").len(), 2);
}

/// Whether the cache holds the new answer to `/news` (an only-if-cached
/// look on a throwaway pool of the same network).
fn cache_has(cache: &Cache, net: &SimNet) -> bool {
    let mut pool = net.pool(PoolSettings::default());
    let id = pool
        .get(
            net.url("a.test", "/news"),
            &cached(cache, CacheMode::OnlyIfCached),
        )
        .unwrap();
    for _ in 0..50 {
        pool.poll();
        if let Some(c) = pool.take_completed(id) {
            return c.cache == CacheStatus::Hit && &c.body[..] == b"new news";
        }
    }
    false
}

#[test]
fn http_request_revalidates_first_within_stale_while_revalidate() {
    let mut net = SimNet::new();
    net.add_peer("a.test", Answer::Now);
    let wall = Wall::new();
    let cache = memory_cache(&wall);
    net.route(
        "a.test",
        "/n",
        vec![
            Reply::Send(response(
                "200 OK",
                &[
                    ("Cache-Control", "max-age=1, stale-while-revalidate=60"),
                    ("ETag", "\"1\""),
                ],
                b"old",
            )),
            Reply::Send(response(
                "200 OK",
                &[("Cache-Control", "max-age=60")],
                b"new",
            )),
        ],
    );
    let mut req = net.http_request();
    *req.settings_mut() = cached(&cache, CacheMode::Default);
    req.request(&net.url("a.test", "/n"), &[], "GET", "")
        .unwrap();
    net.finish_request(&mut req, 200).expect("completes");
    wall.advance(10);
    // One request at a time, no background: the answer waits for the
    // revalidation.
    req.request(&net.url("a.test", "/n"), &[], "GET", "")
        .unwrap();
    let done = net.finish_request(&mut req, 200).expect("completes");
    assert_eq!(
        (done.cache, &done.body[..]),
        (CacheStatus::Miss { stored: true }, &b"new"[..])
    );
    assert_eq!(
        net.received("a.test")[1].field("if-none-match").as_deref(),
        Some("\"1\"")
    );
}

#[test]
fn a_hit_collects_into_the_callers_buffer() {
    let (mut net, mut pool, wall) = one_origin();
    let cache = memory_cache(&wall);
    let s = cached(&cache, CacheMode::Default);
    net.route(
        "a.test",
        "/arena",
        vec![Reply::Send(response(
            "200 OK",
            &[("Cache-Control", "max-age=60")],
            b"arena bytes",
        ))],
    );
    get(&mut net, &mut pool, "/arena", &s);
    let id = pool.get(net.url("a.test", "/arena"), &s).unwrap();
    let mut buffer = Vec::with_capacity(64);
    buffer.extend_from_slice(b"old");
    let at = buffer.as_ptr();
    pool.collect_into(id, buffer)
        .expect("a hit takes the buffer too");
    let done = net.finish(&mut pool, id);
    assert_eq!(
        (done.cache, &done.body[..]),
        (CacheStatus::Hit, &b"arena bytes"[..])
    );
    assert_eq!(done.body.as_ptr(), at, "collected into the caller's buffer");
}

#[test]
fn an_entry_deleted_by_hand_or_damaged_is_fetched_again() {
    let dir = std::env::temp_dir().join(format!("pollhttp-cache-deleted-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let (mut net, mut pool, wall) = one_origin();
    let cache = Cache::disk(&dir, StoreLimits::default())
        .unwrap()
        .with_wall_clock(wall.clock());
    let s = cached(&cache, CacheMode::Default);
    net.route(
        "a.test",
        "/d",
        vec![Reply::Send(response(
            "200 OK",
            &[("Cache-Control", "max-age=600")],
            b"asset",
        ))],
    );
    get(&mut net, &mut pool, "/d", &s);
    // An entry is its metadata (`entries/`) and its body (`bodies/`).
    let file_in = |sub: &str| {
        std::fs::read_dir(dir.join(sub))
            .unwrap()
            .next()
            .expect("one entry")
            .unwrap()
            .path()
    };
    // Deleted by hand (its two files): a miss, fetched and stored again.
    std::fs::remove_file(file_in("entries")).unwrap();
    std::fs::remove_file(file_in("bodies")).unwrap();
    let c = get(&mut net, &mut pool, "/d", &s);
    assert_eq!(
        (c.cache, &c.body[..]),
        (CacheStatus::Miss { stored: true }, &b"asset"[..])
    );
    // Damaged (its body bytes changed): never served as good (the request
    // fails, typed), the entry is removed, and the next one fetches it.
    let path = file_in("bodies");
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[0] ^= 0xff;
    std::fs::write(&path, bytes).unwrap();
    let c = get(&mut net, &mut pool, "/d", &s);
    assert_eq!(c.result, RequestResult::RequestFailed);
    assert!(
        matches!(&c.failure, Some(RequestFailure::CacheRead(e)) if e.kind() == std::io::ErrorKind::InvalidData),
        "{:?}",
        c.failure
    );
    assert!(c.body.is_empty(), "nothing handed out");
    let c = get(&mut net, &mut pool, "/d", &s);
    assert_eq!(
        (c.cache, &c.body[..]),
        (CacheStatus::Miss { stored: true }, &b"asset"[..])
    );
    assert_eq!(net.received("a.test").len(), 3);
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A request the cache answers needs no connection: with the origin's only
/// connection held by a request that never ends and another request
/// waiting for it, a fresh hit (and an only-if-cached miss) queued behind
/// that one still completes, and nothing more is sent.
#[test]
fn a_hit_does_not_wait_for_a_connection() {
    let mut net = SimNet::new();
    net.add_peer("a.test", Answer::Now);
    let mut pool = net.pool(PoolSettings {
        max_connections_per_origin: 1,
        ..PoolSettings::default()
    });
    let wall = Wall::new();
    let cache = memory_cache(&wall);
    let s = cached(&cache, CacheMode::Default);
    net.route(
        "a.test",
        "/asset",
        vec![Reply::Send(response(
            "200 OK",
            &[("Cache-Control", "max-age=600")],
            b"stored",
        ))],
    );
    net.route("a.test", "/stall", vec![Reply::Stall]);
    assert_eq!(
        get(&mut net, &mut pool, "/asset", &s).cache,
        CacheStatus::Miss { stored: true }
    );
    let stalled = pool.get(net.url("a.test", "/stall"), &s).unwrap();
    net.settle(&mut pool, 50);
    assert_eq!(
        pool.in_flight(),
        1,
        "the stalled request holds the connection"
    );
    // Waits for the connection, ahead of the hit in the queue.
    let queued = pool.get(net.url("a.test", "/other"), &s).unwrap();
    let hit = pool.get(net.url("a.test", "/asset"), &s).unwrap();
    let offline = pool
        .get(
            net.url("a.test", "/never-stored"),
            &cached(&cache, CacheMode::OnlyIfCached),
        )
        .unwrap();
    let done = net.settle(&mut pool, 50);
    let of = |id| done.iter().find(|(i, _)| *i == id).map(|(_, c)| c);
    let hit = of(hit).expect("the hit completed");
    assert_eq!(
        (hit.cache, &hit.body[..]),
        (CacheStatus::Hit, &b"stored"[..])
    );
    let offline = of(offline).expect("the only-if-cached miss completed");
    assert!(matches!(offline.failure, Some(RequestFailure::NotCached)));
    assert!(of(stalled).is_none(), "the stalled request still runs");
    assert!(of(queued).is_none(), "the request ahead still waits");
    assert_eq!(
        net.received("a.test").len(),
        2,
        "the miss and the stalled request"
    );
    pool.cancel(stalled);
    pool.cancel(queued);
}

/// A redirect to a name the cache holds: the target is looked up as a
/// request for it would be (a fresh answer serves it, no request for it),
/// a target fetched through a redirect is stored under its own URL, and
/// the conditional fields made for the first URL's stored response never
/// go to the target.
#[test]
fn a_redirect_to_a_cached_name_is_answered_and_stored_under_the_target() {
    let (mut net, mut pool, wall) = one_origin();
    let cache = memory_cache(&wall);
    let s = cached(&cache, CacheMode::Default);
    let redirect = |to: &str| {
        Reply::Send(response(
            "302 Found",
            &[("Location", to), ("Cache-Control", "no-store")],
            b"",
        ))
    };
    let fresh = |body: &[u8]| {
        Reply::Send(response(
            "200 OK",
            &[("Cache-Control", "max-age=600")],
            body,
        ))
    };
    net.route("a.test", "/b", vec![fresh(b"B")]);
    net.route("a.test", "/to-b", vec![redirect("/b"), redirect("/b")]);
    assert_eq!(
        get(&mut net, &mut pool, "/b", &s).cache,
        CacheStatus::Miss { stored: true }
    );
    let c = get(&mut net, &mut pool, "/to-b", &s);
    assert_eq!(
        (c.result, c.cache, &c.body[..], c.redirects),
        (RequestResult::Success, CacheStatus::Hit, &b"B"[..], 1)
    );
    assert!(c.final_url.ends_with("/b"), "{}", c.final_url);
    let lines = net.request_lines("a.test");
    assert_eq!(
        lines,
        ["GET /b HTTP/1.1", "GET /to-b HTTP/1.1"],
        "no request for /b"
    );

    // Fetched through a redirect: stored under the target's URL.
    net.route("a.test", "/to-c", vec![redirect("/c")]);
    net.route("a.test", "/c", vec![fresh(b"C")]);
    let c = get(&mut net, &mut pool, "/to-c", &s);
    assert_eq!(
        (c.cache, &c.body[..]),
        (CacheStatus::Miss { stored: true }, &b"C"[..])
    );
    let c = get(&mut net, &mut pool, "/c", &s);
    assert_eq!((c.cache, &c.body[..]), (CacheStatus::Hit, &b"C"[..]));
    assert_eq!(net.received("a.test").len(), 4);

    // A stale entry under the first URL, which now redirects: its
    // If-None-Match goes to the first URL only.
    net.route(
        "a.test",
        "/moved",
        vec![
            Reply::Send(response(
                "200 OK",
                &[("Cache-Control", "max-age=1"), ("ETag", "\"old\"")],
                b"old",
            )),
            redirect("/new"),
        ],
    );
    net.route("a.test", "/new", vec![fresh(b"new")]);
    get(&mut net, &mut pool, "/moved", &s);
    wall.advance(10);
    let c = get(&mut net, &mut pool, "/moved", &s);
    assert_eq!(
        (c.result, &c.body[..]),
        (RequestResult::Success, &b"new"[..])
    );
    let received = net.received("a.test");
    let head =
        |r: &pollhttp_tests::simnet::Received| String::from_utf8_lossy(&r.raw).to_lowercase();
    let n = received.len();
    assert!(head(&received[n - 2]).contains("if-none-match: \"old\""));
    assert!(received[n - 1].request_line().starts_with("GET /new "));
    assert!(
        !head(&received[n - 1]).contains("if-none-match"),
        "{}",
        head(&received[n - 1])
    );
}

/// A resumed download (a `Range` request for the rest of a partial file)
/// with a cache: it goes to the network as it is (the stored whole
/// response does not answer it, the 206 is not stored), the file is
/// completed, and the stored response still answers a plain request.
#[test]
fn a_resumed_download_bypasses_the_cache() {
    let (mut net, mut pool, wall) = one_origin();
    let cache = memory_cache(&wall);
    let s = cached(&cache, CacheMode::Default);
    let body: Vec<u8> = (0..100u8).collect();
    net.route(
        "a.test",
        "/asset",
        vec![
            Reply::Send(response(
                "200 OK",
                &[("Cache-Control", "max-age=600")],
                &body,
            )),
            Reply::Send(response(
                "206 Partial Content",
                &[
                    ("Cache-Control", "max-age=600"),
                    ("Content-Range", "bytes 7-99/100"),
                ],
                &body[7..],
            )),
        ],
    );
    assert_eq!(
        get(&mut net, &mut pool, "/asset", &s).cache,
        CacheStatus::Miss { stored: true }
    );
    let dir = pollhttp_tests::process::TempDir::new("cache-resume").unwrap();
    let file = dir.path().join("asset.bin");
    std::fs::write(&file, &body[..7]).unwrap();
    let resume = Settings {
        body: pollhttp::BodySettings {
            download_file: Some(file.clone()),
            resume: true,
            ..Default::default()
        },
        ..s.clone()
    };
    let c = get(&mut net, &mut pool, "/asset", &resume);
    assert_eq!(
        (c.result, c.response_code(), c.cache),
        (RequestResult::Success, 206, CacheStatus::NotUsed),
        "{}",
        c.reason
    );
    let sent = &net.received("a.test")[1];
    assert_eq!(sent.field("range").as_deref(), Some("bytes=7-"));
    assert_eq!(std::fs::read(&file).unwrap(), body, "the file is whole");
    let c = get(&mut net, &mut pool, "/asset", &s);
    assert_eq!(
        (c.cache, &c.body[..]),
        (CacheStatus::Hit, &body[..]),
        "the 200 is still stored"
    );
    assert_eq!(net.received("a.test").len(), 2);
}

/// A stored body larger than the asking request's body size limit (read
/// from a disk store straight into the body's memory): the request fails
/// with the limit, exactly, hands out no body, and the entry stays for a
/// request without that limit.
#[test]
fn a_stored_body_over_the_requests_size_limit_fails_with_the_limit() {
    let dir = pollhttp_tests::process::TempDir::new("cache-limit").unwrap();
    let (mut net, mut pool, wall) = one_origin();
    let cache = Cache::disk(dir.path(), StoreLimits::default())
        .unwrap()
        .with_wall_clock(wall.clock());
    let s = cached(&cache, CacheMode::Default);
    let body = vec![b'x'; 100_000];
    net.route(
        "a.test",
        "/big",
        vec![Reply::Send(response(
            "200 OK",
            &[("Cache-Control", "max-age=600")],
            &body,
        ))],
    );
    assert_eq!(
        get(&mut net, &mut pool, "/big", &s).cache,
        CacheStatus::Miss { stored: true }
    );
    let mut limited = s.clone();
    limited.body.size_limit = Some(10_000);
    let c = get(&mut net, &mut pool, "/big", &limited);
    assert_eq!(
        (c.result, c.cache),
        (RequestResult::BodySizeLimitExceeded, CacheStatus::Hit)
    );
    assert!(
        matches!(
            c.failure,
            Some(RequestFailure::BodySizeLimit { limit: 10_000 })
        ),
        "{:?}",
        c.failure
    );
    assert!(c.body.is_empty());
    let c = get(&mut net, &mut pool, "/big", &s);
    assert_eq!(
        (c.result, c.cache, c.body.len()),
        (RequestResult::Success, CacheStatus::Hit, 100_000)
    );
    assert_eq!(net.received("a.test").len(), 1);
}
