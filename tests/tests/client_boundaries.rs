//! Issue 7: results that depend on information crossing a layer boundary
//! (transport → proto → front end), checked on both front ends against
//! scripted servers (and nginx for connection reuse).
//!
//! Each test asserts one exact result. Tests that fail against the code
//! before issue 7 are `#[ignore = "issue 7: ..."]`; the reason says what is
//! still wrong. Every loop is bounded in count and time; nothing asserts a
//! wall-clock duration.

use std::collections::HashSet;
use std::io::ErrorKind;
use std::time::{Duration, Instant};

use pollhttp::proto::Error as ProtoError;
use pollhttp::{Completed, Failure, HttpClient, HttpRequest, RequestResult, Status, TlsOptions};
use pollhttp_tests::certs::TestCa;
use pollhttp_tests::drive::{connect, fetch, Observed};
use pollhttp_tests::nginx::{Nginx, HELLO_BODY};
use pollhttp_tests::script::{ok_response, response, ScriptServer, Step, TlsScriptServer};

use RequestResult as R;
use Status::*;

// ------------------------------------------------------------------ helpers

fn run(req: &mut HttpRequest) -> Completed {
    pollhttp_tests::drive::run_request(req, Duration::from_secs(20))
}

/// One request on `req`, driven to completion.
fn send(req: &mut HttpRequest, url: &str, method: &str, body: &[u8]) -> Completed {
    req.request_raw(url, &[], method, body)
        .expect("request accepted");
    run(req)
}

/// An `HttpRequest` trusting the shared test CA.
fn tls_request() -> HttpRequest {
    let mut req = HttpRequest::new();
    req.settings_mut().tls =
        Some(TlsOptions::with_root_pem(TestCa::shared().ca_pem.as_bytes()).unwrap());
    req
}

fn client() -> HttpClient {
    HttpClient::new().expect("a client")
}

/// An `HttpClient` trusting the shared test CA.
fn tls_client() -> HttpClient {
    let mut c = client();
    c.set_tls_options(TlsOptions::with_root_pem(TestCa::shared().ca_pem.as_bytes()).unwrap());
    c
}

/// A TLS script server with the shared CA's leaf (SANs include 127.0.0.1).
fn tls_server(conns: Vec<Vec<Step>>) -> TlsScriptServer {
    TlsScriptServer::start(TestCa::shared().server_config(), conns)
}

/// `conn` over TLS (`tls`) or plain, connected to 127.0.0.1:`port`; asserts
/// the connection came up.
fn connected(c: &mut HttpClient, port: u16, tls: bool) {
    let up = connect(c, "127.0.0.1", port, tls);
    assert_eq!(
        up.statuses.last(),
        Some(&Connected),
        "{:?} {:?}",
        up.statuses,
        c.failure()
    );
}

fn io_kind(c: &HttpClient) -> Option<ErrorKind> {
    match c.failure() {
        Some(Failure::Io(e)) => Some(e.kind()),
        _ => None,
    }
}

/// Request lines (`METHOD target`) of the recorded raw requests.
fn request_lines(reqs: &[Vec<u8>]) -> Vec<String> {
    reqs.iter()
        .map(|r| {
            let text = String::from_utf8_lossy(r);
            let line = text.split("\r\n").next().unwrap_or("");
            line.trim_end_matches(" HTTP/1.1").to_string()
        })
        .collect()
}

/// How many request heads (`"METHOD "` at a line start) one connection's
/// received bytes hold.
fn heads_in(received: &[u8], method: &str) -> usize {
    let text = String::from_utf8_lossy(received);
    let needle = format!("{method} /");
    text.match_indices(&needle)
        .filter(|(i, _)| *i == 0 || text[..*i].ends_with("\r\n"))
        .count()
}

/// Distinct nginx `$connection` serials of the access-log lines that
/// contain `needle`.
fn nginx_connections(log: &str, needle: &str) -> HashSet<String> {
    log.lines()
        .filter(|l| l.contains(needle))
        .filter_map(|l| l.split(' ').next().map(str::to_string))
        .collect()
}

