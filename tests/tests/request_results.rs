//! HttpRequest against httpbin, nginx and scripted servers: every
//! RequestResult produced for real, with its code and its typed cause
//! (`Completed::failure`, matched as a type; `reason` is only its words).

use std::path::PathBuf;
use std::time::{Duration, Instant};

use pollhttp::proto::Error as ProtoError;
use pollhttp::{
    Completed, Failure, HttpRequest, Refusal, RequestError, RequestFailure, RequestResult,
    TlsOptions,
};
use pollhttp_tests::certs::{untrusted_server_config, TestCa};
use pollhttp_tests::httpbin::Httpbin;
use pollhttp_tests::nginx::{Nginx, NginxOptions, HELLO_BODY};
use pollhttp_tests::process::TempDir;
use pollhttp_tests::script::{response, Gate, ScriptServer, Step, TlsScriptServer};

use RequestResult::*;

fn run(req: &mut HttpRequest) -> Completed {
    pollhttp_tests::drive::run_request(req, Duration::from_secs(60))
}

fn get(url: &str) -> Completed {
    get_with(url, |_| {})
}

fn get_with(url: &str, f: impl FnOnce(&mut HttpRequest)) -> Completed {
    let mut req = HttpRequest::new();
    f(&mut req);
    req.request(url, &[], "GET", "").unwrap();
    run(&mut req)
}

/// A lookup that answers every name with 127.0.0.1 (no system resolver).
fn loopback_lookup() -> pollhttp::LookupFn {
    std::sync::Arc::new(|_: &str, port: u16| {
        Ok(vec![std::net::SocketAddr::from(([127, 0, 0, 1], port))])
    })
}

/// A lookup that finds no name (no system resolver).
fn no_such_name() -> pollhttp::LookupFn {
    std::sync::Arc::new(|name: &str, _: u16| {
        Err(std::io::Error::new(
            std::io::ErrorKind::NotFound,
            format!("{name}: no such name"),
        ))
    })
}

fn json(done: &Completed) -> serde_json::Value {
    serde_json::from_slice(&done.body)
        .unwrap_or_else(|e| panic!("{e}: {:?}", String::from_utf8_lossy(&done.body)))
}

#[test]
fn success_from_httpbin_and_status_418() {
    let hb = Httpbin::shared();
    let done = get(&hb.url("/get?a=1#frag"));
    assert_eq!(
        (done.result, done.response_code()),
        (Success, 200),
        "{}",
        done.reason
    );
    assert_eq!(done.reason, "");
    let body = json(&done);
    assert_eq!(body["args"]["a"], "1");
    assert!(
        body["url"].as_str().unwrap().ends_with("/get?a=1"),
        "fragment dropped"
    );
    let done = get(&hb.url("/status/418"));
    assert_eq!((done.result, done.response_code()), (Success, 418));
}

#[test]
fn bad_input_is_an_error_at_once() {
    let mut req = HttpRequest::new();
    assert!(matches!(
        req.request("not a url", &[], "GET", ""),
        Err(RequestError::InvalidUrl(
            url::ParseError::RelativeUrlWithoutBase
        ))
    ));
    assert!(matches!(
        req.request("ftp://example.com/", &[], "GET", ""),
        Err(RequestError::UnsupportedScheme(s)) if s == "ftp"
    ));
    assert!(matches!(
        req.request(
            "http://127.0.0.1/",
            &[("Y", "ok"), ("X", "a\r\nB: c")],
            "GET",
            ""
        ),
        Err(RequestError::Invalid(
            ProtoError::InvalidRequestFieldValue { index: 1 }
        ))
    ));
    assert!(matches!(
        req.request("http://127.0.0.1/", &[("X Y", "v")], "GET", ""),
        Err(RequestError::Invalid(ProtoError::InvalidRequestFieldName {
            index: 0
        }))
    ));
    assert!(matches!(
        req.request("http://127.0.0.1/", &[], "G T", ""),
        Err(RequestError::Invalid(ProtoError::InvalidMethod))
    ));
    assert!(matches!(
        req.request_file("http://127.0.0.1/", &[], "PUT", "/nonexistent/file"),
        Err(RequestError::Body(e)) if e.kind() == std::io::ErrorKind::NotFound
    ));
    assert!(!req.is_busy());
}

#[test]
fn status_is_live_right_after_request() {
    let mut req = HttpRequest::new();
    req.request("http://127.0.0.1:9/", &[], "GET", "").unwrap();
    assert_eq!(req.http_client_status(), pollhttp::Status::Connecting);
    req.cancel_request();
    // A name goes to the resolver's worker first, whatever it answers.
    req.set_lookup(loopback_lookup());
    req.request("http://name.test:9/", &[], "GET", "").unwrap();
    assert_eq!(req.http_client_status(), pollhttp::Status::Resolving);
}

#[test]
fn busy_while_running() {
    let hb = Httpbin::shared();
    let mut req = HttpRequest::new();
    req.request(&hb.url("/delay/1"), &[], "GET", "").unwrap();
    assert!(matches!(
        req.request(&hb.url("/get"), &[], "GET", ""),
        Err(RequestError::Busy)
    ));
    req.cancel_request();
    assert!(!req.is_busy());
}

#[test]
fn cant_resolve_and_cant_connect() {
    let done = get_with("http://gone.test/", |r| r.set_lookup(no_such_name()));
    assert_eq!((done.result, done.response_code()), (CantResolve, 0));
    assert!(
        matches!(
            done.connection_failure(),
            Some(Failure::Resolve(e))
                if e.kind() == std::io::ErrorKind::NotFound
                    && e.to_string() == "gone.test: no such name"
        ),
        "{:?}",
        done.failure
    );
    let port = pollhttp_tests::process::free_port().unwrap();
    let done = get(&format!("http://127.0.0.1:{port}/"));
    assert_eq!(done.result, CantConnect);
    assert!(
        matches!(
            done.connection_failure(),
            Some(Failure::Connect(e)) if e.kind() == std::io::ErrorKind::ConnectionRefused
        ),
        "{:?}",
        done.failure
    );
}

