//! HttpClient against real nginx and scripted servers: the exact status
//! sequence of each scenario.

use std::time::{Duration, Instant};

use pollhttp::proto::Error as ProtoError;
use pollhttp::{Failure, HttpClient, RequestError, Status, TlsOptions};
use pollhttp_tests::drive::{connect, drive_until, fetch};
use pollhttp_tests::nginx::{Nginx, NginxOptions, HELLO_BODY};
use pollhttp_tests::script::{ok_response, Gate, ScriptServer, Step};

use Status::*;

fn client() -> HttpClient {
    HttpClient::new().expect("a client")
}

#[test]
fn plain_get_from_nginx() {
    let nginx = Nginx::start();
    let mut c = client();
    let up = connect(&mut c, "127.0.0.1", nginx.http_port, false);
    assert_eq!(up.statuses, vec![Connecting, Connected]);
    let got = fetch(&mut c, "GET", "/hello.txt", &[], b"");
    assert_eq!(got.statuses, vec![Requesting, Body, Connected]);
    assert_eq!(got.body, HELLO_BODY.as_bytes());
    assert_eq!(c.response_code(), 200);
    assert_eq!(c.response_body_length(), Some(13));
    assert!(!c.is_response_chunked());
    let headers = |c: &HttpClient| -> Vec<(String, String)> {
        let h = c.response_headers().expect("headers after the body");
        h.iter()
            .map(|f| {
                (
                    f.name().to_ascii_lowercase(),
                    f.value_str().unwrap().to_string(),
                )
            })
            .collect()
    };
    let got = headers(&c);
    // The fields are nginx's, in its order: compare with what nginx sends
    // for the same request on a socket of our own (Date may tick over).
    let wire = raw_response_fields(nginx.http_addr(), "/hello.txt");
    let kept: Vec<(String, String)> = got
        .iter()
        .filter(|(n, _)| n != "connection")
        .cloned()
        .collect();
    let names = |v: &[(String, String)]| v.iter().map(|(n, _)| n.clone()).collect::<Vec<_>>();
    assert_eq!(names(&kept), names(&wire));
    for ((name, ours), (_, theirs)) in kept.iter().zip(&wire) {
        if name != "date" {
            assert_eq!(ours, theirs, "{name}");
        }
    }
    assert!(
        got.contains(&("content-length".into(), "13".into())),
        "{got:?}"
    );
    assert!(
        got.contains(&("connection".into(), "keep-alive".into())),
        "{got:?}"
    );
    // Reading the headers does not consume them (unlike Godot): still all
    // there after a read past the end of the body and a second look.
    assert!(c.read_response_body_chunk().is_none());
    assert_eq!(headers(&c), got);
}

/// The header fields (lowercased names, values) of nginx's response to a
/// plain `GET path`, read from a socket of our own.
fn raw_response_fields(addr: std::net::SocketAddr, path: &str) -> Vec<(String, String)> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).unwrap();
    let text = String::from_utf8_lossy(&raw);
    let head = text.split("\r\n\r\n").next().unwrap();
    head.lines()
        .skip(1)
        .map(|l| {
            let (n, v) = l.split_once(':').unwrap();
            (n.to_ascii_lowercase(), v.trim().to_string())
        })
        // Ours asked with Connection: close; the client's request keeps the
        // connection (its Connection field is checked by the caller).
        .filter(|(n, _)| n != "connection")
        .collect()
}

/// A lookup that answers every name with 127.0.0.1 (no system resolver).
fn loopback_lookup() -> pollhttp::LookupFn {
    std::sync::Arc::new(|_: &str, port: u16| {
        Ok(vec![std::net::SocketAddr::from(([127, 0, 0, 1], port))])
    })
}

#[test]
fn name_resolution_goes_through_resolving() {
    let nginx = Nginx::start();
    let mut c = client();
    c.set_resolver(loopback_lookup());
    let up = connect(&mut c, "http://nginx.test", nginx.http_port, false);
    assert_eq!(up.statuses, vec![Resolving, Connecting, Connected]);
    let got = fetch(&mut c, "GET", "/hello.txt", &[], b"");
    assert_eq!(got.body, HELLO_BODY.as_bytes());
}

