//! The request layer on the simulated network (`pollhttp_tests::simnet`):
//! scripted peers stepped from this thread, names looked up through the
//! pool's lookup function, a fake clock. Combinations first: a redirect to
//! an origin the pool already holds an idle connection to, or whose name is
//! cached; the safe retry onto a cached name; bodiless responses with a
//! content coding; credentials and Host across hops.

use pollhttp::{
    web::Auth, Completed, PoolSettings, RequestBody, RequestError, RequestId, RequestPool,
    RequestResult, Settings, TlsConfigError, TlsOptions,
};
use pollhttp::{HttpRequest, RequestFailure};
use pollhttp_tests::simnet::{ok, redirect, response, Answer, Reply, SimNet};
use std::time::Duration;

fn two_origins() -> (SimNet, RequestPool) {
    let mut net = SimNet::new();
    net.add_peer("a.test", Answer::Now);
    net.add_peer("b.test", Answer::Now);
    let pool = net.pool(PoolSettings::default());
    (net, pool)
}

#[test]
fn a_redirect_to_an_origin_with_an_idle_connection_goes_on_in_the_same_run() {
    let (mut net, mut pool) = two_origins();
    let b_y = net.url("b.test", "/y");
    net.route("b.test", "/x", vec![Reply::Send(ok(b"x"))]);
    net.route("b.test", "/y", vec![Reply::Send(ok(b"why"))]);
    net.route(
        "a.test",
        "/r",
        vec![Reply::Send(redirect("302 Found", &b_y))],
    );

    // The pool keeps a connection to b.test.
    let first = pool
        .get(net.url("b.test", "/x"), &Settings::default())
        .unwrap();
    let c = net.finish(&mut pool, first);
    assert_eq!((c.result, &c.body[..]), (RequestResult::Success, &b"x"[..]));
    assert_eq!(pool.idle_connections(), 1);

    let id = pool
        .get(net.url("a.test", "/r"), &Settings::default())
        .unwrap();
    let c = net.finish(&mut pool, id);
    assert_eq!(c.result, RequestResult::Success, "{}", c.reason);
    assert_eq!(&c.body[..], b"why");
    assert_eq!(c.redirects, 1);
    assert_eq!(c.final_url, b_y);
    // The hop went out on the kept connection.
    assert_eq!(net.accepted("b.test"), 1);
    let conns: Vec<usize> = net.received("b.test").iter().map(|r| r.conn).collect();
    assert_eq!(conns, [0, 0]);
}

#[test]
fn a_redirect_to_a_cached_name_without_a_connection_goes_on_in_the_same_run() {
    let (mut net, mut pool) = two_origins();
    let b_y = net.url("b.test", "/y");
    // b.test closes after each answer: its name is cached, no connection
    // is kept.
    net.route(
        "b.test",
        "/x",
        vec![Reply::SendAndClose(response(
            "200 OK",
            &[("Connection", "close")],
            b"x",
        ))],
    );
    net.route("b.test", "/y", vec![Reply::Send(ok(b"why"))]);
    net.route(
        "a.test",
        "/r",
        vec![Reply::Send(redirect("301 Moved Permanently", &b_y))],
    );

    let first = pool
        .get(net.url("b.test", "/x"), &Settings::default())
        .unwrap();
    assert_eq!(net.finish(&mut pool, first).result, RequestResult::Success);
    assert_eq!(pool.idle_connections(), 0);
    assert_eq!(net.lookups("b.test"), 1);

    let id = pool
        .get(net.url("a.test", "/r"), &Settings::default())
        .unwrap();
    let c = net.finish(&mut pool, id);
    assert_eq!(c.result, RequestResult::Success, "{}", c.reason);
    assert_eq!(&c.body[..], b"why");
    assert_eq!(
        net.lookups("b.test"),
        1,
        "the hop's name came from the cache"
    );
    assert_eq!(net.accepted("b.test"), 2);
}

#[test]
fn the_safe_retry_onto_a_cached_name_goes_on_in_the_same_run() {
    let (mut net, mut pool) = two_origins();
    // The first request leaves a kept connection; the server then closes
    // it as the second request arrives (a stale keep-alive connection).
    net.route("a.test", "/one", vec![Reply::Send(ok(b"1"))]);
    net.route("a.test", "/two", vec![Reply::Close, Reply::Send(ok(b"2"))]);

    let first = pool
        .get(net.url("a.test", "/one"), &Settings::default())
        .unwrap();
    assert_eq!(net.finish(&mut pool, first).result, RequestResult::Success);

    let id = pool
        .get(net.url("a.test", "/two"), &Settings::default())
        .unwrap();
    let c = net.finish(&mut pool, id);
    assert_eq!(c.result, RequestResult::Success, "{}", c.reason);
    assert_eq!(&c.body[..], b"2");
    assert_eq!(net.accepted("a.test"), 2, "the retry took a new connection");
    assert_eq!(net.lookups("a.test"), 1, "its name came from the cache");
    let lines = net.request_lines("a.test");
    assert_eq!(
        lines,
        [
            "GET /one HTTP/1.1",
            "GET /two HTTP/1.1",
            "GET /two HTTP/1.1"
        ]
    );
}

