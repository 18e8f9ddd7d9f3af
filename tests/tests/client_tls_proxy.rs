//! HttpClient over TLS (nginx with an rcgen CA, scripted bad certificates),
//! through both proxy kinds, with a slow resolver, and during big downloads.

use std::sync::Arc;
use std::time::{Duration, Instant};

use pollhttp::{Completed, Failure, HttpClient, HttpRequest, RequestResult, Status, TlsOptions};
use pollhttp_tests::certs::{untrusted_server_config, TestCa};
use pollhttp_tests::drive::{connect, drive_until, fetch};
use pollhttp_tests::nginx::{Nginx, NginxOptions, HELLO_BODY};
use pollhttp_tests::proxy::{Proxy, ProxyOptions};
use pollhttp_tests::script::{ok_response, Gate as StepGate, Step, TlsScriptServer};

use Status::*;

/// A client that trusts `ca_pem` and finds every name at 127.0.0.1.
fn tls_client(ca_pem: &str) -> HttpClient {
    let mut c = HttpClient::new().unwrap();
    c.set_tls_options(TlsOptions::with_root_pem(ca_pem.as_bytes()).unwrap());
    c.set_resolver(loopback_lookup());
    c
}

/// A lookup that answers every name with 127.0.0.1 (no system resolver).
fn loopback_lookup() -> pollhttp::LookupFn {
    Arc::new(|_: &str, port: u16| Ok(vec![std::net::SocketAddr::from(([127, 0, 0, 1], port))]))
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
    c.set_resolver(loopback_lookup());
    let up = connect(&mut c, "https://localhost", nginx.https_port, true);
    assert_eq!(up.statuses, vec![Resolving, Connecting, Connected]);
    for _ in 0..3 {
        let got = fetch(&mut c, "GET", "/hello.txt", &[], b"");
        assert_eq!(got.statuses, vec![Requesting, Body, Connected]);
        assert_eq!(got.body, HELLO_BODY.as_bytes());
    }
    let got = fetch(&mut c, "GET", "/1m.bin", &[], b"");
    assert_eq!(got.body, pollhttp_tests::pseudo_random_bytes(1 << 20));
}

/// The scripted server saw its only handshake end with the client's alert.
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
fn untrusted_certificate_is_a_handshake_error() {
    let server = TlsScriptServer::start(untrusted_server_config(), vec![vec![Step::ReadRequest]]);
    let mut c = tls_client(&TestCa::shared().ca_pem);
    let up = connect(&mut c, "127.0.0.1", server.port(), true);
    assert_eq!(up.statuses, vec![Connecting, TlsHandshakeError]);
    assert!(matches!(
        rustls_error(&c),
        rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer)
    ));
    assert_client_alert(&server, "UnknownCA");
    // The default roots (webpki-roots) do not know the test CA either.
    let mut c = HttpClient::new().unwrap();
    let server = TlsScriptServer::start(
        TestCa::shared().server_config(),
        vec![vec![Step::ReadRequest]],
    );
    connect(&mut c, "127.0.0.1", server.port(), true);
    assert_eq!(c.status(), TlsHandshakeError);
    assert!(matches!(
        rustls_error(&c),
        rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer)
    ));
    assert_client_alert(&server, "UnknownCA");
}

#[test]
fn expired_certificate_is_a_handshake_error() {
    let ca = TestCa::shared();
    let server = TlsScriptServer::start(ca.expired_server_config(), vec![vec![Step::ReadRequest]]);
    let mut c = tls_client(&ca.ca_pem);
    let up = connect(&mut c, "127.0.0.1", server.port(), true);
    assert_eq!(up.statuses, vec![Connecting, TlsHandshakeError]);
    assert!(
        matches!(
            rustls_error(&c),
            rustls::Error::InvalidCertificate(
                rustls::CertificateError::Expired | rustls::CertificateError::ExpiredContext { .. }
            )
        ),
        "{:?}",
        rustls_error(&c)
    );
    assert_client_alert(&server, "CertificateExpired");
}

