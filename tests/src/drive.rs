//! Drive a [`pollhttp::HttpClient`] the way a program with its own loop does,
//! recording the exact status sequence and counts (polls, pieces, bytes per
//! call; no call timings: one preempted call would make them anything);
//! every loop bounded in time.

use std::time::{Duration, Instant};

use pollhttp::{HttpClient, Status};

/// What one drive observed.
#[derive(Debug, Default)]
pub struct Observed {
    /// Every distinct status in order (consecutive repeats collapsed).
    pub statuses: Vec<Status>,
    /// Body bytes read.
    pub body: Vec<u8>,
    /// Number of `poll()` calls.
    pub polls: u64,
    /// Number of `read_response_body_chunk()` calls that returned bytes.
    pub chunks: u64,
    /// Most socket bytes (`HttpClient::bytes_read`) one `poll()` call read.
    pub max_poll_bytes: u64,
    /// Most socket bytes one `read_response_body_chunk()` call read.
    pub max_read_bytes: u64,
}

impl Observed {
    fn note(&mut self, s: Status) {
        if self.statuses.last() != Some(&s) {
            self.statuses.push(s);
        }
    }
}

/// Poll (sleeping in `wait`, never spinning) until `done(status)` holds, reading
/// the body as it comes. Panics after `limit`.
pub fn drive_until(
    client: &mut HttpClient,
    limit: Duration,
    mut done: impl FnMut(Status) -> bool,
) -> Observed {
    let mut obs = Observed::default();
    obs.note(client.status());
    let start = Instant::now();
    loop {
        if done(client.status()) {
            return obs;
        }
        assert!(
            start.elapsed() < limit,
            "still {:?} after {limit:?} (seen {:?}, failure {:?})",
            client.status(),
            obs.statuses,
            client.failure()
        );
        client.wait(Some(Duration::from_millis(50)));
        let before = client.bytes_read();
        let s = client.poll();
        obs.max_poll_bytes = obs
            .max_poll_bytes
            .max(client.bytes_read().saturating_sub(before));
        obs.polls += 1;
        obs.note(s);
        while client.status() == Status::Body {
            let before = client.bytes_read();
            let chunk = client.read_response_body_chunk();
            obs.max_read_bytes = obs
                .max_read_bytes
                .max(client.bytes_read().saturating_sub(before));
            obs.note(client.status());
            match chunk {
                Some(c) => {
                    obs.chunks += 1;
                    obs.body.extend_from_slice(&c);
                }
                None => break,
            }
        }
    }
}

/// Connect and drive until the connection is up or failed.
pub fn connect(client: &mut HttpClient, host: &str, port: u16, tls: bool) -> Observed {
    client
        .connect_to_host(host, Some(port), tls)
        .expect("connect_to_host accepted");
    drive_until(client, Duration::from_secs(20), |s| {
        !matches!(s, Status::Resolving | Status::Connecting)
    })
}

/// Send a request on a connected client and drive until the response ended
/// (or failed).
pub fn fetch(
    client: &mut HttpClient,
    method: &str,
    target: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Observed {
    client
        .request(method, target, headers, body)
        .expect("request accepted");
    drive_until(client, Duration::from_secs(60), |s| {
        !matches!(s, Status::Requesting | Status::Body)
    })
}

/// Poll an `HttpRequest` (sleeping in `wait` between polls, never spinning)
/// until it completes. Panics after `limit`, naming the status it was in.
pub fn run_request(req: &mut pollhttp::HttpRequest, limit: Duration) -> pollhttp::Completed {
    let start = Instant::now();
    loop {
        if let Some(done) = req.poll() {
            return done;
        }
        assert!(
            start.elapsed() < limit,
            "request did not finish in {limit:?} (status {:?})",
            req.http_client_status()
        );
        req.wait(Some(Duration::from_millis(50)));
    }
}