#[test]
fn keep_alive_reuses_one_connection_for_100_requests() {
    let nginx = Nginx::start();
    let mut c = client();
    connect(&mut c, "127.0.0.1", nginx.http_port, false);
    for i in 0..100 {
        let got = fetch(&mut c, "GET", "/hello.txt", &[], b"");
        assert_eq!(
            got.statuses,
            vec![Requesting, Body, Connected],
            "request {i}"
        );
        assert_eq!(got.body, HELLO_BODY.as_bytes());
    }
    c.close();
    let log = nginx.wait_access_log(100, Duration::from_secs(10));
    let conns: std::collections::HashSet<&str> = log
        .lines()
        .filter(|l| l.contains("/hello.txt"))
        .map(|l| l.split(' ').next().unwrap())
        .collect();
    assert_eq!(conns.len(), 1, "all 100 requests on one connection:\n{log}");
}

#[test]
fn chunked_body_from_nginx() {
    let nginx = Nginx::start();
    let mut c = client();
    connect(&mut c, "127.0.0.1", nginx.http_port, false);
    let got = fetch(&mut c, "GET", "/chunked/hello.txt", &[], b"");
    assert_eq!(got.statuses, vec![Requesting, Body, Connected]);
    assert!(c.is_response_chunked());
    assert_eq!(c.response_body_length(), None);
    assert!(
        String::from_utf8_lossy(&got.body).contains(HELLO_BODY),
        "{:?}",
        String::from_utf8_lossy(&got.body)
    );
}

#[test]
fn close_delimited_body_ends_disconnected() {
    let server = ScriptServer::start(vec![vec![
        Step::ReadRequest,
        Step::write("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil close"),
        Step::Close,
    ]]);
    let mut c = client();
    connect(&mut c, "127.0.0.1", server.port(), false);
    let got = fetch(&mut c, "GET", "/", &[], b"");
    assert_eq!(got.statuses, vec![Requesting, Body, Disconnected]);
    assert_eq!(got.body, b"until close");
    assert_eq!(c.response_body_length(), None);
}

#[test]
fn connection_close_response_ends_disconnected() {
    let nginx = Nginx::start();
    let mut c = client();
    connect(&mut c, "127.0.0.1", nginx.http_port, false);
    let got = fetch(&mut c, "GET", "/hello.txt", &[("Connection", "close")], b"");
    assert_eq!(got.statuses, vec![Requesting, Body, Disconnected]);
    assert_eq!(got.body, HELLO_BODY.as_bytes());
}

#[test]
fn head_204_and_304_have_no_body() {
    let nginx = Nginx::start();
    let mut c = client();
    connect(&mut c, "127.0.0.1", nginx.http_port, false);
    let got = fetch(&mut c, "HEAD", "/hello.txt", &[], b"");
    assert_eq!(got.statuses, vec![Requesting, Connected]);
    assert_eq!(c.response_code(), 200);
    assert_eq!(c.response_body_length(), Some(0));
    assert!(got.body.is_empty());

    let got = fetch(&mut c, "GET", "/status/204", &[], b"");
    assert_eq!(got.statuses, vec![Requesting, Connected]);
    assert_eq!(c.response_code(), 204);

    let got = fetch(&mut c, "GET", "/etag.txt", &[], b"");
    assert_eq!(got.statuses, vec![Requesting, Body, Connected]);
    let etag = c
        .response_headers()
        .unwrap()
        .get_str("etag")
        .unwrap()
        .to_string();
    let got = fetch(
        &mut c,
        "GET",
        "/etag.txt",
        &[("If-None-Match", etag.as_str())],
        b"",
    );
    assert_eq!(got.statuses, vec![Requesting, Connected]);
    assert_eq!(c.response_code(), 304);
    // Still usable afterwards.
    let got = fetch(&mut c, "GET", "/hello.txt", &[], b"");
    assert_eq!(got.body, HELLO_BODY.as_bytes());
}

#[test]
fn interim_100_continue_is_not_the_final_response() {
    let server = ScriptServer::start(vec![vec![
        Step::ReadRequestHead,
        Step::write("HTTP/1.1 100 Continue\r\n\r\n"),
        Step::ReadBody,
        Step::Write(ok_response("stored")),
        Step::Sleep(Duration::from_millis(500)),
    ]]);
    let mut c = client();
    connect(&mut c, "127.0.0.1", server.port(), false);
    let got = fetch(
        &mut c,
        "POST",
        "/upload",
        &[("Expect", "100-continue")],
        b"payload",
    );
    assert_eq!(got.statuses, vec![Requesting, Body, Connected]);
    assert_eq!(c.informational_responses().len(), 1);
    assert_eq!(c.informational_responses()[0].status(), 100);
    assert_eq!(c.response_code(), 200);
    assert_eq!(got.body, b"stored");
    let req = String::from_utf8_lossy(&server.requests()[0]).into_owned();
    assert!(req.ends_with("\r\n\r\npayload"), "{req}");
    assert!(req.contains("Content-Length: 7\r\n"), "{req}");
}

