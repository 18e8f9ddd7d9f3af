//! `fetch`: a small curl-like command built on [`pollhttp::HttpRequest`] and,
//! with `-Z`, [`pollhttp::RequestPool`].
//!
//! ```text
//! fetch URL... [-X METHOD] [-H 'Name: value']... [-d DATA | --data-file PATH]
//!           [-o FILE | -O] [--output-dir DIR] [-Z] [--parallel-max N]
//!           [--max-redirects N] [--timeout SECS] [--proxy URL]
//!           [--cacert PEM] [--insecure] [--no-gzip] [--limit BYTES] [--json]
//! ```
//!
//! - The body goes to stdout as raw bytes, or into FILE with `-o FILE`
//!   (streamed there by the library's `download_file`; `-o -` means stdout;
//!   one URL only).
//! - `-O` (`--remote-name`) saves each body under its URL's file name (the
//!   last path segment, as it is in the URL) in the current directory, or in
//!   DIR with `--output-dir DIR` (which implies `-O`; DIR is created). A URL
//!   without a file name, or two URLs with the same one, are usage errors.
//! - Several URLs run one after the other, as curl does (one `HttpRequest`,
//!   so a connection to the same origin is reused); with `-Z`
//!   (`--parallel`) they run at once through one `RequestPool`, at most
//!   `--parallel-max N` (default 50) connections at a time, in all and to
//!   one origin (curl has no per-host limit by default); the others wait in
//!   its queue.
//! - `-d DATA` / `--data-file PATH` send a body and imply POST (as in curl,
//!   with `Content-Type: application/x-www-form-urlencoded` unless a
//!   Content-Type header is given). `-d` takes DATA literally (no `@file`).
//!   With several URLs each gets the same body.
//! - `--proxy http://host:port` is used for both http (absolute-form) and
//!   https (CONNECT tunnel) URLs.
//! - `--cacert PEM` trusts the CA certificates in PEM instead of the
//!   built-in roots; `--insecure` (`-k`) skips certificate verification.
//! - `--limit BYTES` is the body size limit (counted after decoding).
//! - `--json` prints one JSON line per transfer instead of the body, as each
//!   completes: `result`, `reason`, `response_code`, `headers` (`[[name,
//!   value], ...]`), `body_bytes`, `body_sha256` (of the decoded body; of
//!   the file's contents when saved to a file), `wire_bytes`, `seconds`
//!   (from the start of the transfer; with `-Z`, from when it was queued),
//!   `redirects`, `url` (the final URL), `request_url` (the URL as given)
//!   and `file` (where the body was saved, or `null`).
//!
//! On a terminal, stderr shows a progress bar for a long download (a body
//! over 1 MiB, or one still running after 0.5 s); with `-Z`, one line per
//! running transfer (indicatif's `MultiProgress`), and a line for each that
//! ends.
//!
//! Exit status: 0 when every response arrived (`Success`, whatever the
//! status code, as curl without `-f`), 1 when any transfer ended with
//! another result, 2 for usage errors (and a request refused at once).
//!
//! The loop is the one a tool (not a game) would write: `poll()`, and when
//! nothing finished, `wait(Some(100 ms))`, which sleeps on the sockets.