#[test]
fn truncated_body_is_a_size_mismatch_never_cant_connect() {
    let server = ScriptServer::start(vec![
        vec![
            Step::ReadRequest,
            Step::write("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n0123456789"),
            Step::Close,
        ],
        vec![
            Step::ReadRequest,
            Step::write("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nabcd\r\n"),
            Step::Close,
        ],
    ]);
    let done = get(&server.base_url());
    assert_eq!(
        (done.result, done.response_code()),
        (ChunkedBodySizeMismatch, 200)
    );
    assert!(
        matches!(
            done.connection_failure(),
            Some(Failure::Protocol(ProtoError::IncompleteBody {
                expected: 100,
                received: 10,
                ..
            }))
        ),
        "{:?}",
        done.failure
    );
    assert!(done.body.is_empty());
    let done = get(&server.base_url());
    assert_eq!(done.result, ChunkedBodySizeMismatch);
    assert!(
        matches!(
            done.connection_failure(),
            Some(Failure::Protocol(ProtoError::IncompleteChunkedBody {
                received: 4,
                ..
            }))
        ),
        "{:?}",
        done.failure
    );
}

#[test]
fn no_response_and_connection_error() {
    let server = ScriptServer::start(vec![
        vec![Step::ReadRequest, Step::Close],
        vec![
            Step::ReadRequest,
            Step::write("HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab"),
        ],
        vec![
            Step::ReadRequest,
            Step::write("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nab"),
            Step::Reset,
        ],
    ]);
    let done = get(&server.base_url());
    assert_eq!(done.result, NoResponse);
    assert!(
        matches!(
            done.connection_failure(),
            Some(Failure::Protocol(ProtoError::IncompleteHead {
                received: 0,
                offset: 0
            }))
        ),
        "{:?}",
        done.failure
    );
    let done = get(&server.base_url());
    assert_eq!(done.result, ConnectionError);
    assert!(
        matches!(
            done.connection_failure(),
            Some(Failure::Protocol(ProtoError::ConflictingContentLength {
                offset: 36
            }))
        ),
        "{:?}",
        done.failure
    );
    // A Content-Length body cut by a reset: the reset is the cause.
    let done = get(&server.base_url());
    assert_eq!(done.result, ConnectionError, "{}", done.reason);
    assert!(
        matches!(
            done.connection_failure(),
            Some(pollhttp::Failure::Io(e)) if e.kind() == std::io::ErrorKind::ConnectionReset
        ),
        "{:?}",
        done.failure
    );
}

/// The rustls error inside a handshake failure.
fn handshake_rustls_error(done: &Completed) -> &rustls::Error {
    match done.connection_failure() {
        Some(Failure::Tls(e)) => e
            .rustls_error()
            .unwrap_or_else(|| panic!("not a rustls error: {e:?}")),
        _ => panic!("not a TLS handshake failure: {:?}", done.failure),
    }
}

/// The scripted server saw the handshake end with the alert the client sent.
fn assert_client_alert(server: &TlsScriptServer, alert: &str) {
    let errors = server.wait_for_errors(1, Duration::from_secs(10));
    assert_eq!(
        errors,
        [format!(
            "conn 0: TLS handshake failed: received fatal alert: {alert}"
        )]
    );
}

#[test]
fn tls_handshake_error() {
    let server = TlsScriptServer::start(untrusted_server_config(), vec![vec![Step::ReadRequest]]);
    let done = get(&format!("https://127.0.0.1:{}/", server.port()));
    assert_eq!((done.result, done.response_code()), (TlsHandshakeError, 0));
    assert!(
        matches!(
            handshake_rustls_error(&done),
            rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer)
        ),
        "{:?}",
        done.failure
    );
    assert_client_alert(&server, "UnknownCA");
}

#[test]
fn expired_certificate_is_a_handshake_error() {
    let ca = TestCa::shared();
    let server = TlsScriptServer::start(ca.expired_server_config(), vec![vec![Step::ReadRequest]]);
    let done = get_with(&server.base_url(), |r| {
        r.settings_mut().tls = Some(TlsOptions::with_root_pem(ca.ca_pem.as_bytes()).unwrap())
    });
    assert_eq!((done.result, done.response_code()), (TlsHandshakeError, 0));
    assert!(
        matches!(
            handshake_rustls_error(&done),
            rustls::Error::InvalidCertificate(
                rustls::CertificateError::Expired | rustls::CertificateError::ExpiredContext { .. }
            )
        ),
        "{:?}",
        done.failure
    );
    assert_client_alert(&server, "CertificateExpired");
}

#[test]
fn tls_with_custom_roots_and_dangerous_mode() {
    let nginx = Nginx::start();
    let ca = nginx.ca_pem.clone();
    let done = get_with(&nginx.url_tls("/hello.txt"), |r| {
        r.settings_mut().tls = Some(TlsOptions::with_root_pem(ca.as_bytes()).unwrap())
    });
    assert_eq!(
        (done.result, &done.body[..]),
        (Success, HELLO_BODY.as_bytes()),
        "{}",
        done.reason
    );
    let done = get_with(&nginx.url_tls("/hello.txt"), |r| {
        r.settings_mut().tls = Some(TlsOptions::new().dangerous_disable_verification())
    });
    assert_eq!(done.result, Success, "{}", done.reason);
}

#[test]
fn body_size_limit_just_under_and_just_over() {
    let hb = Httpbin::shared();
    let done = get_with(&hb.url("/bytes/1000"), |r| {
        r.settings_mut().body.size_limit = Some(1000)
    });
    assert_eq!((done.result, done.body.len()), (Success, 1000));
    let done = get_with(&hb.url("/bytes/1000"), |r| {
        r.settings_mut().body.size_limit = Some(999)
    });
    assert_eq!(
        (done.result, done.response_code()),
        (BodySizeLimitExceeded, 200)
    );
    // Refused at the head by proto's wire limit, before a body byte.
    assert!(
        matches!(
            done.failure,
            Some(RequestFailure::Connection(Failure::Protocol(
                ProtoError::BodyTooLarge { limit: 999, .. }
            )))
        ),
        "{:?}",
        done.failure
    );
    // Chunked: stopped by proto at the chunk-size that passes the limit.
    let done = get_with(&hb.url("/stream-bytes/5000?chunk_size=100"), |r| {
        r.settings_mut().body.size_limit = Some(4999)
    });
    assert_eq!(done.result, BodySizeLimitExceeded, "{}", done.reason);
    assert!(
        matches!(
            done.failure,
            Some(RequestFailure::Connection(Failure::Protocol(
                ProtoError::BodyTooLarge { limit: 4999, .. }
            )))
        ),
        "{:?}",
        done.failure
    );
    let done = get_with(&hb.url("/stream-bytes/5000?chunk_size=100"), |r| {
        r.settings_mut().body.size_limit = Some(5000)
    });
    assert_eq!((done.result, done.body.len()), (Success, 5000));
}

