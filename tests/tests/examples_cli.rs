//! The `fetch` and `game_loop` examples of the `pollhttp` crate, run as real
//! commands against real servers (nginx, httpbin, the test proxy).
//!
//! Which binaries: `cargo test --workspace` builds the examples into
//! `<target>/<profile>/examples/` before it runs any test; those are used
//! when they are newer than every source file they are built from. Otherwise
//! (e.g. `cargo test -p pollhttp-tests`, or stale binaries) they are built
//! once per test process with `cargo build -q -p pollhttp --examples` into a
//! dedicated target directory (`<target>/examples-under-test`), so the inner
//! cargo never waits for the lock of the outer build's directory.
//! `POLLHTTP_EXAMPLES_DIR=<dir>` uses the binaries in `<dir>` as they are.
//! Every run is bounded by a deadline and killed when it passes.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use pollhttp_tests::httpbin::Httpbin;
use pollhttp_tests::nginx::Nginx;
use pollhttp_tests::process::{free_port, TempDir};
use pollhttp_tests::proxy::{Proxy, ProxyOptions};
use pollhttp_tests::{pseudo_random_bytes, sha256_hex};
use serde_json::Value;

/// Where the example binaries are (built on first use).
fn examples_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        if let Some(dir) = std::env::var_os("POLLHTTP_EXAMPLES_DIR").filter(|d| !d.is_empty()) {
            return PathBuf::from(dir);
        }
        // This test binary is <target>/<profile>/deps/examples_cli-<hash>.
        let exe = std::env::current_exe().expect("current_exe");
        if let Some(built) = exe.ancestors().nth(2).map(|p| p.join("examples")) {
            if fresh(&built) {
                return built;
            }
        }
        let target = exe
            .ancestors()
            .nth(3)
            .map(Path::to_path_buf)
            .unwrap_or_else(|| pollhttp_tests::workspace_root().join("target"));
        let target = target.join("examples-under-test");
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| env!("CARGO").to_string());
        let mut cmd = Command::new(cargo);
        cmd.args(["build", "-q", "-p", "pollhttp", "--examples"])
            .current_dir(pollhttp_tests::workspace_root())
            .env("CARGO_TARGET_DIR", &target)
            .env_remove("CARGO_MAKEFLAGS")
            .env_remove("MAKEFLAGS")
            .env_remove("MFLAGS");
        let out = run_bounded(cmd, Duration::from_secs(20 * 60));
        assert_eq!(
            out.code,
            Some(0),
            "building the examples failed:\n{}",
            out.stderr
        );
        target.join("debug").join("examples")
    })
}

/// Whether `dir` holds both examples, each newer than every file it is built
/// from (the `proto` and `client` crates, their manifests, `Cargo.lock`).
fn fresh(dir: &Path) -> bool {
    fn newest(path: &Path, acc: &mut std::time::SystemTime) {
        let Ok(meta) = std::fs::metadata(path) else {
            return;
        };
        if meta.is_dir() {
            for entry in std::fs::read_dir(path).into_iter().flatten().flatten() {
                newest(&entry.path(), acc);
            }
        } else if let Ok(m) = meta.modified() {
            *acc = (*acc).max(m);
        }
    }
    let root = pollhttp_tests::workspace_root();
    let mut sources = std::time::SystemTime::UNIX_EPOCH;
    for p in [
        "Cargo.toml",
        "Cargo.lock",
        "client/Cargo.toml",
        "client/src",
        "client/examples",
        "proto/Cargo.toml",
        "proto/src",
    ] {
        newest(&root.join(p), &mut sources);
    }
    ["fetch", "game_loop"].iter().all(|name| {
        std::fs::metadata(dir.join(name))
            .and_then(|m| m.modified())
            .is_ok_and(|built| built > sources)
    })
}

/// What a bounded run produced.
#[derive(Debug)]
struct Output {
    code: Option<i32>,
    stdout: Vec<u8>,
    stderr: String,
}

impl Output {
    fn stdout_text(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }

    /// The stdout parsed as one JSON value (fetch --json prints one line).
    fn json(&self) -> Value {
        let text = self.stdout_text();
        assert_eq!(
            text.lines().count(),
            1,
            "expected one JSON line, got:\n{text}\nstderr:\n{}",
            self.stderr
        );
        serde_json::from_str(text.trim()).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
    }
}

