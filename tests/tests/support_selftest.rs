//! Self-test of the support library: each server works, checked with std
//! sockets and a plain rustls client only.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};

use pollhttp_tests::certs::{self, TestCa};
use pollhttp_tests::httpbin::Httpbin;
use pollhttp_tests::nginx::{Nginx, NginxOptions, HELLO_BODY};
use pollhttp_tests::proxy::{Proxy, ProxyOptions};
use pollhttp_tests::script::{self, ScriptServer, Step, TlsScriptServer};
use pollhttp_tests::{parse_raw_response, raw_exchange, sha256_hex, tls_exchange};

const T: Duration = Duration::from_secs(10);

fn connect(addr: SocketAddr) -> TcpStream {
    let s = TcpStream::connect_timeout(&addr, T).expect("connect");
    s.set_read_timeout(Some(T)).unwrap();
    s.set_write_timeout(Some(T)).unwrap();
    s
}

fn get(path: &str) -> Vec<u8> {
    format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n").into_bytes()
}

fn small_nginx() -> Option<Nginx> {
    Nginx::try_start_with(NginxOptions {
        big_file_len: 1 << 20,
        ..NginxOptions::default()
    })
}

#[test]
fn nginx_plain_get() {
    let t = Instant::now();
    let Some(ng) = small_nginx() else { return };
    eprintln!("nginx started in {:?}", t.elapsed());
    let raw = raw_exchange(ng.http_addr(), &get("/hello.txt")).unwrap();
    let (code, head, body) = parse_raw_response(&raw).unwrap();
    assert_eq!(code, 200, "{head}");
    assert_eq!(body, HELLO_BODY.as_bytes());

    let raw = raw_exchange(ng.http_addr(), &get("/1m.bin")).unwrap();
    let (code, _, body) = parse_raw_response(&raw).unwrap();
    assert_eq!(code, 200);
    assert_eq!(
        sha256_hex(&body),
        sha256_hex(&pollhttp_tests::pseudo_random_bytes(1 << 20))
    );

    let raw = raw_exchange(ng.http_addr(), &get("/big.bin")).unwrap();
    let (_, _, body) = parse_raw_response(&raw).unwrap();
    assert_eq!(sha256_hex(&body), pollhttp_tests::zeros_sha256(1 << 20));
}