fn gzip(data: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

#[test]
fn decompression_bomb_stops_at_the_limit() {
    let bomb = gzip(&vec![0u8; 64 << 20]);
    assert!(bomb.len() < 100_000);
    let server = ScriptServer::start(vec![vec![
        Step::ReadRequest,
        Step::Write(response(
            "200 OK",
            &[
                ("Content-Encoding", "gzip"),
                ("Content-Length", &bomb.len().to_string()),
            ],
            &bomb,
        )),
    ]]);
    let done = get_with(&server.base_url(), |r| {
        r.settings_mut().body.size_limit = Some(1 << 20)
    });
    assert_eq!(done.result, BodySizeLimitExceeded);
    // Counted after decoding: the compressed body is under the limit.
    assert!(
        matches!(
            done.failure,
            Some(RequestFailure::BodySizeLimit { limit: 0x10_0000 })
        ),
        "{:?}",
        done.failure
    );
}

#[test]
fn gzip_and_deflate_are_decoded() {
    let hb = Httpbin::shared();
    let done = get(&hb.url("/gzip"));
    assert_eq!(done.result, Success, "{}", done.reason);
    assert_eq!(json(&done)["gzipped"], true);
    assert_eq!(
        done.headers().get_str("content-encoding"),
        Some("gzip"),
        "headers kept as received"
    );
    let done = get(&hb.url("/deflate"));
    assert_eq!(done.result, Success, "{}", done.reason);
    assert_eq!(json(&done)["deflated"], true);
    // Without accept_gzip nothing is asked for and nothing decoded.
    let done = get_with(&hb.url("/headers"), |r| {
        r.settings_mut().body.accept_gzip = false
    });
    assert!(json(&done)["headers"].get("Accept-Encoding").is_none());
    // nginx: gzip over chunked.
    let nginx = Nginx::start();
    let done = get(&nginx.url("/gzip/1m.bin"));
    assert_eq!(done.result, Success, "{}", done.reason);
    assert_eq!(
        &done.body[..],
        &pollhttp_tests::pseudo_random_bytes(1 << 20)[..]
    );
}

#[test]
fn body_decompress_failed() {
    let server = ScriptServer::start(vec![vec![
        Step::ReadRequest,
        Step::Write(response(
            "200 OK",
            &[("Content-Encoding", "gzip"), ("Content-Length", "12")],
            "not gzip!!!!",
        )),
    ]]);
    let done = get(&server.base_url());
    assert_eq!(
        (done.result, done.response_code()),
        (BodyDecompressFailed, 200)
    );
    assert!(
        matches!(
            &done.failure,
            Some(RequestFailure::Decompress(e)) if e.kind() == std::io::ErrorKind::InvalidData
        ),
        "{:?}",
        done.failure
    );
}

#[test]
fn chunked_streams() {
    let hb = Httpbin::shared();
    let done = get(&hb.url("/stream/5"));
    assert_eq!(done.result, Success);
    assert_eq!(String::from_utf8_lossy(&done.body).lines().count(), 5);
    let done = get(&hb.url("/stream-bytes/100000?chunk_size=1000&seed=7"));
    assert_eq!((done.result, done.body.len()), (Success, 100_000));
}

#[test]
fn redirect_chains() {
    let hb = Httpbin::shared();
    for path in [
        "/redirect/3",
        "/absolute-redirect/3",
        "/relative-redirect/3",
    ] {
        let done = get(&hb.url(path));
        assert_eq!(
            (done.result, done.response_code(), done.redirects),
            (Success, 200, 3),
            "{path}"
        );
        assert_eq!(done.final_url, hb.url("/get"), "{path}");
    }
    let done = get_with(&hb.url("/redirect/10"), |r| {
        r.settings_mut().redirects.max = 3
    });
    assert_eq!(
        (done.result, done.response_code(), done.redirects),
        (RedirectLimitReached, 302, 3)
    );
    assert!(
        matches!(done.failure, Some(RequestFailure::RedirectLimit(3))),
        "{:?}",
        done.failure
    );
    let nginx = Nginx::start();
    let done = get(&nginx.url("/redirect/loop"));
    assert_eq!((done.result, done.redirects), (RedirectLimitReached, 8));
    assert!(
        matches!(done.failure, Some(RequestFailure::RedirectLimit(8))),
        "{:?}",
        done.failure
    );
    for code in [301, 302, 303, 307, 308] {
        let done = get(&nginx.url(&format!("/redirect/{code}")));
        assert_eq!(
            (done.result, &done.body[..]),
            (Success, HELLO_BODY.as_bytes()),
            "{code}"
        );
    }
}

#[test]
fn redirect_method_and_body_rules() {
    let hb = Httpbin::shared();
    let post = |url: &str| {
        let mut req = HttpRequest::new();
        req.request(url, &[("Content-Type", "text/plain")], "POST", "the body")
            .unwrap();
        run(&mut req)
    };
    // 303 after POST becomes GET without a body.
    let done = post(&hb.url("/redirect-to?url=/anything&status_code=303"));
    let body = json(&done);
    assert_eq!(
        (body["method"].as_str(), body["data"].as_str()),
        (Some("GET"), Some(""))
    );
    // 302 after POST too.
    let body = json(&post(&hb.url("/redirect-to?url=/anything&status_code=302")));
    assert_eq!(body["method"], "GET");
    // 307 and 308 keep the method and body.
    for code in [307, 308] {
        let body = json(&post(
            &hb.url(&format!("/redirect-to?url=/anything&status_code={code}")),
        ));
        assert_eq!(
            (body["method"].as_str(), body["data"].as_str()),
            (Some("POST"), Some("the body")),
            "{code}"
        );
    }
}

#[test]
fn credentials_dropped_when_the_origin_changes() {
    let hb = Httpbin::shared();
    let req_with_auth = |url: &str| {
        let mut req = HttpRequest::new();
        req.set_lookup(loopback_lookup());
        req.request(
            url,
            &[
                ("Authorization", "Bearer secret"),
                ("Cookie", "a=b"),
                ("X-Keep", "1"),
            ],
            "GET",
            "",
        )
        .unwrap();
        run(&mut req)
    };
    let same = req_with_auth(&hb.url("/redirect-to?url=/headers"));
    let h = &json(&same)["headers"];
    assert_eq!(
        (h["Authorization"].as_str(), h["Cookie"].as_str()),
        (Some("Bearer secret"), Some("a=b"))
    );
    // 127.0.0.1 and other.test (the same httpbin, by the injected lookup)
    // are different origins.
    let other = format!("http://other.test:{}/headers", hb.port);
    let cross = req_with_auth(&hb.url(&format!("/redirect-to?url={other}")));
    let h = &json(&cross)["headers"];
    assert!(
        h.get("Authorization").is_none() && h.get("Cookie").is_none(),
        "{h}"
    );
    assert_eq!(h["X-Keep"], "1");
}

#[test]
fn https_to_http_redirect_refused_unless_allowed() {
    let nginx = Nginx::start();
    let tls = TlsOptions::with_root_pem(nginx.ca_pem.as_bytes()).unwrap();
    let t = tls.clone();
    let done = get_with(&nginx.url_tls("/redirect/to-http"), |r| {
        r.settings_mut().tls = Some(t)
    });
    assert_eq!((done.result, done.response_code()), (RequestFailed, 302));
    let refused_url = nginx.url("/hello.txt");
    assert!(
        matches!(
            &done.failure,
            Some(RequestFailure::Redirect(Refusal::HttpsToHttp(u))) if *u == refused_url
        ),
        "{:?}",
        done.failure
    );
    let done = get_with(&nginx.url_tls("/redirect/to-http"), |r| {
        r.settings_mut().tls = Some(tls);
        r.settings_mut().redirects.https_to_http = true;
    });
    assert_eq!(
        (done.result, &done.body[..]),
        (Success, HELLO_BODY.as_bytes())
    );
}

#[test]
fn same_origin_redirect_reuses_the_connection() {
    let server = ScriptServer::start(vec![vec![
        Step::ReadRequest,
        Step::Write(response(
            "302 Found",
            &[("Location", "/next"), ("Content-Length", "4")],
            "gone",
        )),
        Step::ReadRequest,
        Step::Write(response("200 OK", &[("Content-Length", "4")], "here")),
    ]]);
    let done = get(&server.base_url());
    assert_eq!(
        (done.result, &done.body[..], done.redirects),
        (Success, &b"here"[..], 1)
    );
    assert_eq!(server.connections_accepted(), 1);
}

#[test]
fn a_large_redirect_body_is_not_read_through() {
    let server = ScriptServer::start(vec![
        vec![
            Step::ReadRequest,
            Step::write(
                "HTTP/1.1 302 Found\r\nLocation: /next\r\nContent-Length: 1073741824\r\n\r\n",
            ),
            Step::WriteRepeated {
                chunk: vec![b'x'; 65536],
                total: 1 << 30,
            },
        ],
        vec![
            Step::ReadRequest,
            Step::Write(response("200 OK", &[("Content-Length", "4")], "here")),
        ],
    ]);
    let done = get(&server.base_url());
    assert_eq!(
        (done.result, &done.body[..], done.redirects),
        (Success, &b"here"[..], 1)
    );
    assert_eq!(server.connections_accepted(), 2);
    assert!(
        done.wire_bytes < 16 << 20,
        "read {} bytes of the redirect body",
        done.wire_bytes
    );
    // The client closed the first connection under the GiB being written.
    let errors = server.wait_for_errors(1, Duration::from_secs(10));
    assert!(
        matches!(&errors[..], [e] if e.starts_with("conn 0: WriteRepeated")),
        "{errors:?}"
    );
}

#[test]
fn redirect_to_a_bad_location_is_refused() {
    // Not http(s), no host, not a URL at all: nothing is followed, the
    // Location is given as received (trimmed).
    let locations = ["ftp://example.test/file", "http://", "http://[::1"];
    let server = ScriptServer::start(
        locations
            .iter()
            .map(|l| {
                vec![
                    Step::ReadRequest,
                    Step::Write(response(
                        "302 Found",
                        &[("Location", &format!(" {l} "))],
                        "",
                    )),
                    Step::ReadToEof,
                ]
            })
            .collect(),
    );
    for (i, location) in locations.into_iter().enumerate() {
        let done = get(&server.base_url());
        assert_eq!(
            (done.result, done.response_code(), done.redirects),
            (RequestFailed, 302, 0),
            "{location}"
        );
        assert!(
            matches!(
                &done.failure,
                Some(RequestFailure::Redirect(Refusal::BadLocation(l))) if l == location
            ),
            "{location}: {:?}",
            done.failure
        );
        assert!(server.wait_for_requests(i + 1, Duration::from_secs(10)));
    }
    assert_eq!(server.requests().len(), 3, "one request per connection");
    assert_eq!(server.connections_accepted(), 3);
}

/// A request body reader: `good` bytes of `b'r'`, then `fail`.
struct FailingReader {
    good: usize,
    fail: fn() -> std::io::Error,
}

impl std::io::Read for FailingReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.good == 0 {
            return Err((self.fail)());
        }
        let n = buf.len().min(self.good);
        buf[..n].fill(b'r');
        self.good -= n;
        Ok(n)
    }
}