#[test]
fn default_headers_unless_given() {
    let server = ScriptServer::start(vec![vec![
        Step::ReadRequest,
        Step::Write(ok_response("a")),
        Step::ReadRequest,
        Step::Write(ok_response("b")),
    ]]);
    let mut c = client();
    connect(&mut c, "127.0.0.1", server.port(), false);
    fetch(&mut c, "GET", "/x", &[], b"");
    fetch(
        &mut c,
        "POST",
        "/y",
        &[
            ("user-AGENT", "mine"),
            ("Accept", "text/plain"),
            ("X-Accepted", "1"),
        ],
        b"",
    );
    let reqs = server.requests();
    let first = String::from_utf8_lossy(&reqs[0]).into_owned();
    let port = server.port();
    assert_eq!(
        first,
        format!(
            "GET /x HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUser-Agent: pollhttp/{}\r\nAccept: */*\r\n\r\n",
            env!("CARGO_PKG_VERSION")
        )
    );
    let second = String::from_utf8_lossy(&reqs[1]).into_owned();
    assert_eq!(
        second,
        format!("POST /y HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nuser-AGENT: mine\r\nAccept: text/plain\r\nX-Accepted: 1\r\nContent-Length: 0\r\n\r\n")
    );
}

#[test]
fn invalid_requests_send_nothing() {
    let server = ScriptServer::start(vec![vec![
        Step::ReadRequest,
        Step::Write(ok_response("ok")),
    ]]);
    let mut c = client();
    assert!(matches!(
        c.request("GET", "/", &[("A", "b")], b""),
        Err(pollhttp::RequestError::WrongStatus(Disconnected))
    ));
    connect(&mut c, "127.0.0.1", server.port(), false);
    assert!(matches!(
        c.request("GET", "/", &[("X", "a\r\nInjected: yes")], b""),
        Err(pollhttp::RequestError::Invalid(
            ProtoError::InvalidRequestFieldValue { index: 0 }
        ))
    ));
    assert!(matches!(
        c.request("GET", "/a b", &[("X", "1")], b""),
        Err(pollhttp::RequestError::Invalid(
            ProtoError::InvalidRequestTarget
        ))
    ));
    assert_eq!(c.status(), Connected);
    let got = fetch(&mut c, "GET", "/", &[], b"");
    assert_eq!(got.body, b"ok");
    let reqs = server.requests();
    assert_eq!(reqs.len(), 1);
    assert!(!String::from_utf8_lossy(&reqs[0]).contains("Injected"));
}

#[test]
fn callers_own_framing_headers() {
    let server = ScriptServer::start(vec![vec![
        Step::ReadRequest,
        Step::Write(ok_response("one")),
        Step::ReadRequest,
        Step::Write(ok_response("two")),
        Step::Sleep(Duration::from_millis(300)),
    ]]);
    let mut c = client();
    connect(&mut c, "127.0.0.1", server.port(), false);
    // A Content-Length that does not match the body: refused, nothing sent.
    assert!(matches!(
        c.request("POST", "/", &[("Content-Length", "10")], b"abc"),
        Err(pollhttp::RequestError::Invalid(
            ProtoError::RequestContentLengthMismatch {
                declared: 10,
                length: 3
            }
        ))
    ));
    // proto's framing rules name the caller's field by its index in the
    // caller's list (the Host field the client puts first does not count).
    assert!(matches!(
        c.request(
            "POST",
            "/",
            &[("X-A", "1"), ("Content-Length", "3x")],
            b"abc"
        ),
        Err(pollhttp::RequestError::Invalid(
            ProtoError::InvalidRequestContentLength { index: 1 }
        ))
    ));
    assert!(matches!(
        c.request(
            "POST",
            "/",
            &[("Transfer-Encoding", "chunked"), ("Content-Length", "3")],
            b"abc"
        ),
        Err(pollhttp::RequestError::Invalid(
            ProtoError::RequestContentLengthWithTransferEncoding
        ))
    ));
    assert_eq!(c.status(), Connected);
    let got = fetch(&mut c, "POST", "/a", &[("Content-Length", "3")], b"abc");
    assert_eq!(got.body, b"one");
    // Chunked framing chosen by the caller, whole body given: one chunk.
    let got = fetch(
        &mut c,
        "POST",
        "/b",
        &[("Transfer-Encoding", "chunked")],
        b"xyz",
    );
    assert_eq!(got.statuses, vec![Requesting, Body, Connected]);
    assert_eq!(got.body, b"two");
    let reqs = server.requests();
    let first = String::from_utf8_lossy(&reqs[0]).into_owned();
    assert!(
        first.starts_with("POST /a HTTP/1.1\r\nHost: 127.0.0.1:")
            && first.contains("\r\nContent-Length: 3\r\n"),
        "{first:?}"
    );
    assert!(
        first.ends_with("\r\n\r\nabc") && first.matches("Content-Length").count() == 1,
        "{first:?}"
    );
    let second = String::from_utf8_lossy(&reqs[1]).into_owned();
    assert!(
        second.ends_with("\r\n\r\n3\r\nxyz\r\n0\r\n\r\n"),
        "{second:?}"
    );
}