const CLOSE_DELIMITED_HEAD: &str = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\n";
const PARTIAL: &str = "the first part of a longer body";

// ------------------------------------------- 1. TLS close-delimited bodies

/// Close-delimited body over TLS, TCP closed without close_notify.
fn tls_truncated_close_delimited() -> TlsScriptServer {
    tls_server(vec![vec![
        Step::ReadRequest,
        Step::write(format!("{CLOSE_DELIMITED_HEAD}{PARTIAL}")),
        Step::Sleep(Duration::from_millis(100)),
        Step::CloseWithoutNotify,
    ]])
}

/// Close-delimited body over TLS, ended by close_notify.
fn tls_clean_close_delimited() -> TlsScriptServer {
    tls_server(vec![vec![
        Step::ReadRequest,
        Step::write(format!("{CLOSE_DELIMITED_HEAD}{PARTIAL}")),
        Step::Sleep(Duration::from_millis(100)),
        Step::Close,
    ]])
}

/// Content-Length body over TLS, cut (no close_notify).
fn tls_truncated_content_length() -> TlsScriptServer {
    tls_server(vec![vec![
        Step::ReadRequest,
        Step::write("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly ten b"),
        Step::Sleep(Duration::from_millis(100)),
        Step::CloseWithoutNotify,
    ]])
}

#[test]
fn request_tls_close_delimited_without_close_notify_is_truncated() {
    let server = tls_truncated_close_delimited();
    let mut req = tls_request();
    let done = send(&mut req, &server.base_url(), "GET", b"");
    assert_eq!(
        (done.result, done.response_code()),
        (R::ChunkedBodySizeMismatch, 200),
        "{}",
        done.reason
    );
    assert!(
        matches!(
            done.connection_failure(),
            Some(Failure::Protocol(ProtoError::UncleanClose { offset })) if *offset == TRUNCATED_AT
        ),
        "{:?}",
        done.failure
    );
}

/// Where the close-delimited response of [`tls_truncated_close_delimited`]
/// ends: its head and the part of the body sent.
const TRUNCATED_AT: u64 = (CLOSE_DELIMITED_HEAD.len() + PARTIAL.len()) as u64;

#[test]
fn client_tls_close_delimited_without_close_notify_is_a_connection_error() {
    let server = tls_truncated_close_delimited();
    let mut c = tls_client();
    connected(&mut c, server.port(), true);
    let got = fetch(&mut c, "GET", "/", &[], b"");
    assert_eq!(got.statuses, vec![Requesting, Body, ConnectionError]);
    assert_eq!(got.body, PARTIAL.as_bytes(), "bytes received stay received");
    assert!(
        matches!(
            c.failure(),
            Some(Failure::Protocol(ProtoError::UncleanClose { offset })) if *offset == TRUNCATED_AT
        ),
        "{:?}",
        c.failure()
    );
}

#[test]
fn request_tls_close_delimited_with_close_notify_is_success() {
    let server = tls_clean_close_delimited();
    let mut req = tls_request();
    let done = send(&mut req, &server.base_url(), "GET", b"");
    assert_eq!(
        (done.result, done.response_code()),
        (R::Success, 200),
        "{}",
        done.reason
    );
    assert_eq!(&done.body[..], PARTIAL.as_bytes());
}

#[test]
fn client_tls_close_delimited_with_close_notify_is_complete() {
    let server = tls_clean_close_delimited();
    let mut c = tls_client();
    connected(&mut c, server.port(), true);
    let got = fetch(&mut c, "GET", "/", &[], b"");
    assert_eq!(got.statuses, vec![Requesting, Body, Disconnected]);
    assert_eq!(got.body, PARTIAL.as_bytes());
    assert!(c.failure().is_none(), "{:?}", c.failure());
}