#[test]
fn a_late_lookup_is_waited_for_and_then_stepped() {
    let mut net = SimNet::new();
    net.add_peer("late.test", Answer::Late);
    net.route("late.test", "/", vec![Reply::Send(ok(b"late"))]);
    let mut pool = net.pool(PoolSettings::default());
    let id = pool
        .get(net.url("late.test", "/"), &Settings::default())
        .unwrap();
    assert!(
        net.settle(&mut pool, 50).is_empty(),
        "nothing before the answer"
    );
    assert_eq!(pool.in_flight(), 1);
    net.release("late.test");
    let c = net.finish(&mut pool, id);
    assert_eq!(
        (c.result, &c.body[..]),
        (RequestResult::Success, &b"late"[..])
    );
}

/// HEAD, 204, 304 and `Content-Length: 0` with `Content-Encoding: gzip`
/// have no body to decode (RFC 9110 §6.4.1, RFC 9112 §6.3): success, empty
/// body. So does a chunked body with no chunk.
#[test]
fn bodiless_responses_with_a_content_coding_succeed_empty() {
    let mut net = SimNet::new();
    net.add_peer("a.test", Answer::Now);
    let gz = ("Content-Encoding", "gzip");
    let cases: Vec<(&str, &str, Vec<u8>, u16)> = vec![
        (
            "HEAD",
            "/head",
            response("200 OK", &[gz, ("Content-Length", "120")], b""),
            200,
        ),
        ("GET", "/204", response("204 No Content", &[gz], b""), 204),
        (
            "GET",
            "/304",
            response("304 Not Modified", &[gz, ("ETag", "\"e\"")], b""),
            304,
        ),
        (
            "GET",
            "/cl0",
            response("200 OK", &[gz, ("Content-Length", "0")], b""),
            200,
        ),
        (
            "GET",
            "/chunked0",
            response(
                "200 OK",
                &[gz, ("Transfer-Encoding", "chunked")],
                b"0\r\n\r\n",
            ),
            200,
        ),
    ];
    for (_, path, raw, _) in &cases {
        net.route("a.test", path, vec![Reply::Send(raw.clone())]);
    }
    let mut pool = net.pool(PoolSettings::default());
    for (method, path, _, status) in &cases {
        let id = pool
            .request(
                net.url("a.test", path),
                &[],
                method,
                RequestBody::Empty,
                &Settings::default(),
            )
            .unwrap();
        let c = net.finish(&mut pool, id);
        assert_eq!(
            (
                c.result,
                c.response_code(),
                c.body.len(),
                c.failure.is_none()
            ),
            (RequestResult::Success, *status, 0, true),
            "{method} {path}: {}",
            c.reason
        );
    }
    // All on one kept connection: none of them left the connection unusable.
    assert_eq!(net.accepted("a.test"), 1);
}

#[test]
fn credentials_in_a_redirects_location_are_the_next_hops() {
    let (mut net, mut pool) = two_origins();
    let with_creds = format!("http://carol:s3cret@a.test:{}/next", net.port("a.test"));
    net.route(
        "a.test",
        "/start",
        vec![Reply::Send(redirect("302 Found", &with_creds))],
    );
    net.route("a.test", "/next", vec![Reply::Send(ok(b"ok"))]);
    let url = format!("http://alice:pw@a.test:{}/start", net.port("a.test"));
    let id = pool.get(url, &Settings::default()).unwrap();
    let c = net.finish(&mut pool, id);
    assert_eq!(c.result, RequestResult::Success, "{}", c.reason);
    let auth: Vec<Option<String>> = net
        .received("a.test")
        .iter()
        .map(|r| r.field("authorization"))
        .collect();
    // base64("alice:pw"), then base64("carol:s3cret").
    assert_eq!(
        auth,
        [
            Some("Basic YWxpY2U6cHc=".to_string()),
            Some("Basic Y2Fyb2w6czNjcmV0".to_string())
        ]
    );
}

#[test]
fn url_credentials_with_an_empty_user_name_are_sent() {
    let (mut net, mut pool) = two_origins();
    net.route("a.test", "/", vec![Reply::Send(ok(b""))]);
    let url = format!("http://:secret@a.test:{}/", net.port("a.test"));
    let id = pool.get(url, &Settings::default()).unwrap();
    assert_eq!(net.finish(&mut pool, id).result, RequestResult::Success);
    // base64(":secret")
    assert_eq!(
        net.received("a.test")[0].field("authorization").as_deref(),
        Some("Basic OnNlY3JldA==")
    );
}

#[test]
fn digest_settings_keep_url_credentials_from_going_out_as_basic() {
    let (mut net, mut pool) = two_origins();
    net.route("a.test", "/", vec![Reply::Send(ok(b""))]);
    let url = format!("http://u:p@a.test:{}/", net.port("a.test"));
    let settings = Settings {
        auth: Some(Auth::digest("u", "p")),
        ..Settings::default()
    };
    let id = pool.get(url, &settings).unwrap();
    assert_eq!(net.finish(&mut pool, id).result, RequestResult::Success);
    assert_eq!(net.received("a.test")[0].field("authorization"), None);
}