#[test]
fn a_body_reader_failing_mid_upload_fails_the_request_with_its_error() {
    // 1 MiB of a 2 MiB body, then the reader fails: part of the upload is
    // on the wire by then (the client queues 256 KiB at a time), and the
    // server sees the client close with the body incomplete.
    const GOOD: usize = 1 << 20;
    let server = ScriptServer::start(vec![vec![Step::ReadRequestHead, Step::ReadToEof]]);
    let mut req = HttpRequest::new();
    let reader = FailingReader {
        good: GOOD,
        fail: || std::io::Error::new(std::io::ErrorKind::BrokenPipe, "the source went away"),
    };
    req.request_body(
        &server.base_url(),
        &[],
        "PUT",
        pollhttp::RequestBody::reader(reader, Some(2 * GOOD as u64)),
    )
    .unwrap();
    let done = run(&mut req);
    drop(req);
    assert_eq!((done.result, done.response_code()), (ConnectionError, 0));
    assert!(
        matches!(
            done.connection_failure(),
            Some(Failure::Io(e))
                if e.kind() == std::io::ErrorKind::BrokenPipe
                    && e.to_string() == "the source went away"
        ),
        "{:?}",
        done.failure
    );
    assert!(server.wait_for_requests(1, Duration::from_secs(10)));
    let server_saw = {
        // Dropping the server joins its connection thread, which ends at
        // the client's close (ReadToEof).
        let head = server.requests()[0].clone();
        let received = server.received()[0].clone();
        drop(server);
        (head, received)
    };
    let (head, received) = server_saw;
    let head_text = String::from_utf8_lossy(&head);
    assert!(
        head_text.starts_with("PUT / HTTP/1.1\r\n")
            && head_text.contains("\r\nContent-Length: 2097152\r\n"),
        "{head_text:?}"
    );
    let body = &received[head.len()..];
    assert!(
        !body.is_empty() && body.len() <= GOOD && body.iter().all(|&b| b == b'r'),
        "{} body bytes",
        body.len()
    );
}

