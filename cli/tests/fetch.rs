//! The `fetch` binary run as a real command against real servers (nginx,
//! httpbin, the test proxy, scripted servers), every option by its exact
//! result. Every run is bounded by a deadline and killed when it passes.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use pollhttp_tests::certs::TestCa;
use pollhttp_tests::httpbin::Httpbin;
use pollhttp_tests::nginx::Nginx;
use pollhttp_tests::process::{free_port, TempDir};
use pollhttp_tests::proxy::{Proxy, ProxyOptions};
use pollhttp_tests::script::{response, Gate, ScriptServer, Step, TlsScriptServer};
use pollhttp_tests::{pseudo_random_bytes, sha256_hex};
use serde_json::Value;

mod support;

use support::{fetch, nginx, str_of, Output};

// ------------------------------------------------------------ fetch

#[test]
fn fetch_json_reports_a_success() {
    let Some(nginx) = nginx() else { return };
    let url = nginx.url("/hello.txt");
    let out = fetch(&["--report", &url]);
    assert_eq!(out.code, Some(0), "stderr: {}", out.stderr);
    let v = out.json();
    assert_eq!(str_of(&v, "result"), "Success");
    assert_eq!(str_of(&v, "reason"), "");
    assert_eq!(v["response_code"], 200);
    assert_eq!(str_of(&v, "body_sha256"), sha256_hex(b"Hello, world!"));
    assert_eq!(v["body_bytes"], 13);
    assert_eq!(v["redirects"], 0);
    assert_eq!(str_of(&v, "url"), url);
    assert!(v["wire_bytes"].as_u64().unwrap() > 13, "{v}");
    assert!(v["seconds"].as_f64().is_some_and(f64::is_finite), "{v}");
    let headers = v["headers"].as_array().expect("headers array");
    assert!(
        headers.iter().any(|h| h[0]
            .as_str()
            .is_some_and(|n| n.eq_ignore_ascii_case("content-length"))
            && h[1] == "13"),
        "{v}"
    );
}

#[test]
fn fetch_prints_the_body_to_stdout() {
    let Some(nginx) = nginx() else { return };
    let out = fetch(&[&nginx.url("/hello.txt")]);
    assert_eq!(out.code, Some(0), "stderr: {}", out.stderr);
    assert_eq!(out.stdout, b"Hello, world!");

    let out = fetch(&[&nginx.url("/1m.bin")]);
    assert_eq!(out.code, Some(0), "stderr: {}", out.stderr);
    assert!(
        out.stdout == pseudo_random_bytes(1 << 20),
        "1m.bin differs on stdout"
    );
}

#[test]
fn fetch_output_file() {
    let Some(nginx) = nginx() else { return };
    let dir = TempDir::new("fetch-o").unwrap();
    let file = dir.path().join("1m.bin");
    let expected = sha256_hex(&pseudo_random_bytes(1 << 20));
    let out = fetch(&[
        "--report",
        "-o",
        file.to_str().unwrap(),
        &nginx.url("/1m.bin"),
    ]);
    assert_eq!(out.code, Some(0), "stderr: {}", out.stderr);
    let v = out.json();
    assert_eq!(str_of(&v, "result"), "Success");
    assert_eq!(str_of(&v, "body_sha256"), expected);
    assert_eq!(v["body_bytes"], 1 << 20);
    assert_eq!(sha256_hex(&std::fs::read(&file).unwrap()), expected);

    // Without --json nothing goes to stdout.
    let file2 = dir.path().join("again.bin");
    let out = fetch(&["-o", file2.to_str().unwrap(), &nginx.url("/gzip/1m.bin")]);
    assert_eq!(out.code, Some(0), "stderr: {}", out.stderr);
    assert!(out.stdout.is_empty());
    assert_eq!(
        sha256_hex(&std::fs::read(&file2).unwrap()),
        expected,
        "gzip body decoded into the file"
    );
}

#[test]
fn fetch_output_file_is_emptied_by_an_empty_body() {
    // curl leaves an empty -o file when the final response has no body: the
    // library empties a download file when an empty final body completes.
    let server = ScriptServer::start(vec![
        vec![
            Step::ReadRequest,
            Step::write("HTTP/1.1 204 No Content\r\n\r\n"),
        ],
        vec![Step::ReadRequest, Step::write(response("200 OK", &[], ""))],
        vec![
            Step::ReadRequest,
            Step::write("HTTP/1.1 204 No Content\r\n\r\n"),
        ],
        // -C -: nothing left to resume; the file stays as it is.
        vec![
            Step::ReadRequest,
            Step::write(response(
                "416 Range Not Satisfiable",
                &[("Content-Range", "bytes */5")],
                "",
            )),
        ],
    ]);
    let dir = TempDir::new("fetch-o-empty").unwrap();
    let url = server.base_url();
    let stale = dir.path().join("stale.bin");
    for (code, hint) in [(204, "a 204"), (200, "Content-Length: 0")] {
        std::fs::write(&stale, b"stale bytes from before").unwrap();
        let out = fetch(&["--report", "-o", stale.to_str().unwrap(), &url]);
        assert_eq!(out.code, Some(0), "stderr: {}", out.stderr);
        let v = out.json();
        assert_eq!(str_of(&v, "result"), "Success", "{v}");
        assert_eq!(
            (v["response_code"].as_u64(), v["body_bytes"].as_u64()),
            (Some(code), Some(0))
        );
        assert_eq!(
            std::fs::read(&stale).unwrap(),
            b"",
            "{hint} empties the file"
        );
    }
    // A file that was not there is created empty.
    let fresh = dir.path().join("fresh.bin");
    let out = fetch(&["-o", fresh.to_str().unwrap(), &url]);
    assert_eq!(out.code, Some(0), "stderr: {}", out.stderr);
    assert_eq!(std::fs::read(&fresh).unwrap(), b"");
    // A resume that finds nothing to add keeps the file.
    let partial = dir.path().join("partial.bin");
    std::fs::write(&partial, b"12345").unwrap();
    let out = fetch(&["--report", "-C", "-", "-o", partial.to_str().unwrap(), &url]);
    assert_eq!(out.code, Some(0), "stderr: {}", out.stderr);
    assert_eq!(out.json()["response_code"], 416);
    assert_eq!(std::fs::read(&partial).unwrap(), b"12345");
    let requests = server.requests();
    assert_eq!(requests.len(), 4);
    let last = String::from_utf8_lossy(&requests[3]).to_ascii_lowercase();
    assert!(last.contains("\r\nrange: bytes=5-\r\n"), "{last}");
}

#[test]
fn fetch_404_is_a_success_with_its_code() {
    // Godot semantics: Success means a complete response arrived.
    let Some(nginx) = nginx() else { return };
    let out = fetch(&["--report", &nginx.url("/status/404")]);
    assert_eq!(out.code, Some(0), "stderr: {}", out.stderr);
    let v = out.json();
    assert_eq!(str_of(&v, "result"), "Success");
    assert_eq!(v["response_code"], 404);
}

#[test]
fn fetch_refused_port_is_cant_connect() {
    let port = free_port().unwrap();
    let out = fetch(&["--report", &format!("http://127.0.0.1:{port}/")]);
    assert_ne!(out.code, Some(0));
    assert!(
        out.stdout_text().contains(r#""result":"CantConnect""#),
        "{}",
        out.stdout_text()
    );
    assert_eq!(str_of(&out.json(), "result"), "CantConnect");

    // Without --report the reason goes to stderr; curl's code 7.
    let out = fetch(&[&format!("http://127.0.0.1:{port}/")]);
    assert_eq!(out.code, Some(7));
    assert!(out.stderr.contains("CantConnect"), "{}", out.stderr);
}

#[test]
fn fetch_limit() {
    let Some(nginx) = nginx() else { return };
    let out = fetch(&["--report", "--limit", "100", &nginx.url("/1m.bin")]);
    assert_eq!(out.code, Some(63));
    assert_eq!(str_of(&out.json(), "result"), "BodySizeLimitExceeded");
    // Counted after decoding: a gzip body without Content-Length stops too.
    let out = fetch(&[
        "--report",
        "--compressed",
        "--limit",
        "100",
        &nginx.url("/gzip/1m.bin"),
    ]);
    assert_eq!(out.code, Some(63));
    assert_eq!(str_of(&out.json(), "result"), "BodySizeLimitExceeded");
}

#[test]
fn fetch_redirects() {
    let Some(nginx) = nginx() else { return };
    // As curl: without -L the 3xx is the response.
    let out = fetch(&["--report", &nginx.url("/redirect/chain/3")]);
    assert_eq!(out.code, Some(0), "stderr: {}", out.stderr);
    let v = out.json();
    assert_eq!(v["redirects"], 0);
    assert_eq!(v["response_code"], 302);
    let out = fetch(&["--report", "-L", &nginx.url("/redirect/chain/3")]);
    assert_eq!(out.code, Some(0), "stderr: {}", out.stderr);
    let v = out.json();
    assert_eq!(v["redirects"], 3);
    assert_eq!(str_of(&v, "url"), nginx.url("/hello.txt"));
    assert_eq!(str_of(&v, "body_sha256"), sha256_hex(b"Hello, world!"));

    let out = fetch(&[
        "--report",
        "-L",
        "--max-redirects",
        "1",
        &nginx.url("/redirect/chain/3"),
    ]);
    assert_eq!(out.code, Some(47));
    assert_eq!(str_of(&out.json(), "result"), "RedirectLimitReached");
}

#[test]
fn fetch_post_to_httpbin() {
    let Some(httpbin) = Httpbin::try_shared() else {
        return;
    };
    let url = httpbin.url("/post");
    // -d implies POST with a form content type, as in curl.
    let out = fetch(&["-d", "game=pong&score=42", &url]);
    assert_eq!(out.code, Some(0), "stderr: {}", out.stderr);
    let v: Value = serde_json::from_slice(&out.stdout).expect("httpbin JSON");
    assert_eq!(v["form"]["game"], "pong");
    assert_eq!(v["form"]["score"], "42");

    // Raw data with its own content type; an extra header arrives too.
    let out = fetch(&[
        "-d",
        "raw payload",
        "-H",
        "Content-Type: text/plain",
        "-H",
        "X-Test: yes",
        &url,
    ]);
    assert_eq!(out.code, Some(0), "stderr: {}", out.stderr);
    let v: Value = serde_json::from_slice(&out.stdout).expect("httpbin JSON");
    assert_eq!(v["data"], "raw payload");
    assert_eq!(v["headers"]["X-Test"], "yes");

    // --data-file and an explicit method.
    let dir = TempDir::new("fetch-data").unwrap();
    let body = dir.path().join("body.json");
    std::fs::write(&body, br#"{"a":1}"#).unwrap();
    let out = fetch(&[
        "-X",
        "PUT",
        "--data-file",
        body.to_str().unwrap(),
        "-H",
        "Content-Type: application/json",
        &httpbin.url("/put"),
    ]);
    assert_eq!(out.code, Some(0), "stderr: {}", out.stderr);
    let v: Value = serde_json::from_slice(&out.stdout).expect("httpbin JSON");
    assert_eq!(v["json"]["a"], 1);
}

#[test]
fn fetch_tls_cacert_and_insecure() {
    let Some(nginx) = nginx() else { return };
    let dir = TempDir::new("fetch-ca").unwrap();
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, &nginx.ca_pem).unwrap();
    let url = nginx.url_tls("/hello.txt");

    let out = fetch(&["--report", "--cacert", ca.to_str().unwrap(), &url]);
    assert_eq!(out.code, Some(0), "stderr: {}", out.stderr);
    let v = out.json();
    assert_eq!(str_of(&v, "result"), "Success");
    assert_eq!(str_of(&v, "body_sha256"), sha256_hex(b"Hello, world!"));

    // curl's 60: the certificate was rejected.
    let out = fetch(&["--report", &url]);
    assert_eq!(out.code, Some(60));
    assert_eq!(str_of(&out.json(), "result"), "TlsHandshakeError");

    let out = fetch(&["--report", "--insecure", &url]);
    assert_eq!(out.code, Some(0), "stderr: {}", out.stderr);
    assert_eq!(str_of(&out.json(), "result"), "Success");
}

#[test]
fn fetch_through_a_proxy() {
    let Some(nginx) = nginx() else { return };
    let proxy = Proxy::start(ProxyOptions::default());
    let out = fetch(&[
        "--report",
        "--proxy",
        &proxy.url(),
        &nginx.url("/hello.txt"),
    ]);
    assert_eq!(out.code, Some(0), "stderr: {}", out.stderr);
    assert_eq!(
        str_of(&out.json(), "body_sha256"),
        sha256_hex(b"Hello, world!")
    );

    let dir = TempDir::new("fetch-proxy").unwrap();
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, &nginx.ca_pem).unwrap();
    let out = fetch(&[
        "--report",
        "--proxy",
        &proxy.url(),
        "--cacert",
        ca.to_str().unwrap(),
        &nginx.url_tls("/hello.txt"),
    ]);
    assert_eq!(out.code, Some(0), "stderr: {}", out.stderr);
    assert_eq!(str_of(&out.json(), "result"), "Success");
    let lines = proxy.request_lines();
    assert!(
        lines.iter().any(|l| l.starts_with("GET http://")),
        "{lines:?}"
    );
    assert!(lines.iter().any(|l| l.starts_with("CONNECT ")), "{lines:?}");
}