#[test]
fn streaming_request_body_is_chunked() {
    let server = ScriptServer::start(vec![vec![
        Step::ReadRequest,
        Step::Write(ok_response("got it")),
    ]]);
    let mut c = client();
    connect(&mut c, "127.0.0.1", server.port(), false);
    c.request_streaming("PUT", "/file", &[("X-Kind", "stream")])
        .unwrap();
    c.send_body_chunk(b"hello ").unwrap();
    c.send_body_chunk(b"world").unwrap();
    c.finish_body().unwrap();
    let got = drive_until(&mut c, Duration::from_secs(10), |s| {
        !matches!(s, Requesting | Body)
    });
    assert_eq!(got.body, b"got it");
    let req = String::from_utf8_lossy(&server.requests()[0]).into_owned();
    assert!(req.contains("Transfer-Encoding: chunked\r\n"), "{req}");
    assert!(
        req.ends_with("\r\n\r\n6\r\nhello \r\n5\r\nworld\r\n0\r\n\r\n"),
        "{req:?}"
    );
}

#[test]
fn name_that_does_not_resolve() {
    let mut c = client();
    c.set_resolver(std::sync::Arc::new(|name: &str, _: u16| {
        Err(std::io::Error::new(
            std::io::ErrorKind::NotFound,
            format!("{name}: no such name"),
        ))
    }));
    let up = connect(&mut c, "nonexistent.invalid", 80, false);
    assert_eq!(up.statuses, vec![Resolving, CantResolve]);
    assert!(
        matches!(
            c.failure(),
            Some(Failure::Resolve(e))
                if e.kind() == std::io::ErrorKind::NotFound
                    && e.to_string() == "nonexistent.invalid: no such name"
        ),
        "{:?}",
        c.failure()
    );
    // Error states stay until close() or a new connect_to_host.
    c.poll();
    assert_eq!(c.status(), CantResolve);
    c.close();
    assert_eq!(c.status(), Disconnected);
    assert!(c.failure().is_none());
}

#[test]
fn refused_port() {
    let port = pollhttp_tests::process::free_port().unwrap();
    let mut c = client();
    let up = connect(&mut c, "127.0.0.1", port, false);
    assert_eq!(up.statuses, vec![Connecting, CantConnect]);
    match c.failure() {
        Some(Failure::Connect(e)) => assert_eq!(e.kind(), std::io::ErrorKind::ConnectionRefused),
        other => panic!("{other:?}"),
    }
}

#[test]
fn connect_that_times_out() {
    // A listener whose accept queue is full drops further SYNs: the connect
    // hangs like one to an unroutable address.
    let sock = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    sock.bind(
        &"127.0.0.1:0"
            .parse::<std::net::SocketAddr>()
            .unwrap()
            .into(),
    )
    .unwrap();
    sock.listen(0).unwrap();
    let addr = sock.local_addr().unwrap().as_socket().unwrap();
    let _fill: Vec<_> = (0..4)
        .filter_map(|_| {
            std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(200)).ok()
        })
        .collect();
    let mut c = client();
    c.set_connect_timeout(Duration::from_millis(500));
    let up = connect(&mut c, "127.0.0.1", addr.port(), false);
    assert_eq!(up.statuses, vec![Connecting, CantConnect]);
    // The connect timeout ended it: with the backlog full the kernel drops
    // the SYN and would retry it for about two minutes before failing.
    assert!(
        matches!(c.failure(), Some(Failure::ConnectTimeout(d)) if *d == Duration::from_millis(500)),
        "{:?}",
        c.failure()
    );
    assert!(
        up.polls < 200,
        "wait() slept instead of spinning: {} polls",
        up.polls
    );
}