#[test]
fn a_body_file_gone_before_a_307_is_a_body_failure() {
    // 307 keeps the method and the body, so the file is opened again for
    // the next hop: it was removed meanwhile.
    let dir = TempDir::new("gone").unwrap();
    let path = dir.path().join("upload.bin");
    std::fs::write(&path, b"file body").unwrap();
    let gate = Gate::new();
    let server = ScriptServer::start(vec![vec![
        Step::ReadRequest,
        Step::Wait(gate.clone()),
        Step::Write(response(
            "307 Temporary Redirect",
            &[("Location", "/again")],
            "",
        )),
        Step::ReadToEof,
    ]]);
    let mut req = HttpRequest::new();
    req.request_file(&server.base_url(), &[], "PUT", path.to_str().unwrap())
        .unwrap();
    // Drive until the server has the whole first upload, then remove the
    // file and let the 307 go.
    let mut polls = 0;
    while !server
        .requests()
        .first()
        .is_some_and(|r| r.ends_with(b"\r\n\r\nfile body"))
    {
        polls += 1;
        assert!(polls < 2000, "the upload did not arrive");
        assert!(req.poll().is_none());
        req.wait(Some(Duration::from_millis(10)));
    }
    std::fs::remove_file(&path).unwrap();
    gate.open();
    let done = run(&mut req);
    drop(req);
    // (The 307 is not reported as the response: a failure to send the next
    // hop completes without one.)
    assert_eq!((done.result, done.response_code()), (RequestFailed, 0));
    assert!(
        matches!(
            &done.failure,
            Some(RequestFailure::Body(e)) if e.kind() == std::io::ErrorKind::NotFound
        ),
        "{:?}",
        done.failure
    );
    assert_eq!(server.requests().len(), 1, "nothing sent for the next hop");
}

/// A request body reader that panics on its first read.
struct PanickingReader;

impl std::io::Read for PanickingReader {
    fn read(&mut self, _: &mut [u8]) -> std::io::Result<usize> {
        panic!("PanickingReader: the worker thread dies here (expected in this test)");
    }
}

#[test]
fn a_worker_thread_that_dies_is_worker_gone() {
    // The body is read on the worker thread (`use_threads`), so a reader
    // that panics ends that thread without a result.
    let server = ScriptServer::start(vec![vec![Step::ReadToEof]]);
    let mut req = HttpRequest::new();
    req.set_use_threads(true);
    req.request_body(
        &server.base_url(),
        &[],
        "PUT",
        pollhttp::RequestBody::reader(PanickingReader, Some(10)),
    )
    .unwrap();
    let done = run(&mut req);
    assert_eq!((done.result, done.response_code()), (RequestFailed, 0));
    assert!(
        matches!(done.failure, Some(RequestFailure::WorkerGone)),
        "{:?}",
        done.failure
    );
    assert!(!req.is_busy());
    drop(req);
    // The panic came before any byte of the request was written.
    assert_eq!(server.received().concat(), b"");
}

#[test]
fn basic_auth_from_url_userinfo() {
    let hb = Httpbin::shared();
    let url = format!(
        "http://user:p%40ss@127.0.0.1:{}/basic-auth/user/p@ss",
        hb.port
    );
    let done = get(&url);
    assert_eq!(
        (done.result, done.response_code()),
        (Success, 200),
        "{}",
        done.reason
    );
    let done = get(&hb.url("/basic-auth/user/p@ss"));
    assert_eq!(done.response_code(), 401);
}