#[test]
fn fetch_proxy_url_credentials_go_to_the_proxy() {
    // A scripted server as the proxy records the exact request; the origin
    // (no script) would count any connection.
    let origin = ScriptServer::start(vec![]);
    let url = format!("{}/x", origin.base_url());
    let scripted_proxy = || {
        ScriptServer::start(vec![vec![
            Step::ReadRequest,
            Step::write(response("200 OK", &[], "via proxy")),
        ]])
    };
    let request = |srv: &ScriptServer| {
        let raw = srv.requests();
        assert_eq!(raw.len(), 1, "{raw:?}");
        String::from_utf8_lossy(&raw[0]).into_owned()
    };
    // -x's user:password (percent-decoded) become Proxy-Authorization.
    let srv = scripted_proxy();
    let out = fetch(&[
        "-x",
        &format!("http://user:p%40ss%3Aw@127.0.0.1:{}", srv.port()),
        &url,
    ]);
    assert_eq!(out.code, Some(0), "stderr: {}", out.stderr);
    assert_eq!(out.stdout, b"via proxy");
    let head = request(&srv);
    let lines: Vec<&str> = head.split("\r\n").collect();
    assert_eq!(lines[0], format!("GET {url} HTTP/1.1"), "{head}");
    assert!(
        lines.contains(&"Proxy-Authorization: Basic dXNlcjpwQHNzOnc="),
        "{head}"
    );
    assert_eq!(head_field(&head, "authorization"), None, "{head}");
    // -U wins over the URL's (curl's rule).
    let srv = scripted_proxy();
    let out = fetch(&[
        "-x",
        &format!("http://user:pass@127.0.0.1:{}", srv.port()),
        "-U",
        "other:secret",
        &url,
    ]);
    assert_eq!(out.code, Some(0), "stderr: {}", out.stderr);
    let head = request(&srv);
    assert!(
        head.split("\r\n")
            .any(|l| l == "Proxy-Authorization: Basic b3RoZXI6c2VjcmV0"),
        "{head}"
    );
    assert_eq!(head.matches("Proxy-Authorization").count(), 1, "{head}");
    assert_eq!(origin.connections_accepted(), 0);

    // The test proxy requiring them, for an https origin (a CONNECT
    // tunnel): the proxy gets them on the CONNECT, the origin never.
    let ca = TestCa::shared();
    let origin = TlsScriptServer::start(
        ca.server_config(),
        vec![vec![
            Step::ReadRequest,
            Step::write(response("200 OK", &[], "secure")),
        ]],
    );
    let proxy = Proxy::start(ProxyOptions {
        require_auth: Some("Basic dXNlcjpwQHNzOnc=".into()),
        ..ProxyOptions::default()
    });
    let dir = TempDir::new("fetch-proxy-auth").unwrap();
    let pem = dir.path().join("ca.pem");
    std::fs::write(&pem, &ca.ca_pem).unwrap();
    let out = fetch(&[
        "--cacert",
        pem.to_str().unwrap(),
        "-x",
        &format!("http://user:p%40ss%3Aw@127.0.0.1:{}", proxy.port()),
        &format!("{}/y", origin.base_url()),
    ]);
    assert_eq!(out.code, Some(0), "stderr: {}", out.stderr);
    assert_eq!(out.stdout, b"secure");
    assert_eq!(
        proxy.request_lines(),
        [format!("CONNECT 127.0.0.1:{} HTTP/1.1", origin.port())]
    );
    let raw = origin.requests();
    assert_eq!(raw.len(), 1, "{raw:?}");
    let head = String::from_utf8_lossy(&raw[0]).into_owned();
    assert!(head.starts_with("GET /y HTTP/1.1\r\n"), "{head}");
    assert_eq!(head_field(&head, "proxy-authorization"), None, "{head}");
    assert_eq!(head_field(&head, "authorization"), None, "{head}");
}

#[test]
fn fetch_usage_errors_exit_2() {
    let out = fetch(&[]);
    assert_eq!(out.code, Some(2));
    assert!(out.stderr.contains("usage: fetch"), "{}", out.stderr);
    let out = fetch(&["--bogus", "http://127.0.0.1/"]);
    assert_eq!(out.code, Some(2));
    assert!(out.stderr.contains("usage: fetch"), "{}", out.stderr);
    let out = fetch(&["--limit", "lots", "http://127.0.0.1/"]);
    assert_eq!(out.code, Some(2));
    // curl's 1 (unsupported protocol) and 3 (malformed URL).
    let out = fetch(&["ftp://127.0.0.1/"]);
    assert_eq!(out.code, Some(1), "{}", out.stderr);
    let out = fetch(&["http://[x"]);
    assert_eq!(out.code, Some(3), "{}", out.stderr);
    let out = fetch(&["--help"]);
    assert_eq!(out.code, Some(0));
    assert!(out.stdout_text().contains("usage: fetch"));
}

/// Writes `n` files `<tag>-NN.bin` of different sizes into nginx's docroot
/// and returns (name, URL path, contents): plain, gzip and chunked
/// locations in turn.
fn parallel_files(nginx: &Nginx, tag: &str, n: usize) -> Vec<(String, String, Vec<u8>)> {
    let pattern = pseudo_random_bytes(4 << 20);
    (0..n)
        .map(|i| {
            let name = format!("{tag}-{i:02}.bin");
            // From 13 bytes to about 2.9 MiB.
            let len = [13, 1024, 100_000, 1 << 20, 3_000_000][i % 5] + i;
            let start = i * 7919;
            let body = pattern[start..start + len].to_vec();
            std::fs::write(nginx.docroot.join(&name), &body).unwrap();
            let location = ["", "gzip/", "chunked/"][i % 3];
            (name.clone(), format!("/{location}{name}"), body)
        })
        .collect()
}

#[test]
fn fetch_parallel_output_dir() {
    let Some(nginx) = nginx() else { return };
    let files = parallel_files(nginx, "pz", 20);
    let dir = TempDir::new("fetch-z").unwrap();
    let out_dir = dir.path().join("out");
    let mut args = vec![
        "-Z".to_string(),
        "--parallel-max".to_string(),
        "4".to_string(),
        "--report".to_string(),
        "--output-dir".to_string(),
        out_dir.to_str().unwrap().to_string(),
    ];
    args.extend(files.iter().map(|(_, path, _)| nginx.url(path)));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = fetch(&args);
    assert_eq!(out.code, Some(0), "stderr: {}", out.stderr);

    // One JSON line per transfer, as each completed.
    let text = out.stdout_text();
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    assert_eq!(lines.len(), files.len(), "{text}");
    for (name, path, body) in &files {
        let url = nginx.url(path);
        let v = lines
            .iter()
            .find(|v| v["request_url"] == url.as_str())
            .unwrap_or_else(|| panic!("no line for {url}:\n{text}"));
        assert_eq!(str_of(v, "result"), "Success", "{v}");
        assert_eq!(v["response_code"], 200, "{v}");
        assert_eq!(v["body_bytes"], body.len(), "{v}");
        assert_eq!(str_of(v, "body_sha256"), sha256_hex(body), "{v}");
        let saved = out_dir.join(name);
        assert_eq!(str_of(v, "file"), saved.to_str().unwrap());
        let got = std::fs::read(&saved).unwrap_or_else(|e| panic!("{}: {e}", saved.display()));
        assert!(got == *body, "{name} differs from the served file");
    }

    // At most --parallel-max connections carried the 20 requests.
    let log = nginx.access_log();
    let conns: std::collections::HashSet<&str> = log
        .lines()
        .filter(|l| l.contains("/pz-"))
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    assert!(
        !conns.is_empty() && conns.len() <= 4,
        "{} connections:\n{log}",
        conns.len()
    );
}

#[test]
fn fetch_parallel_and_sequential_to_stdout() {
    let Some(nginx) = nginx() else { return };
    let hello = nginx.url("/hello.txt");
    let one_k = nginx.url("/1k.bin");
    let mut expected = b"Hello, world!".to_vec();
    expected.extend_from_slice(&pseudo_random_bytes(1024));
    expected.extend_from_slice(b"Hello, world!");

    // Without -Z one after the other, in order, as curl.
    let out = fetch(&[&hello, &one_k, &hello]);
    assert_eq!(out.code, Some(0), "stderr: {}", out.stderr);
    assert!(out.stdout == expected, "bodies in order on stdout");
    let out = fetch(&["--report", &hello, &one_k]);
    assert_eq!(out.code, Some(0), "stderr: {}", out.stderr);
    let lines: Vec<Value> = out
        .stdout_text()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0]["request_url"], hello.as_str());
    assert_eq!(lines[1]["request_url"], one_k.as_str());
    assert_eq!(
        lines[1]["body_sha256"],
        sha256_hex(&pseudo_random_bytes(1024))
    );
    assert!(lines[0]["file"].is_null());

    // With -Z every body arrives whole, in completion order.
    let out = fetch(&["-Z", &hello, &hello, &hello]);
    assert_eq!(out.code, Some(0), "stderr: {}", out.stderr);
    assert_eq!(out.stdout, b"Hello, world!".repeat(3));
}

#[test]
fn fetch_parallel_failure_and_usage() {
    let Some(nginx) = nginx() else { return };
    let files = parallel_files(nginx, "pf", 3);
    let dir = TempDir::new("fetch-zf").unwrap();
    let port = free_port().unwrap();
    let refused = format!("http://127.0.0.1:{port}/nothing.bin");
    let mut urls: Vec<String> = files.iter().map(|(_, p, _)| nginx.url(p)).collect();
    urls.insert(1, refused.clone());
    let mut args = vec!["--parallel", "--report", "--output-dir"];
    args.push(dir.path().to_str().unwrap());
    args.extend(urls.iter().map(String::as_str));
    let out = fetch(&args);
    // One failed: its code (7); the others are saved all the same.
    assert_eq!(out.code, Some(7), "stderr: {}", out.stderr);
    let text = out.stdout_text();
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 4, "{text}");
    let failed = lines
        .iter()
        .find(|v| v["request_url"] == refused.as_str())
        .expect("a line for the refused URL");
    assert_eq!(str_of(failed, "result"), "CantConnect");
    for (name, _, body) in &files {
        assert!(
            std::fs::read(dir.path().join(name)).unwrap() == *body,
            "{name}"
        );
    }

    // Usage errors: two URLs saved under one name, a URL without a file
    // name, --parallel-max 0.
    let hello = nginx.url("/hello.txt");
    let out = fetch(&[
        "-Z",
        "--output-dir",
        dir.path().to_str().unwrap(),
        &hello,
        &nginx.url("/gzip/hello.txt"),
    ]);
    assert_eq!(out.code, Some(2), "{}", out.stderr);
    let out = fetch(&["-O", &nginx.url("/")]);
    assert_eq!(out.code, Some(2), "{}", out.stderr);
    let out = fetch(&["-Z", "--parallel-max", "0", &hello]);
    assert_eq!(out.code, Some(2), "{}", out.stderr);
}