#[test]
fn truncated_content_length_body() {
    let server = ScriptServer::start(vec![vec![
        Step::ReadRequest,
        Step::write("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly ten b"),
        Step::Close,
    ]]);
    let mut c = client();
    connect(&mut c, "127.0.0.1", server.port(), false);
    let got = fetch(&mut c, "GET", "/", &[], b"");
    assert_eq!(got.statuses, vec![Requesting, Body, ConnectionError]);
    assert_eq!(got.body, b"only ten b", "bytes received stay received");
    match c.failure() {
        Some(Failure::Protocol(ProtoError::IncompleteBody {
            expected: 100,
            received: 10,
            ..
        })) => {}
        other => panic!("{other:?}"),
    }
}

#[test]
fn truncated_chunked_body_and_reset() {
    let server = ScriptServer::start(vec![
        vec![
            Step::ReadRequest,
            Step::write("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n"),
            Step::Close,
        ],
        vec![
            Step::ReadRequest,
            Step::write("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nabc"),
            Step::Sleep(Duration::from_millis(100)),
            Step::Reset,
        ],
        vec![
            Step::ReadRequest,
            Step::write("HTTP/1.1 200 OK\r\nContent-Le"),
            Step::Close,
        ],
    ]);
    let mut c = client();
    connect(&mut c, "127.0.0.1", server.port(), false);
    let got = fetch(&mut c, "GET", "/", &[], b"");
    assert_eq!(got.statuses, vec![Requesting, Body, ConnectionError]);
    assert_eq!(got.body, b"hello");
    assert!(matches!(
        c.failure(),
        Some(Failure::Protocol(ProtoError::IncompleteChunkedBody {
            received: 5,
            ..
        }))
    ));

    connect(&mut c, "127.0.0.1", server.port(), false);
    let got = fetch(&mut c, "GET", "/", &[], b"");
    assert_eq!(got.statuses, vec![Requesting, Body, ConnectionError]);
    assert_eq!(got.body, b"abc");
    // The reset is the cause of the truncation, and stays the cause.
    assert!(
        matches!(
            c.failure(),
            Some(Failure::Io(e)) if e.kind() == std::io::ErrorKind::ConnectionReset
        ),
        "{:?}",
        c.failure()
    );

    connect(&mut c, "127.0.0.1", server.port(), false);
    let got = fetch(&mut c, "GET", "/", &[], b"");
    assert_eq!(got.statuses, vec![Requesting, ConnectionError]);
    assert!(
        matches!(
            c.failure(),
            Some(Failure::Protocol(ProtoError::IncompleteHead {
                received: 27,
                offset: 27
            }))
        ),
        "{:?}",
        c.failure()
    );
}

#[test]
fn server_closing_an_idle_kept_alive_connection_is_reported() {
    let server = ScriptServer::start(vec![vec![
        Step::ReadRequest,
        Step::Write(ok_response("first")),
        Step::Sleep(Duration::from_millis(50)),
        Step::Close,
    ]]);
    let mut c = client();
    connect(&mut c, "127.0.0.1", server.port(), false);
    let got = fetch(&mut c, "GET", "/", &[], b"");
    assert_eq!(got.statuses, vec![Requesting, Body, Connected]);
    let idle = drive_until(&mut c, Duration::from_secs(5), |s| s != Connected);
    assert_eq!(idle.statuses, vec![Connected, ConnectionError]);
    assert!(
        matches!(c.failure(), Some(Failure::ClosedWhileIdle)),
        "{:?}",
        c.failure()
    );
    assert!(matches!(
        c.request("GET", "/", &[("A", "b")], b""),
        Err(pollhttp::RequestError::WrongStatus(ConnectionError))
    ));
}

#[test]
fn malformed_response_is_a_connection_error_with_the_rule() {
    let server = ScriptServer::start(vec![vec![
        Step::ReadRequest,
        Step::write("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!"),
    ]]);
    let mut c = client();
    connect(&mut c, "127.0.0.1", server.port(), false);
    let got = fetch(&mut c, "GET", "/", &[], b"");
    assert_eq!(got.statuses, vec![Requesting, ConnectionError]);
    assert!(
        matches!(
            c.failure(),
            Some(Failure::Protocol(ProtoError::ConflictingContentLength {
                offset: 36
            }))
        ),
        "{:?}",
        c.failure()
    );
}