#[test]
fn request_tls_content_length_cut_is_truncated() {
    let server = tls_truncated_content_length();
    let mut req = tls_request();
    let done = send(&mut req, &server.base_url(), "GET", b"");
    assert_eq!(
        (done.result, done.response_code()),
        (R::ChunkedBodySizeMismatch, 200),
        "{}",
        done.reason
    );
}

#[test]
fn client_tls_content_length_cut_is_an_incomplete_body() {
    let server = tls_truncated_content_length();
    let mut c = tls_client();
    connected(&mut c, server.port(), true);
    let got = fetch(&mut c, "GET", "/", &[], b"");
    assert_eq!(got.statuses, vec![Requesting, Body, ConnectionError]);
    assert_eq!(got.body, b"only ten b");
    assert!(
        matches!(
            c.failure(),
            Some(Failure::Protocol(ProtoError::IncompleteBody {
                expected: 100,
                received: 10,
                ..
            }))
        ),
        "{:?}",
        c.failure()
    );
}

// ------------------------------------------- 2. a read error during a body

/// Plain close-delimited body cut by a TCP RST.
fn reset_close_delimited() -> ScriptServer {
    ScriptServer::start(vec![vec![
        Step::ReadRequest,
        Step::write(format!("{CLOSE_DELIMITED_HEAD}{PARTIAL}")),
        Step::Sleep(Duration::from_millis(100)),
        Step::Reset,
    ]])
}

/// Plain Content-Length body cut by a TCP RST.
fn reset_content_length() -> ScriptServer {
    ScriptServer::start(vec![vec![
        Step::ReadRequest,
        Step::write("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly ten b"),
        Step::Sleep(Duration::from_millis(100)),
        Step::Reset,
    ]])
}

#[test]
fn request_close_delimited_cut_by_reset_is_a_connection_error() {
    let server = reset_close_delimited();
    let done = send(&mut HttpRequest::new(), &server.base_url(), "GET", b"");
    assert_eq!(
        (done.result, done.response_code()),
        (R::ConnectionError, 200),
        "{}",
        done.reason
    );
}

#[test]
fn client_close_delimited_cut_by_reset_keeps_the_io_error() {
    let server = reset_close_delimited();
    let mut c = client();
    connected(&mut c, server.port(), false);
    let got = fetch(&mut c, "GET", "/", &[], b"");
    assert_eq!(got.statuses, vec![Requesting, Body, ConnectionError]);
    assert_eq!(got.body, PARTIAL.as_bytes(), "bytes received stay received");
    assert_eq!(
        io_kind(&c),
        Some(ErrorKind::ConnectionReset),
        "{:?}",
        c.failure()
    );
}

#[test]
fn request_content_length_cut_by_reset_is_a_connection_error() {
    let server = reset_content_length();
    let done = send(&mut HttpRequest::new(), &server.base_url(), "GET", b"");
    assert_eq!(
        (done.result, done.response_code()),
        (R::ConnectionError, 200),
        "{}",
        done.reason
    );
}

#[test]
fn client_content_length_cut_by_reset_keeps_the_io_error() {
    let server = reset_content_length();
    let mut c = client();
    connected(&mut c, server.port(), false);
    let got = fetch(&mut c, "GET", "/", &[], b"");
    assert_eq!(got.statuses, vec![Requesting, Body, ConnectionError]);
    assert_eq!(got.body, b"only ten b");
    assert_eq!(
        io_kind(&c),
        Some(ErrorKind::ConnectionReset),
        "{:?}",
        c.failure()
    );
}

// ------------------------------- 3. an early response behind a write error

const UPLOAD_LEN: usize = 8 << 20;
const TOO_BIG: &str =
    "HTTP/1.1 413 Payload Too Large\r\nContent-Length: 8\r\nConnection: close\r\n\r\ntoo big!";

/// Reads the request head only, answers 413 and closes with the upload
/// unread (so the kernel sends a RST).
fn early_413() -> ScriptServer {
    ScriptServer::start(vec![vec![
        Step::ReadRequestHead,
        Step::write(TOO_BIG),
        Step::Close,
    ]])
}

