//! HttpClient over TLS (nginx with an rcgen CA, scripted bad certificates),
//! through both proxy kinds, with a slow resolver, and during big downloads.

use std::sync::Arc;
use std::time::{Duration, Instant};

use pollhttp::{Failure, HttpClient, Status, TlsOptions};
use pollhttp_tests::certs::{untrusted_server_config, TestCa};
use pollhttp_tests::drive::{connect, drive_until, fetch};
use pollhttp_tests::nginx::{Nginx, NginxOptions, HELLO_BODY};
use pollhttp_tests::proxy::{Proxy, ProxyOptions};
use pollhttp_tests::script::{ok_response, Step, TlsScriptServer};

use Status::*;

fn tls_client(ca_pem: &str) -> HttpClient {
    let mut c = HttpClient::new().unwrap();
    c.set_tls_options(TlsOptions::with_root_pem(ca_pem.as_bytes()).unwrap());
    c
}

fn rustls_error(c: &HttpClient) -> rustls::Error {
    match c.failure() {
        Some(Failure::Tls(e)) => e
            .rustls_error()
            .cloned()
            .unwrap_or_else(|| panic!("not a rustls error: {e}")),
        other => panic!("expected a TLS failure, got {other:?}"),
    }
}

#[test]
fn tls_get_from_nginx() {
    let nginx = Nginx::start();
    let mut c = tls_client(&nginx.ca_pem);
    let up = connect(&mut c, "https://localhost", nginx.https_port, false);
    assert_eq!(up.statuses, vec![Resolving, Connecting, Connected]);
    for _ in 0..3 {
        let got = fetch(&mut c, "GET", "/hello.txt", &[], b"");
        assert_eq!(got.statuses, vec![Requesting, Body, Connected]);
        assert_eq!(got.body, HELLO_BODY.as_bytes());
    }
    let got = fetch(&mut c, "GET", "/1m.bin", &[], b"");
    assert_eq!(got.body, pollhttp_tests::pseudo_random_bytes(1 << 20));
}

#[test]
fn untrusted_certificate_is_a_handshake_error() {
    let server = TlsScriptServer::start(untrusted_server_config(), vec![vec![Step::ReadRequest]]);
    let mut c = tls_client(&TestCa::shared().ca_pem);
    let up = connect(&mut c, "localhost", server.port(), true);
    assert_eq!(up.statuses, vec![Resolving, Connecting, TlsHandshakeError]);
    assert!(matches!(
        rustls_error(&c),
        rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer)
    ));
    // The default roots (webpki-roots) do not know the test CA either.
    let mut c = HttpClient::new().unwrap();
    let server = TlsScriptServer::start(
        TestCa::shared().server_config(),
        vec![vec![Step::ReadRequest]],
    );
    connect(&mut c, "localhost", server.port(), true);
    assert_eq!(c.status(), TlsHandshakeError);
}

#[test]
fn wrong_host_name_is_a_handshake_error_unless_overridden() {
    let ca = TestCa::shared();
    let server =
        TlsScriptServer::start(ca.wrong_name_server_config(), vec![vec![Step::ReadRequest]]);
    let mut c = tls_client(&ca.ca_pem);
    let up = connect(&mut c, "localhost", server.port(), true);
    assert_eq!(up.statuses, vec![Resolving, Connecting, TlsHandshakeError]);
    assert!(
        matches!(
            rustls_error(&c),
            rustls::Error::InvalidCertificate(rustls::CertificateError::NotValidForName)
                | rustls::Error::InvalidCertificate(
                    rustls::CertificateError::NotValidForNameContext { .. }
                )
        ),
        "{:?}",
        rustls_error(&c)
    );

    let server = TlsScriptServer::start(
        ca.wrong_name_server_config(),
        vec![vec![
            Step::ReadRequest,
            Step::Write(ok_response("named")),
            Step::Sleep(Duration::from_millis(300)),
        ]],
    );
    let mut c = HttpClient::new().unwrap();
    c.set_tls_options(
        TlsOptions::with_root_pem(ca.ca_pem.as_bytes())
            .unwrap()
            .server_name_override(pollhttp_tests::certs::WRONG_NAME),
    );
    connect(&mut c, "127.0.0.1", server.port(), true);
    assert_eq!(c.status(), Connected, "{:?}", c.failure());
    assert_eq!(fetch(&mut c, "GET", "/", &[], b"").body, b"named");
}