/// Runs `cmd` to completion with piped output; kills it and panics when it
/// is still running after `limit`.
fn run_bounded(mut cmd: Command, limit: Duration) -> Output {
    let what = format!("{cmd:?}");
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {what}: {e}"));
    let mut out = child.stdout.take().expect("stdout");
    let mut err = child.stderr.take().expect("stderr");
    let out_reader = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = out.read_to_end(&mut v);
        v
    });
    let err_reader = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = err.read_to_end(&mut v);
        v
    });
    let deadline = Instant::now() + limit;
    let status = loop {
        match child.try_wait().expect("try_wait") {
            Some(status) => break status,
            None if Instant::now() >= deadline => {
                let _ = child.kill();
                let _ = child.wait();
                let stderr =
                    String::from_utf8_lossy(&err_reader.join().unwrap_or_default()).into_owned();
                panic!("{what} still running after {limit:?}: killed\nstderr:\n{stderr}");
            }
            None => std::thread::sleep(Duration::from_millis(10)),
        }
    };
    Output {
        code: status.code(),
        stdout: out_reader.join().unwrap_or_default(),
        stderr: String::from_utf8_lossy(&err_reader.join().unwrap_or_default()).into_owned(),
    }
}

/// Runs an example with `args`, bounded by 60 s.
fn example(name: &str, args: &[&str]) -> Output {
    let mut cmd = Command::new(examples_dir().join(name));
    cmd.args(args);
    run_bounded(cmd, Duration::from_secs(60))
}

fn fetch(args: &[&str]) -> Output {
    example("fetch", args)
}

/// One nginx for the whole test binary (its watchdog stops it at exit).
/// `None` when it is not installed and `POLLHTTP_SKIP_REAL_SERVERS=1`.
fn nginx() -> Option<&'static Nginx> {
    static NGINX: OnceLock<Mutex<Option<&'static Nginx>>> = OnceLock::new();
    let cell = NGINX.get_or_init(|| Mutex::new(None));
    let mut guard = cell.lock().unwrap_or_else(|e| e.into_inner());
    if guard.is_none() {
        *guard = Nginx::try_start().map(|n| &*Box::leak(Box::new(n)));
    }
    *guard
}

fn str_of<'a>(v: &'a Value, key: &str) -> &'a str {
    v[key]
        .as_str()
        .unwrap_or_else(|| panic!("{key} is not a string in {v}"))
}

// ------------------------------------------------------------ fetch

