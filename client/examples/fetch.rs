//! `fetch`: a small curl-like command built on [`pollhttp::HttpRequest`].
//!
//! ```text
//! fetch URL [-X METHOD] [-H 'Name: value']... [-d DATA | --data-file PATH]
//!           [-o FILE] [--max-redirects N] [--timeout SECS] [--proxy URL]
//!           [--cacert PEM] [--insecure] [--no-gzip] [--limit BYTES] [--json]
//! ```
//!
//! - The body goes to stdout as raw bytes, or into FILE with `-o FILE`
//!   (streamed there by the library's `download_file`; `-o -` means stdout).
//! - `-d DATA` / `--data-file PATH` send a body and imply POST (as in curl,
//!   with `Content-Type: application/x-www-form-urlencoded` unless a
//!   Content-Type header is given). `-d` takes DATA literally (no `@file`).
//! - `--proxy http://host:port` is used for both http (absolute-form) and
//!   https (CONNECT tunnel) URLs.
//! - `--cacert PEM` trusts the CA certificates in PEM instead of the
//!   built-in roots; `--insecure` (`-k`) skips certificate verification.
//! - `--limit BYTES` is the body size limit (counted after decoding).
//! - `--json` prints one JSON line instead of the body: `result`, `reason`,
//!   `response_code`, `headers` (`[[name, value], ...]`), `body_bytes`,
//!   `body_sha256` (of the decoded body; of FILE's contents with `-o`),
//!   `wire_bytes`, `seconds`, `redirects`, `url` (the final URL).
//!
//! A progress bar is drawn on stderr for long downloads (a body over 1 MiB,
//! or one still running after 0.5 s), only when stderr is a terminal.
//!
//! Exit status: 0 when the response arrived (`Success`, whatever the status
//! code, as curl without `-f`), 1 for any other result, 2 for usage errors.
//!
//! The loop is the one a tool (not a game) would write: `poll()`, and when
//! nothing finished, `wait(Some(100 ms))`, which sleeps on the socket.

use std::fs::File;
use std::io::{self, IsTerminal, Read, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use pollhttp::{Completed, HttpRequest, RequestBody, RequestResult, TlsOptions};
use sha2::{Digest, Sha256};

const USAGE: &str = "\
usage: fetch URL [options]
  -X, --request METHOD   request method (default GET; POST with -d/--data-file)
  -H, --header 'N: v'    add a request header field (repeatable)
  -d, --data DATA        send DATA as the body (implies POST)
      --data-file PATH   send the contents of PATH as the body (implies POST)
  -o, --output FILE      write the body to FILE instead of stdout
      --max-redirects N  follow at most N redirects (default 8)
      --timeout SECS     fail when the whole request takes longer
      --proxy URL        http://host:port proxy for http and https URLs
      --cacert PEM       trust the CA certificate(s) in PEM
  -k, --insecure         do not verify the server certificate
      --no-gzip          do not ask for (nor decode) gzip/deflate
      --limit BYTES      fail when the body is larger than BYTES
      --json             print one JSON line describing the result
  -h, --help             show this help";

/// The parsed command line.
#[derive(Debug, Default)]
struct Args {
    url: String,
    method: Option<String>,
    headers: Vec<(String, String)>,
    data: Option<Vec<u8>>,
    data_file: Option<PathBuf>,
    output: Option<PathBuf>,
    max_redirects: Option<u32>,
    timeout: Option<Duration>,
    proxy: Option<(String, u16)>,
    cacert: Option<PathBuf>,
    insecure: bool,
    no_gzip: bool,
    limit: Option<u64>,
    json: bool,
}

fn main() -> ExitCode {
    let args = match parse_args(std::env::args().skip(1)) {
        Ok(Some(a)) => a,
        Ok(None) => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("fetch: {e}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    match run(&args) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("fetch: {e}");
            ExitCode::from(2)
        }
    }
}

/// Parses the arguments; `Ok(None)` for `--help`.
fn parse_args(mut it: impl Iterator<Item = String>) -> Result<Option<Args>, String> {
    let mut a = Args::default();
    let mut url = None;
    while let Some(arg) = it.next() {
        // `--name=value` is accepted for the long options that take a value.
        let (flag, inline) = match arg.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f.to_string(), Some(v.to_string())),
            _ => (arg.clone(), None),
        };
        let mut value = |name: &str| -> Result<String, String> {
            match inline.clone() {
                Some(v) => Ok(v),
                None => it.next().ok_or_else(|| format!("{name} needs a value")),
            }
        };
        match flag.as_str() {
            "-h" | "--help" => return Ok(None),
            "-X" | "--request" => a.method = Some(value(&flag)?),
            "-H" | "--header" => {
                let h = value(&flag)?;
                let (n, v) = h
                    .split_once(':')
                    .ok_or_else(|| format!("header {h:?} is not 'Name: value'"))?;
                a.headers.push((n.trim().to_string(), v.trim().to_string()));
            }
            "-d" | "--data" => a.data = Some(value(&flag)?.into_bytes()),
            "--data-file" => {
                a.data_file = Some(PathBuf::from(value(&flag)?));
            }
            "-o" | "--output" => {
                let o = value(&flag)?;
                a.output = (o != "-").then(|| PathBuf::from(o));
            }
            "--max-redirects" => a.max_redirects = Some(number(&flag, &value(&flag)?)?),
            "--timeout" => {
                let s: f64 = number(&flag, &value(&flag)?)?;
                a.timeout =
                    Some(Duration::try_from_secs_f64(s).map_err(|_| format!("bad --timeout {s}"))?);
            }
            "--proxy" => a.proxy = Some(parse_proxy(&value(&flag)?)?),
            "--cacert" => a.cacert = Some(PathBuf::from(value(&flag)?)),
            "-k" | "--insecure" => a.insecure = true,
            "--no-gzip" => a.no_gzip = true,
            "--limit" => a.limit = Some(number(&flag, &value(&flag)?)?),
            "--json" => a.json = true,
            s if s.starts_with('-') && s.len() > 1 => return Err(format!("unknown option {s}")),
            _ if url.is_none() => url = Some(arg),
            _ => return Err(format!("unexpected argument {arg:?} (one URL only)")),
        }
    }
    a.url = url.ok_or("no URL given")?;
    Ok(Some(a))
}