#[test]
fn timeouts() {
    let hb = Httpbin::shared();
    // One deadline over the whole request: /drip sends a byte a second for
    // 3 s, so a Timeout at all says the deadline ended it before the drip
    // did; never early (a lower bound, which no preemption can break).
    let done = get_with(&hb.url("/drip?duration=3&numbytes=3&delay=0"), |r| {
        r.settings_mut().timeouts.total = Some(Duration::from_millis(700))
    });
    assert_eq!(done.result, Timeout);
    assert!(
        matches!(done.failure, Some(RequestFailure::Timeout(d)) if d == Duration::from_millis(700)),
        "{:?}",
        done.failure
    );
    // The drip had started: the deadline cut the body, not the head.
    assert_eq!(done.response_code(), 200, "{:?}", done.failure);
    // /delay/1 finishes inside a generous deadline.
    let done = get_with(&hb.url("/delay/1"), |r| {
        r.settings_mut().timeouts.total = Some(Duration::from_secs(10))
    });
    assert_eq!(done.result, Success);
    // Idle timeout: no byte for 500 ms.
    let done = get_with(&hb.url("/delay/3"), |r| {
        r.settings_mut().timeouts.idle = Some(Duration::from_millis(500))
    });
    assert_eq!(done.result, Timeout);
    assert!(
        matches!(done.failure, Some(RequestFailure::IdleTimeout(d)) if d == Duration::from_millis(500)),
        "{:?}",
        done.failure
    );
    // A drip with bytes every 300 ms stays inside a 1 s idle timeout.
    let done = get_with(&hb.url("/drip?duration=1.5&numbytes=5&delay=0"), |r| {
        r.settings_mut().timeouts.idle = Some(Duration::from_secs(1))
    });
    assert_eq!(
        (done.result, done.body.len()),
        (Success, 5),
        "{}",
        done.reason
    );
}

#[test]
fn download_file_results() {
    let nginx = Nginx::start();
    let dir = TempDir::new("dl").unwrap();
    let path = dir.path().join("hello.txt");
    let p = path.clone();
    let done = get_with(&nginx.url("/hello.txt"), |r| {
        r.settings_mut().body.download_file = Some(p)
    });
    assert_eq!(
        (done.result, done.body.len(), done.body_bytes),
        (Success, 0, 13)
    );
    assert_eq!(std::fs::read(&path).unwrap(), HELLO_BODY.as_bytes());

    let missing = PathBuf::from("/nonexistent-dir/sub/file.bin");
    let m = missing.clone();
    let done = get_with(&nginx.url("/hello.txt"), |r| {
        r.settings_mut().body.download_file = Some(m)
    });
    assert_eq!(
        (done.result, done.response_code()),
        (DownloadFileCantOpen, 200)
    );
    assert!(
        matches!(
            &done.failure,
            Some(RequestFailure::DownloadFileOpen { path, error })
                if *path == missing && error.kind() == std::io::ErrorKind::NotFound
        ),
        "{:?}",
        done.failure
    );

    let done = get_with(&nginx.url("/1m.bin"), |r| {
        r.settings_mut().body.download_file = Some("/dev/full".into())
    });
    assert_eq!(done.result, DownloadFileWriteError);
    // (Which error: see download_to_a_full_device_is_storage_full.)
    assert!(
        matches!(
            &done.failure,
            Some(RequestFailure::DownloadFileWrite { path, .. }) if path.as_path() == std::path::Path::new("/dev/full")
        ),
        "{:?}",
        done.failure
    );

    // A final response without a body leaves the file empty (as curl).
    let p = path.clone();
    let done = get_with(&nginx.url("/status/204"), |r| {
        r.settings_mut().body.download_file = Some(p)
    });
    assert_eq!((done.result, done.response_code()), (Success, 204));
    assert_eq!(std::fs::read(&path).unwrap(), b"");
}

#[test]
fn download_to_a_full_device_is_storage_full() {
    let nginx = Nginx::start();
    let done = get_with(&nginx.url("/1m.bin"), |r| {
        r.settings_mut().body.download_file = Some("/dev/full".into())
    });
    assert_eq!(done.result, DownloadFileWriteError);
    assert!(
        matches!(
            &done.failure,
            Some(RequestFailure::DownloadFileWrite { path, error })
                if path.as_path() == std::path::Path::new("/dev/full")
                    && error.kind() == std::io::ErrorKind::StorageFull
        ),
        "{:?}",
        done.failure
    );
}

#[test]
fn one_gib_download_to_a_file() {
    let nginx = Nginx::start_with(NginxOptions {
        big_file_len: 1 << 30,
        ..NginxOptions::default()
    });
    let dir = TempDir::new("big").unwrap();
    let path = dir.path().join("big.bin");
    for threads in [false, true] {
        let p = path.clone();
        let done = get_with(&nginx.url("/big.bin"), |r| {
            r.settings_mut().body.download_file = Some(p);
            r.set_use_threads(threads);
        });
        assert_eq!(
            (done.result, done.body_bytes),
            (Success, 1 << 30),
            "{}",
            done.reason
        );
        assert_eq!(std::fs::metadata(&path).unwrap().len(), 1 << 30);
    }
    let mut f = std::fs::File::open(&path).unwrap();
    let mut h = sha2::Sha256::default();
    std::io::copy(&mut f, &mut h).unwrap();
    use sha2::Digest;
    assert_eq!(
        pollhttp_tests::hex(&h.finalize()),
        pollhttp_tests::ZEROS_1GIB_SHA256
    );
}

/// Set in the child process that runs [`cancel_in_this_process`].
const CANCEL_CHILD: &str = "POLLHTTP_TESTS_CANCEL_CHILD";

#[test]
fn cancel_mid_body_completes_nothing() {
    // The checks count this process's worker threads, so they run in a
    // process of their own: this test binary again, with only that test.
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "cancel_in_this_process",
            "--exact",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CANCEL_CHILD, "1")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stdout.contains("1 passed"),
        "child: {}\n{stdout}\n{stderr}",
        out.status
    );
    eprintln!("{stderr}");
}

/// The threads of this process named like `HttpRequest`'s worker
/// (`pollhttp-request`, cut to 15 bytes by the kernel).
fn worker_threads() -> usize {
    std::fs::read_dir("/proc/self/task")
        .unwrap()
        .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("comm")).ok())
        .filter(|name| name.starts_with("pollhttp-req"))
        .count()
}