#[test]
fn poll_hands_out_what_arrived_without_waiting_for_the_rest() {
    // The server sends half the body, then waits for the test: a poll() or
    // read that waited for more data would never return the first half
    // (the rest comes only after it did), so the bounded drive would fail.
    let gate = Gate::new();
    let server = ScriptServer::start(vec![vec![
        Step::ReadRequest,
        Step::write(format!(
            "HTTP/1.1 200 OK\r\nContent-Length: 200\r\n\r\n{}",
            "a".repeat(100)
        )),
        Step::Wait(gate.clone()),
        Step::write("b".repeat(100)),
        Step::ReadToEof,
    ]]);
    let mut c = client();
    connect(&mut c, "127.0.0.1", server.port(), false);
    c.request("GET", "/", &[("Accept", "*/*")], b"").unwrap();
    let mut body = Vec::new();
    let mut polls = 0;
    while body.len() < 100 {
        polls += 1;
        assert!(polls < 400, "{} bytes, status {:?}", body.len(), c.status());
        c.wait(Some(Duration::from_millis(50)));
        c.poll();
        while let Some(chunk) = c.read_response_body_chunk() {
            body.extend_from_slice(&chunk);
        }
    }
    assert_eq!((c.status(), &body[..]), (Body, "a".repeat(100).as_bytes()));
    // Nothing more arrives: polls and reads return at once, empty-handed.
    for _ in 0..10 {
        assert_eq!(c.poll(), Body);
        assert_eq!(c.read_response_body_chunk(), None);
    }
    gate.open();
    let got = drive_until(&mut c, Duration::from_secs(20), |s| s != Body);
    assert_eq!(got.statuses, vec![Body, Connected]);
    assert_eq!(got.body, "b".repeat(100).as_bytes());
}

#[test]
fn waiting_on_a_partial_trailer_section_sleeps_instead_of_spinning() {
    // The trailer line stays buffered in proto until the section is complete.
    let server = ScriptServer::start(vec![vec![
        Step::ReadRequest,
        Step::write(
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\nX-Sum: 1\r\n",
        ),
        Step::Sleep(Duration::from_millis(1000)),
        Step::write("\r\n"),
        Step::Sleep(Duration::from_millis(300)),
    ]]);
    let mut c = client();
    connect(&mut c, "127.0.0.1", server.port(), false);
    let got = fetch(&mut c, "GET", "/", &[], b"");
    assert_eq!(got.statuses, vec![Requesting, Body, Connected]);
    assert_eq!(got.body, b"hello");
    assert_eq!(c.response_trailers().unwrap().get_str("x-sum"), Some("1"));
    // drive_until waits at most 50 ms per round: a second of stall is ~20
    // rounds when wait() sleeps, thousands when it spins.
    assert!(got.polls < 60, "{} polls", got.polls);
}

#[test]
fn tls_options_reject_bad_pem() {
    use pollhttp::TlsConfigError;
    let got = TlsOptions::with_root_pem(b"not a pem");
    assert!(
        matches!(got, Err(TlsConfigError::NoCertificates)),
        "{:?}",
        got.err()
    );
    let got = TlsOptions::with_root_pem(
        b"-----BEGIN CERTIFICATE-----\n!!not base64!!\n-----END CERTIFICATE-----\n",
    );
    assert!(
        matches!(got, Err(TlsConfigError::Pem(_))),
        "{:?}",
        got.err()
    );
    // Well-formed PEM around bytes that are no certificate.
    let got = TlsOptions::with_root_pem(
        b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
    );
    assert!(
        matches!(got, Err(TlsConfigError::BadCertificate(_))),
        "{:?}",
        got.err()
    );
}