#[test]
fn dangerous_mode_accepts_any_certificate() {
    let server = TlsScriptServer::start(
        untrusted_server_config(),
        vec![vec![
            Step::ReadRequest,
            Step::Write(ok_response("unsafe")),
            Step::Sleep(Duration::from_millis(300)),
        ]],
    );
    let mut c = HttpClient::new().unwrap();
    c.set_tls_options(TlsOptions::new().dangerous_disable_verification());
    connect(&mut c, "localhost", server.port(), true);
    assert_eq!(c.status(), Connected, "{:?}", c.failure());
    assert_eq!(fetch(&mut c, "GET", "/", &[], b"").body, b"unsafe");
}

#[test]
fn http_proxy_gets_absolute_form_targets() {
    let nginx = Nginx::start();
    let proxy = Proxy::start(ProxyOptions::default());
    let mut c = HttpClient::new().unwrap();
    c.set_http_proxy("127.0.0.1", proxy.port());
    let up = connect(&mut c, "127.0.0.1", nginx.http_port, false);
    assert_eq!(up.statuses, vec![Connecting, Connected]);
    let got = fetch(&mut c, "GET", "/hello.txt", &[], b"");
    assert_eq!(got.body, HELLO_BODY.as_bytes());
    assert_eq!(
        proxy.request_lines(),
        vec![format!(
            "GET http://127.0.0.1:{}/hello.txt HTTP/1.1",
            nginx.http_port
        )]
    );
}

#[test]
fn https_proxy_tunnels_tls_end_to_end() {
    let nginx = Nginx::start();
    let proxy = Proxy::start(ProxyOptions::default());
    let mut c = tls_client(&nginx.ca_pem);
    c.set_https_proxy("127.0.0.1", proxy.port());
    let up = connect(&mut c, "https://localhost", nginx.https_port, false);
    assert_eq!(
        up.statuses,
        vec![Connecting, Connected],
        "{:?}",
        c.failure()
    );
    let got = fetch(&mut c, "GET", "/hello.txt", &[], b"");
    assert_eq!(got.body, HELLO_BODY.as_bytes());
    assert_eq!(
        proxy.request_lines(),
        vec![format!("CONNECT localhost:{} HTTP/1.1", nginx.https_port)]
    );
}

#[test]
fn waiting_on_a_slow_proxy_sleeps_instead_of_spinning() {
    // A scripted "proxy" that takes a second to answer CONNECT, then refuses.
    let proxy = pollhttp_tests::script::ScriptServer::start(vec![vec![
        Step::ReadRequestHead,
        Step::Sleep(Duration::from_millis(1000)),
        Step::write("HTTP/1.1 407 Proxy Authentication Required\r\nContent-Length: 0\r\n\r\n"),
        Step::Sleep(Duration::from_millis(300)),
    ]]);
    let mut c = tls_client(&TestCa::shared().ca_pem);
    c.set_https_proxy("127.0.0.1", proxy.port());
    let up = connect(&mut c, "https://localhost", 443, false);
    assert_eq!(up.statuses, vec![Connecting, CantConnect]);
    assert!(
        matches!(c.failure(), Some(Failure::ProxyRefused { status: 407 })),
        "{:?}",
        c.failure()
    );
    assert!(up.polls < 60, "{} polls", up.polls);
}

#[test]
fn https_proxy_refusal_is_cant_connect_with_the_code() {
    let proxy = Proxy::start(ProxyOptions {
        refuse_connect_with: Some(403),
        ..ProxyOptions::default()
    });
    let mut c = tls_client(&TestCa::shared().ca_pem);
    c.set_https_proxy("127.0.0.1", proxy.port());
    let up = connect(&mut c, "https://localhost", 443, false);
    assert_eq!(up.statuses, vec![Connecting, CantConnect]);
    assert!(
        matches!(c.failure(), Some(Failure::ProxyRefused { status: 403 })),
        "{:?}",
        c.failure()
    );
}