#[test]
fn a_callers_host_field_is_not_sent_to_another_origin() {
    let (mut net, mut pool) = two_origins();
    let b = net.url("b.test", "/there");
    net.route(
        "a.test",
        "/here",
        vec![Reply::Send(redirect("307 Temporary Redirect", &b))],
    );
    net.route("b.test", "/there", vec![Reply::Send(ok(b""))]);
    let id = pool
        .request(
            net.url("a.test", "/here"),
            &[("Host", "virtual.example")],
            "GET",
            RequestBody::Empty,
            &Settings::default(),
        )
        .unwrap();
    assert_eq!(net.finish(&mut pool, id).result, RequestResult::Success);
    assert_eq!(
        net.received("a.test")[0].field("host").as_deref(),
        Some("virtual.example")
    );
    assert_eq!(
        net.received("b.test")[0].field("host"),
        Some(format!("b.test:{}", net.port("b.test")))
    );
}

#[test]
fn an_https_url_whose_server_name_cannot_be_used_is_refused_at_once() {
    let (net, mut pool) = two_origins();
    let settings = Settings {
        tls: Some(TlsOptions::new().server_name_override("not a name!")),
        ..Settings::default()
    };
    let url = format!("https://a.test:{}/", net.port("a.test"));
    match pool.get(url, &settings) {
        Err(RequestError::Tls(TlsConfigError::InvalidServerName(n))) => {
            assert_eq!(n, "not a name!")
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(pool.in_flight(), 0);
}

/// A resumable download cut mid-body: the note beside the file keeps the
/// ETag of the response its bytes came from, the next try sends it as
/// `If-Range` (RFC 9110 §13.1.5), and a 206 completes the file; the note
/// goes when the download is complete.
#[test]
fn resume_sends_the_validator_of_the_bytes_it_has() {
    let dir = pollhttp_tests::process::TempDir::new("simnet-resume").unwrap();
    let file = dir.path().join("asset.bin");
    let note = dir.path().join("asset.bin.resume");
    let body: Vec<u8> = (0..4000u32).map(|i| (i % 251) as u8).collect();
    let mut net = SimNet::new();
    net.add_peer("a.test", Answer::Now);
    // First try: 200 with a strong ETag, cut after 1000 body bytes.
    let mut cut = response(
        "200 OK",
        &[("ETag", "\"v1\""), ("Content-Length", "4000")],
        b"",
    );
    cut.extend_from_slice(&body[..1000]);
    let mut rest = response(
        "206 Partial Content",
        &[
            ("ETag", "\"v1\""),
            ("Content-Range", "bytes 1000-3999/4000"),
        ],
        &body[1000..],
    );
    rest.truncate(rest.len()); // whole
    net.route(
        "a.test",
        "/asset",
        vec![Reply::SendAndClose(cut), Reply::Send(rest)],
    );
    let mut pool = net.pool(PoolSettings::default());
    let settings = Settings {
        body: pollhttp::BodySettings {
            download_file: Some(file.clone()),
            resume: true,
            ..Default::default()
        },
        ..Settings::default()
    };
    let id = pool.get(net.url("a.test", "/asset"), &settings).unwrap();
    let c = net.finish(&mut pool, id);
    assert_eq!(
        c.result,
        RequestResult::ChunkedBodySizeMismatch,
        "{}",
        c.reason
    );
    assert_eq!(std::fs::read(&file).unwrap(), &body[..1000]);
    assert_eq!(std::fs::read_to_string(&note).unwrap(), "\"v1\"");

    let id = pool.get(net.url("a.test", "/asset"), &settings).unwrap();
    let c = net.finish(&mut pool, id);
    assert_eq!(
        (c.result, c.response_code()),
        (RequestResult::Success, 206),
        "{}",
        c.reason
    );
    let second = &net.received("a.test")[1];
    assert_eq!(second.field("range").as_deref(), Some("bytes=1000-"));
    assert_eq!(second.field("if-range").as_deref(), Some("\"v1\""));
    assert!(std::fs::read(&file).unwrap() == body, "the file is whole");
    assert!(!note.exists(), "the note goes with a complete download");
}

/// A 200 that fails before its first body byte leaves the partial file as
/// it was (it is replaced only when the new body starts), and an empty
/// final body leaves the file empty (curl truncates then too).
#[test]
fn a_download_file_is_replaced_only_when_the_new_body_starts() {
    let dir = pollhttp_tests::process::TempDir::new("simnet-replace").unwrap();
    let file = dir.path().join("f.bin");
    let mut net = SimNet::new();
    net.add_peer("a.test", Answer::Now);
    let head_only = response("200 OK", &[("Content-Length", "10")], b"");
    net.route("a.test", "/cut", vec![Reply::SendAndClose(head_only)]);
    net.route(
        "a.test",
        "/empty",
        vec![Reply::Send(response("204 No Content", &[], b""))],
    );
    let mut pool = net.pool(PoolSettings::default());
    let settings = Settings {
        body: pollhttp::BodySettings {
            download_file: Some(file.clone()),
            resume: true,
            ..Default::default()
        },
        ..Settings::default()
    };
    std::fs::write(&file, b"partial").unwrap();
    let id = pool.get(net.url("a.test", "/cut"), &settings).unwrap();
    let c = net.finish(&mut pool, id);
    assert_eq!(
        c.result,
        RequestResult::ChunkedBodySizeMismatch,
        "{}",
        c.reason
    );
    assert_eq!(std::fs::read(&file).unwrap(), b"partial");
    let sent = &net.received("a.test")[0];
    assert_eq!(sent.field("range").as_deref(), Some("bytes=7-"));
    assert_eq!(sent.field("if-range"), None, "no validator known");

    let plain = Settings {
        body: pollhttp::BodySettings {
            download_file: Some(file.clone()),
            ..Default::default()
        },
        ..Settings::default()
    };
    let id = pool.get(net.url("a.test", "/empty"), &plain).unwrap();
    let c = net.finish(&mut pool, id);
    assert_eq!((c.result, c.response_code()), (RequestResult::Success, 204));
    assert_eq!(std::fs::read(&file).unwrap(), b"");
}

/// Bytes past the end of a response on a kept connection answer nothing
/// the client sent (RFC 9112 §9.3): the connection is closed, the next
/// request goes out on a new one and gets its own answer — never the forged
/// one, and the request after never gets its predecessor's.
#[test]
fn bytes_after_a_response_never_answer_the_next_request() {
    let mut net = SimNet::new();
    net.add_peer("a.test", Answer::Now);
    let mut first = ok(b"one");
    first.extend_from_slice(&ok(b"forged"));
    net.route("a.test", "/1", vec![Reply::Send(first)]);
    net.route("a.test", "/2", vec![Reply::Send(ok(b"two"))]);
    net.route("a.test", "/3", vec![Reply::Send(ok(b"three"))]);
    let mut pool = net.pool(PoolSettings::default());
    let mut bodies = Vec::new();
    for path in ["/1", "/2", "/3"] {
        let id = pool
            .get(net.url("a.test", path), &Settings::default())
            .unwrap();
        let c = net.finish(&mut pool, id);
        assert_eq!(c.result, RequestResult::Success, "{path}: {}", c.reason);
        bodies.push(String::from_utf8(c.body.to_vec()).unwrap());
    }
    assert_eq!(bodies, ["one", "two", "three"]);
    let conns: Vec<usize> = net.received("a.test").iter().map(|r| r.conn).collect();
    assert_eq!(
        conns,
        [0, 1, 1],
        "the connection with stray bytes was closed"
    );
}

/// One body-limit meaning per layer: proto counts wire bytes of every
/// response of the request (a declared Content-Length fails at the head; a
/// chunked body as it arrives), the sink counts the decoded bytes. Each
/// request on a kept connection has its own limit.
#[test]
fn the_body_limit_holds_on_the_wire_and_after_decoding() {
    use flate2::{write::GzEncoder, Compression};
    use pollhttp::{proto::Error as ProtoError, Failure, RequestFailure};
    use std::io::Write;

    let mut net = SimNet::new();
    net.add_peer("a.test", Answer::Now);
    let big = vec![b'x'; 5000];
    let mut gz = GzEncoder::new(Vec::new(), Compression::best());
    gz.write_all(&big).unwrap();
    let gz = gz.finish().unwrap();
    assert!(gz.len() < 1000);
    let mut chunked = response("200 OK", &[("Transfer-Encoding", "chunked")], b"");
    for _ in 0..5 {
        chunked.extend_from_slice(b"3e8\r\n");
        chunked.extend_from_slice(&[b'y'; 1000]);
        chunked.extend_from_slice(b"\r\n");
    }
    chunked.extend_from_slice(b"0\r\n\r\n");
    net.route("a.test", "/cl", vec![Reply::Send(ok(&big))]);
    net.route("a.test", "/chunked", vec![Reply::Send(chunked)]);
    net.route(
        "a.test",
        "/bomb",
        vec![Reply::Send(response(
            "200 OK",
            &[("Content-Encoding", "gzip")],
            &gz,
        ))],
    );
    net.route("a.test", "/small", vec![Reply::Send(ok(b"fits"))]);
    let mut pool = net.pool(PoolSettings::default());
    let limited = Settings {
        body: pollhttp::BodySettings {
            size_limit: Some(2000),
            ..Default::default()
        },
        ..Settings::default()
    };
    for path in ["/cl", "/chunked"] {
        let id = pool.get(net.url("a.test", path), &limited).unwrap();
        let c = net.finish(&mut pool, id);
        assert_eq!(c.result, RequestResult::BodySizeLimitExceeded, "{path}");
        assert!(
            matches!(
                c.failure,
                Some(RequestFailure::Connection(Failure::Protocol(
                    ProtoError::BodyTooLarge { limit: 2000, .. }
                )))
            ),
            "{path}: {:?}",
            c.failure
        );
        assert!(c.body.is_empty());
        assert_eq!(c.response_code(), 200, "{path}: the head is kept");
    }
    // A redirect whose own body is over the limit is still followed.
    let mut big_redirect = response(
        "302 Found",
        &[("Location", "/small"), ("Content-Length", "5000")],
        b"",
    );
    big_redirect.extend_from_slice(&big);
    net.route("a.test", "/moved", vec![Reply::Send(big_redirect)]);
    let id = pool.get(net.url("a.test", "/moved"), &limited).unwrap();
    let c = net.finish(&mut pool, id);
    assert_eq!(
        (c.result, &c.body[..]),
        (RequestResult::Success, &b"fits"[..])
    );
    let id = pool.get(net.url("a.test", "/bomb"), &limited).unwrap();
    let c = net.finish(&mut pool, id);
    assert_eq!(c.result, RequestResult::BodySizeLimitExceeded);
    assert!(
        matches!(
            c.failure,
            Some(RequestFailure::BodySizeLimit { limit: 2000 })
        ),
        "{:?}",
        c.failure
    );
    // A request with a limit, then one without on the same kept connection.
    let id = pool.get(net.url("a.test", "/small"), &limited).unwrap();
    assert_eq!(net.finish(&mut pool, id).result, RequestResult::Success);
    let id = pool
        .get(net.url("a.test", "/cl"), &Settings::default())
        .unwrap();
    let c = net.finish(&mut pool, id);
    assert_eq!((c.result, c.body.len()), (RequestResult::Success, 5000));
    let conns: Vec<usize> = net.received("a.test").iter().map(|r| r.conn).collect();
    assert_eq!(
        conns.last(),
        conns.get(conns.len() - 2),
        "the last two shared a connection"
    );
}

/// A network with one peer, `proxy.test`, that plays an HTTP proxy: it
/// answers absolute-form requests by their full URL, so the origins behind
/// it (`a.test`, `b.test`: no peers, never looked up) are distinct servers
/// as far as the client can tell. Settings that send plain http through it.
fn behind_a_proxy() -> (SimNet, Settings) {
    let mut net = SimNet::new();
    net.add_peer("proxy.test", Answer::Now);
    let settings = Settings {
        proxy: pollhttp::ProxySettings {
            http: Some(("proxy.test".into(), net.port("proxy.test"))),
            ..Default::default()
        },
        ..Settings::default()
    };
    (net, settings)
}

#[test]
fn a_cross_origin_redirect_through_an_http_proxy_keeps_its_one_connection() {
    // D11: curl reuses the proxy connection for the next origin (the
    // proxy is the peer; absolute-form names the origin).
    let (mut net, settings) = behind_a_proxy();
    let (a, b) = ("http://a.test:8001/r", "http://b.test:8002/y");
    net.route("proxy.test", a, vec![Reply::Send(redirect("302 Found", b))]);
    net.route("proxy.test", b, vec![Reply::Send(ok(b"from b"))]);
    let mut pool = net.pool(PoolSettings::default());

    let id = pool.get(a, &settings).unwrap();
    let c = net.finish(&mut pool, id);
    assert_eq!(c.result, RequestResult::Success, "{}", c.reason);
    assert_eq!((&c.body[..], c.redirects), (&b"from b"[..], 1));
    assert_eq!(c.final_url, b);
    assert_eq!(net.accepted("proxy.test"), 1, "one connection to the proxy");
    assert_eq!(
        net.request_lines("proxy.test"),
        [format!("GET {a} HTTP/1.1"), format!("GET {b} HTTP/1.1")]
    );
    let hosts: Vec<Option<String>> = net
        .received("proxy.test")
        .iter()
        .map(|r| r.field("host"))
        .collect();
    assert_eq!(
        hosts,
        [Some("a.test:8001".into()), Some("b.test:8002".into())],
        "each request names its own origin"
    );
    let conns: Vec<usize> = net.received("proxy.test").iter().map(|r| r.conn).collect();
    assert_eq!(conns, [0, 0]);
    assert_eq!(pool.connections_opened(), 1);
    assert_eq!(pool.idle_connections(), 1);
}

#[test]
fn requests_to_two_origins_through_one_proxy_share_its_kept_connection() {
    let (mut net, settings) = behind_a_proxy();
    net.route("proxy.test", "http://a.test/1", vec![Reply::Send(ok(b"a"))]);
    net.route("proxy.test", "http://b.test/2", vec![Reply::Send(ok(b"b"))]);
    let mut pool = net.pool(PoolSettings::default());
    let mut bodies = Vec::new();
    for url in ["http://a.test/1", "http://b.test/2", "http://a.test/1"] {
        let id = pool.get(url, &settings).unwrap();
        let c = net.finish(&mut pool, id);
        assert_eq!(c.result, RequestResult::Success, "{url}: {}", c.reason);
        bodies.push(String::from_utf8(c.body.to_vec()).unwrap());
        assert_eq!(pool.idle_connections(), 1, "{url}");
    }
    assert_eq!(bodies, ["a", "b", "a"]);
    assert_eq!(net.accepted("proxy.test"), 1);
    assert_eq!(pool.connections_opened(), 1);
    assert_eq!(
        net.request_lines("proxy.test"),
        [
            "GET http://a.test/1 HTTP/1.1",
            "GET http://b.test/2 HTTP/1.1",
            "GET http://a.test/1 HTTP/1.1",
        ]
    );

    // Other proxy credentials: not the same connection.
    let other = Settings {
        proxy: pollhttp::ProxySettings {
            auth: Some(("u".into(), "p".into())),
            ..settings.proxy.clone()
        },
        ..settings
    };
    let id = pool.get("http://b.test/2", &other).unwrap();
    let c = net.finish(&mut pool, id);
    assert_eq!(c.result, RequestResult::Success, "{}", c.reason);
    assert_eq!(net.accepted("proxy.test"), 2);
    let last = net.received("proxy.test").last().unwrap();
    assert_eq!(last.conn, 1);
    assert_eq!(
        last.field("proxy-authorization").as_deref(),
        Some("Basic dTpw")
    );
}

#[test]
fn the_per_origin_limit_counts_the_connections_to_an_http_proxy() {
    // As curl: through an HTTP proxy, the limit is on connections to the
    // proxy. Two origins at once with a limit of one: one connection, and
    // the second request waits for it instead of opening another.
    let (mut net, settings) = behind_a_proxy();
    net.route("proxy.test", "http://a.test/1", vec![Reply::Send(ok(b"a"))]);
    net.route("proxy.test", "http://b.test/2", vec![Reply::Send(ok(b"b"))]);
    let mut pool = net.pool(PoolSettings {
        max_connections_per_origin: 1,
        ..PoolSettings::default()
    });
    let first = pool.get("http://a.test/1", &settings).unwrap();
    let second = pool.get("http://b.test/2", &settings).unwrap();
    let done = net.settle(&mut pool, 400);
    let order: Vec<RequestId> = done.iter().map(|(id, _)| *id).collect();
    assert_eq!(order, [first, second], "first in, first out");
    for (_, c) in &done {
        assert_eq!(c.result, RequestResult::Success, "{}", c.reason);
    }
    assert_eq!(net.accepted("proxy.test"), 1);
    assert_eq!(pool.connections_opened(), 1);
    let conns: Vec<usize> = net.received("proxy.test").iter().map(|r| r.conn).collect();
    assert_eq!(conns, [0, 0]);
}

/// Settings that cannot work together are refused at `request()`: a
/// streamed body would leave a download file empty.
#[test]
fn a_streamed_body_with_a_download_file_is_refused_at_once() {
    let (net, mut pool) = two_origins();
    let settings = Settings {
        body: pollhttp::BodySettings {
            stream: true,
            download_file: Some(std::env::temp_dir().join("never-written.bin")),
            ..Default::default()
        },
        ..Settings::default()
    };
    assert!(matches!(
        pool.get(net.url("a.test", "/"), &settings),
        Err(RequestError::ConflictingSettings(
            "body.stream",
            "body.download_file"
        ))
    ));
    assert_eq!(pool.in_flight(), 0);
}

// ---------------------------------------------------------------- HttpRequest
//
// The same network under `HttpRequest`: its names come from the network's
// lookup and its time from the network's fake clock (`SimNet::http_request`).

/// Run `req` until it completes; fails when the network settles with it
/// still running (nothing would ever step it).
fn finish_req(net: &mut SimNet, req: &mut HttpRequest) -> Completed {
    net.finish_request(req, 400)
        .unwrap_or_else(|| panic!("the request waits for a wake-up no one will send"))
}

/// GET `path` at `host`'s peer and run it to the end.
fn get_req(net: &mut SimNet, req: &mut HttpRequest, host: &str, path: &str) -> Completed {
    req.request(&net.url(host, path), &[], "GET", "").unwrap();
    finish_req(net, req)
}

/// Poll `req`, stepping the peers, at most `rounds` rounds, each a peer
/// step, a `poll()` and a `wait(Some(ZERO))` (which never sleeps). Returns
/// the completion if one came.
fn spin_req(net: &mut SimNet, req: &mut HttpRequest, rounds: usize) -> Option<Completed> {
    for _ in 0..rounds {
        net.step();
        if let Some(done) = req.poll() {
            return Some(done);
        }
        req.wait(Some(Duration::ZERO));
    }
    None
}

/// Step the peers and poll `req`, with a bounded real `wait()` between
/// (the resolver's and a worker's threads wake it), until `until` holds;
/// panics if the request completes first or `until` never holds (400
/// rounds: a hang guard, not a measurement).
fn run_until(net: &mut SimNet, req: &mut HttpRequest, until: impl Fn(&SimNet) -> bool) {
    for _ in 0..400 {
        net.step();
        if let Some(c) = req.poll() {
            panic!("completed early: {:?} {}", c.result, c.reason);
        }
        if until(net) {
            return;
        }
        req.wait(Some(Duration::from_millis(50)));
    }
    panic!("the condition never held");
}

/// A response that closes its connection: the name stays cached, no
/// connection is kept.
fn ok_and_close(body: &[u8]) -> Reply {
    Reply::SendAndClose(response("200 OK", &[("Connection", "close")], body))
}

#[test]
fn http_request_follows_a_redirect_to_a_cached_name() {
    let mut net = SimNet::new();
    net.add_peer("a.test", Answer::Now);
    net.add_peer("b.test", Answer::Now);
    let b_y = net.url("b.test", "/y");
    net.route("b.test", "/x", vec![ok_and_close(b"x")]);
    net.route("b.test", "/y", vec![Reply::Send(ok(b"why"))]);
    net.route(
        "a.test",
        "/r",
        vec![Reply::Send(redirect("301 Moved Permanently", &b_y))],
    );
    let mut req = net.http_request();
    let c = get_req(&mut net, &mut req, "b.test", "/x");
    assert_eq!((c.result, &c.body[..]), (RequestResult::Success, &b"x"[..]));
    assert_eq!(net.lookups("b.test"), 1);

    let c = get_req(&mut net, &mut req, "a.test", "/r");
    assert_eq!(c.result, RequestResult::Success, "{}", c.reason);
    assert_eq!((&c.body[..], c.redirects), (&b"why"[..], 1));
    assert_eq!(c.final_url, b_y);
    assert_eq!(
        net.lookups("b.test"),
        1,
        "the hop's name came from the cache"
    );
    assert_eq!(net.accepted("b.test"), 2);
}

/// Godot's HTTPRequest (and this one, once) needed a `wait()` wake-up per
/// redirect hop. With every name cached, a redirect across origins runs to
/// the end on `poll()` alone: the waits between polls never sleep.
#[test]
fn http_request_needs_no_wake_up_after_a_redirect_to_a_cached_name() {
    let mut net = SimNet::new();
    net.add_peer("a.test", Answer::Now);
    net.add_peer("b.test", Answer::Now);
    let b_y = net.url("b.test", "/y");
    net.route("a.test", "/warm", vec![ok_and_close(b"a")]);
    net.route("b.test", "/warm", vec![ok_and_close(b"b")]);
    net.route("b.test", "/y", vec![Reply::Send(ok(b"why"))]);
    net.route(
        "a.test",
        "/r",
        vec![Reply::Send(redirect("302 Found", &b_y))],
    );
    let mut req = net.http_request();
    // Both names cached; no connection kept.
    for host in ["a.test", "b.test"] {
        let c = get_req(&mut net, &mut req, host, "/warm");
        assert_eq!(c.result, RequestResult::Success, "{}", c.reason);
    }

    req.request(&net.url("a.test", "/r"), &[], "GET", "")
        .unwrap();
    let c =
        spin_req(&mut net, &mut req, 50).expect("the redirect ran to the end without a wake-up");
    assert_eq!(c.result, RequestResult::Success, "{}", c.reason);
    assert_eq!((&c.body[..], c.redirects), (&b"why"[..], 1));
    assert_eq!((net.lookups("a.test"), net.lookups("b.test")), (1, 1));
}

/// The request's deadline fires on the fake clock: the peer stalls, the
/// test moves the clock past the timeout, and the next `poll()` ends the
/// request. No real time passes for the timeout itself.
#[test]
fn http_request_times_out_on_its_clock() {
    let mut net = SimNet::new();
    net.add_peer("a.test", Answer::Now);
    net.route("a.test", "/stall", vec![Reply::Stall]);
    let mut req = net.http_request();
    req.settings_mut().timeouts.total = Some(Duration::from_secs(10));
    req.request(&net.url("a.test", "/stall"), &[], "GET", "")
        .unwrap();
    // The request goes out; nothing answers; nothing completes.
    run_until(&mut net, &mut req, |n| n.received("a.test").len() == 1);
    assert!(net.finish_request(&mut req, 20).is_none(), "stalled");
    // Not yet due.
    net.clock.advance(Duration::from_secs(9));
    assert!(req.poll().is_none());
    // Due.
    net.clock.advance(Duration::from_secs(1));
    let c = req.poll().expect("the deadline fired at the next poll");
    assert_eq!((c.result, c.response_code()), (RequestResult::Timeout, 0));
    assert!(
        matches!(c.failure, Some(RequestFailure::Timeout(d)) if d == Duration::from_secs(10)),
        "{:?}",
        c.failure
    );
}

/// The idle timeout likewise: counted on the fake clock from when the
/// request got its connection.
#[test]
fn http_request_idle_timeout_fires_on_its_clock() {
    let mut net = SimNet::new();
    net.add_peer("a.test", Answer::Now);
    net.route("a.test", "/stall", vec![Reply::Stall]);
    let mut req = net.http_request();
    req.settings_mut().timeouts.total = None;
    req.settings_mut().timeouts.idle = Some(Duration::from_secs(5));
    req.request(&net.url("a.test", "/stall"), &[], "GET", "")
        .unwrap();
    run_until(&mut net, &mut req, |n| n.received("a.test").len() == 1);
    assert!(net.finish_request(&mut req, 20).is_none(), "stalled");
    net.clock.advance(Duration::from_secs(4));
    assert!(req.poll().is_none());
    net.clock.advance(Duration::from_secs(1));
    let c = req.poll().expect("the idle timeout fired at the next poll");
    assert_eq!(c.result, RequestResult::Timeout);
    assert!(
        matches!(c.failure, Some(RequestFailure::IdleTimeout(d)) if d == Duration::from_secs(5)),
        "{:?}",
        c.failure
    );
}

/// The worker thread (`use_threads`) reads the same clock: a deadline far
/// shorter than the real time the test spends never fires until the fake
/// clock passes it, and then it does.
#[test]
fn http_request_on_a_worker_times_out_on_its_clock() {
    let mut net = SimNet::new();
    net.add_peer("a.test", Answer::Now);
    net.route("a.test", "/stall", vec![Reply::Stall]);
    let mut req = net.http_request();
    req.set_use_threads(true);
    req.settings_mut().timeouts.total = Some(Duration::from_millis(20));
    req.request(&net.url("a.test", "/stall"), &[], "GET", "")
        .unwrap();
    // The worker sends the request; the network settles (with real waits
    // far past 20 ms) and the request is still running: the worker does
    // not read the real clock.
    run_until(&mut net, &mut req, |n| n.received("a.test").len() == 1);
    assert!(net.finish_request(&mut req, 20).is_none(), "stalled");
    net.clock.advance(Duration::from_millis(20));
    // The worker sleeps at most the 20 ms its deadline was away when it
    // last looked; the bound here is a hang guard, not a measurement.
    let mut done = None;
    for _ in 0..200 {
        if let Some(c) = req.poll() {
            done = Some(c);
            break;
        }
        req.wait(Some(Duration::from_millis(50)));
    }
    let c = done.expect("the worker's deadline fired on the fake clock");
    assert_eq!(c.result, RequestResult::Timeout);
    assert!(
        matches!(c.failure, Some(RequestFailure::Timeout(d)) if d == Duration::from_millis(20)),
        "{:?}",
        c.failure
    );
}

/// The request's name cache ages on its clock: a name is asked again only
/// once the fake clock passes the cache's minute.
#[test]
fn http_request_name_cache_ages_on_its_clock() {
    let mut net = SimNet::new();
    net.add_peer("a.test", Answer::Now);
    net.route("a.test", "/", vec![ok_and_close(b"a")]);
    let mut req = net.http_request();
    for (advance, lookups) in [(0, 1), (59, 1), (1, 2)] {
        net.clock.advance(Duration::from_secs(advance));
        let c = get_req(&mut net, &mut req, "a.test", "/");
        assert_eq!(c.result, RequestResult::Success, "{}", c.reason);
        assert_eq!(net.lookups("a.test"), lookups, "after {advance} s more");
    }
}

/// A name that does not resolve, from the injected lookup: CantResolve with
/// the lookup's error, no system resolver asked.
#[test]
fn http_request_cant_resolve_from_its_lookup() {
    let mut net = SimNet::new();
    net.add_peer("gone.test", Answer::Fail);
    let mut req = net.http_request();
    let c = get_req(&mut net, &mut req, "gone.test", "/");
    assert_eq!(
        (c.result, c.response_code()),
        (RequestResult::CantResolve, 0)
    );
    assert!(
        matches!(c.connection_failure(), Some(pollhttp::Failure::Resolve(e)) if e.kind() == std::io::ErrorKind::NotFound),
        "{:?}",
        c.failure
    );
    assert_eq!(net.lookups("gone.test"), 1);
}

/// `wait()` says the same thing on every front end: whether `poll` may
/// have work (an event, a wake-up, a due deadline, or nothing to wait for).
#[test]
fn wait_says_whether_poll_has_work() {
    let mut net = SimNet::new();
    net.add_peer("a.test", Answer::Now);
    net.route("a.test", "/stall", vec![Reply::Stall]);
    net.route("a.test", "/ok", vec![Reply::Send(ok(b"ok"))]);
    let mut pool = net.pool(PoolSettings::default());
    let stalled = pool
        .get(
            net.url("a.test", "/stall"),
            &Settings {
                timeouts: pollhttp::Timeouts {
                    total: Some(Duration::from_secs(5)),
                    ..Default::default()
                },
                ..Settings::default()
            },
        )
        .unwrap();
    assert!(net.settle(&mut pool, 100).is_empty());
    assert!(!pool.wait(Some(Duration::ZERO)), "nothing to do");
    // Its deadline is due on the pool's clock: work without an event.
    net.clock.advance(Duration::from_secs(5));
    assert!(pool.wait(Some(Duration::ZERO)), "a due deadline");
    let done = net.settle(&mut pool, 100);
    assert_eq!(done.len(), 1);
    assert_eq!(
        (done[0].0, done[0].1.result),
        (stalled, RequestResult::Timeout)
    );

    let mut req = net.http_request();
    assert!(req.wait(Some(Duration::ZERO)), "idle: nothing to wait for");
    req.request(&net.url("a.test", "/ok"), &[], "GET", "")
        .unwrap();
    let c = net.finish_request(&mut req, 100).expect("completes");
    assert_eq!(
        (c.result, &c.body[..]),
        (RequestResult::Success, &b"ok"[..])
    );
    assert!(req.wait(Some(Duration::ZERO)), "idle again");
}

/// `Completed` keeps the whole final head: version, status code, reason
/// phrase and fields as received.
#[test]
fn a_completion_keeps_the_status_line_as_received() {
    let mut net = SimNet::new();
    net.add_peer("a.test", Answer::Now);
    net.route(
        "a.test",
        "/",
        vec![Reply::SendAndClose(
            b"HTTP/1.0 299 Quite Fine\r\nX-One: 1\r\n\r\nbody".to_vec(),
        )],
    );
    let mut pool = net.pool(PoolSettings::default());
    let id = pool
        .get(net.url("a.test", "/"), &Settings::default())
        .unwrap();
    let c = net.finish(&mut pool, id);
    assert_eq!((c.result, c.response_code()), (RequestResult::Success, 299));
    let head = c.head.as_ref().expect("a head");
    assert_eq!(head.version(), pollhttp::proto::Version::Http10);
    assert_eq!(head.reason_str(), "Quite Fine");
    assert_eq!(c.headers().get_str("x-one"), Some("1"));
    assert_eq!(&c.body[..], b"body");
}