#[test]
fn a_scheme_prefix_that_disagrees_with_the_tls_flag_is_refused() {
    let server = ScriptServer::start(vec![
        vec![Step::ReadToEof],
        vec![
            Step::ReadRequest,
            Step::write(ok_response("ok")),
            Step::ReadToEof,
        ],
    ]);
    let mut c = client();
    for (host, tls) in [
        ("http://127.0.0.1", true),
        ("https://127.0.0.1", false),
        ("HTTP://localhost", true),
        ("Https://localhost/", false),
    ] {
        let got = c.connect_to_host(host, Some(server.port()), tls);
        assert!(
            matches!(got, Err(RequestError::ConflictingScheme)),
            "{host} tls={tls}: {got:?}"
        );
        assert_eq!(c.status(), Disconnected, "{host} tls={tls}");
    }
    // A prefix that agrees is taken off; a refused call closed what was
    // there, as connect_to_host always does first.
    let up = connect(&mut c, "http://127.0.0.1", server.port(), false);
    assert_eq!(up.statuses, vec![Connecting, Connected]);
    let got = c.connect_to_host("http://127.0.0.1", Some(server.port()), true);
    assert!(
        matches!(got, Err(RequestError::ConflictingScheme)),
        "{got:?}"
    );
    assert_eq!(c.status(), Disconnected);
    // (Port 1 refuses, which only the next poll finds out.)
    c.connect_to_host("HTTPS://127.0.0.1", Some(1), true)
        .expect("a prefix that agrees, in any case");
    assert_eq!(c.status(), Connecting);
    c.close();
    let up = connect(&mut c, "127.0.0.1", server.port(), false);
    assert_eq!(up.statuses, vec![Connecting, Connected]);
    let got = fetch(&mut c, "GET", "/", &[], b"");
    assert_eq!(got.statuses, vec![Requesting, Body, Connected]);
    assert_eq!(got.body, b"ok");
    assert_eq!(server.connections_accepted(), 2);
}

#[test]
fn body_chunk_reads_stay_within_the_poll_read_budget() {
    // The README's drain loop, `while let Some(chunk) =
    // read_response_body_chunk()` after each poll, against a 4 MiB body that
    // loopback delivers faster than it is read: the socket bytes read from
    // one poll to the next (the poll and every chunk read after it) never
    // pass the per-poll budget.
    const LEN: u64 = 4 << 20;
    const BUDGET: u64 = 64 << 10;
    let nginx = Nginx::start_with(NginxOptions {
        big_file_len: LEN,
        ..NginxOptions::default()
    });
    let mut c = client();
    c.set_poll_budget(pollhttp::PollBudget::new(BUDGET as usize, None));
    let up = connect(&mut c, "127.0.0.1", nginx.http_port, false);
    assert_eq!(up.statuses, vec![Connecting, Connected]);
    let at_request = c.bytes_read();
    c.request("GET", "/big.bin", &[("Accept", "*/*")], b"")
        .unwrap();
    let start = Instant::now();
    let mut frames: Vec<u64> = Vec::new();
    let (mut body, mut spent) = (0u64, 0usize);
    while matches!(c.status(), Requesting | Body) {
        assert!(
            frames.len() < 100_000 && start.elapsed() < Duration::from_secs(60),
            "{} frames, {body} bytes of body",
            frames.len()
        );
        c.wait(Some(Duration::from_millis(100)));
        let before = c.bytes_read();
        c.poll();
        while let Some(chunk) = c.read_response_body_chunk() {
            assert!(chunk.iter().all(|&b| b == 0));
            body += chunk.len() as u64;
        }
        let read = c.bytes_read() - before;
        if read == BUDGET && c.status() == Body {
            // Spent: nothing more is read, nor returned, until the next poll.
            spent += 1;
            assert_eq!(c.read_response_body_chunk(), None);
            assert_eq!(c.bytes_read() - before, BUDGET);
        }
        frames.push(read);
    }
    assert_eq!(c.status(), Connected, "{:?}", c.failure());
    assert_eq!(body, LEN);
    let over: Vec<_> = frames.iter().filter(|&&n| n > BUDGET).collect();
    assert!(over.is_empty(), "frames over the budget: {over:?}");
    assert_eq!(frames.iter().sum::<u64>(), c.bytes_read() - at_request);
    let reading = frames.iter().filter(|&&n| n > 0).count() as u64;
    assert!(reading >= LEN / BUDGET, "{reading} frames read the body");
    eprintln!(
        "{} frames, {reading} of them read, {spent} spent the whole budget",
        frames.len()
    );
}

#[test]
fn connect_to_host_refuses_an_invalid_host() {
    let mut c = client();
    for host in [
        "",
        "http://",
        "a b.test",
        "host.test/path",
        "user@host.test",
        "[::zz]",
        "tab\there",
        "caf\u{e9}.test",
    ] {
        let got = c.connect_to_host(host, Some(80), false);
        assert!(
            matches!(got, Err(RequestError::InvalidHost)),
            "{host:?}: {got:?}"
        );
        assert_eq!(c.status(), Disconnected, "{host:?}");
        assert!(c.failure().is_none(), "{host:?}");
    }
}