use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::io::{self, IsTerminal, Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use pollhttp::{
    Completed, HttpRequest, PoolSettings, RequestBody, RequestId, RequestPool, RequestProgress,
    RequestResult, Settings, Status, TlsOptions,
};
use sha2::{Digest, Sha256};

const USAGE: &str = "\
usage: fetch URL... [options]
  -X, --request METHOD   request method (default GET; POST with -d/--data-file)
  -H, --header 'N: v'    add a request header field (repeatable)
  -d, --data DATA        send DATA as the body (implies POST)
      --data-file PATH   send the contents of PATH as the body (implies POST)
  -o, --output FILE      write the body to FILE instead of stdout (one URL)
  -O, --remote-name      save each body under its URL's file name
      --output-dir DIR   save each body under its URL's file name in DIR
  -Z, --parallel         run the URLs at once through one RequestPool
      --parallel-max N   with -Z, at most N connections at a time (default 50)
      --max-redirects N  follow at most N redirects (default 8)
      --timeout SECS     fail a transfer that takes longer
      --proxy URL        http://host:port proxy for http and https URLs
      --cacert PEM       trust the CA certificate(s) in PEM
  -k, --insecure         do not verify the server certificate
      --no-gzip          do not ask for (nor decode) gzip/deflate
      --limit BYTES      fail when the body is larger than BYTES
      --json             print one JSON line per transfer describing it
  -h, --help             show this help";

/// The parsed command line.
#[derive(Debug)]
struct Args {
    urls: Vec<String>,
    method: Option<String>,
    headers: Vec<(String, String)>,
    data: Option<Vec<u8>>,
    data_file: Option<PathBuf>,
    output: Option<PathBuf>,
    remote_name: bool,
    output_dir: Option<PathBuf>,
    parallel: bool,
    parallel_max: usize,
    max_redirects: Option<u32>,
    timeout: Option<Duration>,
    proxy: Option<(String, u16)>,
    cacert: Option<PathBuf>,
    insecure: bool,
    no_gzip: bool,
    limit: Option<u64>,
    json: bool,
}

impl Default for Args {
    fn default() -> Args {
        Args {
            urls: Vec::new(),
            method: None,
            headers: Vec::new(),
            data: None,
            data_file: None,
            output: None,
            remote_name: false,
            output_dir: None,
            parallel: false,
            parallel_max: 50,
            max_redirects: None,
            timeout: None,
            proxy: None,
            cacert: None,
            insecure: false,
            no_gzip: false,
            limit: None,
            json: false,
        }
    }
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
            "-O" | "--remote-name" => a.remote_name = true,
            "--output-dir" => a.output_dir = Some(PathBuf::from(value(&flag)?)),
            "-Z" | "--parallel" => a.parallel = true,
            "--parallel-max" => {
                a.parallel_max = number::<usize>(&flag, &value(&flag)?)?;
                if a.parallel_max == 0 {
                    return Err("--parallel-max must be at least 1".to_string());
                }
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
            _ => a.urls.push(arg),
        }
    }
    if a.urls.is_empty() {
        return Err("no URL given".to_string());
    }
    if a.output_dir.is_some() {
        a.remote_name = true;
    }
    if a.output.is_some() && a.remote_name {
        return Err("-o and -O/--output-dir do not go together".to_string());
    }
    if a.output.is_some() && a.urls.len() > 1 {
        return Err("-o FILE takes one URL; use -O or --output-dir DIR for several".to_string());
    }
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

/// The file name `-O` saves `url` under: its last path segment, as curl
/// takes it (not percent-decoded).
fn remote_name(url: &str) -> Result<String, String> {
    let u = url::Url::parse(url).map_err(|e| format!("bad URL {url:?}: {e}"))?;
    let name = u
        .path_segments()
        .and_then(|mut s| s.next_back())
        .unwrap_or("");
    if name.is_empty() || name == "." || name == ".." {
        return Err(format!("{url}: no file name in the URL to save it under"));
    }
    Ok(name.to_string())
}

/// One URL and where its body goes.
struct Transfer {
    url: String,
    /// `-o FILE`, or `-O`'s file: `None` for stdout.
    file: Option<PathBuf>,
    /// Short name for progress lines.
    label: String,
}

fn transfers(args: &Args) -> Result<Vec<Transfer>, String> {
    let mut names = HashSet::new();
    args.urls
        .iter()
        .map(|url| {
            let file = if args.remote_name {
                let name = remote_name(url)?;
                if !names.insert(name.clone()) {
                    return Err(format!("two URLs would be saved as {name}"));
                }
                Some(match &args.output_dir {
                    Some(dir) => dir.join(name),
                    None => PathBuf::from(name),
                })
            } else {
                args.output.clone()
            };
            let label = match &file {
                Some(f) => f
                    .file_name()
                    .map_or_else(|| url.clone(), |n| n.to_string_lossy().into_owned()),
                None => url.clone(),
            };
            Ok(Transfer {
                url: url.clone(),
                file,
                label,
            })
        })
        .collect()
}

/// The per-request settings every transfer shares (its file aside).
fn settings(args: &Args) -> Result<Settings, String> {
    let mut s = Settings::default();
    if let Some(n) = args.max_redirects {
        s.max_redirects = n;
    }
    s.timeout = args.timeout;
    s.accept_gzip = !args.no_gzip;
    s.body_size_limit = args.limit;
    // A tool has no frame to protect: bigger reads mean fewer syscalls.
    s.download_chunk_size = 256 * 1024;
    s.poll_budget = 8 << 20;
    if let Some((host, port)) = &args.proxy {
        s.http_proxy = Some((host.clone(), *port));
        s.https_proxy = Some((host.clone(), *port));
    }
    let mut tls = match &args.cacert {
        Some(path) => {
            let pem =
                std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
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
    Ok(s)
}

/// What every transfer sends: method, header fields, body.
struct Outgoing {
    method: String,
    headers: Vec<(String, String)>,
    data: Option<bytes::Bytes>,
    data_file: Option<PathBuf>,
}

impl Outgoing {
    fn new(args: &Args) -> Outgoing {
        let has_body = args.data.is_some() || args.data_file.is_some();
        let method = args
            .method
            .clone()
            .unwrap_or_else(|| if has_body { "POST" } else { "GET" }.to_string());
        let mut headers = args.headers.clone();
        if has_body
            && !headers
                .iter()
                .any(|(k, _)| k.eq_ignore_ascii_case("content-type"))
        {
            headers.push((
                "Content-Type".to_string(),
                "application/x-www-form-urlencoded".to_string(),
            ));
        }
        Outgoing {
            method,
            headers,
            data: args.data.clone().map(bytes::Bytes::from),
            data_file: args.data_file.clone(),
        }
    }

    fn headers(&self) -> Vec<(&str, &str)> {
        self.headers
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect()
    }

    /// The body, once per request. A file is streamed from disk (its size is
    /// the Content-Length), never read into memory whole.
    fn body(&self) -> RequestBody {
        match (&self.data_file, &self.data) {
            (Some(path), _) => RequestBody::File(path.clone()),
            (None, Some(data)) => RequestBody::Bytes(data.clone()),
            (None, None) => RequestBody::Empty,
        }
    }
}

fn run(args: &Args) -> Result<ExitCode, String> {
    let transfers = transfers(args)?;
    if let Some(dir) = &args.output_dir {
        std::fs::create_dir_all(dir)
            .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    }
    let settings = settings(args)?;
    let outgoing = Outgoing::new(args);
    let all_ok = if args.parallel {
        run_parallel(args, &transfers, &settings, &outgoing)?
    } else {
        run_sequential(args, &transfers, &settings, &outgoing)?
    };
    Ok(if all_ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// One transfer after another, on one `HttpRequest` (a kept connection
/// carries the next request to the same origin).
fn run_sequential(
    args: &Args,
    transfers: &[Transfer],
    settings: &Settings,
    outgoing: &Outgoing,
) -> Result<bool, String> {
    let mut req = HttpRequest::new();
    let show_progress = io::stderr().is_terminal();
    let mut all_ok = true;
    for t in transfers {
        *req.settings_mut() = Settings {
            download_file: t.file.clone(),
            ..settings.clone()
        };
        let start = Instant::now();
        req.request_body(
            &t.url,
            &outgoing.headers(),
            &outgoing.method,
            outgoing.body(),
        )
        .map_err(|e| format!("{}: {e}", t.url))?;
        let mut bar: Option<ProgressBar> = None;
        let done = loop {
            if let Some(done) = req.poll() {
                break done;
            }
            if show_progress {
                update_progress(&mut bar, req.body_size(), req.downloaded_bytes(), start);
            }
            req.wait(Some(Duration::from_millis(100)));
        };
        if let Some(bar) = bar {
            bar.finish_and_clear();
        }
        all_ok &= finish(args, t, &done, start.elapsed().as_secs_f64(), None)?;
    }
    Ok(all_ok)
}

/// Every transfer at once through one `RequestPool`.
fn run_parallel(
    args: &Args,
    transfers: &[Transfer],
    settings: &Settings,
    outgoing: &Outgoing,
) -> Result<bool, String> {
    let n = args.parallel_max;
    let mut pool = RequestPool::with_settings(PoolSettings {
        max_connections: n,
        max_connections_per_origin: n,
        max_idle: n,
        max_idle_per_origin: n,
        // A tool has no frame to protect.
        time_budget: Duration::from_millis(50),
        byte_budget: 64 << 20,
        ..PoolSettings::default()
    })
    .map_err(|e| format!("cannot start a pool: {e}"))?;
    let start = Instant::now();
    let mut running: HashMap<RequestId, usize> = HashMap::new();
    for (i, t) in transfers.iter().enumerate() {
        let s = Settings {
            download_file: t.file.clone(),
            ..settings.clone()
        };
        let id = pool
            .request(
                &t.url,
                &outgoing.headers(),
                &outgoing.method,
                outgoing.body(),
                &s,
            )
            .map_err(|e| format!("{}: {e}", t.url))?;
        running.insert(id, i);
    }
    let mut bars = Bars::new(io::stderr().is_terminal());
    let mut all_ok = true;
    while !running.is_empty() {
        pool.poll();
        while let Some((id, done)) = pool.poll_completed() {
            let Some(i) = running.remove(&id) else {
                continue;
            };
            let t = &transfers[i];
            bars.end(id, t, &done);
            all_ok &= finish(
                args,
                t,
                &done,
                start.elapsed().as_secs_f64(),
                bars.multi.as_ref(),
            )?;
        }
        for (&id, &i) in &running {
            if let Some(p) = pool.progress(id) {
                bars.update(id, &transfers[i], p);
            }
        }
        if !running.is_empty() {
            pool.wait(Some(Duration::from_millis(100)));
        }
    }
    Ok(all_ok)
}

/// `-Z` on a terminal: a line per running transfer, and one for each that
/// ends.
struct Bars {
    multi: Option<MultiProgress>,
    bars: HashMap<RequestId, ProgressBar>,
}

impl Bars {
    fn new(tty: bool) -> Bars {
        Bars {
            multi: tty.then(|| MultiProgress::with_draw_target(ProgressDrawTarget::stderr())),
            bars: HashMap::new(),
        }
    }

    fn update(&mut self, id: RequestId, t: &Transfer, p: RequestProgress) {
        let Some(multi) = &self.multi else { return };
        // A transfer still waiting for a connection has no line yet.
        if p.status == Status::Disconnected && p.downloaded == 0 {
            return;
        }
        let style = |sized: bool| {
            let template = if sized {
                "{prefix:32} {bytes:>10}/{total_bytes:10} [{bar:30}] {bytes_per_sec:>12} {msg}"
            } else {
                "{prefix:32} {bytes:>10} {spinner} {bytes_per_sec:>12} {msg}"
            };
            ProgressStyle::with_template(template).map(|s| s.progress_chars("=> "))
        };
        let pb = self.bars.entry(id).or_insert_with(|| {
            let pb = multi.add(ProgressBar::no_length());
            if let Ok(s) = style(false) {
                pb.set_style(s);
            }
            pb.set_prefix(short(&t.label, 32));
            pb
        });
        // The length is known once the head arrives (and changes after a
        // redirect).
        if pb.length() != p.body_size {
            if let Ok(s) = style(p.body_size.is_some()) {
                pb.set_style(s);
            }
            match p.body_size {
                Some(n) => pb.set_length(n),
                None => pb.unset_length(),
            }
        }
        pb.set_message(format!("{:?}", p.status));
        pb.set_position(p.downloaded);
    }

    fn end(&mut self, id: RequestId, t: &Transfer, done: &Completed) {
        let Some(multi) = &self.multi else { return };
        if let Some(pb) = self.bars.remove(&id) {
            pb.finish_and_clear();
            multi.remove(&pb);
        }
        let what = if done.result == RequestResult::Success {
            format!(
                "HTTP {} {}",
                done.response_code,
                human_bytes(done.body_bytes)
            )
        } else {
            format!("{}: {}", done.result, done.reason)
        };
        let _ = multi.println(format!("{} {what}", short(&t.label, 32)));
    }
}

fn short(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        return s.to_string();
    }
    let tail: String = s
        .chars()
        .rev()
        .take(n - 1)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    format!("…{tail}")
}

fn human_bytes(n: u64) -> String {
    match n {
        n if n >= 1 << 20 => format!("{:.1} MiB", n as f64 / (1 << 20) as f64),
        n if n >= 1 << 10 => format!("{:.1} KiB", n as f64 / 1024.0),
        n => format!("{n} B"),
    }
}

/// After a transfer: the empty file curl would leave, then the JSON line, or
/// the body on stdout and the failure on stderr. Returns whether it was a
/// `Success`.
fn finish(
    args: &Args,
    t: &Transfer,
    done: &Completed,
    seconds: f64,
    multi: Option<&MultiProgress>,
) -> Result<bool, String> {
    let ok = done.result == RequestResult::Success;
    if ok {
        if let Some(path) = &t.file {
            // No body (HEAD, 204, 304): the library creates no file; curl
            // leaves an empty one.
            if !path.exists() {
                File::create(path).map_err(|e| format!("cannot create {}: {e}", path.display()))?;
            }
        }
    }
    // Output goes around the progress lines, not through them.
    let print = |f: &mut dyn FnMut() -> Result<(), String>| match multi {
        Some(m) => m.suspend(f),
        None => f(),
    };
    if args.json {
        let sha = match (&t.file, ok) {
            (Some(path), true) => {
                sha256_file(path).map_err(|e| format!("cannot hash {}: {e}", path.display()))?
            }
            _ => hex(&Sha256::digest(&done.body)),
        };
        let line = json_line(t, done, &sha, seconds);
        print(&mut || {
            let mut out = io::stdout().lock();
            writeln!(out, "{line}")
                .and_then(|()| out.flush())
                .or_else(ignore_broken_pipe)
        })?;
    } else {
        // (With progress lines, the transfer's line said it already.)
        if !ok && multi.is_none() {
            let url = if args.urls.len() > 1 {
                format!("{}: ", t.url)
            } else {
                String::new()
            };
            eprintln!("fetch: {url}{}: {}", done.result, done.reason);
        }
        if t.file.is_none() && !done.body.is_empty() {
            print(&mut || {
                let mut out = io::stdout().lock();
                out.write_all(&done.body)
                    .and_then(|()| out.flush())
                    .or_else(ignore_broken_pipe)
            })?;
        }
    }
    Ok(ok)
}

fn ignore_broken_pipe(e: io::Error) -> Result<(), String> {
    if e.kind() == io::ErrorKind::BrokenPipe {
        Ok(())
    } else {
        Err(format!("cannot write stdout: {e}"))
    }
}

/// Shows (once the download is big or slow) and advances the progress bar.
fn update_progress(bar: &mut Option<ProgressBar>, size: Option<u64>, got: u64, start: Instant) {
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
        pb.set_position(got);
    }
}

fn json_line(t: &Transfer, done: &Completed, sha: &str, seconds: f64) -> String {
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
        "request_url": t.url,
        "file": t.file.as_ref().map(|p| p.display().to_string()),
    })
    .to_string()
}

fn sha256_file(path: &Path) -> io::Result<String> {
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