/// httpbin's echo of a fetch run that printed it, after checking the run
/// exited 0.
fn echo(out: &Output) -> Value {
    assert_eq!(out.code, Some(0), "stderr: {}", out.stderr);
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("not httpbin's JSON ({e}): {}", out.stdout_text()))
}

#[test]
fn fetch_get_puts_data_urlencode_in_the_query() {
    let Some(httpbin) = Httpbin::try_shared() else {
        return;
    };
    let dir = TempDir::new("fetch-get").unwrap();
    let named = dir.path().join("named.txt");
    std::fs::write(&named, "from a file & more").unwrap();
    let whole = dir.path().join("whole.txt");
    std::fs::write(&whole, "k=v w").unwrap();
    // curl's five forms, and -d as it is, in the order given.
    let out = fetch(&[
        "-G",
        "--data-urlencode",
        "q=two words&more",
        "--data-urlencode",
        "=bare value",
        "-d",
        "plain=1",
        "--data-urlencode",
        &format!("n@{}", named.display()),
        "--data-urlencode",
        &format!("@{}", whole.display()),
        "--data-urlencode",
        "just text",
        &httpbin.url("/get"),
    ]);
    let v = echo(&out);
    let args = &v["args"];
    assert_eq!(args["q"], "two words&more", "{v}");
    assert_eq!(args["bare value"], "", "{v}");
    assert_eq!(args["plain"], "1", "{v}");
    assert_eq!(args["n"], "from a file & more", "{v}");
    assert_eq!(args["k=v w"], "", "{v}");
    assert_eq!(args["just text"], "", "{v}");
    let url = str_of(&v, "url");
    assert!(
        url.ends_with(
            "/get?q=two+words%26more&bare+value&plain=1&n=from+a+file+%26+more&k%3Dv+w&just+text"
        ),
        "{url}"
    );

    // Without -G the same data is a form body (POST).
    let out = fetch(&[
        "--data-urlencode",
        "q=two words&more",
        "-d",
        "plain=1",
        &httpbin.url("/post"),
    ]);
    let v = echo(&out);
    assert_eq!(v["form"]["q"], "two words&more", "{v}");
    assert_eq!(v["form"]["plain"], "1", "{v}");
    assert_eq!(
        v["headers"]["Content-Type"], "application/x-www-form-urlencoded",
        "{v}"
    );
}

#[test]
fn fetch_data_from_a_file() {
    let Some(httpbin) = Httpbin::try_shared() else {
        return;
    };
    let dir = TempDir::new("fetch-data-at").unwrap();
    // -d @file drops CR and LF, as curl does.
    let form = dir.path().join("form.txt");
    std::fs::write(&form, "game=pong&\nscore=42\r\n").unwrap();
    let v = echo(&fetch(&[
        "-d",
        &format!("@{}", form.display()),
        &httpbin.url("/post"),
    ]));
    assert_eq!(v["form"]["game"], "pong", "{v}");
    assert_eq!(v["form"]["score"], "42", "{v}");

    // --data-binary @file keeps every byte.
    let raw = dir.path().join("raw.txt");
    std::fs::write(&raw, "line one\r\nline two\n").unwrap();
    let v = echo(&fetch(&[
        "--data-binary",
        &format!("@{}", raw.display()),
        "-H",
        "Content-Type: text/plain",
        &httpbin.url("/post"),
    ]));
    assert_eq!(v["data"], "line one\r\nline two\n", "{v}");

    // --data-raw takes '@' as it is; a missing -d file is a usage error.
    let v = echo(&fetch(&[
        "--data-raw",
        "@not-a-file",
        &httpbin.url("/post"),
    ]));
    assert_eq!(v["form"]["@not-a-file"], "", "{v}");
    let out = fetch(&["-d", "@/nonexistent/fetch-data", &httpbin.url("/post")]);
    assert_eq!(out.code, Some(26), "{}", out.stderr);
    assert!(
        out.stderr.contains("/nonexistent/fetch-data"),
        "{}",
        out.stderr
    );
}

#[test]
fn fetch_json_body() {
    let Some(httpbin) = Httpbin::try_shared() else {
        return;
    };
    let body = r#"{"a":1,"b":[true,null],"c":"two words"}"#;
    let v = echo(&fetch(&["--json", body, &httpbin.url("/post")]));
    let expected: Value = serde_json::from_str(body).unwrap();
    assert_eq!(v["json"], expected, "{v}");
    assert_eq!(v["data"], body, "sent as it is: {v}");
    assert_eq!(v["headers"]["Content-Type"], "application/json", "{v}");
    assert_eq!(v["headers"]["Accept"], "application/json", "{v}");

    // From a file, with a PUT and a Content-Type of the caller's.
    let dir = TempDir::new("fetch-json-body").unwrap();
    let file = dir.path().join("body.json");
    std::fs::write(&file, "[1, 2, 3]\n").unwrap();
    let v = echo(&fetch(&[
        "-X",
        "PUT",
        "-H",
        "Content-Type: application/vnd.test+json",
        "--json",
        &format!("@{}", file.display()),
        &httpbin.url("/put"),
    ]));
    assert_eq!(v["data"], "[1, 2, 3]\n", "{v}");
    assert_eq!(
        v["headers"]["Content-Type"], "application/vnd.test+json",
        "{v}"
    );
}

#[test]
fn fetch_multipart_form() {
    let Some(httpbin) = Httpbin::try_shared() else {
        return;
    };
    let dir = TempDir::new("fetch-form").unwrap();
    let notes = dir.path().join("notes.txt");
    let content: String = (0..50_000)
        .map(|i| char::from(b'a' + (i % 26) as u8))
        .collect();
    std::fs::write(&notes, &content).unwrap();
    let binary = dir.path().join("data.bin");
    std::fs::write(&binary, [0xff, 0xfe, 0x00, 0x01]).unwrap();
    let small = dir.path().join("small.txt");
    std::fs::write(&small, "text from a file").unwrap();
    let out = fetch(&[
        "-F",
        "title=hello \"quoted\" world",
        "-F",
        &format!("upload=@{}", notes.display()),
        "-F",
        &format!("typed=@{};type=application/x-fetch-test", binary.display()),
        "-F",
        &format!("renamed=@{};filename=other.txt", notes.display()),
        "-F",
        &format!("note=<{}", small.display()),
        "-F",
        "semi=a;b",
        &httpbin.url("/post"),
    ]);
    let v = echo(&out);
    assert_eq!(v["form"]["title"], "hello \"quoted\" world", "{v}");
    assert_eq!(v["form"]["note"], "text from a file", "{v}");
    assert_eq!(v["form"]["semi"], "a;b", "{v}");
    assert!(v["files"]["upload"] == content.as_str(), "upload differs");
    assert!(v["files"]["renamed"] == content.as_str(), "renamed differs");
    // Binary: httpbin answers a data URL with the part's type.
    assert_eq!(
        v["files"]["typed"], "data:application/x-fetch-test;base64,//4AAQ==",
        "{}",
        v["files"]["typed"]
    );
    let ct = str_of(&v["headers"], "Content-Type");
    assert!(ct.starts_with("multipart/form-data; boundary="), "{ct}");

    // A part without '=', a file that is not there: usage errors.
    let out = fetch(&["-F", "no-equals", &httpbin.url("/post")]);
    assert_eq!(out.code, Some(2), "{}", out.stderr);
    assert!(out.stderr.contains("usage: fetch"), "{}", out.stderr);
    let out = fetch(&["-F", "f=@/nonexistent/fetch-part", &httpbin.url("/post")]);
    assert_eq!(out.code, Some(26), "{}", out.stderr);
}

#[test]
fn fetch_basic_and_digest_auth() {
    let Some(httpbin) = Httpbin::try_shared() else {
        return;
    };
    let v = echo(&fetch(&["-u", "u:p", &httpbin.url("/basic-auth/u/p")]));
    assert_eq!(v["authenticated"], true, "{v}");
    assert_eq!(v["user"], "u", "{v}");
    // --basic is the default; a colon in the password stays in it.
    let v = echo(&fetch(&[
        "--basic",
        "-u",
        "u:p:q",
        &httpbin.url("/basic-auth/u/p:q"),
    ]));
    assert_eq!(v["authenticated"], true, "{v}");

    let out = fetch(&[
        "--report",
        "--digest",
        "-u",
        "u:p",
        &httpbin.url("/digest-auth/auth/u/p/MD5"),
    ]);
    assert_eq!(out.code, Some(0), "stderr: {}", out.stderr);
    let v = out.json();
    assert_eq!(v["response_code"], 200, "{v}");
    let v = echo(&fetch(&[
        "--digest",
        "-u",
        "u:p",
        &httpbin.url("/digest-auth/auth/u/p/MD5"),
    ]));
    assert_eq!(v["authenticated"], true, "{v}");

    // A wrong password: the 401 is the response; with -f, exit 22.
    let out = fetch(&["--report", "-u", "u:wrong", &httpbin.url("/basic-auth/u/p")]);
    assert_eq!(out.code, Some(0), "stderr: {}", out.stderr);
    assert_eq!(out.json()["response_code"], 401);
    let out = fetch(&[
        "-f",
        "--digest",
        "-u",
        "u:wrong",
        &httpbin.url("/digest-auth/auth/u/p/MD5"),
    ]);
    assert_eq!(out.code, Some(22), "stderr: {}", out.stderr);

    // -u without a colon is a usage error (fetch does not prompt).
    let out = fetch(&["-u", "just-a-user", &httpbin.url("/basic-auth/u/p")]);
    assert_eq!(out.code, Some(2), "{}", out.stderr);
    assert!(out.stderr.contains("USER:PASSWORD"), "{}", out.stderr);
}

/// `url` with `userinfo@` before its host.
fn with_userinfo(url: &str, userinfo: &str) -> String {
    url.replacen("://", &format!("://{userinfo}@"), 1)
}

/// The value of the `name` field of a request head (case-insensitive name),
/// or `None`.
fn head_field(head: &str, name: &str) -> Option<String> {
    head.split("\r\n").skip(1).find_map(|line| {
        let (n, v) = line.split_once(':')?;
        n.eq_ignore_ascii_case(name).then(|| v.trim().to_string())
    })
}