#[test]
#[ignore = "run by cancel_mid_body_completes_nothing in a process of its own"]
fn cancel_in_this_process() {
    if std::env::var_os(CANCEL_CHILD).is_none() {
        eprintln!("only meaningful alone in its process: see cancel_mid_body_completes_nothing");
        return;
    }
    const ROUNDS: usize = 10;
    const FILE: u64 = 1 << 20;
    let nginx = Nginx::start();
    assert_eq!(worker_threads(), 0);
    for threads in [false, true] {
        let log_lines = nginx.access_log().lines().count();
        let mut cancelled = Vec::new();
        let mut cancel_times = Vec::new();
        for round in 0..ROUNDS {
            let mut req = HttpRequest::new();
            req.set_use_threads(threads);
            req.request(&nginx.url(&format!("/slow/1m.bin?{round}")), &[], "GET", "")
                .unwrap();
            // Mid-body: the first bytes of a file nginx sends at 64 KiB/s.
            let start = Instant::now();
            while req.downloaded_bytes() == 0 {
                assert!(start.elapsed() < Duration::from_secs(20), "no body byte");
                assert!(req.poll().is_none());
                req.wait(Some(Duration::from_millis(20)));
            }
            assert_eq!(req.body_size(), Some(FILE));
            if threads {
                assert!(worker_threads() >= 1, "the request runs on a worker");
            }
            let t = Instant::now();
            req.cancel_request();
            cancel_times.push(t.elapsed());
            assert!(!req.is_busy());
            assert_eq!(req.http_client_status(), pollhttp::Status::Disconnected);
            cancelled.push(req);
        }
        // Nothing completes afterwards: a bounded number of polls over
        // ~200 ms, with the workers (if any) winding down meanwhile.
        for _ in 0..20 {
            for req in &mut cancelled {
                assert!(req.poll().is_none(), "nothing completes after cancel");
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        // Every worker thread ends (checked up to 20 s; a hang guard, not a
        // measurement).
        let mut checks = 0;
        while worker_threads() > 0 {
            checks += 1;
            assert!(
                checks < 2000,
                "{} worker threads still running",
                worker_threads()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        // nginx saw every connection close mid-body: a line per request,
        // status 200 and fewer bytes than the file. A connection left open
        // would be logged only when its 1 MiB was sent (16 s at 64 KiB/s),
        // with all of it.
        let log = nginx.wait_access_log(log_lines + ROUNDS, Duration::from_secs(10));
        let lines: Vec<&str> = log.lines().skip(log_lines).collect();
        assert_eq!(lines.len(), ROUNDS, "threads {threads}: {log}");
        for l in &lines {
            // `<conn> <n on conn> "<request line>" <status> <bytes>`
            let f: Vec<&str> = l.split_whitespace().collect();
            let bytes: u64 = f[f.len() - 1].parse().unwrap();
            assert!(l.contains("/slow/1m.bin?"), "{l}");
            assert_eq!(f[f.len() - 2], "200", "{l}");
            assert!(bytes > 0 && bytes < FILE, "threads {threads}: {l}");
        }
        // How long cancel_request() took is for the log only (a benchmark
        // figure, not a test: one sample of a preemptible call proves
        // nothing); what it must do is checked above.
        cancel_times.sort();
        eprintln!("threads {threads}: cancel_request() took {cancel_times:?}");
    }
}

#[test]
fn use_threads_reports_progress() {
    let nginx = Nginx::start();
    let mut req = HttpRequest::new();
    req.set_use_threads(true);
    req.request(&nginx.url("/slow/1m.bin"), &[], "GET", "")
        .unwrap();
    let start = Instant::now();
    let mut seen = Vec::new();
    let done = loop {
        if let Some(done) = req.poll() {
            break done;
        }
        seen.push(req.downloaded_bytes());
        assert!(start.elapsed() < Duration::from_secs(60));
        req.wait(Some(Duration::from_millis(200)));
    };
    assert_eq!((done.result, done.body.len()), (Success, 1 << 20));
    seen.dedup();
    assert!(seen.len() > 3, "progress moved: {seen:?}");
}

// ------------------------------------------------- earlier heads, partial bodies

/// The status codes of a completion's heads, earlier ones first.
fn statuses(done: &Completed) -> Vec<u16> {
    done.earlier_heads
        .iter()
        .chain(&done.head)
        .map(|h| h.status())
        .collect()
}

#[test]
fn earlier_heads_keep_each_interim_redirect_and_challenge_head_in_order() {
    // 103 and 100 before a 302, then the 200 on the same connection.
    let srv = ScriptServer::start(vec![vec![
        Step::ReadRequest,
        Step::write(
            "HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\n\
             HTTP/1.1 302 Found\r\nLocation: /next\r\nContent-Length: 0\r\n\r\n",
        ),
        Step::ReadRequest,
        Step::write("HTTP/1.1 100 Continue\r\n\r\n"),
        Step::write(response("200 OK", &[], "done")),
    ]]);
    let done = get(&format!("{}/first", srv.base_url()));
    assert_eq!(done.result, Success, "{}", done.reason);
    assert_eq!(statuses(&done), [103, 302, 100, 200]);
    assert_eq!(
        done.earlier_heads[0].fields().get_str("link"),
        Some("</a.css>; rel=preload")
    );
    assert_eq!(done.earlier_heads[1].reason_str(), "Found");
    assert_eq!(&done.body[..], b"done");
    // Without redirects followed, the 3xx is the head and none came before.
    let srv = ScriptServer::start(vec![vec![
        Step::ReadRequest,
        Step::write("HTTP/1.1 301 Moved\r\nLocation: /x\r\nContent-Length: 0\r\n\r\n"),
    ]]);
    let done = get_with(&srv.base_url(), |r| {
        r.settings_mut().redirects.follow = false
    });
    assert_eq!(statuses(&done), [301]);
    assert!(done.earlier_heads.is_empty());
}

#[test]
fn earlier_heads_hold_at_most_the_cap_of_interim_heads() {
    let n = Completed::MAX_INFORMATIONAL_HEADS + 5;
    let mut answer = "HTTP/1.1 102 Processing\r\n\r\n".repeat(n);
    answer.push_str(&String::from_utf8(response("200 OK", &[], "ok")).unwrap());
    let srv = ScriptServer::start(vec![vec![Step::ReadRequest, Step::write(answer)]]);
    let done = get(&srv.base_url());
    assert_eq!(done.result, Success, "{}", done.reason);
    assert_eq!(done.earlier_heads.len(), Completed::MAX_INFORMATIONAL_HEADS);
    assert_eq!(done.response_code(), 200);
}

#[test]
fn a_digest_round_keeps_the_401_head() {
    let hb = Httpbin::shared();
    let done = get_with(&hb.url("/digest-auth/auth/u/p"), |r| {
        r.settings_mut().auth = Some(pollhttp::web::Auth::digest("u", "p"));
    });
    assert_eq!(done.result, Success, "{}", done.reason);
    assert_eq!(statuses(&done), [401, 200]);
    assert!(done.earlier_heads[0]
        .fields()
        .get_str("www-authenticate")
        .is_some_and(|v| v.starts_with("Digest ")));
}

#[test]
fn a_failure_hands_out_the_body_bytes_that_arrived() {
    let srv = ScriptServer::start(vec![vec![
        Step::ReadRequest,
        Step::write("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhalf"),
        Step::Close,
    ]]);
    let done = get(&srv.base_url());
    assert_eq!(done.result, ChunkedBodySizeMismatch, "{}", done.reason);
    assert!(done.body.is_empty(), "a failure's body stays empty");
    assert_eq!(&done.partial_body[..], b"half");
    assert_eq!(done.response_code(), 200);
    // A success has its body in `body` only.
    let srv = ScriptServer::start(vec![vec![
        Step::ReadRequest,
        Step::write(response("200 OK", &[], "whole")),
    ]]);
    let done = get(&srv.base_url());
    assert_eq!(
        (&done.body[..], done.partial_body.len()),
        (&b"whole"[..], 0)
    );
}

#[test]
fn leniency_is_per_request_and_strict_but_for_obs_fold_by_default() {
    let bare_lf = "HTTP/1.1 200 OK\nContent-Length: 2\n\nok";
    let srv = ScriptServer::start(vec![
        vec![
            Step::ReadRequest,
            Step::write(bare_lf),
            Step::Close
        ];
        2
    ]);
    let done = get(&srv.base_url());
    assert_eq!(done.result, ConnectionError, "{}", done.reason);
    assert!(matches!(
        done.connection_failure(),
        Some(Failure::Protocol(ProtoError::BareLineFeed { .. }))
    ));
    let done = get_with(&srv.base_url(), |r| {
        r.settings_mut().leniency.bare_lf = true
    });
    assert_eq!(done.result, Success, "{}", done.reason);
    assert_eq!(&done.body[..], b"ok");
    assert!(pollhttp::Settings::default().leniency.obs_fold);
    let folded = "HTTP/1.1 200 OK\r\nX: a\r\n b\r\nContent-Length: 2\r\n\r\nok";
    let srv = ScriptServer::start(vec![
        vec![
            Step::ReadRequest,
            Step::write(folded),
            Step::Close
        ];
        2
    ]);
    let done = get(&srv.base_url());
    assert_eq!(done.headers().get_str("x"), Some("a   b"));
    let done = get_with(&srv.base_url(), |r| {
        r.settings_mut().leniency = pollhttp::Leniency::default();
    });
    assert!(matches!(
        done.connection_failure(),
        Some(Failure::Protocol(ProtoError::ObsFold { .. }))
    ));
}

/// A PUT of `body` with `Expect: 100-continue`, the wait `wait`.
fn put_expecting(url: &str, body: &str, wait: Duration) -> Completed {
    let mut req = HttpRequest::new();
    req.settings_mut().timeouts.expect_continue = wait;
    req.request(url, &[("Expect", "100-continue")], "PUT", body)
        .unwrap();
    run(&mut req)
}

#[test]
fn expect_continue_holds_the_body_until_the_100() {
    let gate = Gate::new();
    let srv = ScriptServer::start(vec![vec![
        Step::ReadRequestHead,
        // Nothing of the body came with the head (else ReadBody would
        // find it queued): the 100 releases it.
        Step::Wait(gate.clone()),
        Step::write("HTTP/1.1 100 Continue\r\n\r\n"),
        Step::ReadBody,
        Step::write(response("201 Created", &[], "")),
    ]]);
    let url = srv.base_url();
    let t = std::thread::spawn(move || put_expecting(&url, "the body", Duration::from_secs(600)));
    assert!(srv.wait_for_requests(1, Duration::from_secs(30)));
    let so_far = srv.received()[0].clone();
    assert!(so_far.ends_with(b"\r\n\r\n"), "the body was held");
    gate.open();
    let done = t.join().unwrap();
    assert_eq!(done.result, Success, "{}", done.reason);
    assert_eq!(statuses(&done), [100, 201]);
    let (head, body) = pollhttp_tests::script::split_request(&srv.requests()[0]);
    assert!(head.contains("Expect: 100-continue"), "{head}");
    assert_eq!(body, b"the body");
}

#[test]
fn expect_continue_sends_the_body_when_no_100_comes_in_time() {
    let srv = ScriptServer::start(vec![vec![
        Step::ReadRequest,
        Step::write(response("200 OK", &[], "got it")),
    ]]);
    let done = put_expecting(&srv.base_url(), "late body", Duration::from_millis(20));
    assert_eq!(done.result, Success, "{}", done.reason);
    assert_eq!(statuses(&done), [200]);
    let (_, body) = pollhttp_tests::script::split_request(&srv.requests()[0]);
    assert_eq!(body, b"late body");
}

#[test]
fn expect_continue_answered_by_a_final_response_sends_no_body() {
    let srv = ScriptServer::start(vec![vec![
        Step::ReadRequestHead,
        Step::write("HTTP/1.1 417 Expectation Failed\r\nContent-Length: 0\r\n\r\n"),
        Step::ReadToEof,
    ]]);
    let done = put_expecting(&srv.base_url(), "never sent", Duration::from_secs(600));
    assert_eq!(done.result, Success, "{}", done.reason);
    assert_eq!(done.response_code(), 417);
    // The client closed the connection (proto cannot reuse it) with no
    // body byte sent after the head.
    let received = srv.received();
    let all: Vec<u8> = received.concat();
    assert!(
        all.ends_with(b"\r\n\r\n"),
        "{:?}",
        String::from_utf8_lossy(&all)
    );
    assert!(!all.windows(10).any(|w| w == b"never sent"));
}