#[test]
fn a_record_that_does_not_decrypt_mid_response_is_a_tls_session_failure() {
    // After the handshake, in the middle of a body: an application-data
    // record (TLS 1.2/1.3 framing) whose 32 bytes are not a sealed record.
    // The record is sent once the client has the first part of the body.
    let mut garbage = vec![0x17, 0x03, 0x03, 0x00, 0x20];
    garbage.extend_from_slice(&[0x5a; 32]);
    let gate = StepGate::new();
    let server = TlsScriptServer::start(
        TestCa::shared().server_config(),
        vec![vec![
            Step::ReadRequest,
            Step::write("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\npartial"),
            Step::Wait(gate.clone()),
            Step::WriteRaw(garbage),
            Step::ReadToEof,
        ]],
    );
    let mut c = tls_client(&TestCa::shared().ca_pem);
    let up = connect(&mut c, "127.0.0.1", server.port(), true);
    assert_eq!(up.statuses, vec![Connecting, Connected]);
    c.request("GET", "/", &[("Accept", "*/*")], b"").unwrap();
    let mut got = drive_until(&mut c, Duration::from_secs(20), |s| s != Requesting);
    let mut rounds = 0;
    while got.body.len() < b"partial".len() && c.status() == Body {
        rounds += 1;
        assert!(rounds < 400, "{:?}", got.body);
        c.wait(Some(Duration::from_millis(50)));
        c.poll();
        while let Some(chunk) = c.read_response_body_chunk() {
            got.body.extend_from_slice(&chunk);
        }
    }
    assert_eq!(
        (got.statuses, &got.body[..]),
        (vec![Requesting, Body], &b"partial"[..])
    );
    gate.open();
    let got = drive_until(&mut c, Duration::from_secs(20), |s| s != Body);
    assert_eq!(got.statuses, vec![Body, ConnectionError]);
    assert_eq!(got.body, b"");
    assert!(
        matches!(
            c.failure(),
            Some(Failure::TlsSession(rustls::Error::DecryptError))
        ),
        "{:?}",
        c.failure()
    );
    // The client told the server why (its alert ends the server's read).
    c.close();
    let errors = server.wait_for_errors(1, Duration::from_secs(10));
    assert_eq!(
        errors,
        ["conn 0: ReadToEof: received fatal alert: BadRecordMac"]
    );
}

#[test]
fn wrong_host_name_is_a_handshake_error_unless_overridden() {
    let ca = TestCa::shared();
    let server =
        TlsScriptServer::start(ca.wrong_name_server_config(), vec![vec![Step::ReadRequest]]);
    let mut c = tls_client(&ca.ca_pem);
    let up = connect(&mut c, "127.0.0.1", server.port(), true);
    assert_eq!(up.statuses, vec![Connecting, TlsHandshakeError]);
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
    assert_client_alert(&server, "BadCertificate");

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
    c.set_resolver(loopback_lookup());
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
    // More requests on the same connection, with both body framings: the
    // proxy sees (and records) each one.
    let got = fetch(&mut c, "POST", "/status/204", &[], b"abc");
    assert_eq!(got.statuses, vec![Requesting, Connected]);
    c.request_streaming("PUT", "/status/204", &[("X-Kind", "stream")])
        .unwrap();
    c.send_body_chunk(b"hello").unwrap();
    c.finish_body().unwrap();
    let got = drive_until(&mut c, Duration::from_secs(20), |s| {
        !matches!(s, Requesting | Body)
    });
    assert_eq!(
        (got.statuses, c.response_code()),
        (vec![Requesting, Connected], 204)
    );
    let got = fetch(&mut c, "GET", "/hello.txt", &[], b"");
    assert_eq!(got.body, HELLO_BODY.as_bytes());
    let origin = format!("http://127.0.0.1:{}", nginx.http_port);
    assert_eq!(
        proxy.request_lines(),
        vec![
            format!("GET {origin}/hello.txt HTTP/1.1"),
            format!("POST {origin}/status/204 HTTP/1.1"),
            format!("PUT {origin}/status/204 HTTP/1.1"),
            format!("GET {origin}/hello.txt HTTP/1.1"),
        ]
    );
    assert_eq!(proxy.connections_accepted(), 1);
}