#[test]
fn connect_to_host_refuses_a_name_tls_cannot_verify() {
    // A host that passes the host check but is no DNS name (an empty
    // label): TLS could not name the server, so nothing is started.
    let mut c = client();
    for host in ["a..test", "-.test"] {
        let got = c.connect_to_host(host, Some(443), true);
        assert!(
            matches!(
                &got,
                Err(RequestError::Tls(pollhttp::TlsConfigError::InvalidServerName(n))) if n == host
            ),
            "{host}: {got:?}"
        );
        assert_eq!(c.status(), Disconnected);
        // Without TLS the same name is only a name to look up.
        c.set_resolver(loopback_lookup());
        c.connect_to_host(host, Some(1), false)
            .expect("a plain connection needs no server name");
        assert_eq!(c.status(), Resolving);
        c.close();
    }
}

#[test]
fn bytes_from_the_server_while_idle_are_unsolicited_data() {
    let gate = Gate::new();
    let server = ScriptServer::start(vec![vec![
        Step::ReadRequest,
        Step::Write(ok_response("first")),
        Step::Wait(gate.clone()),
        Step::write("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nextra"),
        Step::ReadToEof,
    ]]);
    let mut c = client();
    connect(&mut c, "127.0.0.1", server.port(), false);
    let got = fetch(&mut c, "GET", "/", &[], b"");
    assert_eq!(got.statuses, vec![Requesting, Body, Connected]);
    assert_eq!(got.body, b"first");
    // Idle now: the server answers a request no one made.
    gate.open();
    let idle = drive_until(&mut c, Duration::from_secs(10), |s| s != Connected);
    assert_eq!(idle.statuses, vec![Connected, ConnectionError]);
    assert!(
        matches!(c.failure(), Some(Failure::UnsolicitedData)),
        "{:?}",
        c.failure()
    );
    assert!(matches!(
        c.request("GET", "/", &[("A", "b")], b""),
        Err(RequestError::WrongStatus(ConnectionError))
    ));
    c.close();
    assert_eq!(server.requests().len(), 1);
    // The client closed with the rest of the stray bytes unread: a reset.
    let errors = server.wait_for_errors(1, Duration::from_secs(10));
    assert_eq!(
        errors,
        ["conn 0: ReadToEof: Connection reset by peer (os error 104)"]
    );
}

/// The connect deadline runs on the client's clock (`HttpClient::with_clock`,
/// here the simulated network's fake clock): a TLS handshake the peer never
/// answers ends with `ConnectTimeout` exactly when the fake clock passes the
/// timeout, with no real time waited for it. The name comes from the
/// network's lookup, not the system resolver.
#[test]
fn connect_timeout_fires_on_the_clients_clock() {
    use pollhttp_tests::simnet::{Answer, SimNet};
    let mut net = SimNet::new();
    net.add_peer("tls.test", Answer::Now);
    let mut c = net.http_client();
    c.set_tls_options(TlsOptions::new().dangerous_disable_verification());
    c.set_connect_timeout(Duration::from_secs(10));
    c.connect_to_host("tls.test", Some(net.port("tls.test")), true)
        .unwrap();
    assert_eq!(c.status(), Resolving);
    // The lookup answers (its thread wakes the client), the TCP connection
    // is accepted and the ClientHello read; no answer ever comes.
    let mut statuses = vec![c.status()];
    for _ in 0..400 {
        net.step();
        let s = c.poll();
        if statuses.last() != Some(&s) {
            statuses.push(s);
        }
        if s == Connecting && net.accepted("tls.test") == 1 {
            break;
        }
        c.wait(Some(Duration::from_millis(50)));
    }
    assert_eq!(statuses, vec![Resolving, Connecting]);
    for _ in 0..5 {
        net.step();
        assert_eq!(c.poll(), Connecting);
    }
    net.clock.advance(Duration::from_secs(9));
    assert_eq!(c.poll(), Connecting, "not due yet");
    net.clock.advance(Duration::from_secs(1));
    assert!(c.wait(Some(Duration::ZERO)), "the deadline is due");
    assert_eq!(c.poll(), CantConnect);
    assert!(
        matches!(c.failure(), Some(Failure::ConnectTimeout(d)) if *d == Duration::from_secs(10)),
        "{:?}",
        c.failure()
    );
}