#[test]
fn request_early_413_during_a_big_upload_is_delivered() {
    let server = early_413();
    let body = vec![b'u'; UPLOAD_LEN];
    let done = send(
        &mut HttpRequest::new(),
        &format!("{}/upload", server.base_url()),
        "POST",
        &body,
    );
    assert_eq!(
        (done.result, done.response_code()),
        (R::Success, 413),
        "{}",
        done.reason
    );
    assert_eq!(&done.body[..], b"too big!");
    let head = String::from_utf8_lossy(&server.requests()[0]).into_owned();
    assert!(head.starts_with("POST /upload HTTP/1.1\r\n"), "{head}");
}

#[test]
fn client_early_413_during_a_big_upload_is_delivered() {
    let server = early_413();
    let body = vec![b'u'; UPLOAD_LEN];
    let mut c = client();
    connected(&mut c, server.port(), false);
    let mut got: Observed = fetch(&mut c, "POST", "/upload", &[], &body);
    // The body may also still be buffered when the drive stops (e.g. the
    // status went to an error with the response kept): read the rest.
    for _ in 0..16 {
        match c.read_response_body_chunk() {
            Some(chunk) => got.body.extend_from_slice(&chunk),
            None => break,
        }
    }
    eprintln!("statuses {:?}, failure {:?}", got.statuses, c.failure());
    assert!(c.has_response(), "{:?} {:?}", got.statuses, c.failure());
    assert_eq!(c.response_code(), 413);
    assert_eq!(got.body, b"too big!");
}

// ------------------------------------------------ 4. obs-fold in responses

fn folded() -> ScriptServer {
    ScriptServer::start(vec![vec![
        Step::ReadRequest,
        Step::write("HTTP/1.1 200 OK\r\nX-Folded: a\r\n  b\r\nContent-Length: 2\r\n\r\nok"),
        Step::Sleep(Duration::from_millis(300)),
    ]])
}

/// RFC 9112 §5.2: each obs-fold is replaced with one or more SP, so the
/// value is `a`, spaces, `b`, with no CR, LF or HTAB left.
fn assert_unfolded(value: Option<&str>) {
    let v = value.expect("the folded field is there");
    assert!(v.starts_with("a ") && v.ends_with(" b"), "{v:?}");
    assert!(v[1..v.len() - 1].bytes().all(|b| b == b' '), "{v:?}");
}

#[test]
fn request_unfolds_obs_fold_by_default() {
    let server = folded();
    let done = send(&mut HttpRequest::new(), &server.base_url(), "GET", b"");
    assert_eq!(
        (done.result, done.response_code()),
        (R::Success, 200),
        "{}",
        done.reason
    );
    assert_unfolded(done.headers().get_str("x-folded"));
    assert_eq!(&done.body[..], b"ok");
}

#[test]
fn client_unfolds_obs_fold_by_default() {
    let server = folded();
    let mut c = client();
    connected(&mut c, server.port(), false);
    let got = fetch(&mut c, "GET", "/", &[], b"");
    assert_eq!(
        got.statuses,
        vec![Requesting, Body, Connected],
        "{:?}",
        c.failure()
    );
    assert_unfolded(c.response_headers().and_then(|h| h.get_str("x-folded")));
    assert_eq!(got.body, b"ok");
}

// ------------------------------------------------------------ 5. Host first

fn one_ok() -> ScriptServer {
    ScriptServer::start(vec![vec![
        Step::ReadRequest,
        Step::Write(ok_response("ok")),
        Step::Sleep(Duration::from_millis(300)),
    ]])
}

#[test]
fn client_sends_host_first() {
    let server = one_ok();
    let mut c = client();
    connected(&mut c, server.port(), false);
    let got = fetch(
        &mut c,
        "GET",
        "/",
        &[("Accept", "text/plain"), ("X-Mine", "1")],
        b"",
    );
    assert_eq!(got.body, b"ok");
    let first = String::from_utf8_lossy(&server.requests()[0]).into_owned();
    let want = format!("GET / HTTP/1.1\r\nHost: 127.0.0.1:{}\r\n", server.port());
    assert!(first.starts_with(&want), "{first:?}");
}