fn number<T: std::str::FromStr>(flag: &str, v: &str) -> Result<T, String> {
    v.parse()
        .map_err(|_| format!("{flag}: not a valid number: {v:?}"))
}

/// `http://host:port`, `host:port` or `host` (port 1080, as curl).
fn parse_proxy(s: &str) -> Result<(String, u16), String> {
    let with_scheme = if s.contains("://") {
        s.to_string()
    } else {
        format!("http://{s}")
    };
    let u = url::Url::parse(&with_scheme).map_err(|e| format!("bad --proxy {s:?}: {e}"))?;
    if u.scheme() != "http" {
        return Err(format!(
            "bad --proxy {s:?}: only http:// proxies are supported"
        ));
    }
    let host = u
        .host_str()
        .filter(|h| !h.is_empty())
        .ok_or_else(|| format!("bad --proxy {s:?}: no host"))?;
    let host = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_string();
    Ok((host, u.port().unwrap_or(1080)))
}

fn run(args: &Args) -> Result<ExitCode, String> {
    let mut req = HttpRequest::new();
    {
        let s = req.settings_mut();
        if let Some(n) = args.max_redirects {
            s.max_redirects = n;
        }
        s.timeout = args.timeout;
        s.accept_gzip = !args.no_gzip;
        s.body_size_limit = args.limit;
        s.download_file = args.output.clone();
        // A tool has no frame to protect: bigger reads mean fewer syscalls.
        s.download_chunk_size = 256 * 1024;
        s.poll_budget = 8 << 20;
        if let Some((host, port)) = &args.proxy {
            s.http_proxy = Some((host.clone(), *port));
            s.https_proxy = Some((host.clone(), *port));
        }
        let mut tls = match &args.cacert {
            Some(path) => {
                let pem = std::fs::read(path)
                    .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
                Some(
                    TlsOptions::with_root_pem(&pem)
                        .map_err(|e| format!("bad --cacert {}: {e}", path.display()))?,
                )
            }
            None => None,
        };
        if args.insecure {
            tls = Some(tls.unwrap_or_default().dangerous_disable_verification());
        }
        s.tls = tls;
    }
    let has_body = args.data.is_some() || args.data_file.is_some();
    // A file is streamed from disk (its size is the Content-Length), never
    // read into memory whole.
    let body = match (&args.data_file, &args.data) {
        (Some(path), _) => RequestBody::File(path.clone()),
        (None, Some(data)) => RequestBody::from(data.clone()),
        (None, None) => RequestBody::Empty,
    };
    let method = args
        .method
        .clone()
        .unwrap_or_else(|| if has_body { "POST" } else { "GET" }.to_string());
    let mut headers: Vec<(&str, &str)> = args
        .headers
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    if has_body
        && !headers
            .iter()
            .any(|(k, _)| k.eq_ignore_ascii_case("content-type"))
    {
        headers.push(("Content-Type", "application/x-www-form-urlencoded"));
    }

    let start = Instant::now();
    req.request_body(&args.url, &headers, &method, body)
        .map_err(|e| e.to_string())?;
    let mut bar: Option<ProgressBar> = None;
    let show_progress = io::stderr().is_terminal();
    let done = loop {
        if let Some(done) = req.poll() {
            break done;
        }
        if show_progress {
            update_progress(&mut bar, &req, start);
        }
        req.wait(Some(Duration::from_millis(100)));
    };
    let seconds = start.elapsed().as_secs_f64();
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }

    if done.result == RequestResult::Success {
        if let Some(path) = &args.output {
            // No body (HEAD, 204, 304): the library creates no file; curl
            // leaves an empty one.
            if !path.exists() {
                File::create(path).map_err(|e| format!("cannot create {}: {e}", path.display()))?;
            }
        }
    }
    if args.json {
        let sha = match (&args.output, done.result) {
            (Some(path), RequestResult::Success) => {
                sha256_file(path).map_err(|e| format!("cannot hash {}: {e}", path.display()))?
            }
            _ => hex(&Sha256::digest(&done.body)),
        };
        println!("{}", json_line(&done, &sha, seconds));
    } else {
        if done.result != RequestResult::Success {
            eprintln!("fetch: {}: {}", done.result, done.reason);
        }
        if args.output.is_none() && !done.body.is_empty() {
            let mut out = io::stdout().lock();
            match out.write_all(&done.body).and_then(|()| out.flush()) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::BrokenPipe => {}
                Err(e) => return Err(format!("cannot write stdout: {e}")),
            }
        }
    }
    Ok(if done.result == RequestResult::Success {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// Shows (once the download is big or slow) and advances the progress bar.
fn update_progress(bar: &mut Option<ProgressBar>, req: &HttpRequest, start: Instant) {
    let size = req.body_size();
    if bar.is_none() {
        let big = size.is_some_and(|n| n > 1 << 20);
        let slow = start.elapsed() > Duration::from_millis(500);
        if !(big || slow) {
            return;
        }
        let pb = ProgressBar::with_draw_target(size, ProgressDrawTarget::stderr());
        let template = if size.is_some() {
            "{bytes:>10}/{total_bytes} [{bar:30}] {bytes_per_sec:>12} eta {eta}"
        } else {
            "{spinner} {bytes:>10} {bytes_per_sec:>12} {elapsed}"
        };
        if let Ok(style) = ProgressStyle::with_template(template) {
            pb.set_style(style.progress_chars("=> "));
        }
        *bar = Some(pb);
    }
    if let Some(pb) = bar {
        // The length changes after a redirect, or when the head arrives.
        if pb.length() != size {
            match size {
                Some(n) => pb.set_length(n),
                None => pb.unset_length(),
            }
        }
        pb.set_position(req.downloaded_bytes());
    }
}

fn json_line(done: &Completed, sha: &str, seconds: f64) -> String {
    let headers: Vec<[String; 2]> = done
        .headers
        .iter()
        .map(|f| {
            [
                f.name().to_string(),
                String::from_utf8_lossy(f.value()).into_owned(),
            ]
        })
        .collect();
    serde_json::json!({
        "result": done.result.name(),
        "reason": done.reason,
        "response_code": done.response_code,
        "headers": headers,
        "body_bytes": done.body_bytes,
        "body_sha256": sha,
        "wire_bytes": done.wire_bytes,
        "seconds": seconds,
        "redirects": done.redirects,
        "url": done.final_url,
    })
    .to_string()
}

fn sha256_file(path: &std::path::Path) -> io::Result<String> {
    let mut f = File::open(path)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            return Ok(hex(&hasher.finalize()));
        }
        hasher.update(&buf[..n]);
    }
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}
