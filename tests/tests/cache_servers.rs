//! The HTTP cache against real servers: nginx's validators on static files
//! (`ETag`, `Last-Modified`, no `Cache-Control`) and httpbin's cache
//! endpoints (`/cache/{n}`, `/etag/{etag}`, `/response-headers`).

use std::time::Duration;

use pollhttp::{
    Cache, CacheMode, CacheSettings, CacheStatus, Completed, HttpRequest, RequestResult,
    StoreLimits,
};
use pollhttp_tests::httpbin::Httpbin;
use pollhttp_tests::nginx::{Nginx, HELLO_BODY};
use pollhttp_tests::process::TempDir;

fn run(req: &mut HttpRequest, url: &str) -> Completed {
    req.request(url, &[], "GET", "").unwrap();
    pollhttp_tests::drive::run_request(req, Duration::from_secs(60))
}

fn with_cache(cache: &Cache) -> HttpRequest {
    let mut req = HttpRequest::new();
    req.settings_mut().cache = CacheSettings {
        cache: Some(cache.clone()),
        mode: CacheMode::Default,
    };
    req
}

#[test]
fn nginx_static_files_are_revalidated_with_their_validators() {
    let nginx = Nginx::start();
    let dir = TempDir::new("cache-nginx").unwrap();
    let cache = Cache::disk(dir.path(), StoreLimits::default()).unwrap();
    let mut req = with_cache(&cache);
    let url = nginx.url("/hello.txt");
    let first = run(&mut req, &url);
    assert_eq!(first.result, RequestResult::Success, "{}", first.reason);
    assert_eq!(first.cache, CacheStatus::Miss { stored: true });
    // A file written moments ago has a heuristic lifetime of a tenth of its
    // age (about nothing); an hour later on the cache's clock it is stale
    // for sure. The request revalidates, and nginx says 304.
    let later = std::time::SystemTime::now() + Duration::from_secs(3600);
    let mut req = with_cache(
        &cache
            .clone()
            .with_wall_clock(std::sync::Arc::new(move || later)),
    );
    let second = run(&mut req, &url);
    assert_eq!(second.result, RequestResult::Success, "{}", second.reason);
    assert_eq!(second.cache, CacheStatus::Revalidated);
    assert_eq!(&second.body[..], HELLO_BODY.as_bytes());
    assert_eq!(second.response_code(), 200);
    // nginx logs a request as it ends: wait (bounded) for both lines.
    let statuses = |log: &str| -> Vec<String> {
        log.lines()
            .filter(|l| l.contains("/hello.txt"))
            .filter_map(|l| Some(l.split('"').nth(2)?.split_whitespace().next()?.to_string()))
            .collect()
    };
    let mut log = String::new();
    for _ in 0..100 {
        log = nginx.access_log();
        if statuses(&log).len() >= 2 {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let statuses = statuses(&log);
    assert_eq!(statuses, ["200", "304"], "{log}");
}

#[test]
fn httpbin_cache_max_age_and_etag() {
    let httpbin = Httpbin::start();
    let cache = Cache::memory(StoreLimits::default());
    let mut req = with_cache(&cache);
    // /cache/60: Cache-Control: public, max-age=60.
    let url = httpbin.url("/cache/60");
    assert_eq!(
        run(&mut req, &url).cache,
        CacheStatus::Miss { stored: true }
    );
    let hit = run(&mut req, &url);
    assert_eq!(
        (hit.result, hit.cache),
        (RequestResult::Success, CacheStatus::Hit)
    );
    assert!(hit.body.len() > 10, "httpbin's JSON");
    // /etag/{etag}: an ETag without freshness: revalidated with
    // If-None-Match, and httpbin answers 304.
    let url = httpbin.url("/etag/abc");
    assert_eq!(
        run(&mut req, &url).cache,
        CacheStatus::Miss { stored: true }
    );
    let again = run(&mut req, &url);
    assert_eq!(
        (again.result, again.cache),
        (RequestResult::Success, CacheStatus::Revalidated)
    );
    assert_eq!(again.response_code(), 200);
    // no-store via /response-headers: never stored.
    let url = httpbin.url("/response-headers?Cache-Control=no-store");
    for _ in 0..2 {
        assert_eq!(
            run(&mut req, &url).cache,
            CacheStatus::Miss { stored: false }
        );
    }
}