#[test]
fn https_proxy_tunnels_tls_end_to_end() {
    let nginx = Nginx::start();
    let proxy = Proxy::start(ProxyOptions::default());
    let mut c = tls_client(&nginx.ca_pem);
    c.set_https_proxy("127.0.0.1", proxy.port());
    let up = connect(&mut c, "https://localhost", nginx.https_port, true);
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
    let up = connect(&mut c, "https://localhost", 443, true);
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
    let up = connect(&mut c, "https://localhost", 443, true);
    assert_eq!(up.statuses, vec![Connecting, CantConnect]);
    assert!(
        matches!(c.failure(), Some(Failure::ProxyRefused { status: 403 })),
        "{:?}",
        c.failure()
    );
}

/// A resolver that blocks every lookup until [`Gate::open`], so "another
/// client is not delayed" needs no clock: if it were, it would wait forever.
#[derive(Default)]
struct Gate {
    state: std::sync::Mutex<(bool, u32)>, // (open, lookups entered)
    changed: std::sync::Condvar,
}

impl Gate {
    fn lookup(&self, port: u16) -> std::io::Result<Vec<std::net::SocketAddr>> {
        let mut st = self.state.lock().unwrap();
        st.1 += 1;
        self.changed.notify_all();
        while !st.0 {
            st = self.changed.wait(st).unwrap();
        }
        Ok(vec![std::net::SocketAddr::from(([127, 0, 0, 1], port))])
    }
    fn open(&self) {
        self.state.lock().unwrap().0 = true;
        self.changed.notify_all();
    }
    fn close(&self) {
        self.state.lock().unwrap().0 = false;
    }
    fn is_open(&self) -> bool {
        self.state.lock().unwrap().0
    }
    /// Waits (a hang guard, not a measurement) until `n` lookups entered.
    fn wait_entered(&self, n: u32) {
        let st = self.state.lock().unwrap();
        let (st, timeout) = self
            .changed
            .wait_timeout_while(st, Duration::from_secs(20), |st| st.1 < n)
            .unwrap();
        assert!(!timeout.timed_out(), "{} lookups entered, not {n}", st.1);
    }
}

#[test]
fn a_slow_lookup_does_not_delay_another_client() {
    let nginx = Nginx::start();
    let gate = Arc::new(Gate::default());
    let mut slow = HttpClient::new().unwrap();
    let g = Arc::clone(&gate);
    slow.set_resolver(Arc::new(move |_host: &str, port: u16| g.lookup(port)));
    slow.connect_to_host("slow.test", Some(nginx.http_port), false)
        .unwrap();
    slow.poll();
    gate.wait_entered(1);
    // The other client resolves, connects and fetches while the first
    // lookup is stuck.
    let mut fast = HttpClient::new().unwrap();
    fast.set_resolver(loopback_lookup());
    let up = connect(&mut fast, "fast.test", nginx.http_port, false);
    assert_eq!(up.statuses, vec![Resolving, Connecting, Connected]);
    let got = fetch(&mut fast, "GET", "/hello.txt", &[], b"");
    assert_eq!(got.body, HELLO_BODY.as_bytes());
    assert!(!gate.is_open());
    slow.poll();
    assert_eq!(slow.status(), Resolving);
    gate.open();
    let up = drive_until(&mut slow, Duration::from_secs(10), |s| s == Connected);
    assert!(
        up.polls < 200,
        "waiting on the resolver must sleep, not spin: {} polls",
        up.polls
    );
    // Closing mid-lookup never blocks: close() returns while the lookup is
    // still stuck (a watchdog opens the gate after 20 s so that a close()
    // that joined the lookup fails instead of hanging).
    // Another name: the answer for slow.test is cached now.
    gate.close();
    slow.connect_to_host("other.slow.test", Some(nginx.http_port), false)
        .unwrap();
    slow.poll();
    gate.wait_entered(2);
    let watchdog = {
        let g = Arc::clone(&gate);
        std::thread::spawn(move || {
            let st = g.state.lock().unwrap();
            let (_st, timeout) = g
                .changed
                .wait_timeout_while(st, Duration::from_secs(20), |st| !st.0)
                .unwrap();
            let fired = timeout.timed_out();
            drop(_st);
            g.open();
            fired
        })
    };
    slow.close();
    assert_eq!(slow.status(), Disconnected);
    assert!(
        !gate.is_open(),
        "close() returned only once the lookup could end"
    );
    gate.open();
    assert!(!watchdog.join().unwrap());
}

