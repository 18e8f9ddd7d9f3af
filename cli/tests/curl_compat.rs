//! The same command line run by curl and by fetch against the same server
//! (nginx, httpbin, a scripted one): the same exit code, the same stdout
//! and the same files, after normalizing only what must differ (the
//! User-Agent, a Date a second later, a multipart boundary). Each case runs
//! in a fresh directory per tool, so `-o`/`-O`/`-J` files are compared too.

mod support;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use pollhttp_tests::httpbin::Httpbin;
use pollhttp_tests::process::{free_port, TempDir};
use pollhttp_tests::script::{ScriptServer, Step};
use serde_json::Value;
use support::{nginx, run_bounded, Output};

/// How two outputs are compared.
#[derive(Clone, Copy, Debug)]
enum Norm {
    /// Byte for byte, Date fields dropped.
    Text,
    /// httpbin's JSON echo, its User-Agent dropped (and a multipart
    /// boundary and length made equal).
    Echo,
}

struct Case {
    name: &'static str,
    args: Vec<String>,
    norm: Norm,
}

fn case(name: &'static str, norm: Norm, args: &[&str]) -> Case {
    Case {
        name,
        args: args.iter().map(|s| s.to_string()).collect(),
        norm,
    }
}

fn curl_available() -> bool {
    Command::new("curl")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

/// A run of `tool` with `args` in a fresh directory: its output and the
/// files it left there.
fn run_in_dir(tool: &str, args: &[String]) -> (Output, BTreeMap<String, Vec<u8>>) {
    let dir = TempDir::new("compat").unwrap();
    let exe = if tool == "curl" {
        "curl".to_string()
    } else {
        env!("CARGO_BIN_EXE_fetch").to_string()
    };
    let mut cmd = Command::new(exe);
    cmd.args(args).current_dir(dir.path());
    // No proxy from the environment for either.
    for v in [
        "http_proxy",
        "https_proxy",
        "all_proxy",
        "HTTPS_PROXY",
        "ALL_PROXY",
    ] {
        cmd.env_remove(v);
    }
    let out = run_bounded(cmd, Duration::from_secs(60));
    (out, files(dir.path()))
}

fn files(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.path().is_file())
        .map(|e| {
            (
                e.file_name().to_string_lossy().into_owned(),
                std::fs::read(e.path()).unwrap_or_default(),
            )
        })
        .collect()
}

fn normalize(norm: Norm, bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    match norm {
        Norm::Text => text
            .split_inclusive('\n')
            .filter(|l| !l.to_ascii_lowercase().starts_with("date:"))
            .collect(),
        Norm::Echo => {
            let Ok(mut v) = serde_json::from_str::<Value>(&text) else {
                return text.into_owned();
            };
            if let Some(h) = v.get_mut("headers").and_then(Value::as_object_mut) {
                h.remove("User-Agent");
                // Both ask for 100-continue before a body over 1 MiB (and
                // curl before one of unknown length, as `-T -`'s).
                h.remove("Expect");
                if let Some(ct) = h.get("Content-Type").and_then(Value::as_str) {
                    if let Some((before, _)) = ct.split_once("boundary=") {
                        let ct = format!("{before}boundary=B");
                        h.insert("Content-Type".into(), Value::from(ct));
                        h.remove("Content-Length");
                    }
                }
            }
            v.to_string()
        }
    }
}

/// Runs every case with both tools; panics listing the cases that differ.
/// Returns how many agreed.
fn compare(cases: &[Case]) -> usize {
    let mut differ = Vec::new();
    for c in cases {
        let (curl, curl_files) = run_in_dir("curl", &c.args);
        let (ours, our_files) = run_in_dir("fetch", &c.args);
        let curl_out = normalize(c.norm, &curl.stdout);
        let our_out = normalize(c.norm, &ours.stdout);
        let norm_files = |f: &BTreeMap<String, Vec<u8>>| -> BTreeMap<String, String> {
            f.iter()
                .map(|(k, v)| (k.clone(), normalize(c.norm, v)))
                .collect()
        };
        if curl.code != ours.code
            || curl_out != our_out
            || norm_files(&curl_files) != norm_files(&our_files)
        {
            differ.push(format!(
                "{}: {:?}\n  curl  {:?} {curl_out:?} files {:?}\n  fetch {:?} {our_out:?} files {:?}\n  fetch stderr: {}",
                c.name,
                c.args,
                curl.code,
                curl_files.keys().collect::<Vec<_>>(),
                ours.code,
                our_files.keys().collect::<Vec<_>>(),
                ours.stderr
            ));
        }
    }
    assert!(
        differ.is_empty(),
        "{} of {} cases differ from curl:\n{}",
        differ.len(),
        cases.len(),
        differ.join("\n")
    );
    eprintln!(
        "curl-compat: {} of {} cases agree",
        cases.len(),
        cases.len()
    );
    cases.len()
}