#[test]
fn nginx_default_big_file_is_1gib() {
    let Some(ng) = Nginx::try_start() else { return };
    let raw = raw_exchange(
        ng.http_addr(),
        b"HEAD /big.bin HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    )
    .unwrap();
    let (code, head, body) = parse_raw_response(&raw).unwrap();
    assert_eq!(code, 200);
    assert!(head.contains("Content-Length: 1073741824\r\n"), "{head}");
    assert!(body.is_empty());
    assert_eq!(ng.big_file_len, 1 << 30);
}

#[test]
fn nginx_locations() {
    let Some(ng) = small_nginx() else { return };
    let exchange = |req: &str| {
        let raw = raw_exchange(ng.http_addr(), req.as_bytes()).unwrap();
        parse_raw_response(&raw).unwrap()
    };
    let (code, head, body) = exchange(
        "GET /gzip/1k.bin HTTP/1.1\r\nHost: x\r\nAccept-Encoding: gzip\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(code, 200);
    assert!(head.contains("Content-Encoding: gzip"), "{head}");
    assert!(head.contains("Transfer-Encoding: chunked"), "{head}");
    let mut plain = Vec::new();
    flate2::read::GzDecoder::new(&pollhttp_tests::dechunk(&body)[..])
        .read_to_end(&mut plain)
        .unwrap();
    assert_eq!(plain, pollhttp_tests::pseudo_random_bytes(1024));

    let (code, head, body) =
        exchange("GET /chunked/hello.txt HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    assert_eq!(code, 200);
    assert!(head.contains("Transfer-Encoding: chunked"), "{head}");
    assert!(!head.contains("Content-Encoding"), "{head}");
    assert_eq!(pollhttp_tests::dechunk(&body), HELLO_BODY.as_bytes());

    let (code, head, _) =
        exchange("GET /redirect/301 HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
    assert_eq!(code, 301);
    assert!(
        head.contains(&format!(
            "Location: http://127.0.0.1:{}/hello.txt",
            ng.http_port
        )),
        "{head}"
    );
    let (code, head, _) =
        exchange("GET /redirect-relative/308 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    assert_eq!(code, 308);
    assert!(head.contains("Location: /hello.txt\r\n"), "{head}");
    let (code, head, _) =
        exchange("GET /redirect/chain/3 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    assert_eq!(code, 302);
    assert!(head.contains("/redirect/chain/2\r\n"), "{head}");

    let (code, _, body) =
        exchange("GET /status/204 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    assert_eq!(code, 204);
    assert!(body.is_empty());
    assert_eq!(
        exchange("GET /status/404 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").0,
        404
    );

    // /close: nginx closes even though we asked for keep-alive.
    let (code, head, body) = exchange("GET /close HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(code, 200);
    assert!(head.contains("Connection: close"), "{head}");
    assert_eq!(body, HELLO_BODY.as_bytes());

    // ETag -> 304.
    let (code, head, _) =
        exchange("GET /etag.txt HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    assert_eq!(code, 200);
    let etag = head
        .lines()
        .find_map(|l| l.strip_prefix("ETag: "))
        .expect("ETag header")
        .to_string();
    let (code, _, body) = exchange(&format!(
        "GET /etag.txt HTTP/1.1\r\nHost: x\r\nIf-None-Match: {etag}\r\nConnection: close\r\n\r\n"
    ));
    assert_eq!(code, 304);
    assert!(body.is_empty());

    // Upload with a body.
    let (code, _, body) = exchange(
        "POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello",
    );
    assert_eq!(code, 200);
    assert_eq!(body, b"uploaded\n");

    // Keep-alive: two requests on one connection, same connection serial.
    let mut s = connect(ng.http_addr());
    s.write_all(b"GET /hello.txt HTTP/1.1\r\nHost: x\r\n\r\nGET /hello.txt HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut all = Vec::new();
    s.read_to_end(&mut all).unwrap();
    assert_eq!(
        String::from_utf8_lossy(&all)
            .matches("HTTP/1.1 200 OK")
            .count(),
        2
    );
    // nginx logs after its lingering close, i.e. once we close too.
    drop(s);
    let log = ng.wait_access_log(15, T);
    assert!(
        log.lines().any(|l| l.split(' ').nth(1) == Some("2")),
        "{log}"
    );
}

#[test]
fn nginx_tls_get() {
    let Some(ng) = small_nginx() else { return };
    let cfg = certs::client_config_trusting(&ng.ca_pem);
    for name in ["localhost", "127.0.0.1"] {
        let raw =
            tls_exchange(ng.https_addr(), name, Arc::clone(&cfg), &get("/hello.txt")).unwrap();
        let (code, head, body) = parse_raw_response(&raw).unwrap();
        assert_eq!(code, 200, "{head}");
        assert_eq!(body, HELLO_BODY.as_bytes());
    }
    // TLS 1.2 only, and ALPN http/1.1 negotiated.
    let mut cfg12 = rustls::ClientConfig::builder_with_provider(certs::provider())
        .with_protocol_versions(&[&rustls::version::TLS12])
        .unwrap()
        .with_root_certificates(TestCa::shared().root_store())
        .with_no_client_auth();
    cfg12.alpn_protocols = vec![b"http/1.1".to_vec()];
    let conn =
        rustls::ClientConnection::new(Arc::new(cfg12), "localhost".try_into().unwrap()).unwrap();
    let mut tls = rustls::StreamOwned::new(conn, connect(ng.https_addr()));
    tls.write_all(&get("/hello.txt")).unwrap();
    let mut out = Vec::new();
    let _ = tls.read_to_end(&mut out);
    assert_eq!(parse_raw_response(&out).unwrap().2, HELLO_BODY.as_bytes());
    assert_eq!(
        tls.conn.protocol_version(),
        Some(rustls::ProtocolVersion::TLSv1_2)
    );
    assert_eq!(tls.conn.alpn_protocol(), Some(&b"http/1.1"[..]));

    // A client trusting another CA fails.
    let other = TestCa::new().client_config();
    assert!(tls_exchange(ng.https_addr(), "localhost", other, &get("/hello.txt")).is_err());
}

#[test]
fn httpbin_get() {
    let t = Instant::now();
    let Some(hb) = Httpbin::try_shared() else {
        return;
    };
    eprintln!("httpbin (shared) ready in {:?}", t.elapsed());
    let raw = raw_exchange(hb.addr(), &get("/get?x=1")).unwrap();
    let (code, head, body) = parse_raw_response(&raw).unwrap();
    assert_eq!(code, 200, "{head}");
    let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(json["args"]["x"], "1");

    // gthread worker: keep-alive (two responses on one connection).
    let mut s = connect(hb.addr());
    s.write_all(b"GET /get HTTP/1.1\r\nHost: x\r\n\r\nGET /status/418 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut all = Vec::new();
    s.read_to_end(&mut all).unwrap();
    let text = String::from_utf8_lossy(&all);
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    assert!(text.contains("HTTP/1.1 418"), "{text}");
}

#[test]
fn script_write_reaches_client() {
    let srv = ScriptServer::start(vec![vec![
        Step::ReadRequest,
        Step::Write(script::ok_response("scripted")),
    ]]);
    let mut s = connect(srv.addr());
    s.write_all(
        b"POST /p HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
    )
    .unwrap();
    let mut out = Vec::new();
    s.read_to_end(&mut out).unwrap();
    let (code, _, body) = parse_raw_response(&out).unwrap();
    assert_eq!(code, 200);
    assert_eq!(body, b"scripted");
    assert!(srv.wait_for_requests(1, T));
    let reqs = srv.requests();
    let (head, body) = script::split_request(&reqs[0]);
    assert!(head.starts_with("POST /p HTTP/1.1\r\n"));
    assert_eq!(body, b"abc");
    assert_eq!(srv.connections_accepted(), 1);
    assert!(srv.errors().is_empty(), "{:?}", srv.errors());
}

#[test]
fn script_slow_and_repeated() {
    let srv = ScriptServer::start(vec![vec![
        Step::ReadRequest,
        Step::write_slowly("HTTP/1.1 200 OK\r\n", Duration::from_millis(1)),
        Step::write("Content-Length: 1000000\r\n\r\n"),
        Step::WriteRepeated {
            chunk: b"0123456789".to_vec(),
            total: 1_000_000,
        },
        Step::ShutdownWrite,
        Step::ReadToEof,
    ]]);
    let mut s = connect(srv.addr());
    s.write_all(&get("/")).unwrap();
    let mut out = Vec::new();
    s.read_to_end(&mut out).unwrap();
    let (code, _, body) = parse_raw_response(&out).unwrap();
    assert_eq!(code, 200);
    assert_eq!(body.len(), 1_000_000);
    drop(s);
}

#[test]
fn script_reset_is_seen_by_client() {
    let srv = ScriptServer::start(vec![vec![Step::ReadRequest, Step::Reset]]);
    let mut s = connect(srv.addr());
    s.write_all(&get("/")).unwrap();
    let mut buf = [0u8; 64];
    let err = s.read(&mut buf).expect_err("expected a reset");
    assert_eq!(err.kind(), std::io::ErrorKind::ConnectionReset, "{err}");
}

#[test]
fn tls_script_server_and_bad_certs() {
    let ca = TestCa::shared();
    let srv = TlsScriptServer::start(
        ca.server_config(),
        vec![vec![
            Step::ReadRequest,
            Step::Write(script::ok_response("tls")),
        ]],
    );
    let raw = tls_exchange(srv.addr(), "localhost", ca.client_config(), &get("/")).unwrap();
    assert_eq!(parse_raw_response(&raw).unwrap().2, b"tls");

    // Close without close_notify: the rustls client sees UnexpectedEof.
    let srv = TlsScriptServer::start(
        ca.server_config(),
        vec![vec![
            Step::ReadRequest,
            Step::write("HTTP/1.1 200 OK\r\n\r\npartial"),
            Step::CloseWithoutNotify,
        ]],
    );
    let conn =
        rustls::ClientConnection::new(ca.client_config(), "localhost".try_into().unwrap()).unwrap();
    let mut tls = rustls::StreamOwned::new(conn, connect(srv.addr()));
    tls.write_all(&get("/")).unwrap();
    let mut out = Vec::new();
    let err = tls.read_to_end(&mut out).expect_err("truncation");
    assert_eq!(err.kind(), std::io::ErrorKind::UnexpectedEof);
    assert!(out.ends_with(b"partial"));

    for (cfg, what) in [
        (certs::untrusted_server_config(), "UnknownIssuer"),
        (ca.wrong_name_server_config(), "NotValidForName"),
        (ca.expired_server_config(), "Expired"),
    ] {
        let srv = TlsScriptServer::start(cfg, vec![vec![Step::ReadRequest]]);
        let err = tls_exchange(srv.addr(), "localhost", ca.client_config(), &get("/"))
            .expect_err("handshake must fail");
        assert!(format!("{err:?}").contains(what), "{what}: {err:?}");
        let errors = srv.wait_for_errors(1, Duration::from_secs(10));
        assert!(
            matches!(&errors[..], [e] if e.starts_with("conn 0: TLS handshake failed: ")),
            "{what}: {errors:?}"
        );
    }
}

#[test]
fn a_script_the_client_did_not_follow_fails_on_drop() {
    // The script wants a request; the client connects and closes.
    let srv = ScriptServer::start(vec![vec![Step::ReadRequest]]);
    drop(connect(srv.addr()));
    let errors_seen = {
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while srv.errors().is_empty() {
            assert!(std::time::Instant::now() < deadline, "no step error");
            std::thread::sleep(Duration::from_millis(5));
        }
        srv.errors()
    };
    assert_eq!(
        errors_seen,
        ["conn 0: ReadRequest: EOF before end of request head (0 bytes)"]
    );
    let dropped = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| drop(srv)));
    let message = dropped.expect_err("the drop fails the test");
    let message = message
        .downcast_ref::<String>()
        .cloned()
        .unwrap_or_default();
    assert!(message.contains("1 step(s) failed"), "{message}");

    // Taken (judged by the test) or tolerated errors do not fail the drop.
    let srv = ScriptServer::start(vec![vec![Step::ReadRequest]]);
    drop(connect(srv.addr()));
    assert_eq!(srv.wait_for_errors(1, Duration::from_secs(10)).len(), 1);
    drop(srv);
    let srv = ScriptServer::start(vec![vec![Step::ReadRequest]]);
    srv.tolerate_step_errors();
    drop(connect(srv.addr()));
    assert_eq!(srv.wait_for_errors(1, Duration::from_secs(10)).len(), 1);
    drop(srv);
    // A step cut by the drop itself is no failure.
    let srv = ScriptServer::start(vec![vec![Step::ReadRequest]]);
    let _open = connect(srv.addr());
    drop(srv);
}

#[test]
fn a_gate_holds_a_step_until_the_test_opens_it() {
    let gate = script::Gate::new();
    let srv = ScriptServer::start(vec![vec![
        Step::ReadRequest,
        Step::Wait(gate.clone()),
        Step::Write(script::ok_response("after")),
    ]]);
    let mut s = connect(srv.addr());
    s.write_all(&get("/")).unwrap();
    assert!(srv.wait_for_requests(1, Duration::from_secs(10)));
    // Nothing comes while the gate is closed.
    s.set_nonblocking(true).unwrap();
    let mut buf = [0u8; 64];
    assert_eq!(
        s.read(&mut buf).unwrap_err().kind(),
        std::io::ErrorKind::WouldBlock
    );
    s.set_nonblocking(false).unwrap();
    gate.open();
    let mut out = Vec::new();
    s.read_to_end(&mut out).unwrap();
    assert_eq!(parse_raw_response(&out).unwrap().2, b"after");
}

#[test]
fn proxy_connect_tunnel_to_nginx() {
    let Some(ng) = small_nginx() else { return };
    let proxy = Proxy::start(ProxyOptions::default());
    let mut s = connect(proxy.addr());
    write!(
        s,
        "CONNECT 127.0.0.1:{0} HTTP/1.1\r\nHost: 127.0.0.1:{0}\r\n\r\n",
        ng.https_port
    )
    .unwrap();
    let mut head = Vec::new();
    let mut b = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        assert_eq!(s.read(&mut b).unwrap(), 1);
        head.push(b[0]);
    }
    assert!(head.starts_with(b"HTTP/1.1 200"));
    // TLS through the tunnel.
    let conn = rustls::ClientConnection::new(
        certs::client_config_trusting(&ng.ca_pem),
        "localhost".try_into().unwrap(),
    )
    .unwrap();
    let mut tls = rustls::StreamOwned::new(conn, s);
    tls.write_all(&get("/hello.txt")).unwrap();
    let mut out = Vec::new();
    let _ = tls.read_to_end(&mut out);
    let (code, _, body) = parse_raw_response(&out).unwrap();
    assert_eq!(code, 200);
    assert_eq!(body, HELLO_BODY.as_bytes());
    assert_eq!(
        proxy.request_lines(),
        vec![format!("CONNECT 127.0.0.1:{} HTTP/1.1", ng.https_port)]
    );
}

#[test]
fn proxy_refused_connect() {
    let proxy = Proxy::start(ProxyOptions {
        refuse_connect_with: Some(403),
        ..Default::default()
    });
    let raw = raw_exchange(
        proxy.addr(),
        b"CONNECT 127.0.0.1:9 HTTP/1.1\r\nHost: 127.0.0.1:9\r\n\r\n",
    )
    .unwrap();
    assert_eq!(parse_raw_response(&raw).unwrap().0, 403);
}

#[test]
fn proxy_absolute_form_forward() {
    let Some(ng) = small_nginx() else { return };
    let proxy = Proxy::start(ProxyOptions {
        require_auth: Some("Basic dTpw".into()),
        ..Default::default()
    });
    let target = format!("http://127.0.0.1:{}/hello.txt", ng.http_port);
    let mut s = connect(proxy.addr());
    // Without credentials: 407, connection stays open for the retry.
    write!(s, "GET {target} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n").unwrap();
    let mut buf = [0u8; 4096];
    let n = s.read(&mut buf).unwrap();
    assert_eq!(parse_raw_response(&buf[..n]).unwrap().0, 407);
    write!(
        s,
        "GET {target} HTTP/1.1\r\nHost: 127.0.0.1\r\nProxy-Authorization: Basic dTpw\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut out = Vec::new();
    s.read_to_end(&mut out).unwrap();
    let (code, _, body) = parse_raw_response(&out).unwrap();
    assert_eq!(code, 200);
    assert_eq!(body, HELLO_BODY.as_bytes());
    assert_eq!(
        proxy.request_lines().last().unwrap(),
        &format!("GET {target} HTTP/1.1")
    );
}
