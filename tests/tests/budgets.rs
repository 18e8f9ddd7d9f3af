//! One poll budget type for every front end ([`PollBudget`]: bytes and
//! time), and one frame budget many `HttpRequest`s share ([`FrameBudget`]),
//! against nginx. Time is a fake clock that moves a fixed step at each
//! reading, so every bound is a count of bytes, never a wall-clock sample.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use pollhttp::{FrameBudget, HttpClient, HttpRequest, PollBudget, RequestResult, Status};
use pollhttp_tests::drive::connect;
use pollhttp_tests::nginx::{Nginx, NginxOptions, ONE_M_LEN};

/// A clock that moves `step` at every reading.
fn stepping_clock(step: Duration) -> pollhttp::Clock {
    let start = Instant::now();
    let ticks = Arc::new(AtomicU64::new(0));
    Arc::new(move || start + step * ticks.fetch_add(1, Ordering::Relaxed) as u32)
}

#[test]
fn every_front_end_has_the_same_default_budget() {
    let budget = PollBudget::default();
    assert_eq!(
        budget,
        PollBudget::new(4 << 20, Some(Duration::from_millis(1)))
    );
    assert_eq!(HttpClient::new().unwrap().poll_budget(), budget);
    assert_eq!(HttpRequest::new().poll_budget(), budget);
    assert_eq!(pollhttp::PoolSettings::default().poll_budget, budget);
}

/// `HttpClient`: once a poll's time has passed, the chunk reads after it
/// hand out what proto holds and read nothing more, whatever bytes the
/// budget has left. With the clock moving 1 ms per reading and a 1 ms
/// budget, a poll and its drain loop read at most the poll's own pump;
/// without the time, the same loop reads up to the bytes.
#[test]
fn http_client_stops_reading_when_the_polls_time_has_passed() {
    const LEN: u64 = 8 << 20;
    let nginx = Nginx::start_with(NginxOptions {
        big_file_len: LEN,
        ..NginxOptions::default()
    });
    let most_per_frame = |time: Option<Duration>| {
        let mut c = HttpClient::with_clock(stepping_clock(Duration::from_millis(1))).unwrap();
        c.set_poll_budget(PollBudget::new(64 << 20, time));
        connect(&mut c, "127.0.0.1", nginx.http_port, false);
        c.request("GET", "/big.bin", &[("Accept", "*/*")], b"")
            .unwrap();
        let (mut body, mut most, mut frames) = (0u64, 0u64, 0);
        while matches!(c.status(), Status::Requesting | Status::Body) {
            frames += 1;
            assert!(frames < 100_000, "{body} bytes of body");
            c.wait(Some(Duration::from_millis(100)));
            let before = c.bytes_read();
            c.poll();
            while let Some(chunk) = c.read_response_body_chunk() {
                body += chunk.len() as u64;
            }
            most = most.max(c.bytes_read() - before);
        }
        assert_eq!(
            (c.status(), body),
            (Status::Connected, LEN),
            "{:?}",
            c.failure()
        );
        most
    };
    let timed = most_per_frame(Some(Duration::from_millis(1)));
    // The poll's own pump: at most proto's receive buffer (one gulp, 512
    // KiB: reads grow to it while they fill it, issue 21), which proto holds
    // until it is taken.
    assert!(
        timed <= 512 << 10,
        "a frame read {timed} bytes past its time"
    );
    let untimed = most_per_frame(None);
    assert!(
        untimed > timed,
        "without a time the drain loop reads on ({untimed} vs {timed})"
    );
}

/// `HttpRequest`: a poll works in turns and reads the clock between them;
/// once the time has passed it starts no other turn.
#[test]
fn http_request_stops_turns_when_the_polls_time_has_passed() {
    let nginx = Nginx::start();
    let mut req = HttpRequest::with_clock(stepping_clock(Duration::from_millis(1)));
    req.set_poll_budget(PollBudget::new(64 << 20, Some(Duration::from_millis(1))));
    req.settings_mut().body.accept_gzip = false;
    req.request(&nginx.url("/1m.bin"), &[], "GET", "").unwrap();
    let (mut most, mut polls) = (0u64, 0);
    let done = loop {
        polls += 1;
        assert!(polls < 100_000);
        req.wait(Some(Duration::from_millis(100)));
        let before = req.downloaded_bytes();
        let done = req.poll();
        most = most.max(req.downloaded_bytes().saturating_sub(before));
        if let Some(done) = done {
            break done;
        }
    };
    assert_eq!(done.result, RequestResult::Success, "{:?}", done.failure);
    assert_eq!(done.body.len(), ONE_M_LEN);
    // The first turn, before the cost per byte is measured, reads 16 KiB;
    // a measured one what its cost fits in the time left.
    assert!(
        most <= 16 << 10,
        "a poll read {most} body bytes past its time"
    );
}

/// Twenty `HttpRequest`s (Godot's one node per download) share one frame
/// budget: the bytes all of them read in a frame never pass it, and every
/// download still completes.
#[test]
fn many_http_requests_share_one_frame_budget() {
    const FRAME_BYTES: usize = 256 << 10;
    let nginx = Nginx::start();
    let frame = FrameBudget::new(PollBudget::new(FRAME_BYTES, None));
    let mut downloads: Vec<HttpRequest> = (0..20)
        .map(|_| {
            let mut r = HttpRequest::new();
            r.settings_mut().body.accept_gzip = false;
            r.set_frame_budget(Some(frame.clone()));
            r.request(&nginx.url("/1m.bin"), &[], "GET", "").unwrap();
            r
        })
        .collect();
    let mut done = vec![None; downloads.len()];
    let mut frames = 0;
    let mut spent_frames = 0;
    while done.iter().any(Option::is_none) {
        frames += 1;
        assert!(frames < 20_000, "{frames} frames");
        frame.begin(Instant::now());
        let mut read = 0u64;
        // Rotate who goes first, so each gets its share.
        let n = downloads.len();
        for k in 0..n {
            let i = (k + frames) % n;
            if done[i].is_some() {
                continue;
            }
            let before = downloads[i].downloaded_bytes();
            let got = downloads[i].poll();
            read += downloads[i].downloaded_bytes().saturating_sub(before);
            if let Some(c) = got {
                done[i] = Some(c.result);
            }
        }
        assert!(
            read <= FRAME_BYTES as u64,
            "frame {frames} read {read} body bytes"
        );
        if frame.bytes_left() == 0 {
            spent_frames += 1;
        } else {
            std::thread::sleep(Duration::from_millis(1));
        }
    }
    assert!(
        done.iter().all(|r| *r == Some(RequestResult::Success)),
        "{done:?}"
    );
    // 20 MiB at 256 KiB a frame is at least 80 frames.
    assert!(frames >= 80, "{frames} frames");
    assert!(spent_frames > 0, "the budget bounded some frame");
}