#[test]
fn fetch_digest_takes_the_url_credentials() {
    let Some(httpbin) = Httpbin::try_shared() else {
        return;
    };
    // Through the test proxy, which records every request head it forwards.
    let proxy = Proxy::start(ProxyOptions::default());
    let url = httpbin.url("/digest-auth/auth/u/p@ss");
    // curl's rule: the URL's userinfo (percent-decoded) as if given with -u.
    let out = fetch(&[
        "--report",
        "--digest",
        "-x",
        &proxy.url(),
        &with_userinfo(&url, "u:p%40ss"),
    ]);
    assert_eq!(out.code, Some(0), "stderr: {}", out.stderr);
    let v = out.json();
    assert_eq!(v["response_code"], 200, "{v}");
    assert_eq!(str_of(&v, "request_url"), url, "{v}");
    let heads = proxy.request_heads();
    assert_eq!(heads.len(), 2, "{heads:#?}");
    let target = format!("GET {url} HTTP/1.1");
    // The first request carries no credentials (no Basic from the URL)...
    assert_eq!(heads[0].split("\r\n").next(), Some(target.as_str()));
    assert_eq!(head_field(&heads[0], "authorization"), None, "{heads:#?}");
    // ...the second answers the challenge.
    assert_eq!(heads[1].split("\r\n").next(), Some(target.as_str()));
    let answer = head_field(&heads[1], "authorization").unwrap_or_default();
    assert!(
        answer.starts_with("Digest username=\"u\", realm=\"me@kennethreitz.com\", "),
        "{answer}"
    );

    // -u wins over the URL's userinfo, with --digest and with Basic.
    let proxy = Proxy::start(ProxyOptions::default());
    let out = fetch(&[
        "--report",
        "--digest",
        "-u",
        "u:p@ss",
        "-x",
        &proxy.url(),
        &with_userinfo(&url, "x:wrong"),
    ]);
    assert_eq!(out.code, Some(0), "stderr: {}", out.stderr);
    assert_eq!(out.json()["response_code"], 200);
    let heads = proxy.request_heads();
    assert_eq!(heads.len(), 2, "{heads:#?}");
    assert_eq!(head_field(&heads[0], "authorization"), None, "{heads:#?}");
    let v = echo(&fetch(&[
        "-u",
        "u:p",
        &with_userinfo(&httpbin.url("/basic-auth/u/p"), "x:wrong"),
    ]));
    assert_eq!(
        (&v["authenticated"], &v["user"]),
        (&true.into(), &"u".into()),
        "{v}"
    );
    // Without --digest the URL's userinfo goes as Basic (the library's rule).
    let v = echo(&fetch(&[&with_userinfo(
        &httpbin.url("/basic-auth/u/p@ss"),
        "u:p%40ss",
    )]));
    assert_eq!(v["authenticated"], true, "{v}");
}

#[test]
fn fetch_cookie_jar_round_trip() {
    let Some(httpbin) = Httpbin::try_shared() else {
        return;
    };
    let dir = TempDir::new("fetch-cookies").unwrap();
    let jar = dir.path().join("jar.txt");
    // /cookies/set answers a 302 with Set-Cookie; the jar carries them to
    // /cookies, which echoes them, and -c writes them (Netscape format).
    let v = echo(&fetch(&[
        "-L",
        "-c",
        jar.to_str().unwrap(),
        &httpbin.url("/cookies/set?a=1&b=two"),
    ]));
    assert_eq!(
        v["cookies"],
        serde_json::json!({"a": "1", "b": "two"}),
        "{v}"
    );
    let text = std::fs::read_to_string(&jar).expect("-c wrote the jar");
    assert!(text.starts_with("# Netscape HTTP Cookie File"), "{text}");
    let lines: Vec<Vec<&str>> = text
        .lines()
        .filter(|l| !l.is_empty() && (!l.starts_with('#') || l.starts_with("#HttpOnly_")))
        .map(|l| l.split('\t').collect())
        .collect();
    assert_eq!(lines.len(), 2, "{text}");
    assert!(lines.iter().all(|f| f.len() == 7), "{text}");
    assert!(
        lines.iter().any(|f| f[5] == "a" && f[6] == "1")
            && lines.iter().any(|f| f[5] == "b" && f[6] == "two"),
        "{text}"
    );

    // -b FILE reads it again; -b and -c share the jar, so a cookie the
    // server deletes is gone from the file written.
    let v = echo(&fetch(&[
        "-b",
        jar.to_str().unwrap(),
        &httpbin.url("/cookies"),
    ]));
    assert_eq!(
        v["cookies"],
        serde_json::json!({"a": "1", "b": "two"}),
        "{v}"
    );
    let jar2 = dir.path().join("jar2.txt");
    let v = echo(&fetch(&[
        "-b",
        jar.to_str().unwrap(),
        "-c",
        jar2.to_str().unwrap(),
        "-L",
        &httpbin.url("/cookies/delete?a"),
    ]));
    assert_eq!(v["cookies"], serde_json::json!({"b": "two"}), "{v}");
    let text2 = std::fs::read_to_string(&jar2).unwrap();
    assert!(text2.contains("\tb\ttwo"), "{text2}");
    assert!(!text2.contains("\ta\t1"), "{text2}");

    // A string with '=' is sent as it is.
    let v = echo(&fetch(&["-b", "x=1; y=2", &httpbin.url("/cookies")]));
    assert_eq!(v["cookies"], serde_json::json!({"x": "1", "y": "2"}), "{v}");
    // A -b file that is not there starts an empty jar, as with curl.
    let missing = dir.path().join("missing.txt");
    let v = echo(&fetch(&[
        "-b",
        missing.to_str().unwrap(),
        &httpbin.url("/cookies"),
    ]));
    assert_eq!(v["cookies"], serde_json::json!({}), "{v}");
    // A file that is not a jar is a usage error.
    let bad = dir.path().join("bad.txt");
    std::fs::write(&bad, "plain words\n").unwrap();
    let out = fetch(&["-b", bad.to_str().unwrap(), &httpbin.url("/cookies")]);
    assert_eq!(out.code, Some(2), "{}", out.stderr);

    // The --json line lists the final response's Set-Cookie cookies.
    let out = fetch(&["--report", &httpbin.url("/cookies/set?k=v")]);
    assert_eq!(out.code, Some(0), "stderr: {}", out.stderr);
    let v = out.json();
    assert_eq!(v["response_code"], 302, "{v}");
    assert_eq!(v["redirects"], 0, "{v}");
    assert_eq!(v["cookies"], serde_json::json!([["k", "v"]]), "{v}");
}

#[test]
fn fetch_fail_exits_22_without_the_body() {
    let Some(nginx) = nginx() else { return };
    let url = nginx.url("/status/404");
    let out = fetch(&["-f", &url]);
    assert_eq!(out.code, Some(22), "stderr: {}", out.stderr);
    assert!(out.stdout.is_empty(), "{}", out.stdout_text());
    assert!(
        out.stderr.contains("(22)") && out.stderr.contains("404"),
        "{}",
        out.stderr
    );
    // -s hides the message; -sS shows it again.
    let out = fetch(&["-fs", &url]);
    assert_eq!(out.code, Some(22));
    assert!(out.stderr.is_empty(), "{}", out.stderr);
    let out = fetch(&["-fsS", &url]);
    assert_eq!(out.code, Some(22));
    assert!(out.stderr.contains("(22)"), "{}", out.stderr);
    // The file it would have gone to is not written.
    let dir = TempDir::new("fetch-fail").unwrap();
    let file = dir.path().join("out.html");
    let out = fetch(&["-f", "-o", file.to_str().unwrap(), &url]);
    assert_eq!(out.code, Some(22), "stderr: {}", out.stderr);
    assert!(!file.exists(), "-f left {}", file.display());
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        0,
        "no temporary left"
    );
    // --json still reports it.
    let out = fetch(&["-f", "--report", &url]);
    assert_eq!(out.code, Some(22));
    assert_eq!(out.json()["response_code"], 404);
    // A success is untouched.
    let out = fetch(&["-f", "-o", file.to_str().unwrap(), &nginx.url("/hello.txt")]);
    assert_eq!(out.code, Some(0), "stderr: {}", out.stderr);
    assert_eq!(std::fs::read(&file).unwrap(), b"Hello, world!");
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    // Without -f a 404 is a response like any other.
    let out = fetch(&[&url]);
    assert_eq!(out.code, Some(0), "stderr: {}", out.stderr);
    assert!(!out.stdout.is_empty());

    // With -Z too: the code of the first transfer (in command-line order)
    // that failed.
    let hello = nginx.url("/hello.txt");
    let out = fetch(&["-Z", "-f", &hello, &url, &hello]);
    assert_eq!(out.code, Some(22), "stderr: {}", out.stderr);
    assert_eq!(out.stdout, b"Hello, world!".repeat(2));
    let refused = format!("http://127.0.0.1:{}/", free_port().unwrap());
    let out = fetch(&["-Z", "-f", &url, &refused]);
    assert_eq!(out.code, Some(22), "stderr: {}", out.stderr);
    let out = fetch(&["-Z", "-f", &refused, &url]);
    assert_eq!(out.code, Some(7), "stderr: {}", out.stderr);
}

#[test]
fn fetch_head_and_include() {
    let Some(nginx) = nginx() else { return };
    let out = fetch(&["-I", &nginx.url("/hello.txt")]);
    assert_eq!(out.code, Some(0), "stderr: {}", out.stderr);
    let text = out.stdout_text();
    assert!(text.starts_with("HTTP/1.1 200 OK\r\n"), "{text}");
    assert!(
        text.lines()
            .any(|l| l.eq_ignore_ascii_case("content-length: 13\r")
                || l.eq_ignore_ascii_case("content-length: 13")),
        "{text}"
    );
    assert!(text.ends_with("\r\n\r\n"), "{text:?}");
    assert!(!text.contains("Hello"), "HEAD has no body: {text}");

    let out = fetch(&["-i", &nginx.url("/hello.txt")]);
    assert_eq!(out.code, Some(0), "stderr: {}", out.stderr);
    let text = out.stdout_text();
    assert!(text.starts_with("HTTP/1.1 200 OK\r\n"), "{text}");
    assert!(text.ends_with("\r\n\r\nHello, world!"), "{text:?}");

    let out = fetch(&["-I", &nginx.url("/status/404")]);
    assert!(
        out.stdout_text().starts_with("HTTP/1.1 404 Not Found\r\n"),
        "{}",
        out.stdout_text()
    );
    // -I with a body is a usage error.
    let out = fetch(&["-I", "-d", "x=1", &nginx.url("/hello.txt")]);
    assert_eq!(out.code, Some(2), "{}", out.stderr);
}

#[test]
fn fetch_retry_counts_attempts() {
    let srv = ScriptServer::start(vec![vec![
        Step::ReadRequest,
        Step::write(response(
            "503 Service Unavailable",
            &[("Retry-After", "0")],
            "x",
        )),
        Step::ReadRequest,
        Step::write(response("200 OK", &[], "ok")),
    ]]);
    let url = format!("{}/r", srv.base_url());
    let out = fetch(&["--report", "--retry", "2", "-m", "30", &url]);
    assert_eq!(out.code, Some(0), "stderr: {}", out.stderr);
    let v = out.json();
    assert_eq!(v["response_code"], 200, "{v}");
    assert_eq!(v["attempts"], 2, "{v}");
    assert_eq!(str_of(&v, "body_sha256"), sha256_hex(b"ok"));
    assert_eq!(srv.requests().len(), 2);

    // Without --retry the 503 is the response, in one attempt.
    let srv = ScriptServer::start(vec![vec![
        Step::ReadRequest,
        Step::write(response(
            "503 Service Unavailable",
            &[("Retry-After", "0")],
            "x",
        )),
    ]]);
    let out = fetch(&["--report", &format!("{}/r", srv.base_url())]);
    assert_eq!(out.code, Some(0), "stderr: {}", out.stderr);
    let v = out.json();
    assert_eq!(
        (v["response_code"].as_u64(), v["attempts"].as_u64()),
        (Some(503), Some(1)),
        "{v}"
    );
    assert_eq!(v["pages"], 1, "{v}");

    // --retry-max-time is also the longest wait: a Retry-After beyond it
    // makes the 503 the result, tried once. -v tells the policy.
    let srv = ScriptServer::start(vec![vec![
        Step::ReadRequest,
        Step::write(response(
            "503 Service Unavailable",
            &[("Retry-After", "30")],
            "x",
        )),
    ]]);
    let out = fetch(&[
        "--report",
        "-v",
        "--retry",
        "3",
        "--retry-delay",
        "0.25",
        "--retry-max-time",
        "2",
        &format!("{}/r", srv.base_url()),
    ]);
    assert_eq!(out.code, Some(0), "stderr: {}", out.stderr);
    let v = out.json();
    assert_eq!(
        (v["response_code"].as_u64(), v["attempts"].as_u64()),
        (Some(503), Some(1)),
        "{v}"
    );
    assert!(
        out.stderr
            .contains("* retry 3 times, first wait 250ms, longest 2s"),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("* deadline 2s"), "{}", out.stderr);
}