fn big_download(tls: bool, len: u64) {
    let nginx = Nginx::start_with(NginxOptions {
        big_file_len: len,
        ..NginxOptions::default()
    });
    let mut c = tls_client(&nginx.ca_pem);
    let (host, port) = if tls {
        ("https://localhost", nginx.https_port)
    } else {
        ("127.0.0.1", nginx.http_port)
    };
    c.set_poll_budget(pollhttp::PollBudget::new(POLL_BUDGET, None));
    connect(&mut c, host, port, tls);
    assert_eq!(c.status(), Connected);
    c.request("GET", "/big.bin", &[("A", "b")], b"").unwrap();
    let start = Instant::now();
    let (mut polls, mut reads) = (0u64, 0u64);
    let (mut max_poll_bytes, mut max_read_bytes) = (0u64, 0u64);
    let mut total = 0u64;
    let mut nonzero = false;
    while matches!(c.status(), Requesting | Body) {
        assert!(start.elapsed() < Duration::from_secs(120));
        c.wait(Some(Duration::from_millis(100)));
        let before = c.bytes_read();
        c.poll();
        polls += 1;
        max_poll_bytes = max_poll_bytes.max(c.bytes_read() - before);
        while c.status() == Body {
            let before = c.bytes_read();
            let chunk = c.read_response_body_chunk();
            reads += 1;
            max_read_bytes = max_read_bytes.max(c.bytes_read() - before);
            let Some(chunk) = chunk else { break };
            assert!(chunk.len() <= 65_536);
            total += chunk.len() as u64;
            nonzero |= chunk.iter().any(|&b| b != 0);
        }
    }
    assert_eq!(c.status(), Connected, "{:?}", c.failure());
    assert_eq!(total, len);
    assert!(!nonzero);
    eprintln!(
        "{} {} MiB: {polls} polls, {reads} chunk reads; most bytes read by one poll \
         {max_poll_bytes}, by one chunk read {max_read_bytes}",
        if tls { "TLS" } else { "plain" },
        len >> 20,
    );
    // A call that does unbounded work shows in what it reads, which no
    // preemption changes (how long calls take is a benchmark's figure, see
    // benches/): one poll() at most its budget of socket bytes, one chunk
    // read at most the receive buffer's worth (a 512 KiB gulp at most, issue
    // 21) within the budget left (the socket buffer holds megabytes on
    // loopback, so a call that drained it would show). Over TLS the budget
    // counts ciphertext read from the socket: what the TLS stream buffered
    // before (its ciphertext buffer, one gulp at most, and rustls'
    // plaintext) may come on top, decrypted without a socket read.
    let slack = if tls { (512 + 16) << 10 } else { 0 };
    assert!(
        max_poll_bytes <= POLL_BUDGET as u64 + slack,
        "one poll() read {max_poll_bytes} bytes"
    );
    assert!(
        max_read_bytes <= (POLL_BUDGET.min(512 << 10) as u64) + slack,
        "one read_response_body_chunk() read {max_read_bytes} bytes"
    );
    // And so the body came in many calls: at least one poll per budget.
    assert!(polls >= len / POLL_BUDGET as u64, "{polls} polls");
}

/// `set_poll_budget`'s bytes for the big downloads (set so the
/// bound checked is the one asked for).
const POLL_BUDGET: usize = 256 << 10;

#[test]
fn each_call_reads_a_bounded_amount_during_a_1_gib_download() {
    big_download(false, 1 << 30);
}

#[test]
fn each_call_reads_a_bounded_amount_during_a_256_mib_tls_download() {
    big_download(true, 256 << 20);
}

fn run(req: &mut HttpRequest) -> Completed {
    pollhttp_tests::drive::run_request(req, Duration::from_secs(30))
}