#[test]
fn request_sends_host_first() {
    let server = one_ok();
    let mut req = HttpRequest::new();
    req.request(
        &format!("{}/", server.base_url()),
        &[("X-Mine", "1"), ("Accept", "text/plain")],
        "GET",
        "",
    )
    .unwrap();
    let done = run(&mut req);
    assert_eq!(done.result, R::Success, "{}", done.reason);
    let first = String::from_utf8_lossy(&server.requests()[0]).into_owned();
    let want = format!("GET / HTTP/1.1\r\nHost: 127.0.0.1:{}\r\n", server.port());
    assert!(first.starts_with(&want), "{first:?}");
}

// ------------------------------------------------- 6. retry only when safe

/// Connection 1 answers one request, then reads a second and closes
/// without a response byte; connection 2 answers one request.
fn dies_under_second_request() -> ScriptServer {
    ScriptServer::start(vec![
        vec![
            Step::ReadRequest,
            Step::Write(ok_response("first")),
            Step::ReadRequest,
            Step::Close,
        ],
        vec![Step::ReadRequest, Step::Write(ok_response("second"))],
    ])
}

#[test]
fn request_get_on_a_reused_connection_is_retried_once() {
    let server = dies_under_second_request();
    let url = format!("{}/r", server.base_url());
    let mut req = HttpRequest::new();
    let done = send(&mut req, &url, "GET", b"");
    assert_eq!((done.result, &done.body[..]), (R::Success, &b"first"[..]));
    let done = send(&mut req, &url, "GET", b"");
    assert_eq!(
        (done.result, &done.body[..]),
        (R::Success, &b"second"[..]),
        "{}",
        done.reason
    );
    assert_eq!(server.connections_accepted(), 2);
    // The second GET went on the reused connection first, then once more.
    assert_eq!(
        request_lines(&server.requests()),
        vec!["GET /r", "GET /r", "GET /r"]
    );
    assert_eq!(heads_in(&server.received()[0], "GET"), 2);
    assert_eq!(heads_in(&server.received()[1], "GET"), 1);
}

#[test]
fn request_post_on_a_reused_connection_is_not_retried() {
    let server = dies_under_second_request();
    let url = format!("{}/r", server.base_url());
    let mut req = HttpRequest::new();
    let done = send(&mut req, &url, "GET", b"");
    assert_eq!((done.result, &done.body[..]), (R::Success, &b"first"[..]));
    let done = send(&mut req, &url, "POST", b"payload");
    assert_eq!(
        (done.result, done.response_code()),
        (R::NoResponse, 0),
        "{}",
        done.reason
    );
    assert_eq!(server.connections_accepted(), 1, "no second connection");
    assert_eq!(request_lines(&server.requests()), vec!["GET /r", "POST /r"]);
    let post = String::from_utf8_lossy(&server.requests()[1]).into_owned();
    assert!(post.ends_with("\r\n\r\npayload"), "{post:?}");
}

/// Connection 1 answers with a 307 to `/next` (keep-alive), reads the
/// redirected request and closes without a response byte; connection 2
/// answers.
fn redirect_then_dies() -> ScriptServer {
    ScriptServer::start(vec![
        vec![
            Step::ReadRequest,
            Step::Write(response(
                "307 Temporary Redirect",
                &[("Location", "/next")],
                "",
            )),
            Step::ReadRequest,
            Step::Close,
        ],
        vec![Step::ReadRequest, Step::Write(ok_response("retried"))],
    ])
}