#[test]
fn same_as_curl_against_nginx() {
    if !curl_available() {
        pollhttp_tests::record_skip("curl not installed");
        return;
    }
    let Some(nginx) = nginx() else { return };
    let hello = nginx.url("/hello.txt");
    let port = nginx.http_addr().port().to_string();
    let refused = format!("http://127.0.0.1:{}/", free_port().unwrap());
    let resolve = format!("fetch.test:{port}:127.0.0.1");
    let resolved = format!("http://fetch.test:{port}/hello.txt");
    let connect_to = format!("fetch.test:80:127.0.0.1:{port}");
    let w = "%{http_code} %{num_redirects} %{size_download} %{url_effective} %{exitcode} %{method} %{http_version} %{content_type}\\n";
    let cases = vec![
        case("body", Norm::Text, &["-s", &hello]),
        case(
            "3xx without -L",
            Norm::Text,
            &["-s", &nginx.url("/redirect/chain/1")],
        ),
        case("-L", Norm::Text, &["-sL", &nginx.url("/redirect/chain/3")]),
        case(
            "-w after -L",
            Norm::Text,
            &[
                "-sL",
                "-o",
                "/dev/null",
                "-w",
                w,
                &nginx.url("/redirect/chain/2"),
            ],
        ),
        case(
            "-w redirect_url",
            Norm::Text,
            &[
                "-s",
                "-o",
                "/dev/null",
                "-w",
                "%{redirect_url}",
                &nginx.url("/redirect/chain/2"),
            ],
        ),
        case(
            "-w 404",
            Norm::Text,
            &["-s", "-o", "/dev/null", "-w", w, &nginx.url("/status/404")],
        ),
        case(
            "-f 404: 22",
            Norm::Text,
            &["-sf", &nginx.url("/status/404")],
        ),
        case(
            "--fail-with-body",
            Norm::Text,
            &["-s", "--fail-with-body", &nginx.url("/status/404")],
        ),
        case("refused: 7", Norm::Text, &["-s", &refused]),
        case(
            "-w on failure",
            Norm::Text,
            &["-s", "-w", "%{http_code} %{exitcode}", &refused],
        ),
        case(
            "--max-redirs: 47",
            Norm::Text,
            &["-sL", "--max-redirs", "1", &nginx.url("/redirect/chain/3")],
        ),
        case(
            "--max-filesize: 63",
            Norm::Text,
            &["-s", "--max-filesize", "100", &nginx.url("/1m.bin")],
        ),
        case("bad scheme: 1", Norm::Text, &["-s", "htp://127.0.0.1/"]),
        case("bad URL: 3", Norm::Text, &["-s", "http://[x"]),
        case(
            "--resolve",
            Norm::Text,
            &["-s", "--resolve", &resolve, &resolved],
        ),
        case(
            "--connect-to",
            Norm::Text,
            &[
                "-s",
                "--connect-to",
                &connect_to,
                "http://fetch.test/hello.txt",
            ],
        ),
        case(
            "-D -",
            Norm::Text,
            &["-s", "-D", "-", "-o", "/dev/null", &hello],
        ),
        case("-D file", Norm::Text, &["-s", "-D", "heads.txt", &hello]),
        case("-I", Norm::Text, &["-sI", &hello]),
        case("-i", Norm::Text, &["-si", &hello]),
        case("-i -o FILE", Norm::Text, &["-si", "-o", "a.txt", &hello]),
        case(
            "-iL -o FILE",
            Norm::Text,
            &["-siL", "-o", "a.txt", &nginx.url("/redirect/chain/2")],
        ),
        case(
            "-i -o /dev/null",
            Norm::Text,
            &["-si", "-o", "/dev/null", &hello],
        ),
        case(
            "-o -o paired",
            Norm::Text,
            &[
                "-s",
                "-o",
                "a.txt",
                "-o",
                "b.bin",
                &hello,
                &nginx.url("/1k.bin"),
            ],
        ),
        case(
            "-o then stdout",
            Norm::Text,
            &["-s", "-o", "a.txt", &hello, &hello],
        ),
        case(
            "-O -O",
            Norm::Text,
            &["-s", "-O", "-O", &hello, &nginx.url("/1k.bin")],
        ),
        case(
            "--remote-name-all",
            Norm::Text,
            &["-s", "--remote-name-all", &hello, &nginx.url("/1k.bin")],
        ),
        case("-C OFFSET", Norm::Text, &["-s", "-C", "7", &hello]),
        case(
            "gzip without --compressed",
            Norm::Text,
            &["-s", &nginx.url("/gzip/hello.txt")],
        ),
        case(
            "--compressed",
            Norm::Text,
            &["-s", "--compressed", &nginx.url("/gzip/hello.txt")],
        ),
        case(
            "-z old date",
            Norm::Text,
            &[
                "-s",
                "-w",
                "%{http_code}",
                "-z",
                "Sun, 06 Nov 1994 08:49:37 GMT",
                &hello,
            ],
        ),
        case(
            "-z future date",
            Norm::Text,
            &[
                "-s",
                "-w",
                "%{http_code}",
                "-z",
                "Fri, 01 Jan 2100 00:00:00 GMT",
                &hello,
            ],
        ),
        case(
            "--noproxy",
            Norm::Text,
            &[
                "-s",
                "-x",
                "http://127.0.0.1:9",
                "--noproxy",
                "127.0.0.1",
                &hello,
            ],
        ),
        case("-x refused: 7", Norm::Text, &["-s", "-x", &refused, &hello]),
        case(
            "-w %header",
            Norm::Text,
            &[
                "-s",
                "-o",
                "/dev/null",
                "-w",
                "%header{content-length}",
                &hello,
            ],
        ),
        case(
            "-Z",
            Norm::Text,
            &["-sZ", "-o", "a", "-o", "b", &hello, &hello],
        ),
        // Every head of a transfer, as curl prints them: each redirect's,
        // then the final one.
        case(
            "-iL: every hop's head",
            Norm::Text,
            &["-siL", &nginx.url("/redirect/chain/2")],
        ),
        case(
            "-D - -L: every hop's head",
            Norm::Text,
            &[
                "-sL",
                "-D",
                "-",
                "-o",
                "/dev/null",
                &nginx.url("/redirect/chain/3"),
            ],
        ),
        case(
            "-D file -L",
            Norm::Text,
            &["-sL", "-D", "heads.txt", &nginx.url("/redirect/chain/1")],
        ),
        case(
            "-w size_header after -L",
            Norm::Text,
            &[
                "-sL",
                "-o",
                "/dev/null",
                "-w",
                "%{size_header}",
                &nginx.url("/redirect/chain/2"),
            ],
        ),
    ];
    compare(&cases);
}