/// A server of `n` pages on one connection: `/p1` links to `/p2`... (a
/// relative `Link: <...>; rel="next"`), the last one to nothing. Serves
/// `served` of them.
fn page_server(n: usize, served: usize) -> ScriptServer {
    let mut steps = Vec::new();
    for i in 1..=served {
        let next = format!("</p{}>; rel=\"next\"", i + 1);
        let links: Vec<(&str, &str)> = if i < n {
            vec![("Link", next.as_str())]
        } else {
            Vec::new()
        };
        steps.push(Step::ReadRequest);
        steps.push(Step::write(response(
            "200 OK",
            &links,
            format!("page {i}|"),
        )));
    }
    ScriptServer::start(vec![steps])
}

#[test]
fn fetch_paginate_with_a_page_limit() {
    // Three pages, at most two fetched.
    let srv = page_server(3, 2);
    let out = fetch(&[
        "--paginate",
        "--page-limit",
        "2",
        &format!("{}/p1", srv.base_url()),
    ]);
    assert_eq!(out.code, Some(0), "stderr: {}", out.stderr);
    assert_eq!(out.stdout_text(), "page 1|page 2|");
    assert_eq!(srv.requests().len(), 2);

    // Every page without a limit; --json: one line, the pages counted.
    let srv = page_server(3, 3);
    let dir = TempDir::new("fetch-pages").unwrap();
    let file = dir.path().join("pages.txt");
    let out = fetch(&[
        "--report",
        "--paginate",
        "-o",
        file.to_str().unwrap(),
        &format!("{}/p1", srv.base_url()),
    ]);
    assert_eq!(out.code, Some(0), "stderr: {}", out.stderr);
    let v = out.json();
    assert_eq!(v["pages"], 3, "{v}");
    assert_eq!(v["attempts"], 3, "{v}");
    assert_eq!(v["body_bytes"], 21, "{v}");
    assert_eq!(
        str_of(&v, "body_sha256"),
        sha256_hex(b"page 1|page 2|page 3|")
    );
    assert!(str_of(&v, "url").ends_with("/p3"), "{v}");
    assert_eq!(std::fs::read(&file).unwrap(), b"page 1|page 2|page 3|");
    let paths: Vec<String> = srv
        .requests()
        .iter()
        .map(|r| {
            String::from_utf8_lossy(r)
                .lines()
                .next()
                .unwrap_or("")
                .to_string()
        })
        .collect();
    assert_eq!(
        paths,
        ["GET /p1 HTTP/1.1", "GET /p2 HTTP/1.1", "GET /p3 HTTP/1.1"],
        "{paths:?}"
    );

    // -i: each page's heads before its body, in the -o file (as curl puts
    // -i's heads where the body goes); nothing on stdout.
    let srv = page_server(2, 2);
    let file = dir.path().join("with-heads.txt");
    let out = fetch(&[
        "-i",
        "--paginate",
        "-o",
        file.to_str().unwrap(),
        &format!("{}/p1", srv.base_url()),
    ]);
    assert_eq!(out.code, Some(0), "stderr: {}", out.stderr);
    assert_eq!(out.stdout_text(), "");
    let text = String::from_utf8(std::fs::read(&file).unwrap()).unwrap();
    let pages: Vec<&str> = text.split("HTTP/1.1 200 OK\r\n").collect();
    assert_eq!(pages.len(), 3, "{text:?}");
    assert!(pages[0].is_empty(), "{text:?}");
    assert!(pages[1].ends_with("\r\n\r\npage 1|"), "{text:?}");
    assert!(pages[2].ends_with("\r\n\r\npage 2|"), "{text:?}");

    // --page-limit needs --paginate.
    let out = fetch(&["--page-limit", "2", "http://127.0.0.1:9/"]);
    assert_eq!(out.code, Some(2), "{}", out.stderr);
}

