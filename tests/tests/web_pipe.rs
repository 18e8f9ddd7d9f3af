//! A download piped straight into an upload (got's `stream.pipeline`) on
//! one `RequestPool`: 1 GiB through, the sink checks the sha256, and the
//! process's peak RSS stays a few MiB over where it started. Its own test
//! binary, so the peak belongs to this test alone.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Ipv4Addr, TcpListener};
use std::thread;
use std::time::{Duration, Instant};

use pollhttp::{RequestError, RequestFailure, RequestPool, RequestResult, Settings};
use pollhttp_tests::script::{ScriptServer, Step};
use sha2::{Digest, Sha256};

/// Bytes piped (1 GiB unless `POLLHTTP_PIPE_BYTES` says otherwise).
fn pipe_bytes() -> u64 {
    std::env::var("POLLHTTP_PIPE_BYTES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1 << 30)
}

fn status_kib(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// A server that reads one chunked request body, hashing it as it comes,
/// and answers with the sha256 in hex. Bounded by socket timeouts.
fn hashing_sink() -> (u16, thread::JoinHandle<Option<(String, u64)>>) {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    let port = listener.local_addr().unwrap().port();
    let handle = thread::spawn(move || {
        let (stream, _) = listener.accept().ok()?;
        stream
            .set_read_timeout(Some(Duration::from_secs(30)))
            .ok()?;
        let mut out = stream.try_clone().ok()?;
        let mut r = BufReader::with_capacity(256 * 1024, stream);
        let mut line = String::new();
        let mut chunked = false;
        loop {
            line.clear();
            r.read_line(&mut line).ok()?;
            if line == "\r\n" || line.is_empty() {
                break;
            }
            let lower = line.to_ascii_lowercase();
            chunked |= lower.starts_with("transfer-encoding:") && lower.contains("chunked");
        }
        assert!(chunked, "the piped upload is sent chunked");
        let mut hash = Sha256::new();
        let mut total = 0u64;
        let mut buf = vec![0u8; 256 * 1024];
        loop {
            line.clear();
            r.read_line(&mut line).ok()?;
            let size = u64::from_str_radix(line.trim().split(';').next()?, 16).ok()?;
            if size == 0 {
                line.clear();
                r.read_line(&mut line).ok()?; // the empty trailer section
                break;
            }
            let mut left = size;
            while left > 0 {
                let n = (left as usize).min(buf.len());
                r.read_exact(&mut buf[..n]).ok()?;
                hash.update(&buf[..n]);
                left -= n as u64;
            }
            total += size;
            let mut crlf = [0u8; 2];
            r.read_exact(&mut crlf).ok()?;
        }
        let hex: String = hash.finalize().iter().map(|b| format!("{b:02x}")).collect();
        let reply = format!("HTTP/1.1 200 OK\r\nContent-Length: 64\r\n\r\n{hex}");
        out.write_all(reply.as_bytes()).ok()?;
        Some((hex, total))
    });
    (port, handle)
}

fn pattern() -> Vec<u8> {
    (0..65_521u32).map(|i| (i * 31 % 251) as u8).collect()
}

fn expected_sha256(total: u64) -> String {
    let chunk = pattern();
    let mut hash = Sha256::new();
    let mut left = total;
    while left > 0 {
        let n = (left as usize).min(chunk.len());
        hash.update(&chunk[..n]);
        left -= n as u64;
    }
    hash.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// The tests of this binary run one at a time: the peak RSS is one test's.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

#[test]
fn a_download_piped_into_an_upload_holds_a_few_mib() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let total = pipe_bytes();
    let source = ScriptServer::start_with_timeout(
        vec![vec![
            Step::ReadRequest,
            Step::write(format!(
                "HTTP/1.1 200 OK\r\nContent-Length: {total}\r\n\r\n"
            )),
            Step::WriteRepeated {
                chunk: pattern(),
                total,
            },
        ]],
        Duration::from_secs(60),
    );
    let (sink_port, sink) = hashing_sink();
    let rss_before = status_kib("VmRSS:");

    let mut pool = RequestPool::new().unwrap();
    let settings = Settings {
        timeouts: pollhttp::Timeouts {
            total: Some(Duration::from_secs(300)),
            ..Default::default()
        },
        ..Settings::default()
    };
    let download = pool
        .request(
            format!("{}/big", source.base_url()),
            &[],
            "GET",
            pollhttp::RequestBody::Empty,
            &settings,
        )
        .unwrap();
    let upload = pool
        .pipe(
            download,
            format!("http://127.0.0.1:{sink_port}/put"),
            &[("Content-Type", "application/octet-stream")],
            "PUT",
            &settings,
        )
        .unwrap();
    let start = Instant::now();
    let mut results = Vec::new();
    let mut polls = 0u64;
    while results.len() < 2 {
        assert!(
            start.elapsed() < Duration::from_secs(280),
            "pipe did not finish"
        );
        polls += 1;
        pool.poll();
        results.extend(pool.drain_completed());
        if results.len() < 2 {
            pool.wait(Some(Duration::from_millis(200)));
        }
    }
    let rss_peak = status_kib("VmHWM:");
    let (got_hex, got_total) = sink.join().unwrap().expect("sink read the upload");
    let down = results.iter().find(|(id, _)| *id == download).unwrap();
    let up = results.iter().find(|(id, _)| *id == upload).unwrap();
    assert_eq!(down.1.result, RequestResult::Success, "{}", down.1.reason);
    assert!(down.1.body.is_empty(), "the body went into the pipe");
    assert_eq!(down.1.body_bytes, total);
    assert_eq!(up.1.result, RequestResult::Success, "{}", up.1.reason);
    assert_eq!(got_total, total);
    assert_eq!(got_hex, expected_sha256(total));
    assert_eq!(&up.1.body[..], got_hex.as_bytes());
    let grown = rss_peak.saturating_sub(rss_before);
    eprintln!(
        "piped {} MiB in {polls} polls; RSS {} KiB before, peak {} KiB (+{} KiB)",
        total >> 20,
        rss_before,
        rss_peak,
        grown
    );
    assert!(grown < 24 * 1024, "peak RSS grew by {grown} KiB");
}

#[test]
fn pipe_refusals_and_an_upload_that_ends_first() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let mut pool = RequestPool::new().unwrap();
    // (A cancelled request's slot is reused below: its waiting-queue entry
    // must not start the new request twice.)
    let stale = pool
        .get("http://127.0.0.1:9/", &Settings::default())
        .unwrap();
    assert!(pool.cancel(stale));
    let err = pool
        .pipe(
            stale,
            "http://127.0.0.1:9/",
            &[],
            "PUT",
            &Settings::default(),
        )
        .unwrap_err();
    assert!(matches!(err, RequestError::NotPipeable), "{err:?}");

    // The upload's server answers at once without reading: the upload ends
    // first, and the download is stopped with PipeClosed.
    let source = ScriptServer::start(vec![vec![
        Step::ReadRequest,
        Step::write("HTTP/1.1 200 OK\r\nContent-Length: 100000000\r\n\r\n"),
        Step::WriteRepeated {
            chunk: pattern(),
            total: 100_000_000,
        },
    ]]);
    let sink = ScriptServer::start(vec![vec![
        Step::ReadBytes(1),
        Step::write("HTTP/1.1 403 Forbidden\r\nContent-Length: 2\r\n\r\nno"),
        // Not closed at once: a close with unread bytes would be a reset,
        // which can drop the 403 before the client reads it.
        Step::Sleep(Duration::from_secs(5)),
    ]]);
    let settings = Settings {
        timeouts: pollhttp::Timeouts {
            total: Some(Duration::from_secs(60)),
            ..Default::default()
        },
        ..Settings::default()
    };
    let download = pool
        .get(format!("{}/big", source.base_url()), &settings)
        .unwrap();
    let upload = pool
        .pipe(
            download,
            format!("{}/put", sink.base_url()),
            &[],
            "PUT",
            &settings,
        )
        .unwrap();
    let mut results = Vec::new();
    for _ in 0..2000 {
        pool.poll();
        results.extend(pool.drain_completed());
        if results.len() == 2 {
            break;
        }
        pool.wait(Some(Duration::from_millis(100)));
    }
    assert_eq!(results.len(), 2, "{results:?}");
    let up = results.iter().find(|(id, _)| *id == upload).unwrap();
    assert_eq!(
        (up.1.result, up.1.response_code()),
        (RequestResult::Success, 403),
        "{}",
        up.1.reason
    );
    let down = results.iter().find(|(id, _)| *id == download).unwrap();
    assert_eq!(down.1.result, RequestResult::RequestFailed);
    assert!(
        matches!(down.1.failure, Some(RequestFailure::PipeClosed)),
        "{:?}",
        down.1.failure
    );
    assert_eq!(pool.in_flight(), 0);
    // The stopped download's connection was closed under the 100 MB the
    // source was writing: that write, and only it, failed.
    let errors = source.wait_for_errors(1, Duration::from_secs(10));
    assert!(
        matches!(&errors[..], [e] if e.starts_with("conn 0: WriteRepeated")),
        "{errors:?}"
    );
}

#[test]
fn a_download_that_fails_fails_its_upload_with_a_broken_pipe() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let mut pool = RequestPool::new().unwrap();
    // 1 000 of 1 000 000 promised bytes, then a reset.
    let source = ScriptServer::start(vec![vec![
        Step::ReadRequest,
        Step::write("HTTP/1.1 200 OK\r\nContent-Length: 1000000\r\n\r\n"),
        Step::WriteRepeated {
            chunk: pattern(),
            total: 1000,
        },
        Step::Reset,
    ]]);
    let sink = ScriptServer::start(vec![vec![
        Step::ReadRequestHead,
        Step::Sleep(Duration::from_secs(5)),
    ]]);
    let settings = Settings {
        timeouts: pollhttp::Timeouts {
            total: Some(Duration::from_secs(60)),
            ..Default::default()
        },
        ..Settings::default()
    };
    let download = pool
        .get(format!("{}/big", source.base_url()), &settings)
        .unwrap();
    let upload = pool
        .pipe(
            download,
            format!("{}/put", sink.base_url()),
            &[],
            "PUT",
            &settings,
        )
        .unwrap();
    let mut results = Vec::new();
    for _ in 0..2000 {
        pool.poll();
        results.extend(pool.drain_completed());
        if results.len() == 2 {
            break;
        }
        pool.wait(Some(Duration::from_millis(100)));
    }
    assert_eq!(results.len(), 2, "{results:?}");
    let down = results.iter().find(|(id, _)| *id == download).unwrap();
    assert_ne!(down.1.result, RequestResult::Success);
    let up = results.iter().find(|(id, _)| *id == upload).unwrap();
    assert_eq!(
        up.1.result,
        RequestResult::ConnectionError,
        "{}",
        up.1.reason
    );
    let io = match up.1.connection_failure() {
        Some(pollhttp::Failure::Io(e)) => e.kind(),
        other => panic!("{other:?}"),
    };
    assert_eq!(io, std::io::ErrorKind::BrokenPipe);
}