#[test]
fn same_as_curl_against_httpbin() {
    if !curl_available() {
        pollhttp_tests::record_skip("curl not installed");
        return;
    }
    let Some(httpbin) = Httpbin::try_shared() else {
        return;
    };
    let anything = httpbin.url("/anything");
    let dir = TempDir::new("compat-upload").unwrap();
    let upload = dir.path().join("up.txt");
    std::fs::write(&upload, "uploaded bytes\n").unwrap();
    let upload = upload.to_str().unwrap();
    let anything_dir = httpbin.url("/anything/dir/");
    let cd = httpbin
        .url("/response-headers?Content-Disposition=attachment%3B%20filename%3D%22named.txt%22");
    let cases = vec![
        case(
            "--json",
            Norm::Echo,
            &["-s", "--json", r#"{"a":1}"#, &anything],
        ),
        case(
            "--json twice",
            Norm::Echo,
            &["-s", "--json", r#"{"a":"#, "--json", "2}", &anything],
        ),
        case("-T", Norm::Echo, &["-s", "-T", upload, &anything]),
        case(
            "-T to a directory URL",
            Norm::Echo,
            &["-s", "-T", upload, &anything_dir],
        ),
        case(
            "-d",
            Norm::Echo,
            &["-s", "-d", "a=1", "-d", "b=2", &anything],
        ),
        case(
            "-G",
            Norm::Echo,
            &["-s", "-G", "-d", "q=x", "-d", "r=y", &anything],
        ),
        case(
            "-G with a space: 3",
            Norm::Echo,
            &["-s", "-G", "-d", "q=x y", &anything],
        ),
        case(
            "-F with a caller's multipart type",
            Norm::Echo,
            &[
                "-s",
                "-H",
                "Content-Type: multipart/form-data; charset=utf-8",
                "-F",
                "a=b",
                &anything,
            ],
        ),
        case(
            "-F file",
            Norm::Echo,
            &["-s", "-F", &format!("f=@{upload}"), &anything],
        ),
        case(
            "-u Basic",
            Norm::Echo,
            &["-s", "-u", "u:p", &httpbin.url("/basic-auth/u/p")],
        ),
        case(
            "--anyauth Basic",
            Norm::Echo,
            &[
                "-s",
                "--anyauth",
                "-u",
                "u:p",
                &httpbin.url("/basic-auth/u/p"),
            ],
        ),
        case(
            "--anyauth Digest",
            Norm::Echo,
            &[
                "-s",
                "--anyauth",
                "-u",
                "u:p",
                &httpbin.url("/digest-auth/auth/u/p"),
            ],
        ),
        case(
            "--digest",
            Norm::Echo,
            &[
                "-s",
                "--digest",
                "-u",
                "u:p",
                &httpbin.url("/digest-auth/auth/u/p"),
            ],
        ),
        case("-O -J", Norm::Echo, &["-s", "-O", "-J", &cd]),
        case(
            "-F text with a type",
            Norm::Echo,
            &["-s", "-F", "a=b;type=text/x", "-F", "c=d", &anything],
        ),
        case(
            "-F filename",
            Norm::Echo,
            &[
                "-s",
                "-F",
                &format!("f=@{upload};filename=other.txt"),
                &anything,
            ],
        ),
        case(
            "-F <file",
            Norm::Echo,
            &["-s", "-F", &format!("t=<{upload}"), &anything],
        ),
        case("-X", Norm::Echo, &["-s", "-X", "DELETE", &anything]),
        case(
            "-H",
            Norm::Echo,
            &[
                "-s",
                "-H",
                "X-A: 1",
                "-e",
                "http://r/",
                "-A",
                "agent",
                &anything,
            ],
        ),
        case(
            "-b",
            Norm::Echo,
            &["-s", "-b", "a=1; b=2", &httpbin.url("/cookies")],
        ),
        case("-f 418", Norm::Text, &["-sf", &httpbin.url("/status/418")]),
    ];
    compare(&cases);
}

#[test]
fn same_as_curl_against_scripted_servers() {
    if !curl_available() {
        pollhttp_tests::record_skip("curl not installed");
        return;
    }
    // Each server answers one connection per tool.
    let empty = ScriptServer::start(vec![vec![Step::ReadRequest, Step::Close]; 2]);
    let cut = ScriptServer::start(vec![
        vec![
            Step::ReadRequest,
            Step::write("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nshort"),
            Step::Close,
        ];
        2
    ]);
    let weird = ScriptServer::start(vec![
        vec![
            Step::ReadRequest,
            Step::write("HTTP/1.1 2000 Nope\r\n\r\n"),
            Step::Close
        ];
        2
    ]);
    let bad_field = ScriptServer::start(vec![
        vec![
            Step::ReadRequest,
            Step::write("HTTP/1.1 200 OK\r\nBad Header\r\nContent-Length: 5\r\n\r\nhello"),
            Step::Close,
        ];
        2
    ]);
    let bad_chunk = ScriptServer::start(vec![
        vec![
            Step::ReadRequest,
            Step::write("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nZZ\r\n"),
            Step::Close,
        ];
        2
    ]);
    // Answered the same way to each of `conns` connections.
    let serve = |conns: usize, answer: &str| {
        ScriptServer::start(vec![
            vec![
                Step::ReadRequest,
                Step::write(answer),
                Step::Close
            ];
            conns
        ])
    };
    let early_hints = serve(
        2,
        "HTTP/1.1 103 Early Hints\r\nLink: </s.css>; rel=preload\r\n\r\n\
         HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
    );
    let continues = serve(
        4,
        "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 102 Processing\r\n\r\n\
         HTTP/1.1 201 Created\r\nContent-Length: 3\r\n\r\nnew",
    );
    let cut_stdout = serve(
        4,
        "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nhalf of it",
    );
    let cut_chunked = serve(
        2,
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n3\r\nab",
    );
    let cut_file = serve(
        2,
        "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nsaved before the cut",
    );
    let no_reason = serve(2, "HTTP/1.1 200\r\nContent-Length: 2\r\n\r\nok");
    let url = |s: &ScriptServer| format!("http://127.0.0.1:{}/", s.port());
    let cases = vec![
        case("-i 103 then 200", Norm::Text, &["-si", &url(&early_hints)]),
        case("-i 100 and 102", Norm::Text, &["-si", &url(&continues)]),
        case(
            "-D - 100 and 102",
            Norm::Text,
            &["-s", "-D", "-", &url(&continues)],
        ),
        case(
            "cut body to stdout: 18",
            Norm::Text,
            &["-s", &url(&cut_stdout)],
        ),
        case("-i cut body: 18", Norm::Text, &["-si", &url(&cut_stdout)]),
        case(
            "cut body to a file: 18",
            Norm::Text,
            &["-s", "-o", "part.bin", &url(&cut_file)],
        ),
        case(
            "cut chunked body to stdout: 18",
            Norm::Text,
            &["-s", &url(&cut_chunked)],
        ),
        case(
            "-i no reason phrase",
            Norm::Text,
            &["-si", &url(&no_reason)],
        ),
        case("empty reply: 52", Norm::Text, &["-s", &url(&empty)]),
        case(
            "cut body: 18",
            Norm::Text,
            &["-s", "-o", "/dev/null", &url(&cut)],
        ),
        case("not HTTP: 1", Norm::Text, &["-s", &url(&weird)]),
        case("bad field: 8", Norm::Text, &["-s", &url(&bad_field)]),
        case("bad chunk: 56", Norm::Text, &["-s", &url(&bad_chunk)]),
    ];
    compare(&cases);
}

/// `-v`'s `> ` (request) and `< ` (response) lines, trimmed, the
/// User-Agent and Date lines dropped.
fn verbose_lines(stderr: &str) -> Vec<String> {
    stderr
        .lines()
        .filter(|l| l.starts_with("> ") || l.starts_with("< ") || *l == ">" || *l == "<")
        .map(|l| l.trim_end().to_string())
        .filter(|l| {
            let lower = l.to_ascii_lowercase();
            !lower.starts_with("> user-agent:") && !lower.starts_with("< date:")
        })
        .collect()
}

#[test]
fn verbose_lines_as_curl() {
    if !curl_available() {
        pollhttp_tests::record_skip("curl not installed");
        return;
    }
    let Some(nginx) = nginx() else { return };
    let Some(httpbin) = Httpbin::try_shared() else {
        return;
    };
    let cases: Vec<Vec<String>> = [
        vec!["-sv".to_string(), nginx.url("/hello.txt")],
        vec!["-sv".into(), "-I".into(), nginx.url("/hello.txt")],
        vec!["-sv".into(), nginx.url("/redirect/chain/1")],
        vec![
            "-sv".into(),
            "-d".into(),
            "a=1".into(),
            httpbin.url("/post"),
        ],
        vec![
            "-sv".into(),
            "-H".into(),
            "X-Test: 1".into(),
            "--json".into(),
            "{}".into(),
            httpbin.url("/post"),
        ],
    ]
    .into_iter()
    .collect();
    let mut differ = Vec::new();
    for args in &cases {
        let (curl, _) = run_in_dir("curl", args);
        let (ours, _) = run_in_dir("fetch", args);
        // The request's field lines in any order (curl puts its own
        // first, fetch the -H lines first); the rest exactly.
        let sorted = |mut v: Vec<String>| {
            let end = v.iter().position(|l| l == ">").unwrap_or(v.len());
            v[1..end].sort();
            v
        };
        let c = sorted(verbose_lines(&curl.stderr));
        let o = sorted(verbose_lines(&ours.stderr));
        if c != o {
            differ.push(format!("{args:?}\n  curl  {c:#?}\n  fetch {o:#?}"));
        }
    }
    assert!(differ.is_empty(), "{}", differ.join("\n"));
}