#[test]
fn fetch_limit_rate_parsing() {
    let Some(nginx) = nginx() else { return };
    let url = nginx.url("/hello.txt");
    // -v tells the rate the settings got: curl's suffixes are powers of 1024.
    for (rate, bytes) in [
        ("4096", "4096"),
        ("100k", "102400"),
        ("100K", "102400"),
        ("1.5M", "1572864"),
        ("2g", "2147483648"),
    ] {
        let out = fetch(&["-v", "--limit-rate", rate, &url]);
        assert_eq!(out.code, Some(0), "{rate}: {}", out.stderr);
        assert_eq!(out.stdout, b"Hello, world!", "{rate}");
        assert!(
            out.stderr
                .contains(&format!("* rate limit {bytes} bytes/s")),
            "{rate}: {}",
            out.stderr
        );
    }
    // 0 is no limit, as with curl.
    let out = fetch(&["-v", "--limit-rate", "0", &url]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert!(!out.stderr.contains("rate limit"), "{}", out.stderr);
    // A slow rate still delivers the whole body (1 KiB at 4 KiB/s).
    let out = fetch(&["--report", "--limit-rate", "4k", &nginx.url("/1k.bin")]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert_eq!(
        str_of(&out.json(), "body_sha256"),
        sha256_hex(&pseudo_random_bytes(1024))
    );
    for bad in ["10x", "-1", "k", "", "1.5.5M", "99999999999G"] {
        let out = fetch(&[&format!("--limit-rate={bad}"), &url]);
        assert_eq!(out.code, Some(2), "{bad:?}: {}", out.stderr);
        assert!(
            out.stderr.contains("--limit-rate"),
            "{bad:?}: {}",
            out.stderr
        );
    }
}

#[test]
fn fetch_continue_at_resumes_a_partial_file() {
    let Some(nginx) = nginx() else { return };
    let full = pseudo_random_bytes(1 << 20);
    let dir = TempDir::new("fetch-resume").unwrap();
    let file = dir.path().join("1m.bin");
    std::fs::write(&file, &full[..100_000]).unwrap();
    // No note beside the file (FILE.resume: the validator of the response
    // its bytes came from): the Range goes alone, as curl's `-C -`, and
    // nginx answers 206 with the rest. Through the test proxy, which
    // records the request as sent.
    let proxy = Proxy::start(ProxyOptions::default());
    let url = nginx.url("/1m.bin");
    let out = fetch(&[
        "--report",
        "-x",
        &proxy.url(),
        "-C",
        "-",
        "-o",
        file.to_str().unwrap(),
        &url,
    ]);
    assert_eq!(out.code, Some(0), "stderr: {}", out.stderr);
    let v = out.json();
    assert_eq!(v["response_code"], 206, "{v}");
    assert_eq!(str_of(&v, "body_sha256"), sha256_hex(&full), "{v}");
    assert!(
        std::fs::read(&file).unwrap() == full,
        "the resumed file differs"
    );
    assert!(
        !resume_note(&file).exists(),
        "the note outlived the download"
    );
    let heads = proxy.request_heads();
    assert_eq!(heads.len(), 1, "{heads:#?}");
    assert_eq!(
        any_version(&heads[0]),
        format!(
            "GET {url} HTTP/1.1\r\nHost: {}\r\nUser-Agent: fetch/*\r\nAccept: */*\r\n\
             Range: bytes=100000-\r\n\r\n",
            nginx.http_addr()
        )
    );

    // '-C -' or an offset, and '-C -' only with a file.
    let out = fetch(&[
        "-C",
        "soon",
        "-o",
        file.to_str().unwrap(),
        &nginx.url("/1m.bin"),
    ]);
    assert_eq!(out.code, Some(2), "{}", out.stderr);
    let out = fetch(&["-C", "-", &nginx.url("/1m.bin")]);
    assert_eq!(out.code, Some(2), "{}", out.stderr);
}

/// A request head with the library's version in `User-Agent: pollhttp/...`
/// written `*`, so exact heads survive a version bump.
fn any_version(head: &str) -> String {
    head.split("\r\n")
        .map(|line| match line.strip_prefix("User-Agent: fetch/") {
            Some(_) => "User-Agent: fetch/*",
            None => line,
        })
        .collect::<Vec<_>>()
        .join("\r\n")
}

/// `FILE.resume`: where the library keeps the `If-Range` validator of a
/// download's bytes until it completes.
fn resume_note(file: &Path) -> PathBuf {
    let mut name = file.as_os_str().to_owned();
    name.push(".resume");
    PathBuf::from(name)
}

/// A fetch killed (SIGKILL) mid-download leaves the partial file and the
/// note of its validator; `-C -` then asks for the rest with `Range` and
/// `If-Range` from the note, and the completed download removes the note.
#[test]
fn fetch_continue_at_after_a_kill_resumes_with_if_range() {
    const N: usize = 300_000;
    const K: usize = 120_000;
    let body = pseudo_random_bytes(N);
    let etag = "\"v1\"";
    // A 200 announcing N bytes that sends only the first K.
    let mut first =
        format!("HTTP/1.1 200 OK\r\nETag: {etag}\r\nContent-Length: {N}\r\n\r\n").into_bytes();
    first.extend_from_slice(&body[..K]);
    let content_range = format!("bytes {K}-{}/{N}", N - 1);
    let stalled = Gate::new();
    let srv = ScriptServer::start(vec![
        // The first fetch: K of N bytes, then nothing until the test (after
        // the kill) lets the connection close.
        vec![
            Step::ReadRequest,
            Step::Write(first),
            Step::Wait(stalled.clone()),
        ],
        // The second: the rest.
        vec![
            Step::ReadRequest,
            Step::write(response(
                "206 Partial Content",
                &[("ETag", etag), ("Content-Range", &content_range)],
                &body[K..],
            )),
        ],
    ]);
    let url = format!("{}/file.bin", srv.base_url());
    let dir = TempDir::new("fetch-kill").unwrap();
    let file = dir.path().join("file.bin");
    let note = resume_note(&file);
    let args = ["-s", "-C", "-", "-o", file.to_str().unwrap(), url.as_str()];

    let mut child = Command::new(env!("CARGO_BIN_EXE_fetch"))
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("run fetch");
    // Bounded wait until the partial bytes are in the file.
    let deadline = Instant::now() + Duration::from_secs(10);
    let partial = loop {
        let size = std::fs::metadata(&file).map_or(0, |m| m.len());
        if size >= K as u64 {
            break true;
        }
        if Instant::now() >= deadline || child.try_wait().ok().flatten().is_some() {
            break false;
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let still_running = child.try_wait().ok().flatten().is_none();
    child.kill().expect("SIGKILL fetch");
    let status = child.wait().expect("wait fetch");
    stalled.open();
    assert!(
        partial && still_running,
        "fetch did not write the {K} partial bytes and stall (running: {still_running}, {status:?})"
    );
    assert_eq!(
        std::fs::read_to_string(&note).ok().as_deref(),
        Some(etag),
        "{}",
        note.display()
    );
    assert!(
        std::fs::read(&file).unwrap() == body[..K],
        "the file does not hold exactly the partial bytes"
    );

    let out = fetch(&args);
    assert_eq!(out.code, Some(0), "stderr: {}", out.stderr);
    assert!(
        std::fs::read(&file).unwrap() == body,
        "the resumed file is not the whole body"
    );
    assert!(!note.exists(), "{} outlived the download", note.display());
    let requests = srv.requests();
    assert_eq!(requests.len(), 2, "{requests:?}");
    let heads: Vec<String> = requests
        .iter()
        .map(|r| any_version(&String::from_utf8_lossy(r)))
        .collect();
    let host = format!("127.0.0.1:{}", srv.port());
    // The first: no file yet, so no Range.
    assert_eq!(
        heads[0],
        format!(
            "GET /file.bin HTTP/1.1\r\nHost: {host}\r\nUser-Agent: fetch/*\r\nAccept: */*\r\n\r\n"
        )
    );
    // The second: the rest, only if it is still the representation "v1".
    assert_eq!(
        heads[1],
        format!(
            "GET /file.bin HTTP/1.1\r\nHost: {host}\r\nUser-Agent: fetch/*\r\nAccept: */*\r\n\
             Range: bytes={K}-\r\nIf-Range: \"v1\"\r\n\r\n"
        )
    );
}

#[test]
fn fetch_new_usage_errors_exit_2() {
    for args in [
        &["-u", "nocolon", "http://127.0.0.1:9/"][..],
        &["--limit-rate", "fast", "http://127.0.0.1:9/"],
        &["-F", "nameonly", "http://127.0.0.1:9/"],
        &["-H", "no colon here", "http://127.0.0.1:9/"],
        &["-H", "Bad Name: x", "http://127.0.0.1:9/"],
        &["-G", "-F", "a=b", "http://127.0.0.1:9/"],
        &["-d", "a=1", "--json", "{}", "http://127.0.0.1:9/"],
        &["-m", "soon", "http://127.0.0.1:9/"],
        &["--retry", "-1", "http://127.0.0.1:9/"],
    ] {
        let out = fetch(args);
        assert_eq!(out.code, Some(2), "{args:?}: {}", out.stderr);
        assert!(
            out.stderr.contains("usage: fetch"),
            "{args:?}: {}",
            out.stderr
        );
        assert!(out.stdout.is_empty(), "{args:?}");
    }
    // -h is the short help, --help every option; both exit 0.
    let short = fetch(&["-h"]);
    assert_eq!(short.code, Some(0));
    let long = fetch(&["--help"]);
    assert_eq!(long.code, Some(0));
    let (short, long) = (short.stdout_text(), long.stdout_text());
    assert!(short.contains("usage: fetch") && long.contains("usage: fetch"));
    for flag in [
        "--data-urlencode",
        "--cookie-jar",
        "--retry",
        "--max-time",
        "--fail",
    ] {
        assert!(long.contains(flag), "{flag} in --help");
    }
    assert!(long.contains("--retry-max-time") && !short.contains("--retry-max-time"));
    assert!(long.len() > short.len());
    // One line per option, the argument in caps, under a heading.
    let line = long
        .lines()
        .find(|l| l.trim_start().starts_with("--data-urlencode"))
        .unwrap();
    assert!(
        line.contains("<DATA>") && line.contains("URL-encoded"),
        "{line}"
    );
    assert!(
        long.contains("\nData:\n") && long.contains("\nCookies:\n"),
        "{long}"
    );
}

#[test]
fn fetch_curl_spellings_of_old_flags() {
    let Some(nginx) = nginx() else { return };
    // -m is curl's name for --timeout (kept as an alias), --max-redirs for
    // --max-redirects, --max-filesize for --limit, -x for --proxy.
    let out = fetch(&[
        "--report",
        "-L",
        "--max-redirs",
        "1",
        &nginx.url("/redirect/chain/3"),
    ]);
    assert_eq!(out.code, Some(47));
    assert_eq!(str_of(&out.json(), "result"), "RedirectLimitReached");
    let out = fetch(&["--report", "--max-filesize", "100", &nginx.url("/1m.bin")]);
    assert_eq!(str_of(&out.json(), "result"), "BodySizeLimitExceeded");
    for flag in ["-m", "--max-time", "--timeout"] {
        let out = fetch(&["--report", flag, "30", &nginx.url("/hello.txt")]);
        assert_eq!(out.code, Some(0), "{flag}: {}", out.stderr);
    }
    let proxy = Proxy::start(ProxyOptions::default());
    let out = fetch(&["-x", &proxy.url(), &nginx.url("/hello.txt")]);
    assert_eq!(out.stdout, b"Hello, world!", "{}", out.stderr);
    assert_eq!(
        proxy.request_lines(),
        [format!("GET {} HTTP/1.1", nginx.url("/hello.txt"))]
    );
    // -L and --compressed change nothing; --no-location gives the 3xx.
    let out = fetch(&[
        "--report",
        "-L",
        "--compressed",
        &nginx.url("/redirect/chain/1"),
    ]);
    assert_eq!(out.json()["redirects"], 1);
    let out = fetch(&["--report", &nginx.url("/redirect/chain/1")]);
    let v = out.json();
    assert_eq!(
        (v["response_code"].as_u64(), v["redirects"].as_u64()),
        (Some(302), Some(0)),
        "{v}"
    );
    // -A and -e arrive as fields.
    let Some(httpbin) = Httpbin::try_shared() else {
        return;
    };
    let v = echo(&fetch(&[
        "-A",
        "fetch-test/1",
        "-e",
        "http://ref.example/",
        &httpbin.url("/headers"),
    ]));
    assert_eq!(v["headers"]["User-Agent"], "fetch-test/1", "{v}");
    assert_eq!(v["headers"]["Referer"], "http://ref.example/", "{v}");
}

// ------------------------------------------------------------ game_loop

// ------------------------------------------------------------ new options

#[test]
fn fetch_paginate_with_parallel() {
    // Two sequences at once, each on its own connection; each sequence's
    // output stays whole.
    let a = page_server(3, 3);
    let b = page_server(2, 2);
    let out = fetch(&[
        "-Z",
        "--paginate",
        &format!("{}/p1", a.base_url()),
        &format!("{}/p1", b.base_url()),
    ]);
    assert_eq!(out.code, Some(0), "stderr: {}", out.stderr);
    let text = out.stdout_text();
    assert!(
        text == "page 1|page 2|page 3|page 1|page 2|"
            || text == "page 1|page 2|page 1|page 2|page 3|",
        "{text}"
    );
    assert_eq!(a.requests().len(), 3);
    assert_eq!(b.requests().len(), 2);
}

#[test]
fn fetch_write_out_json_and_variables() {
    let Some(nginx) = nginx() else { return };
    let out = fetch(&[
        "-sL",
        "-o",
        "/dev/null",
        "-w",
        "%{json}",
        &nginx.url("/redirect/chain/2"),
    ]);
    assert_eq!(out.code, Some(0), "stderr: {}", out.stderr);
    let v: Value = serde_json::from_slice(&out.stdout).expect("one JSON object");
    assert_eq!(v["http_code"], 200);
    assert_eq!(v["num_redirects"], 2);
    assert_eq!(v["size_download"], 13);
    assert_eq!(v["exitcode"], 0);
    assert_eq!(v["method"], "GET");
    assert_eq!(v["http_version"], "1.1");
    assert_eq!(str_of(&v, "url_effective"), nginx.url("/hello.txt"));
    assert_eq!(str_of(&v, "filename_effective"), "/dev/null");
    // %{stderr} switches the rest to stderr; @FILE reads the format.
    let dir = TempDir::new("fetch-w").unwrap();
    let format = dir.path().join("format.txt");
    std::fs::write(&format, "out %{http_code}%{stderr}err %{num_headers}").unwrap();
    let at = format!("@{}", format.display());
    let out = fetch(&["-s", "-o", "/dev/null", "-w", &at, &nginx.url("/hello.txt")]);
    assert_eq!(out.stdout_text(), "out 200");
    assert!(out.stderr.starts_with("err "), "{}", out.stderr);
    // An unknown variable is a usage error.
    let out = fetch(&["-w", "%{nope}", &nginx.url("/hello.txt")]);
    assert_eq!(out.code, Some(2), "{}", out.stderr);
}

#[test]
fn fetch_retry_all_errors() {
    // A 404, then a 200: retried only with --retry-all-errors (and -f).
    let not_found = || {
        vec![
            Step::ReadRequest,
            Step::write(response("404 Not Found", &[], "no")),
        ]
    };
    let s = ScriptServer::start(vec![
        not_found(),
        vec![
            Step::ReadRequest,
            Step::write(response("200 OK", &[], "yes")),
        ],
    ]);
    let url = format!("{}/x", s.base_url());
    let args = ["--report", "-f", "--retry", "1", "--retry-delay", "0.05"];
    let out = fetch(&[&args[..], &["--retry-all-errors", url.as_str()]].concat());
    assert_eq!(out.code, Some(0), "stderr: {}", out.stderr);
    assert_eq!(out.json()["attempts"], 2);
    let s = ScriptServer::start(vec![not_found()]);
    let url = format!("{}/x", s.base_url());
    let out = fetch(&[&args[..], &[url.as_str()]].concat());
    assert_eq!(out.code, Some(22), "stderr: {}", out.stderr);
    assert_eq!(out.json()["attempts"], 1);
}

#[test]
fn fetch_help_all_and_progress_bar() {
    let out = fetch(&["--help", "all"]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let help = out.stdout_text();
    for opt in [
        "--write-out",
        "--dump-header",
        "--upload-file",
        "--resolve",
        "--connect-to",
        "--remote-header-name",
        "--remote-name-all",
        "--anyauth",
        "--time-cond",
        "--max-filesize",
        "--fail-with-body",
        "--retry-all-errors",
        "--continue-at",
        "--noproxy",
        "--paginate",
        "--json",
        "--report",
        "--compressed",
        "--progress-bar",
        "--lenient",
        "--expect100-timeout",
    ] {
        assert!(help.contains(opt), "{opt} not in --help all");
    }
    // -# draws the bar on stderr; stdout has the body alone.
    let Some(nginx) = nginx() else { return };
    let out = fetch(&["-#", &nginx.url("/hello.txt")]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert_eq!(out.stdout, b"Hello, world!");
    assert!(out.stderr.ends_with(" 100.0%\n"), "{:?}", out.stderr);
}

#[test]
fn fetch_dump_header_and_remote_header_name() {
    let Some(nginx) = nginx() else { return };
    let dir = TempDir::new("fetch-dj").unwrap();
    let heads = dir.path().join("heads.txt");
    // -D with -L: every hop's head, as curl writes them.
    let out = fetch(&[
        "-sL",
        "-D",
        heads.to_str().unwrap(),
        &nginx.url("/redirect/chain/1"),
    ]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert_eq!(out.stdout, b"Hello, world!");
    let text = std::fs::read_to_string(&heads).unwrap();
    assert!(text.starts_with("HTTP/1.1 30"), "{text}");
    assert_eq!(status_lines(&text).len(), 2, "{text}");
    assert!(text.contains("\r\n\r\nHTTP/1.1 200 OK\r\n"), "{text}");
    assert!(text.ends_with("\r\n\r\n"), "{text}");
    assert!(text.contains("Content-Length: 13\r\n"), "{text}");
    // -J without a Content-Disposition keeps the URL's name.
    let out = fetch(&[
        "-s",
        "-O",
        "-J",
        "--output-dir",
        dir.path().to_str().unwrap(),
        &nginx.url("/hello.txt"),
    ]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert_eq!(
        std::fs::read(dir.path().join("hello.txt")).unwrap(),
        b"Hello, world!"
    );
}

#[test]
fn fetch_noproxy_list_and_connect_to_any() {
    let Some(nginx) = nginx() else { return };
    let refused = format!("http://127.0.0.1:{}", free_port().unwrap());
    // A host not in the list goes through the (refusing) proxy: 7.
    let out = fetch(&[
        "-s",
        "-x",
        &refused,
        "--noproxy",
        "example.com,.other",
        &nginx.url("/hello.txt"),
    ]);
    assert_eq!(out.code, Some(7), "{}", out.stderr);
    // A listed host (and its subdomains) does not.
    let out = fetch(&[
        "-s",
        "-x",
        &refused,
        "--noproxy",
        "example.com,127.0.0.1",
        &nginx.url("/hello.txt"),
    ]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    // --connect-to with empty HOST1 and PORT1: every connection.
    let to = format!("::127.0.0.1:{}", nginx.http_addr().port());
    let out = fetch(&["-s", "--connect-to", &to, "http://any.test:1/hello.txt"]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert_eq!(out.stdout, b"Hello, world!");
    // Malformed --resolve and --connect-to are usage errors.
    for args in [
        &["--resolve", "host:80", "http://127.0.0.1:9/"][..],
        &["--resolve", "host:80:not-an-ip", "http://127.0.0.1:9/"],
        &["--connect-to", "a:1:b", "http://127.0.0.1:9/"],
    ] {
        let out = fetch(args);
        assert_eq!(out.code, Some(2), "{args:?}: {}", out.stderr);
    }
}

#[test]
fn fetch_cache_answers_a_later_run_from_its_directory() {
    let Some(nginx) = nginx() else { return };
    let dir = TempDir::new("fetch-cache").unwrap();
    let cache = dir.path().join("cache");
    let cache = cache.to_str().unwrap();
    let url = nginx.url("/hello.txt");
    let out = fetch(&["--cache", cache, &url]);
    assert_eq!(
        (out.code, &out.stdout[..]),
        (Some(0), &b"Hello, world!"[..]),
        "{}",
        out.stderr
    );
    // Offline: the stored answer, no network.
    let out = fetch(&["--cache", cache, "--cache-mode", "only-if-cached", &url]);
    assert_eq!(
        (out.code, &out.stdout[..]),
        (Some(0), &b"Hello, world!"[..]),
        "{}",
        out.stderr
    );
    // Another (empty) cache has nothing: only-if-cached fails.
    let empty = dir.path().join("empty");
    let out = fetch(&[
        "--cache",
        empty.to_str().unwrap(),
        "--cache-mode",
        "only-if-cached",
        &url,
    ]);
    assert_ne!(out.code, Some(0));
    assert!(out.stdout.is_empty());
    assert!(out.stderr.contains("only-if-cached"), "{}", out.stderr);
    let out = fetch(&["--cache-mode", "sometimes", &url]);
    assert_eq!(out.code, Some(2), "a usage error");
}

#[test]
fn fetch_expect_sha256_fails_closed_and_compressed_asks_for_every_coding() {
    let Some(nginx) = nginx() else { return };
    let url = nginx.url("/1m.bin");
    let good = sha256_hex(&pseudo_random_bytes(1 << 20));
    let out = fetch(&["--expect-sha256", &good, &url]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert_eq!(out.stdout.len(), 1 << 20);
    let bad = "00".repeat(32);
    let out = fetch(&["--expect-sha256", &bad, &url]);
    assert_eq!(out.code, Some(100), "{}", out.stderr);
    assert!(out.stdout.is_empty(), "nothing handed out as good");
    let out = fetch(&["--expect-sha256", "xyz", &url]);
    assert_eq!(out.code, Some(2));
    let out = fetch(&["-v", "--compressed", &nginx.url("/hello.txt")]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert!(
        out.stderr
            .contains("Accept-Encoding: zstd, br, gzip, deflate"),
        "{}",
        out.stderr
    );
}

#[test]
fn fetch_etag_save_and_compare_as_curl() {
    let Some(nginx) = nginx() else { return };
    let dir = TempDir::new("fetch-etag").unwrap();
    let url = nginx.url("/hello.txt");
    let saved = dir.path().join("etag");
    let saved = saved.to_str().unwrap();
    let out = fetch(&["--etag-save", saved, &url]);
    assert_eq!(
        (out.code, &out.stdout[..]),
        (Some(0), &b"Hello, world!"[..]),
        "{}",
        out.stderr
    );
    let etag = std::fs::read_to_string(saved).unwrap();
    assert!(etag.starts_with('"') && etag.ends_with("\"\n"), "{etag:?}");
    // The saved ETag makes the next transfer conditional: a 304, no body.
    let out = fetch(&["--etag-compare", saved, "-w", "%{http_code}", &url]);
    assert_eq!(
        (out.code, out.stdout_text()),
        (Some(0), "304".to_string()),
        "{}",
        out.stderr
    );
    // A missing file sends no condition.
    let missing = dir.path().join("missing");
    let out = fetch(&[
        "--etag-compare",
        missing.to_str().unwrap(),
        "-w",
        "%{http_code}",
        &url,
    ]);
    assert_eq!(out.stdout_text(), "Hello, world!200");
    // curl, where installed, does the same.
    if let Ok(curl) = Command::new("curl")
        .args(["-s", "--etag-compare", saved, "-w", "%{http_code}", &url])
        .output()
    {
        assert_eq!(String::from_utf8_lossy(&curl.stdout), "304");
    }
}

// ------------------------------------------------------------ issue 20, the rest

/// A server answering each of `conns` connections with `answer`, then
/// closing.
fn answering(conns: usize, answer: &[u8]) -> ScriptServer {
    ScriptServer::start(vec![
        vec![
            Step::ReadRequest,
            Step::write(answer),
            Step::Close
        ];
        conns
    ])
}

/// The status lines of `text`'s heads (`-i`/`-D` output), in order.
fn status_lines(text: &str) -> Vec<String> {
    text.split("\r\n")
        .filter(|l| l.starts_with("HTTP/1."))
        .map(str::to_string)
        .collect()
}

#[test]
fn fetch_include_and_verbose_show_the_heads_of_a_digest_round() {
    let Some(httpbin) = Httpbin::try_shared() else {
        return;
    };
    let url = httpbin.url("/digest-auth/auth/u/p");
    let out = fetch(&["-si", "--digest", "-u", "u:p", &url]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let text = out.stdout_text();
    assert_eq!(
        status_lines(&text),
        ["HTTP/1.1 401 UNAUTHORIZED", "HTTP/1.1 200 OK"],
        "{text}"
    );
    // The challenge's head holds the challenge; the body is the final one.
    let (first, rest) = text.split_once("\r\n\r\n").unwrap();
    assert!(
        first
            .to_ascii_lowercase()
            .contains("www-authenticate: digest"),
        "{first}"
    );
    assert!(rest.ends_with("}\n"), "{rest}");
    // -v: both heads as `< ` lines, in order.
    let out = fetch(&["-sv", "--digest", "-u", "u:p", "-o", "/dev/null", &url]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let heads: Vec<&str> = out
        .stderr
        .lines()
        .filter(|l| l.starts_with("< HTTP/"))
        .collect();
    assert_eq!(
        heads,
        ["< HTTP/1.1 401 UNAUTHORIZED", "< HTTP/1.1 200 OK"],
        "{}",
        out.stderr
    );
    // --anyauth falling back to Basic: the 401 (a Digest try) first.
    let out = fetch(&[
        "-si",
        "--anyauth",
        "-u",
        "u:p",
        &httpbin.url("/basic-auth/u/p"),
    ]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert_eq!(
        status_lines(&out.stdout_text()),
        ["HTTP/1.1 401 UNAUTHORIZED", "HTTP/1.1 200 OK"],
        "{}",
        out.stdout_text()
    );
}

#[test]
fn fetch_dump_header_writes_every_redirect_hop_of_httpbin() {
    let Some(httpbin) = Httpbin::try_shared() else {
        return;
    };
    let dir = TempDir::new("fetch-hops").unwrap();
    let heads = dir.path().join("heads.txt");
    let out = fetch(&[
        "-sL",
        "-D",
        heads.to_str().unwrap(),
        "-o",
        "/dev/null",
        &httpbin.url("/redirect/3"),
    ]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let text = std::fs::read_to_string(&heads).unwrap();
    assert_eq!(
        status_lines(&text),
        [
            "HTTP/1.1 302 FOUND",
            "HTTP/1.1 302 FOUND",
            "HTTP/1.1 302 FOUND",
            "HTTP/1.1 200 OK"
        ],
        "{text}"
    );
    assert_eq!(text.matches("\r\n\r\n").count(), 4, "{text}");
    // --max-redirs 1: the heads up to the refusal (two 302s), exit 47.
    let out = fetch(&[
        "-sL",
        "--max-redirs",
        "1",
        "-D",
        "-",
        &httpbin.url("/redirect/3"),
    ]);
    assert_eq!(out.code, Some(47), "{}", out.stderr);
    assert_eq!(
        status_lines(&out.stdout_text()),
        ["HTTP/1.1 302 FOUND", "HTTP/1.1 302 FOUND"],
        "{}",
        out.stdout_text()
    );
}

/// One rule curl lets pass: the response that breaks it, the body it
/// carries, the rule's words in fetch's error, the `--lenient` name, and
/// the exit code when strict.
struct Lenient {
    response: &'static [u8],
    body: &'static [u8],
    rule: &'static str,
    name: &'static str,
    code: i32,
}

#[test]
fn fetch_is_strict_and_lenient_names_the_rule_that_accepts() {
    let cases = [
        Lenient {
            response: b"HTTP/1.1 200 OK\nContent-Length: 2\n\nok",
            body: b"ok",
            rule: "line ended by a bare LF, not CRLF (RFC 9112 §2.2)",
            name: "bare-lf",
            code: 8,
        },
        Lenient {
            response: b"HTTP/1.1 200 OK\r\nX-A : 1\r\nContent-Length: 2\r\n\r\nok",
            body: b"ok",
            rule: "whitespace between field name and colon (RFC 9112 §5.1)",
            name: "whitespace-before-colon",
            code: 8,
        },
        Lenient {
            response: b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\
                        Transfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n",
            body: b"ok",
            rule: "both Transfer-Encoding and Content-Length (RFC 9112 §6.3 rule 3)",
            name: "content-length-with-transfer-encoding",
            code: 8,
        },
        Lenient {
            response: b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n",
            body: b"ok",
            rule: "connection closed after the last-chunk (2 body bytes), before the final \
                   CRLF of the chunked body (RFC 9112 §7.1)",
            name: "last-chunk-then-eof",
            code: 18,
        },
    ];
    for c in &cases {
        // Strict, by name, and all at once.
        let srv = answering(3, c.response);
        let url = format!("http://127.0.0.1:{}/", srv.port());
        let out = fetch(&["-sS", &url]);
        assert_eq!(out.code, Some(c.code), "{}: {}", c.name, out.stderr);
        let lines: Vec<&str> = out.stderr.lines().collect();
        assert_eq!(lines.len(), 2, "{}", out.stderr);
        assert!(
            lines[0].starts_with(&format!("fetch: ({}) ", c.code)) && lines[0].contains(c.rule),
            "{}: {}",
            c.name,
            lines[0]
        );
        let curl = if c.code == 18 {
            "curl fails here too"
        } else {
            "curl lets it pass"
        };
        assert_eq!(
            lines[1],
            format!("fetch: --lenient={} accepts the response ({curl})", c.name)
        );
        let by_name = format!("--lenient={}", c.name);
        for arg in [by_name.as_str(), "--lenient"] {
            let out = fetch(&[arg, &url]);
            assert_eq!(out.code, Some(0), "{arg}: {}", out.stderr);
            assert_eq!(out.stdout, c.body, "{arg}");
        }
    }
    // Another rule's leniency does not accept it.
    let srv = answering(1, cases[0].response);
    let out = fetch(&[
        "--lenient=obs-fold,last-chunk-then-eof",
        &format!("http://127.0.0.1:{}/", srv.port()),
    ]);
    assert_eq!(out.code, Some(8), "{}", out.stderr);
    // obs-fold is unfolded by default, as curl (RFC 9112 §5.2 lets a user
    // agent); a missing reason phrase is no error.
    let srv = answering(
        1,
        b"HTTP/1.1 200\r\nX-Folded: a\r\n b\r\nContent-Length: 2\r\n\r\nok",
    );
    let out = fetch(&["-i", &format!("http://127.0.0.1:{}/", srv.port())]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert_eq!(
        out.stdout_text(),
        "HTTP/1.1 200\r\nX-Folded: a   b\r\nContent-Length: 2\r\n\r\nok"
    );
    // An unknown rule is a usage error naming the rules.
    let out = fetch(&["--lenient=bare", "http://127.0.0.1:9/"]);
    assert_eq!(out.code, Some(2), "{}", out.stderr);
    assert!(
        out.stderr
            .contains("bare-lf, obs-fold, whitespace-before-colon"),
        "{}",
        out.stderr
    );
}

#[test]
fn fetch_writes_what_arrived_before_a_failure() {
    // Half a Content-Length body, then the close: the half on stdout, 18.
    let srv = answering(
        2,
        b"HTTP/1.1 200 OK\r\nContent-Length: 20\r\n\r\n0123456789",
    );
    let url = format!("http://127.0.0.1:{}/", srv.port());
    let out = fetch(&[&url]);
    assert_eq!(out.code, Some(18), "{}", out.stderr);
    assert_eq!(out.stdout, b"0123456789");
    // -o: the file holds the half.
    let dir = TempDir::new("fetch-partial").unwrap();
    let file = dir.path().join("part.bin");
    let out = fetch(&["-s", "-o", file.to_str().unwrap(), &url]);
    assert_eq!(out.code, Some(18), "{}", out.stderr);
    assert_eq!(std::fs::read(&file).unwrap(), b"0123456789");
    // The deadline passes inside the body: what arrived, then 28.
    let srv = ScriptServer::start_with_timeout(
        vec![vec![
            Step::ReadRequest,
            Step::write("HTTP/1.1 200 OK\r\nContent-Length: 20\r\n\r\nearly"),
            Step::Wait(Gate::new()),
        ]],
        Duration::from_secs(3),
    );
    srv.tolerate_step_errors();
    let out = fetch(&["-m", "0.5", &format!("http://127.0.0.1:{}/", srv.port())]);
    assert_eq!(out.code, Some(28), "{}", out.stderr);
    assert_eq!(out.stdout, b"early");
    // A reset inside a chunked body: the chunks that arrived, then 56.
    let srv = ScriptServer::start(vec![vec![
        Step::ReadRequest,
        Step::write("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n"),
        Step::Reset,
    ]]);
    let out = fetch(&[&format!("http://127.0.0.1:{}/", srv.port())]);
    assert_eq!(out.code, Some(56), "{}", out.stderr);
    assert_eq!(out.stdout, b"abc");
}

#[test]
fn fetch_continue_at_offset_appends_to_the_file() {
    let Some(nginx) = nginx() else { return };
    let dir = TempDir::new("fetch-append").unwrap();
    let file = dir.path().join("hello.txt");
    // The first 7 bytes are there; -C 7 appends the rest, as curl.
    std::fs::write(&file, "Hello, ").unwrap();
    let out = fetch(&[
        "-s",
        "-C",
        "7",
        "-o",
        file.to_str().unwrap(),
        &nginx.url("/hello.txt"),
    ]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert_eq!(std::fs::read(&file).unwrap(), b"Hello, world!");
    let leftovers = std::fs::read_dir(dir.path()).unwrap().count();
    assert_eq!(leftovers, 1, "the temporary file is gone");
    // -C - after that: nothing left to get (416), the file stays.
    let out = fetch(&[
        "-s",
        "-C",
        "-",
        "-o",
        file.to_str().unwrap(),
        &nginx.url("/hello.txt"),
    ]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert_eq!(std::fs::read(&file).unwrap(), b"Hello, world!");
    // A server that ignores the range (a 200): curl's 33, nothing
    // appended.
    let srv = answering(1, b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nwhole");
    let out = fetch(&[
        "-C",
        "7",
        "-o",
        file.to_str().unwrap(),
        &format!("http://127.0.0.1:{}/", srv.port()),
    ]);
    assert_eq!(out.code, Some(33), "{}", out.stderr);
    assert!(
        out.stderr
            .contains("HTTP server doesn't seem to support byte ranges. Cannot resume."),
        "{}",
        out.stderr
    );
    assert_eq!(std::fs::read(&file).unwrap(), b"Hello, world!");
}

#[test]
fn fetch_upload_over_a_mib_asks_for_100_continue() {
    let dir = TempDir::new("fetch-expect").unwrap();
    let big = dir.path().join("big.bin");
    let data = pseudo_random_bytes((1 << 20) + 1);
    std::fs::write(&big, &data).unwrap();
    let small = dir.path().join("small.txt");
    std::fs::write(&small, "small").unwrap();
    let srv = ScriptServer::start(vec![
        // Over 1 MiB: the head alone, the 100, then the body.
        vec![
            Step::ReadRequestHead,
            Step::write("HTTP/1.1 100 Continue\r\n\r\n"),
            Step::ReadBody,
            Step::write(response("201 Created", &[], "stored")),
            Step::Close,
        ],
        // -H 'Expect:' and a small file: no Expect, the body at once.
        vec![
            Step::ReadRequest,
            Step::write(response("201 Created", &[], "stored")),
            Step::Close,
        ],
        vec![
            Step::ReadRequest,
            Step::write(response("201 Created", &[], "stored")),
            Step::Close,
        ],
    ]);
    let url = format!("http://127.0.0.1:{}/up", srv.port());
    let out = fetch(&["-si", "-T", big.to_str().unwrap(), &url]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let text = out.stdout_text();
    assert!(
        text.starts_with("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\n"),
        "{text}"
    );
    let out = fetch(&["-s", "-H", "Expect:", "-T", big.to_str().unwrap(), &url]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let out = fetch(&["-s", "-T", small.to_str().unwrap(), &url]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let requests = srv.requests();
    assert_eq!(requests.len(), 3);
    let (head, body) = pollhttp_tests::script::split_request(&requests[0]);
    assert!(head.contains("\r\nExpect: 100-continue\r\n"), "{head}");
    assert_eq!(body, data);
    for r in &requests[1..] {
        let (head, _) = pollhttp_tests::script::split_request(r);
        assert!(!head.to_ascii_lowercase().contains("expect"), "{head}");
    }
    let (_, body) = pollhttp_tests::script::split_request(&requests[1]);
    assert_eq!(body.len(), data.len());
}

#[test]
fn fetch_draws_curls_meter_when_the_body_goes_to_a_file() {
    let Some(nginx) = nginx() else { return };
    let url = nginx.url("/hello.txt");
    // -o FILE (stdout a pipe here, too): the header lines, then lines
    // redrawn with \r, the last one for the whole body, then a newline.
    let out = fetch(&["-o", "/dev/null", &url]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let header = "  % Total    % Received % Xferd  Average Speed   Time    Time     Time  Current\n\
                  \x20                                Dload  Upload   Total   Spent    Left  Speed\n";
    assert!(out.stderr.starts_with(header), "{:?}", out.stderr);
    let last = out
        .stderr
        .trim_end_matches('\n')
        .rsplit('\r')
        .next()
        .unwrap();
    assert!(
        last.starts_with("100    13  100    13    0     0 "),
        "{last:?}"
    );
    assert_eq!(last.len(), 78, "{last:?}");
    assert!(out.stderr.ends_with('\n'));
    // -s: none; -# the bar: 72 columns of '#' and 100.0%.
    let out = fetch(&["-s", "-o", "/dev/null", &url]);
    assert!(out.stderr.is_empty(), "{:?}", out.stderr);
    let out = fetch(&["-#", "-o", "/dev/null", &url]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let last = out
        .stderr
        .trim_end_matches('\n')
        .rsplit('\r')
        .next()
        .unwrap();
    assert_eq!(last, format!("{} 100.0%", "#".repeat(72)));
}

#[test]
fn fetch_connect_timeout_ends_a_connect_that_hangs() {
    // A listener whose accept queue is full drops further SYNs: the connect
    // hangs as one to an unroutable address would.
    let sock = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    let any: std::net::SocketAddr = "127.0.0.1:0".parse().unwrap();
    sock.bind(&any.into()).unwrap();
    sock.listen(0).unwrap();
    let addr = sock.local_addr().unwrap().as_socket().unwrap();
    let _fill: Vec<_> = (0..4)
        .filter_map(|_| {
            std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(200)).ok()
        })
        .collect();
    let out = fetch(&[
        "-sS",
        "--connect-timeout",
        "0.5",
        &format!("http://{addr}/"),
    ]);
    assert_eq!(out.code, Some(28), "{}", out.stderr);
    assert!(out.stderr.starts_with("fetch: (28) "), "{}", out.stderr);
    // A value that is not seconds is a usage error.
    let out = fetch(&["--connect-timeout", "soon", &format!("http://{addr}/")]);
    assert_eq!(out.code, Some(2), "{}", out.stderr);
}

#[test]
fn fetch_expect100_timeout_sets_the_wait_for_100() {
    let dir = TempDir::new("fetch-expect-wait").unwrap();
    let big = dir.path().join("big.bin");
    std::fs::write(&big, pseudo_random_bytes((1 << 20) + 7)).unwrap();
    let srv = ScriptServer::start(vec![
        // No 100 ever: a short wait sends the body anyway.
        vec![
            Step::ReadRequest,
            Step::write(response("200 OK", &[], "late")),
            Step::Close,
        ],
        // A long wait and a 417 at once: the body is never sent.
        vec![
            Step::ReadRequestHead,
            Step::write("HTTP/1.1 417 Expectation Failed\r\nContent-Length: 0\r\n\r\n"),
            Step::ReadToEof,
        ],
    ]);
    let url = format!("http://127.0.0.1:{}/up", srv.port());
    let up = big.to_str().unwrap();
    let out = fetch(&["-s", "--expect100-timeout", "0.05", "-T", up, &url]);
    assert_eq!(
        (out.code, &out.stdout[..]),
        (Some(0), &b"late"[..]),
        "{}",
        out.stderr
    );
    let out = fetch(&[
        "-s",
        "-w",
        "%{http_code}",
        "--expect100-timeout",
        "600",
        "-T",
        up,
        &url,
    ]);
    assert_eq!(
        (out.code, out.stdout_text()),
        (Some(0), "417".to_string()),
        "{}",
        out.stderr
    );
    let received = srv.received();
    assert_eq!(received.len(), 2);
    let (_, body) = pollhttp_tests::script::split_request(&received[0]);
    assert_eq!(body.len(), (1 << 20) + 7);
    assert!(
        received[1].ends_with(b"\r\n\r\n"),
        "no body byte after the head"
    );
}

#[test]
fn fetch_include_into_a_file_that_cannot_be_rewritten_exits_23_and_keeps_the_body() {
    // -i -o FILE rewrites the file with the heads first, through a sibling
    // `.FILE.fetch-heads`: a directory in its place makes that fail.
    let srv = ScriptServer::start(vec![vec![
        Step::ReadRequest,
        Step::write(response("200 OK", &[], "the body")),
    ]]);
    let dir = TempDir::new("fetch-heads-fail").unwrap();
    let file = dir.path().join("out.txt");
    std::fs::create_dir(dir.path().join(".out.txt.fetch-heads")).unwrap();
    let out = fetch(&["-sSi", "-o", file.to_str().unwrap(), &srv.base_url()]);
    assert_eq!(out.code, Some(23), "stderr: {}", out.stderr);
    assert!(
        out.stderr
            .contains(&format!("cannot write {}", file.display())),
        "{}",
        out.stderr
    );
    assert_eq!(out.stdout_text(), "");
    assert_eq!(std::fs::read(&file).unwrap(), b"the body", "the body stays");
}