#[test]
fn a_slow_lookup_does_not_delay_another_client() {
    let nginx = Nginx::start();
    let mut slow = HttpClient::new().unwrap();
    slow.set_resolver(Arc::new(|_host: &str, port: u16| {
        std::thread::sleep(Duration::from_secs(2));
        Ok(vec![std::net::SocketAddr::from(([127, 0, 0, 1], port))])
    }));
    slow.connect_to_host("slow.test", Some(nginx.http_port), false)
        .unwrap();
    let start = Instant::now();
    let mut fast = HttpClient::new().unwrap();
    let up = connect(&mut fast, "localhost", nginx.http_port, false);
    assert_eq!(up.statuses, vec![Resolving, Connecting, Connected]);
    assert!(
        start.elapsed() < Duration::from_secs(1),
        "{:?}",
        start.elapsed()
    );
    slow.poll();
    assert_eq!(slow.status(), Resolving);
    let up = drive_until(&mut slow, Duration::from_secs(10), |s| s == Connected);
    assert!(
        up.polls < 200,
        "waiting on the resolver must sleep, not spin: {} polls",
        up.polls
    );
    // Closing mid-lookup never blocks.
    slow.connect_to_host("slow.test", Some(nginx.http_port), false)
        .unwrap();
    let t = Instant::now();
    slow.close();
    assert!(t.elapsed() < Duration::from_millis(50));
}

fn big_download(tls: bool, len: u64) {
    let nginx = Nginx::start_with(NginxOptions { big_file_len: len });
    let mut c = tls_client(&nginx.ca_pem);
    let (host, port) = if tls {
        ("https://localhost", nginx.https_port)
    } else {
        ("127.0.0.1", nginx.http_port)
    };
    connect(&mut c, host, port, false);
    assert_eq!(c.status(), Connected);
    c.request("GET", "/big.bin", &[("A", "b")], b"").unwrap();
    let start = Instant::now();
    let mut calls: Vec<Duration> = Vec::new();
    let mut total = 0u64;
    let mut nonzero = false;
    while matches!(c.status(), Requesting | Body) {
        assert!(start.elapsed() < Duration::from_secs(120));
        c.wait(Some(Duration::from_millis(100)));
        let t = Instant::now();
        c.poll();
        calls.push(t.elapsed());
        while c.status() == Body {
            let t = Instant::now();
            let chunk = c.read_response_body_chunk();
            calls.push(t.elapsed());
            let Some(chunk) = chunk else { break };
            assert!(chunk.len() <= 65_536);
            total += chunk.len() as u64;
            nonzero |= chunk.iter().any(|&b| b != 0);
        }
    }
    assert_eq!(c.status(), Connected, "{:?}", c.failure());
    assert_eq!(total, len);
    assert!(!nonzero);
    calls.sort();
    let max = *calls.last().unwrap();
    let p99 = calls[calls.len() * 99 / 100];
    let p999 = calls[calls.len() * 999 / 1000];
    eprintln!(
        "{} {} MiB: {:.2} s, {} calls, max call {:?}, p99 {:?}, p99.9 {:?}",
        if tls { "TLS" } else { "plain" },
        len >> 20,
        start.elapsed().as_secs_f64(),
        calls.len(),
        max,
        p99,
        p999
    );
    // A guard against calls that do unbounded work, not a benchmark: the
    // figures (on a quiet machine) come from benches/. Preemption on a busy
    // 2-core machine can stretch single calls, hence the generous max.
    assert!(p99 < Duration::from_millis(5), "p99 call {p99:?}");
    assert!(max < Duration::from_millis(200), "max call {max:?}");
}

#[test]
fn poll_stays_quick_during_a_1_gib_download() {
    big_download(false, 1 << 30);
}

#[test]
fn poll_stays_quick_during_a_256_mib_tls_download() {
    big_download(true, 256 << 20);
}