#[test]
fn http_request_keeps_its_http_proxy_connection_across_origins() {
    // D11 for HttpRequest: its one kept connection goes to the proxy, and
    // carries a cross-origin redirect's next hop and the next request to
    // another origin. Both origins (localhost, 127.0.0.1) are one nginx:
    // the test proxy pipes a connection to the origin of its first request.
    let nginx = Nginx::start();
    let proxy = Proxy::start(ProxyOptions::default());
    let p = nginx.http_port;
    let mut req = HttpRequest::new();
    req.settings_mut().proxy.http = Some(("127.0.0.1".into(), proxy.port()));

    req.request(
        &format!("http://localhost:{p}/redirect/to-http"),
        &[],
        "GET",
        "",
    )
    .unwrap();
    let done = run(&mut req);
    assert_eq!(done.result, RequestResult::Success, "{}", done.reason);
    assert_eq!(done.body, HELLO_BODY.as_bytes());
    assert_eq!(done.redirects, 1);
    assert_eq!(done.final_url, format!("http://127.0.0.1:{p}/hello.txt"));

    req.request(&format!("http://localhost:{p}/hello.txt"), &[], "GET", "")
        .unwrap();
    let done = run(&mut req);
    assert_eq!(done.result, RequestResult::Success, "{}", done.reason);

    assert_eq!(
        proxy.connections_accepted(),
        1,
        "{:?}",
        proxy.request_lines()
    );
    assert_eq!(
        proxy.request_lines(),
        [
            format!("GET http://localhost:{p}/redirect/to-http HTTP/1.1"),
            format!("GET http://127.0.0.1:{p}/hello.txt HTTP/1.1"),
            format!("GET http://localhost:{p}/hello.txt HTTP/1.1"),
        ]
    );
    let log = nginx.wait_access_log(2 + 3, Duration::from_secs(5));
    let requests: Vec<&str> = log
        .lines()
        .filter(|l| !l.contains("/.pollhttp-instance"))
        .filter_map(|l| l.split('"').nth(1))
        .collect();
    assert_eq!(
        requests,
        [
            format!("GET http://localhost:{p}/redirect/to-http HTTP/1.1"),
            format!("GET http://127.0.0.1:{p}/hello.txt HTTP/1.1"),
            format!("GET http://localhost:{p}/hello.txt HTTP/1.1"),
        ],
        "{log}"
    );

    // Without the proxy the kept connection (to the proxy) does not fit:
    // a direct one is made.
    req.settings_mut().proxy.http = None;
    req.request(&format!("http://127.0.0.1:{p}/hello.txt"), &[], "GET", "")
        .unwrap();
    let done = run(&mut req);
    assert_eq!(done.result, RequestResult::Success, "{}", done.reason);
    assert_eq!(proxy.connections_accepted(), 1);
    let log = nginx.wait_access_log(2 + 4, Duration::from_secs(5));
    assert!(
        log.lines()
            .last()
            .is_some_and(|l| l.contains("\"GET /hello.txt HTTP/1.1\"")),
        "{log}"
    );
}

#[test]
fn a_bad_record_right_behind_good_ones_keeps_what_was_decrypted() {
    // As above, but the bad record follows at once: one socket read may hold
    // both. What decrypted before the bad record arrived, as with a reset.
    let mut garbage = vec![0x17, 0x03, 0x03, 0x00, 0x20];
    garbage.extend_from_slice(&[0x5a; 32]);
    let server = TlsScriptServer::start(
        TestCa::shared().server_config(),
        vec![vec![
            Step::ReadRequest,
            Step::write("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\npartial"),
            Step::WriteRaw(garbage),
            Step::ReadToEof,
        ]],
    );
    let mut c = tls_client(&TestCa::shared().ca_pem);
    connect(&mut c, "127.0.0.1", server.port(), true);
    let got = fetch(&mut c, "GET", "/", &[], b"");
    assert_eq!(
        (got.statuses, &got.body[..], c.response_code()),
        (
            vec![Requesting, Body, ConnectionError],
            &b"partial"[..],
            200
        )
    );
    assert!(
        matches!(
            c.failure(),
            Some(Failure::TlsSession(rustls::Error::DecryptError))
        ),
        "{:?}",
        c.failure()
    );
    c.close();
    let errors = server.wait_for_errors(1, Duration::from_secs(10));
    assert_eq!(
        errors,
        ["conn 0: ReadToEof: received fatal alert: BadRecordMac"]
    );
}