#[test]
fn fetch_json_reports_a_success() {
    let Some(nginx) = nginx() else { return };
    let url = nginx.url("/hello.txt");
    let out = fetch(&["--json", &url]);
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
    assert!(v["seconds"].as_f64().unwrap() >= 0.0, "{v}");
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
        "--json",
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
fn fetch_404_is_a_success_with_its_code() {
    // Godot semantics: Success means a complete response arrived.
    let Some(nginx) = nginx() else { return };
    let out = fetch(&["--json", &nginx.url("/status/404")]);
    assert_eq!(out.code, Some(0), "stderr: {}", out.stderr);
    let v = out.json();
    assert_eq!(str_of(&v, "result"), "Success");
    assert_eq!(v["response_code"], 404);
}

#[test]
fn fetch_refused_port_is_cant_connect() {
    let port = free_port().unwrap();
    let out = fetch(&["--json", &format!("http://127.0.0.1:{port}/")]);
    assert_ne!(out.code, Some(0));
    assert!(
        out.stdout_text().contains(r#""result":"CantConnect""#),
        "{}",
        out.stdout_text()
    );
    assert_eq!(str_of(&out.json(), "result"), "CantConnect");

    // Without --json the reason goes to stderr.
    let out = fetch(&[&format!("http://127.0.0.1:{port}/")]);
    assert_eq!(out.code, Some(1));
    assert!(out.stderr.contains("CantConnect"), "{}", out.stderr);
}

#[test]
fn fetch_limit() {
    let Some(nginx) = nginx() else { return };
    let out = fetch(&["--json", "--limit", "100", &nginx.url("/1m.bin")]);
    assert_eq!(out.code, Some(1));
    assert_eq!(str_of(&out.json(), "result"), "BodySizeLimitExceeded");
    // Counted after decoding: a gzip body without Content-Length stops too.
    let out = fetch(&["--json", "--limit", "100", &nginx.url("/gzip/1m.bin")]);
    assert_eq!(out.code, Some(1));
    assert_eq!(str_of(&out.json(), "result"), "BodySizeLimitExceeded");
}

#[test]
fn fetch_redirects() {
    let Some(nginx) = nginx() else { return };
    let out = fetch(&["--json", &nginx.url("/redirect/chain/3")]);
    assert_eq!(out.code, Some(0), "stderr: {}", out.stderr);
    let v = out.json();
    assert_eq!(v["redirects"], 3);
    assert_eq!(str_of(&v, "url"), nginx.url("/hello.txt"));
    assert_eq!(str_of(&v, "body_sha256"), sha256_hex(b"Hello, world!"));

    let out = fetch(&[
        "--json",
        "--max-redirects",
        "1",
        &nginx.url("/redirect/chain/3"),
    ]);
    assert_eq!(out.code, Some(1));
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

    let out = fetch(&["--json", "--cacert", ca.to_str().unwrap(), &url]);
    assert_eq!(out.code, Some(0), "stderr: {}", out.stderr);
    let v = out.json();
    assert_eq!(str_of(&v, "result"), "Success");
    assert_eq!(str_of(&v, "body_sha256"), sha256_hex(b"Hello, world!"));

    let out = fetch(&["--json", &url]);
    assert_eq!(out.code, Some(1));
    assert_eq!(str_of(&out.json(), "result"), "TlsHandshakeError");

    let out = fetch(&["--json", "--insecure", &url]);
    assert_eq!(out.code, Some(0), "stderr: {}", out.stderr);
    assert_eq!(str_of(&out.json(), "result"), "Success");
}

#[test]
fn fetch_through_a_proxy() {
    let Some(nginx) = nginx() else { return };
    let proxy = Proxy::start(ProxyOptions::default());
    let out = fetch(&["--json", "--proxy", &proxy.url(), &nginx.url("/hello.txt")]);
    assert_eq!(out.code, Some(0), "stderr: {}", out.stderr);
    assert_eq!(
        str_of(&out.json(), "body_sha256"),
        sha256_hex(b"Hello, world!")
    );

    let dir = TempDir::new("fetch-proxy").unwrap();
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, &nginx.ca_pem).unwrap();
    let out = fetch(&[
        "--json",
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
fn fetch_usage_errors_exit_2() {
    let out = fetch(&[]);
    assert_eq!(out.code, Some(2));
    assert!(out.stderr.contains("usage: fetch"), "{}", out.stderr);
    let out = fetch(&["--bogus", "http://127.0.0.1/"]);
    assert_eq!(out.code, Some(2));
    assert!(out.stderr.contains("usage: fetch"), "{}", out.stderr);
    let out = fetch(&["--limit", "lots", "http://127.0.0.1/"]);
    assert_eq!(out.code, Some(2));
    let out = fetch(&["ftp://127.0.0.1/"]);
    assert_eq!(
        out.code,
        Some(2),
        "an unsupported URL is a usage error: {}",
        out.stderr
    );
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
        "--json".to_string(),
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
    let out = fetch(&["--json", &hello, &one_k]);
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
    let mut args = vec!["--parallel", "--json", "--output-dir"];
    args.push(dir.path().to_str().unwrap());
    args.extend(urls.iter().map(String::as_str));
    let out = fetch(&args);
    // One failed: exit 1; the others are saved all the same.
    assert_eq!(out.code, Some(1), "stderr: {}", out.stderr);
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

    // Usage errors: -o with several URLs, two URLs saved under one name, a
    // URL without a file name, --parallel-max 0.
    let hello = nginx.url("/hello.txt");
    let out = fetch(&["-o", "x", &hello, &hello]);
    assert_eq!(out.code, Some(2), "{}", out.stderr);
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

// ------------------------------------------------------------ game_loop

/// The values of the last line: `frames=N ... result=Success`.
fn last_line_values(out: &Output) -> std::collections::HashMap<String, String> {
    let text = out.stdout_text();
    let last = text
        .lines()
        .last()
        .unwrap_or_else(|| panic!("no output; stderr:\n{}", out.stderr));
    let values: std::collections::HashMap<String, String> = last
        .split_whitespace()
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    for key in [
        "frames",
        "frame_max_ms",
        "frame_p99_ms",
        "poll_max_us",
        "poll_p99_us",
        "mb_per_s",
        "result",
        "requests",
        "failed",
        "connections",
    ] {
        assert!(
            values.contains_key(key),
            "{key} missing in the last line {last:?}"
        );
    }
    for key in [
        "frame_max_ms",
        "frame_p99_ms",
        "poll_max_us",
        "poll_p99_us",
        "mb_per_s",
    ] {
        let x: f64 = values[key]
            .parse()
            .unwrap_or_else(|_| panic!("{key} is not a number in {last:?}"));
        assert!(x.is_finite() && x >= 0.0, "{last}");
    }
    values
}

/// Checks a run of the built-in asset set: everything expected happened.
fn assert_asset_set_ok(out: &Output) -> std::collections::HashMap<String, String> {
    assert_eq!(
        out.code,
        Some(0),
        "stdout:\n{}\nstderr:\n{}",
        out.stdout_text(),
        out.stderr
    );
    let v = last_line_values(out);
    assert_eq!(v["result"], "Success", "{v:?}");
    // 46 assets, the slow one and the 404, which is the one failure.
    assert_eq!(v["requests"], "48", "{v:?}");
    assert_eq!(v["failed"], "1", "{v:?}");
    assert!(v["frames"].parse::<u64>().unwrap() > 0);
    let text = out.stdout_text();
    assert!(
        text.contains("content: 47 of 47 assets verified byte for byte"),
        "{text}"
    );
    assert!(
        text.contains("/assets/missing.bin: 404, as expected"),
        "{text}"
    );
    v
}

#[test]
fn game_loop_worker_thread() {
    let out = example("game_loop", &["--worker", "--max-mib", "16"]);
    let v = assert_asset_set_ok(&out);
    // Six nodes, each keeping its connection.
    let conns: u64 = v["connections"].parse().unwrap();
    assert!((1..=6).contains(&conns), "{v:?}");
}

#[test]
fn game_loop_pool_with_plot() {
    let dir = TempDir::new("game-loop").unwrap();
    let svg = dir.path().join("plot.svg");
    let out = example(
        "game_loop",
        &["--max-mib", "4", "--plot", svg.to_str().unwrap()],
    );
    let v = assert_asset_set_ok(&out);
    // One pool, keep-alive: at most the pool's 6 connections per origin for
    // 48 requests.
    let conns: u64 = v["connections"].parse().unwrap();
    assert!((1..=6).contains(&conns), "{v:?}");
    let plot = std::fs::read_to_string(&svg).expect("the plot was written");
    assert!(
        plot.contains("<svg")
            && plot.contains("poll() cost")
            && plot.contains("bytes read per frame"),
        "not the expected SVG"
    );
}

#[test]
fn game_loop_stream_and_files() {
    let out = example("game_loop", &["--stream", "--max-mib", "2"]);
    assert_asset_set_ok(&out);
    let out = example("game_loop", &["--files", "--max-mib", "2"]);
    assert_asset_set_ok(&out);
    let out = example("game_loop", &["--stream", "--files"]);
    assert_eq!(out.code, Some(2), "{}", out.stderr);
}

#[test]
fn game_loop_fetches_a_url() {
    let Some(nginx) = nginx() else { return };
    let out = example("game_loop", &["--url", &nginx.url("/1m.bin")]);
    assert_eq!(
        out.code,
        Some(0),
        "stdout:\n{}\nstderr:\n{}",
        out.stdout_text(),
        out.stderr
    );
    let v = last_line_values(&out);
    assert_eq!(v["result"], "Success");
    assert_eq!(v["requests"], "1");
    assert_eq!(v["failed"], "0");

    // The same through a worker thread, the URL given bare (as before --url).
    let out = example("game_loop", &["--worker", &nginx.url("/1m.bin")]);
    assert_eq!(out.code, Some(0), "stderr:\n{}", out.stderr);
    assert_eq!(last_line_values(&out)["result"], "Success");

    let port = free_port().unwrap();
    let out = example(
        "game_loop",
        &["--url", &format!("http://127.0.0.1:{port}/")],
    );
    assert_eq!(out.code, Some(1));
    let v = last_line_values(&out);
    assert_eq!(v["result"], "CantConnect");
    assert_eq!(v["failed"], "1");
}