#[test]
fn request_get_after_a_same_origin_redirect_is_retried_once() {
    // Exercises the retry inside one HttpRequest (connection reuse across a
    // redirect), which exists today.
    let server = redirect_then_dies();
    let done = send(
        &mut HttpRequest::new(),
        &format!("{}/start", server.base_url()),
        "GET",
        b"",
    );
    assert_eq!(
        (done.result, &done.body[..], done.redirects),
        (R::Success, &b"retried"[..], 1),
        "{}",
        done.reason
    );
    assert_eq!(server.connections_accepted(), 2);
    assert_eq!(
        request_lines(&server.requests()),
        vec!["GET /start", "GET /next", "GET /next"]
    );
}

#[test]
fn request_post_kept_by_307_is_not_retried() {
    let server = redirect_then_dies();
    let done = send(
        &mut HttpRequest::new(),
        &format!("{}/start", server.base_url()),
        "POST",
        b"payload",
    );
    assert_eq!(
        (done.result, done.response_code()),
        (R::NoResponse, 0),
        "{}",
        done.reason
    );
    assert_eq!(server.connections_accepted(), 1, "no second connection");
    assert_eq!(
        request_lines(&server.requests()),
        vec!["POST /start", "POST /next"]
    );
}

/// Connection 1 answers one request and closes 50 ms later (an idle
/// kept-alive connection timing out on the server); connection 2 answers.
fn closes_when_idle() -> ScriptServer {
    ScriptServer::start(vec![
        vec![
            Step::ReadRequest,
            Step::Write(ok_response("first")),
            Step::Sleep(Duration::from_millis(50)),
            Step::Close,
        ],
        vec![
            Step::ReadRequest,
            Step::Write(ok_response("second")),
            Step::Sleep(Duration::from_millis(300)),
        ],
    ])
}

#[test]
fn request_after_the_server_closed_the_idle_connection_uses_a_fresh_one() {
    for method in ["GET", "POST"] {
        let server = closes_when_idle();
        let url = format!("{}/r", server.base_url());
        let mut req = HttpRequest::new();
        let done = send(&mut req, &url, "GET", b"");
        assert_eq!((done.result, &done.body[..]), (R::Success, &b"first"[..]));
        // The server closes the idle connection meanwhile; nobody polls.
        std::thread::sleep(Duration::from_millis(300));
        let done = send(&mut req, &url, method, b"");
        assert_eq!(
            (done.result, &done.body[..]),
            (R::Success, &b"second"[..]),
            "{method}: {}",
            done.reason
        );
        assert_eq!(server.connections_accepted(), 2, "{method}");
        assert_eq!(
            request_lines(&server.requests()),
            vec!["GET /r".to_string(), format!("{method} /r")]
        );
    }
}

// --------------------------------- 7. connection reuse across HttpRequests

#[test]
fn twenty_requests_reuse_one_connection() {
    let nginx = Nginx::start();
    let url = nginx.url("/hello.txt");
    let mut req = HttpRequest::new();
    for i in 0..20 {
        let done = send(&mut req, &url, "GET", b"");
        assert_eq!(
            (done.result, done.response_code(), &done.body[..]),
            (R::Success, 200, HELLO_BODY.as_bytes()),
            "request {i}: {}",
            done.reason
        );
    }
    drop(req);
    // Two start-up probe lines come first.
    let log = nginx.wait_access_log(22, Duration::from_secs(10));
    let conns = nginx_connections(&log, "/hello.txt");
    assert_eq!(
        log.lines().filter(|l| l.contains("/hello.txt")).count(),
        20,
        "{log}"
    );
    assert_eq!(conns.len(), 1, "all 20 requests on one connection:\n{log}");
}

#[test]
fn a_connection_close_response_is_not_reused() {
    let nginx = Nginx::start();
    let mut req = HttpRequest::new();
    for path in ["/close", "/hello.txt", "/close", "/hello.txt"] {
        let done = send(&mut req, &nginx.url(path), "GET", b"");
        assert_eq!(
            (done.result, &done.body[..]),
            (R::Success, HELLO_BODY.as_bytes()),
            "{path}: {}",
            done.reason
        );
    }
    drop(req);
    let log = nginx.wait_access_log(6, Duration::from_secs(10));
    let conns: HashSet<String> = nginx_connections(&log, "/close")
        .union(&nginx_connections(&log, "/hello.txt"))
        .cloned()
        .collect();
    // Each /close ends its connection; each /hello.txt after it needs a new
    // one (and may keep it), so at least 3 distinct connections.
    assert!(conns.len() >= 3, "{log}");
    let close_conns = nginx_connections(&log, "/close");
    assert_eq!(close_conns.len(), 2, "{log}");
}

