//! A process killed (SIGKILL) while it writes a response into a disk
//! cache never leaves an entry that is served torn: the next process gets
//! either nothing (and fetches again) or the whole, correct body.
//!
//! The child is this test binary run again on one ignored test
//! (`child_stores_one_response`), which downloads one large response into
//! the cache directory. The parent serves that response from a thread,
//! and kills the child once it has written a chosen number of body bytes,
//! at points spread over the whole body.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use pollhttp::{
    Cache, CacheMode, CacheSettings, CacheStatus, HttpRequest, RequestFailure, RequestResult,
    StoreLimits,
};
use pollhttp_tests::process::TempDir;

const LEN: usize = 4 << 20;

fn body() -> Vec<u8> {
    (0..LEN as u32)
        .map(|i| (i.wrapping_mul(2654435761) >> 24) as u8)
        .collect()
}

fn run(req: &mut HttpRequest, url: &str) -> pollhttp::Completed {
    req.request(url, &[], "GET", "").unwrap();
    pollhttp_tests::drive::run_request(req, Duration::from_secs(60))
}

fn request_with(cache: Cache, mode: CacheMode) -> HttpRequest {
    let mut req = HttpRequest::new();
    req.settings_mut().cache = CacheSettings {
        cache: Some(cache),
        mode,
    };
    req
}

/// The child: store the response at `POLLHTTP_CRASH_URL` into the cache in
/// `POLLHTTP_CRASH_DIR` (runs only when the parent sets them).
#[test]
#[ignore = "run by cache_writes_survive_a_kill_at_any_point as its child"]
fn child_stores_one_response() {
    let (Ok(url), Ok(dir)) = (
        std::env::var("POLLHTTP_CRASH_URL"),
        std::env::var("POLLHTTP_CRASH_DIR"),
    ) else {
        return;
    };
    let cache = Cache::disk(dir, StoreLimits::default()).unwrap();
    let mut req = request_with(cache, CacheMode::Default);
    let done = run(&mut req, &url);
    assert_eq!(done.cache, CacheStatus::Miss { stored: true });
}

/// Serve one response: the head, then the body in 64 KiB writes; at
/// `kill_at` body bytes, tell the parent and send nothing more (at the end
/// of the body, tell it after the last byte).
fn serve(listener: TcpListener, kill_at: usize, told: mpsc::Sender<()>) {
    let body = body();
    let Ok((mut s, _)) = listener.accept() else {
        return;
    };
    let mut buf = [0u8; 4096];
    let _ = s.read(&mut buf);
    let head = format!(
        "HTTP/1.1 200 OK\r\nContent-Length: {LEN}\r\nCache-Control: max-age=600\r\nETag: \"crash\"\r\n\r\n"
    );
    if s.write_all(head.as_bytes()).is_err() {
        return;
    }
    let mut sent = 0;
    let mut told = Some(told);
    for piece in body.chunks(64 << 10) {
        if sent >= kill_at {
            if let Some(t) = told.take() {
                let _ = t.send(());
            }
            // Send nothing more: wait (bounded) until the killed child's
            // socket closes.
            let _ = s.set_read_timeout(Some(Duration::from_secs(30)));
            while matches!(s.read(&mut buf), Ok(n) if n > 0) {}
            return;
        }
        if s.write_all(piece).is_err() {
            return;
        }
        sent += piece.len();
    }
    if let Some(t) = told.take() {
        let _ = t.send(());
    }
}

/// This test binary run again as the child that stores `url` into the
/// cache in `dir`.
fn child(url: &str, dir: &std::path::Path) -> Command {
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.args([
        "child_stores_one_response",
        "--exact",
        "--ignored",
        "--quiet",
    ])
    .env("POLLHTTP_CRASH_URL", url)
    .env("POLLHTTP_CRASH_DIR", dir)
    .stdout(Stdio::null())
    .stderr(Stdio::null());
    cmd
}

#[test]
fn cache_writes_survive_a_kill_at_any_point() {
    let expected = body();
    // Kill points over the whole body, and one after all of it was sent
    // (the child may or may not have renamed the entry into place).
    let points: Vec<usize> = (0..=8).map(|k| k * LEN / 8).collect();
    let mut served_whole = 0;
    for (round, &kill_at) in points.iter().enumerate() {
        let dir = TempDir::new(&format!("cache-crash-{round}")).unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/asset.bin", listener.local_addr().unwrap());
        let (tx, rx) = mpsc::channel();
        let server = std::thread::spawn(move || serve(listener, kill_at, tx));
        let mut child = child(&url, dir.path()).spawn().unwrap();
        let told = rx.recv_timeout(Duration::from_secs(60));
        assert!(
            told.is_ok(),
            "round {round}: the server never reached {kill_at} bytes"
        );
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        server.join().unwrap();

        // The next process: what is stored is whole or absent.
        let cache = Cache::disk(dir.path(), StoreLimits::default()).unwrap();
        let mut req = request_with(cache, CacheMode::OnlyIfCached);
        let done = run(&mut req, &url);
        match done.result {
            RequestResult::Success => {
                assert_eq!(done.cache, CacheStatus::Hit, "round {round}");
                assert!(
                    done.body[..] == expected[..],
                    "round {round}: a torn body was served"
                );
                served_whole += 1;
            }
            _ => assert!(
                matches!(done.failure, Some(RequestFailure::NotCached)),
                "round {round}: {:?}",
                done.failure
            ),
        }
        let entries = std::fs::read_dir(dir.path().join("entries"))
            .unwrap()
            .count();
        assert!(entries <= 1, "round {round}: {entries} entries");
    }
    // Killed before the end of the body, nothing was stored; the last
    // point (all sent) may have been stored whole.
    assert!(served_whole <= 1, "{served_whole} rounds served an entry");

    // The control: a child left to finish stores the whole response.
    let dir = TempDir::new("cache-crash-control").unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/asset.bin", listener.local_addr().unwrap());
    let (tx, _rx) = mpsc::channel();
    let server = std::thread::spawn(move || serve(listener, usize::MAX, tx));
    let status = child(&url, dir.path()).status().unwrap();
    assert!(status.success(), "the child failed: {status}");
    server.join().unwrap();
    let cache = Cache::disk(dir.path(), StoreLimits::default()).unwrap();
    let done = run(&mut request_with(cache, CacheMode::OnlyIfCached), &url);
    assert_eq!(
        (done.result, done.cache),
        (RequestResult::Success, CacheStatus::Hit)
    );
    assert!(done.body[..] == expected[..]);
}