#[test]
fn a_reader_body_is_not_sent_again_for_a_307() {
    // A 307 keeps the method and the body (RFC 9110 §15.4.8); a body read
    // from a reader was consumed by the first hop and cannot follow.
    let server = ScriptServer::start(vec![vec![
        Step::ReadRequest,
        Step::Write(response(
            "307 Temporary Redirect",
            &[("Location", "/next")],
            "",
        )),
        Step::Sleep(Duration::from_millis(500)),
    ]]);
    let mut req = HttpRequest::new();
    let body = pollhttp::RequestBody::reader(std::io::Cursor::new(b"streamed".to_vec()), Some(8));
    req.request_body(&format!("{}/start", server.base_url()), &[], "PUT", body)
        .expect("request accepted");
    let done = run(&mut req);
    assert_eq!(done.result, R::RequestFailed, "{}", done.reason);
    assert!(
        matches!(
            done.failure,
            Some(pollhttp::RequestFailure::BodyNotReplayable)
        ),
        "{:?}",
        done.failure
    );
    assert_eq!(
        done.reason,
        "the request body (a reader) cannot be sent again"
    );
    let sent = String::from_utf8_lossy(&server.requests()[0]).into_owned();
    assert!(
        sent.starts_with("PUT /start ") && sent.ends_with("streamed"),
        "{sent:?}"
    );
    assert_eq!(server.requests().len(), 1, "nothing sent to /next");
}

// ---------------------------------- 8. a reset right after the handshake

#[test]
fn client_reset_right_after_the_handshake_is_always_a_connection_error() {
    // The server accepts, then resets (SO_LINGER 0). The connection was
    // established, so this is a connection error, never a failed connect
    // (CantConnect), whether the reset comes before or after the
    // connector's check: the same result 30 times out of 30.
    const RUNS: usize = 30;
    let server = ScriptServer::start(vec![vec![Step::Reset]; RUNS]);
    let mut c = client();
    let no_fields: &[(&str, &str)] = &[];
    let mut broken_pipes = 0;
    for run in 0..RUNS {
        c.connect_to_host("127.0.0.1", Some(server.port()), false)
            .expect("connect_to_host accepted");
        let start = Instant::now();
        let mut statuses = vec![c.status()];
        loop {
            let s = c.poll();
            if statuses.last() != Some(&s) {
                statuses.push(s);
            }
            match s {
                Connecting | Requesting => {}
                Connected => {
                    c.request("GET", "/", no_fields, b"")
                        .expect("request accepted");
                    statuses.push(c.status());
                }
                _ => break,
            }
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "run {run}: still {statuses:?}"
            );
            c.wait(Some(Duration::from_millis(50)));
        }
        assert_eq!(
            statuses,
            vec![Connecting, Connected, Requesting, ConnectionError],
            "run {run}: {:?}",
            c.failure()
        );
        // The reset as the request met it: ECONNRESET on its write or read;
        // EPIPE on its write when the connector's check had already read
        // the reset off the socket (the connection was closed by then).
        assert!(
            matches!(
                io_kind(&c),
                Some(ErrorKind::ConnectionReset | ErrorKind::BrokenPipe)
            ),
            "run {run}: {:?}",
            c.failure()
        );
        broken_pipes += usize::from(io_kind(&c) == Some(ErrorKind::BrokenPipe));
    }
    assert_eq!(server.connections_accepted(), RUNS);
    eprintln!("{broken_pipes} of {RUNS} resets came before the connector's check");
}
