//! `fetch_bench`: issue #4's speed figures, side by side in one run.
//!
//! ```text
//! fetch_bench run [--rounds N] [--requests N] [--only download|requests|game]
//! fetch_bench ureq-download URL FILE      (ureq 3, 64 KiB reads into FILE)
//! fetch_bench pollhttp-requests URL N     (HttpRequest: a fresh connection each)
//! fetch_bench client-keepalive URL N      (HttpClient: one kept-alive connection)
//! fetch_bench ureq-requests URL N         (ureq 3 agent: kept-alive)
//! ```
//!
//! `run` starts its own nginx (1 GiB sparse `/big.bin`, `/hello.txt`) and
//! httpbin (gunicorn from `$POLLHTTP_VENV` or `<workspace>/.ci-venv`) on
//! 127.0.0.1, pinned to CPU core 1 with `taskset -c 1`; every client runs
//! pinned to core 0 under `/usr/bin/time -f '%e %U %S %M'`, which gives the
//! client's user + system CPU seconds and peak RSS (wall time is measured
//! here). Rounds are interleaved (each round runs every client once, the
//! order rotating), and ratios are taken inside each round.
//!
//! 1. Download of the 1 GiB file into a file: `fetch -o FILE` (the release
//!    build of the `pollhttp-cli` crate's `fetch` binary) vs `curl -s -o FILE` vs
//!    `fetch_bench ureq-download`. Figure: client CPU seconds per GiB.
//! 2. Sequential requests to httpbin `/get`: curl (one invocation, a `-K`
//!    config with N `url`/`output = /dev/null` pairs; curl keeps the
//!    connection alive), pollhttp's `HttpClient` with keep-alive,
//!    `HttpRequest` in a loop (a fresh connection per request, like Godot's
//!    HTTPRequest), and ureq with keep-alive. Figure: requests per second.
//!    The same against nginx `/hello.txt`, where the server is not the
//!    bottleneck.
//! 3. The `game_loop` example (release) twice on its built-in 256 MiB
//!    loopback asset (not pinned: its server is a thread of its own
//!    process), once `--inline`, and once on nginx's 1 GiB pinned to core 0,
//!    compared with fetch's MB/s on that same file.
//!
//! Build first: `cargo build --release -p pollhttp --examples`,
//! `cargo build --release -p pollhttp-cli` and
//! `cargo build --release -p pollhttp-benches --bin fetch_bench`; `fetch` is
//! looked up next to this binary (`<target>/release/fetch`) and `game_loop`
//! in `<target>/release/examples`, or given with `--fetch PATH` and
//! `--game-loop PATH`.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::fs::{self, File};
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use pollhttp::{HttpClient, HttpRequest, RequestResult, Status};

const GIB: u64 = 1 << 30;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let strs: Vec<&str> = args.iter().map(String::as_str).collect();
    let r = match strs.as_slice() {
        ["ureq-download", url, file] => ureq_download(url, Path::new(file)),
        ["pollhttp-requests", url, n] => parse_n(n).and_then(|n| pollhttp_requests(url, n)),
        ["client-keepalive", url, n] => parse_n(n).and_then(|n| client_keepalive(url, n)),
        ["ureq-requests", url, n] => parse_n(n).and_then(|n| ureq_requests(url, n)),
        ["run", rest @ ..] => run(rest),
        _ => Err(format!(
            "usage: fetch_bench run [--rounds N] [--requests N] [--only download|requests|game] \
             [--fetch PATH] [--game-loop PATH]\n\
             \x20      fetch_bench ureq-download URL FILE\n\
             \x20      fetch_bench (pollhttp-requests|client-keepalive|ureq-requests) URL N\n\
             got: {strs:?}"
        )),
    };
    match r {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("fetch_bench: {e}");
            ExitCode::FAILURE
        }
    }
}

fn parse_n(n: &str) -> Result<u32, String> {
    n.parse().map_err(|_| format!("not a count: {n}"))
}

// ------------------------------------------------------------ client programs

/// A tiny blocking download with ureq 3: 64 KiB reads, each written to FILE.
fn ureq_download(url: &str, path: &Path) -> Result<(), String> {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let resp = agent.get(url).call().map_err(|e| e.to_string())?;
    let status = resp.status().as_u16();
    let mut reader = resp.into_body().into_reader();
    let mut file = File::create(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut buf = vec![0u8; 64 * 1024];
    let mut total = 0u64;
    loop {
        let n = reader.read(&mut buf).map_err(|e| e.to_string())?;
        if n == 0 {
            break;
        }
        file.write_all(&buf[..n]).map_err(|e| e.to_string())?;
        total += n as u64;
    }
    println!("status={status} bytes={total}");
    Ok(())
}

/// N requests with `HttpRequest`, one after the other (a fresh connection
/// each, as Godot's HTTPRequest).
fn pollhttp_requests(url: &str, n: u32) -> Result<(), String> {
    let mut req = HttpRequest::new();
    let mut bytes = 0u64;
    for i in 0..n {
        req.request(url, &[], "GET", "")
            .map_err(|e| e.to_string())?;
        let done = loop {
            if let Some(done) = req.poll() {
                break done;
            }
            req.wait(Some(Duration::from_millis(100)));
        };
        if done.result != RequestResult::Success || done.response_code() != 200 {
            return Err(format!(
                "request {i}: {} {} {}",
                done.result,
                done.response_code(),
                done.reason
            ));
        }
        bytes += done.body_bytes;
    }
    println!("requests={n} body_bytes={bytes}");
    Ok(())
}

/// N requests on one kept-alive `HttpClient` connection (reconnecting only
/// if the server closes it).
fn client_keepalive(url: &str, n: u32) -> Result<(), String> {
    let u = PlainUrl::parse(url)?;
    let mut c = HttpClient::new().map_err(|e| e.to_string())?;
    let tick = Some(Duration::from_millis(100));
    let mut bytes = 0u64;
    let mut connects = 0u32;
    let headers: &[(&str, &str)] = &[];
    for i in 0..n {
        if c.status() != Status::Connected {
            c.connect_to_host(&u.host, Some(u.port), false)
                .map_err(|e| e.to_string())?;
            connects += 1;
            loop {
                match c.poll() {
                    Status::Resolving | Status::Connecting => {
                        c.wait(tick);
                    }
                    Status::Connected => break,
                    s => return Err(format!("connect: {s:?} {:?}", c.failure())),
                }
            }
        }
        c.request("GET", &u.path, headers, b"")
            .map_err(|e| e.to_string())?;
        loop {
            match c.poll() {
                Status::Requesting => {
                    c.wait(tick);
                }
                Status::Body => {
                    while let Some(chunk) = c.read_response_body_chunk() {
                        bytes += chunk.len() as u64;
                    }
                    if c.status() == Status::Body {
                        c.wait(tick);
                    }
                }
                Status::Connected | Status::Disconnected => break,
                s => return Err(format!("request {i}: {s:?} {:?}", c.failure())),
            }
        }
        if c.response_code() != 200 {
            return Err(format!("request {i}: status {}", c.response_code()));
        }
    }
    println!("requests={n} connections={connects} body_bytes={bytes}");
    Ok(())
}

/// N requests with a ureq 3 agent (it keeps the connection alive).
fn ureq_requests(url: &str, n: u32) -> Result<(), String> {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let mut bytes = 0u64;
    for i in 0..n {
        let resp = agent
            .get(url)
            .call()
            .map_err(|e| format!("request {i}: {e}"))?;
        if resp.status() != 200 {
            return Err(format!("request {i}: status {}", resp.status()));
        }
        bytes += resp
            .into_body()
            .read_to_vec()
            .map_err(|e| e.to_string())?
            .len() as u64;
    }
    println!("requests={n} body_bytes={bytes}");
    Ok(())
}

/// `http://host:port/path` (plain HTTP, IPv4 or name).
struct PlainUrl {
    host: String,
    port: u16,
    path: String,
}

impl PlainUrl {
    fn parse(s: &str) -> Result<PlainUrl, String> {
        let rest = s
            .strip_prefix("http://")
            .ok_or_else(|| format!("not an http:// URL: {s}"))?;
        let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
        let (host, port) = match authority.rsplit_once(':') {
            Some((h, p)) => (h, p.parse().map_err(|_| format!("bad port in {s}"))?),
            None => (authority, 80),
        };
        Ok(PlainUrl {
            host: host.to_string(),
            port,
            path: if path.is_empty() {
                "/".into()
            } else {
                path.to_string()
            },
        })
    }
}

// ------------------------------------------------------------ servers

/// A server process, stopped (TERM, then KILL) on drop.
struct Server {
    name: &'static str,
    child: Child,
}

impl Drop for Server {
    fn drop(&mut self) {
        let pid = self.child.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        let deadline = Instant::now() + Duration::from_secs(3);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        eprintln!(
            "fetch_bench: {} did not stop on TERM; killing it",
            self.name
        );
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A directory removed on drop.
struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

fn free_port() -> Result<u16, String> {
    let l = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).map_err(|e| e.to_string())?;
    Ok(l.local_addr().map_err(|e| e.to_string())?.port())
}

/// `GET path` over a fresh connection; whether the answer starts with `200`.
fn probe(port: u16, path: &str) -> bool {
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let Ok(mut s) = TcpStream::connect_timeout(&addr, Duration::from_millis(500)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    let req = format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
    if s.write_all(req.as_bytes()).is_err() {
        return false;
    }
    let mut head = [0u8; 12];
    s.read_exact(&mut head).is_ok() && head.starts_with(b"HTTP/1.1 200")
}

fn wait_ready(server: &mut Server, port: u16, path: &str, limit: Duration) -> Result<(), String> {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if let Ok(Some(st)) = server.child.try_wait() {
            return Err(format!("{} exited at start-up: {st}", server.name));
        }
        if probe(port, path) {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Err(format!(
        "{} did not answer {path} within {limit:?}",
        server.name
    ))
}

fn start_nginx(dir: &Path) -> Result<(Server, u16), String> {
    let docroot = dir.join("html");
    fs::create_dir_all(&docroot).map_err(|e| e.to_string())?;
    fs::write(docroot.join("hello.txt"), "Hello, world!").map_err(|e| e.to_string())?;
    File::create(docroot.join("big.bin"))
        .and_then(|f| f.set_len(GIB))
        .map_err(|e| e.to_string())?;
    let port = free_port()?;
    let p = dir.display();
    let conf = format!(
        "daemon off;\nmaster_process off;\nworker_processes 1;\npid {p}/nginx.pid;\nerror_log {p}/error.log warn;\n\
         events {{ worker_connections 1024; }}\n\
         http {{\n  default_type application/octet-stream;\n  access_log off;\n  sendfile on;\n  tcp_nopush on;\n\
         \x20 keepalive_requests 1000000;\n  keepalive_timeout 60s;\n\
         \x20 client_body_temp_path {p}/cbt;\n  proxy_temp_path {p}/pt;\n  fastcgi_temp_path {p}/ft;\n\
         \x20 uwsgi_temp_path {p}/ut;\n  scgi_temp_path {p}/st;\n\
         \x20 server {{ listen 127.0.0.1:{port}; root {}; }}\n}}\n",
        docroot.display()
    );
    fs::write(dir.join("nginx.conf"), conf).map_err(|e| e.to_string())?;
    let child = Command::new("taskset")
        .args(["-c", "1", "/usr/sbin/nginx", "-p"])
        .arg(format!("{p}/"))
        .arg("-c")
        .arg(dir.join("nginx.conf"))
        .arg("-e")
        .arg(dir.join("error.log"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot start nginx: {e}"))?;
    let mut server = Server {
        name: "nginx",
        child,
    };
    wait_ready(&mut server, port, "/hello.txt", Duration::from_secs(5))?;
    Ok((server, port))
}

fn start_httpbin(dir: &Path) -> Result<(Server, u16), String> {
    let venv = match std::env::var_os("POLLHTTP_VENV") {
        Some(v) if !v.is_empty() => PathBuf::from(v),
        _ => Path::new(env!("CARGO_MANIFEST_DIR")).join("../.ci-venv"),
    };
    let gunicorn = venv.join("bin/gunicorn");
    if !gunicorn.is_file() {
        return Err(format!(
            "{} not found: run .ci/install-deps.sh",
            gunicorn.display()
        ));
    }
    let port = free_port()?;
    let log = File::create(dir.join("gunicorn.log")).map_err(|e| e.to_string())?;
    let child = Command::new("taskset")
        .args(["-c", "1"])
        .arg(&gunicorn)
        .args([
            "-b",
            &format!("127.0.0.1:{port}"),
            "-k",
            "gthread",
            "--threads",
            "8",
            "-w",
            "1",
        ])
        .args([
            "--keep-alive",
            "30",
            "--graceful-timeout",
            "2",
            "--worker-tmp-dir",
        ])
        .arg(dir)
        .arg("httpbin:app")
        .current_dir(dir)
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::from(log.try_clone().map_err(|e| e.to_string())?))
        .stderr(Stdio::from(log))
        .spawn()
        .map_err(|e| format!("cannot start gunicorn: {e}"))?;
    let mut server = Server {
        name: "gunicorn",
        child,
    };
    wait_ready(&mut server, port, "/get", Duration::from_secs(30))?;
    Ok((server, port))
}

// ------------------------------------------------------------ measuring

/// One measured client run.
#[derive(Debug, Clone, Copy, Default)]
struct Sample {
    wall: f64,
    user: f64,
    sys: f64,
    max_rss_kib: u64,
}

impl Sample {
    fn cpu(&self) -> f64 {
        self.user + self.sys
    }
}

/// Runs `argv` pinned to core 0 under `/usr/bin/time`; fails unless it
/// exits 0. Returns the sample and the command's stdout.
fn measure(argv: &[String], scratch: &Path, pin: bool) -> Result<(Sample, String), String> {
    let timefile = scratch.join("time.txt");
    let mut cmd = Command::new("/usr/bin/time");
    cmd.args(["-f", "%e %U %S %M", "-o"]).arg(&timefile);
    if pin {
        cmd.args(["taskset", "-c", "0"]);
    }
    cmd.args(argv)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let start = Instant::now();
    let out = cmd
        .output()
        .map_err(|e| format!("cannot run {argv:?}: {e}"))?;
    let wall = start.elapsed().as_secs_f64();
    if !out.status.success() {
        return Err(format!(
            "{argv:?} failed ({}):\n{}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    let t = fs::read_to_string(&timefile).map_err(|e| e.to_string())?;
    let f: Vec<&str> = t.split_whitespace().collect();
    let num = |i: usize| {
        f.get(i)
            .and_then(|x| x.parse::<f64>().ok())
            .ok_or_else(|| format!("bad time output: {t:?}"))
    };
    let sample = Sample {
        wall,
        user: num(1)?,
        sys: num(2)?,
        max_rss_kib: num(3)? as u64,
    };
    Ok((sample, String::from_utf8_lossy(&out.stdout).into_owned()))
}

fn mean(v: &[f64]) -> f64 {
    if v.is_empty() {
        0.0
    } else {
        v.iter().sum::<f64>() / v.len() as f64
    }
}

fn min_max(v: &[f64]) -> (f64, f64) {
    v.iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &x| {
            (lo.min(x), hi.max(x))
        })
}

struct Options {
    rounds: usize,
    requests: u32,
    only: Option<String>,
    fetch: PathBuf,
    game_loop: PathBuf,
}

fn run(args: &[&str]) -> Result<(), String> {
    let here = std::env::current_exe().map_err(|e| e.to_string())?;
    let bin_dir = here.parent().unwrap_or(Path::new(".")).to_path_buf();
    let mut o = Options {
        rounds: 3,
        requests: 1000,
        only: None,
        fetch: bin_dir.join("fetch"),
        game_loop: bin_dir.join("examples/game_loop"),
    };
    let mut it = args.iter();
    while let Some(&a) = it.next() {
        let mut v = || {
            it.next()
                .copied()
                .ok_or_else(|| format!("{a} needs a value"))
        };
        match a {
            "--rounds" => o.rounds = v()?.parse().map_err(|_| "bad --rounds")?,
            "--requests" => o.requests = v()?.parse().map_err(|_| "bad --requests")?,
            "--only" => o.only = Some(v()?.to_string()),
            "--fetch" => o.fetch = PathBuf::from(v()?),
            "--game-loop" => o.game_loop = PathBuf::from(v()?),
            _ => return Err(format!("unknown option {a}")),
        }
    }
    for (name, p) in [("fetch", &o.fetch), ("game_loop", &o.game_loop)] {
        if !p.is_file() {
            return Err(format!(
                "{name} not found at {}: run `cargo build --release -p pollhttp-cli -p pollhttp \
                 --bins --examples` (with the same CARGO_TARGET_DIR) or pass --{}",
                p.display(),
                name.replace('_', "-")
            ));
        }
    }
    if here.components().any(|c| c.as_os_str() == "debug") {
        eprintln!("fetch_bench: warning: this is a debug build; use --release for figures");
    }
    let want = |part: &str| o.only.as_deref().is_none_or(|x| x == part);

    let dir = TempDir(std::env::temp_dir().join(format!("fetch-bench-{}", std::process::id())));
    fs::create_dir_all(&dir.0).map_err(|e| e.to_string())?;
    let (nginx, nginx_port) = start_nginx(&dir.0)?;
    println!("# fetch_bench: servers pinned to core 1 (taskset -c 1), clients pinned to core 0 (taskset -c 0)");
    println!(
        "# nginx on 127.0.0.1:{nginx_port} (pid {})",
        nginx.child.id()
    );
    let mut summary = String::new();
    let mut fetch_mbps = None;
    if want("download") {
        fetch_mbps = Some(bench_download(&o, &dir.0, nginx_port, &mut summary)?);
    }
    if want("requests") {
        let (httpbin, hb_port) = start_httpbin(&dir.0)?;
        println!(
            "# httpbin (gunicorn gthread) on 127.0.0.1:{hb_port} (pid {})",
            httpbin.child.id()
        );
        bench_requests(
            &o,
            &dir.0,
            "httpbin /get",
            &format!("http://127.0.0.1:{hb_port}/get"),
            &mut summary,
        )?;
        drop(httpbin);
        bench_requests(
            &o,
            &dir.0,
            "nginx /hello.txt",
            &format!("http://127.0.0.1:{nginx_port}/hello.txt"),
            &mut summary,
        )?;
    }
    if want("game") {
        bench_game(&o, &dir.0, nginx_port, fetch_mbps, &mut summary)?;
    }
    drop(nginx);
    println!("\n## summary\n{summary}");
    Ok(())
}

fn bench_download(o: &Options, dir: &Path, port: u16, summary: &mut String) -> Result<f64, String> {
    let url = format!("http://127.0.0.1:{port}/big.bin");
    let file = dir.join("download.bin");
    let f = file.display().to_string();
    let me = std::env::current_exe()
        .map_err(|e| e.to_string())?
        .display()
        .to_string();
    let tools: [(&str, Vec<String>); 3] = [
        (
            "fetch",
            vec![
                o.fetch.display().to_string(),
                "-o".into(),
                f.clone(),
                url.clone(),
            ],
        ),
        (
            "curl",
            vec![
                "curl".into(),
                "-s".into(),
                "-o".into(),
                f.clone(),
                url.clone(),
            ],
        ),
        (
            "ureq",
            vec![me, "ureq-download".into(), url.clone(), f.clone()],
        ),
    ];
    println!("\n## 1 GiB download into a file ({url})");
    // Warm nginx's page cache (and the sparse file's zero pages).
    let _ = Command::new("curl")
        .args(["-s", "-o", "/dev/null", &url])
        .status();
    let mut per_tool: HashMap<&str, Vec<Sample>> = HashMap::new();
    let mut ratios: HashMap<&str, Vec<f64>> = HashMap::new();
    println!(
        "{:<6} {:<6} {:>8} {:>8} {:>8} {:>10} {:>10} {:>9}",
        "round", "client", "wall s", "user s", "sys s", "CPU s/GiB", "MB/s", "RSS MiB"
    );
    for round in 0..o.rounds {
        let mut this: HashMap<&str, Sample> = HashMap::new();
        for k in 0..tools.len() {
            let (name, argv) = &tools[(k + round) % tools.len()];
            let (s, _) = measure(argv, dir, true)?;
            let len = fs::metadata(&file).map(|m| m.len()).unwrap_or(0);
            let _ = fs::remove_file(&file);
            if len != GIB {
                return Err(format!("{name} wrote {len} bytes, expected {GIB}"));
            }
            println!(
                "{:<6} {:<6} {:>8.3} {:>8.2} {:>8.2} {:>10.3} {:>10.1} {:>9.1}",
                round + 1,
                name,
                s.wall,
                s.user,
                s.sys,
                s.cpu(),
                GIB as f64 / s.wall / 1e6,
                s.max_rss_kib as f64 / 1024.0
            );
            this.insert(name, s);
            per_tool.entry(name).or_default().push(s);
        }
        let curl = this["curl"];
        let r_fetch = this["fetch"].cpu() / curl.cpu();
        let r_ureq = this["ureq"].cpu() / curl.cpu();
        println!(
            "       ratios in round {}: CPU fetch/curl {r_fetch:.2}, ureq/curl {r_ureq:.2}",
            round + 1
        );
        ratios.entry("fetch").or_default().push(r_fetch);
        ratios.entry("ureq").or_default().push(r_ureq);
    }
    let _ = writeln!(
        summary,
        "1 GiB download, client CPU s/GiB (user+sys), mean over {} rounds:",
        o.rounds
    );
    for (name, _) in &tools {
        let cpu: Vec<f64> = per_tool[name].iter().map(Sample::cpu).collect();
        let mbps: Vec<f64> = per_tool[name]
            .iter()
            .map(|s| GIB as f64 / s.wall / 1e6)
            .collect();
        let (lo, hi) = min_max(&cpu);
        let _ = writeln!(
            summary,
            "  {name:<6} {:.3} (min {lo:.3}, max {hi:.3})  {:.0} MB/s",
            mean(&cpu),
            mean(&mbps)
        );
    }
    for name in ["fetch", "ureq"] {
        let (lo, hi) = min_max(&ratios[name]);
        let _ = writeln!(
            summary,
            "  {name}/curl CPU ratio per round: {:?}, mean {:.2} (min {lo:.2}, max {hi:.2})",
            ratios[name]
                .iter()
                .map(|r| (r * 100.0).round() / 100.0)
                .collect::<Vec<_>>(),
            mean(&ratios[name])
        );
    }
    let fetch_ratio = mean(&ratios["fetch"]);
    let _ = writeln!(
        summary,
        "  target fetch <= 0.8x curl CPU: {}",
        if fetch_ratio <= 0.8 { "MET" } else { "MISSED" }
    );
    Ok(mean(
        &per_tool["fetch"]
            .iter()
            .map(|s| GIB as f64 / s.wall / 1e6)
            .collect::<Vec<_>>(),
    ))
}

fn bench_requests(
    o: &Options,
    dir: &Path,
    label: &str,
    url: &str,
    summary: &mut String,
) -> Result<(), String> {
    let n = o.requests;
    let cfg = dir.join("curl-requests.cfg");
    let mut text = String::new();
    for _ in 0..n {
        let _ = writeln!(text, "url = \"{url}\"\noutput = \"/dev/null\"");
    }
    fs::write(&cfg, text).map_err(|e| e.to_string())?;
    let me = std::env::current_exe()
        .map_err(|e| e.to_string())?
        .display()
        .to_string();
    let ns = n.to_string();
    let tools: [(&str, Vec<String>); 4] = [
        (
            "curl -K",
            vec![
                "curl".into(),
                "-s".into(),
                "-K".into(),
                cfg.display().to_string(),
            ],
        ),
        (
            "HttpClient keep-alive",
            vec![
                me.clone(),
                "client-keepalive".into(),
                url.into(),
                ns.clone(),
            ],
        ),
        (
            "HttpRequest new conn",
            vec![
                me.clone(),
                "pollhttp-requests".into(),
                url.into(),
                ns.clone(),
            ],
        ),
        (
            "ureq keep-alive",
            vec![me, "ureq-requests".into(), url.into(), ns],
        ),
    ];
    println!("\n## {n} sequential requests: {label} ({url})");
    println!(
        "{:<6} {:<22} {:>8} {:>8} {:>8} {:>10}",
        "round", "client", "wall s", "user s", "sys s", "req/s"
    );
    let mut rps: HashMap<&str, Vec<f64>> = HashMap::new();
    let mut cpu: HashMap<&str, Vec<f64>> = HashMap::new();
    let mut ratios: HashMap<&str, Vec<f64>> = HashMap::new();
    for round in 0..o.rounds {
        let mut this: HashMap<&str, f64> = HashMap::new();
        for k in 0..tools.len() {
            let (name, argv) = &tools[(k + round) % tools.len()];
            let (s, _) = measure(argv, dir, true)?;
            let r = f64::from(n) / s.wall;
            println!(
                "{:<6} {:<22} {:>8.3} {:>8.2} {:>8.2} {:>10.0}",
                round + 1,
                name,
                s.wall,
                s.user,
                s.sys,
                r
            );
            this.insert(name, r);
            rps.entry(name).or_default().push(r);
            cpu.entry(name).or_default().push(s.cpu());
        }
        let mut line = format!("       ratios in round {} (req/s vs curl):", round + 1);
        for (name, _) in &tools[1..] {
            let ratio = this[name] / this["curl -K"];
            let _ = write!(line, " {name} {ratio:.2};");
            ratios.entry(name).or_default().push(ratio);
        }
        println!("{line}");
    }
    let _ = writeln!(
        summary,
        "{n} sequential requests to {label}, req/s (mean of {} rounds), client CPU s:",
        o.rounds
    );
    for (name, _) in &tools {
        let ratio = ratios
            .get(name)
            .map(|r| format!(", {:.2}x curl (per round {:?})", mean(r), rounded(r)))
            .unwrap_or_default();
        let _ = writeln!(
            summary,
            "  {name:<22} {:>7.0} req/s  CPU {:.2} s{ratio}",
            mean(&rps[name]),
            mean(&cpu[name])
        );
    }
    let keep = mean(&ratios["HttpClient keep-alive"]);
    let _ = writeln!(
        summary,
        "  target pollhttp (HttpClient keep-alive) >= 1.0x curl: {}",
        if keep >= 1.0 { "MET" } else { "MISSED" }
    );
    Ok(())
}

fn rounded(v: &[f64]) -> Vec<f64> {
    v.iter().map(|r| (r * 100.0).round() / 100.0).collect()
}

fn parse_game_line(out: &str) -> Result<HashMap<String, String>, String> {
    let last = out.lines().last().ok_or("game_loop printed nothing")?;
    let map: HashMap<String, String> = last
        .split_whitespace()
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    if !map.contains_key("frames") {
        return Err(format!("unexpected last line: {last}"));
    }
    Ok(map)
}

fn bench_game(
    o: &Options,
    dir: &Path,
    port: u16,
    fetch_mbps: Option<f64>,
    summary: &mut String,
) -> Result<(), String> {
    let g = o.game_loop.display().to_string();
    let big = format!("http://127.0.0.1:{port}/big.bin");
    let runs: Vec<(String, Vec<String>, bool)> = vec![
        (
            "built-in 256 MiB asset, worker thread #1".into(),
            vec![g.clone()],
            false,
        ),
        (
            "built-in 256 MiB asset, worker thread #2".into(),
            vec![g.clone()],
            false,
        ),
        (
            "built-in 256 MiB asset, --inline".into(),
            vec![g.clone(), "--inline".into()],
            false,
        ),
        (
            "nginx 1 GiB, worker thread, core 0".into(),
            vec![g.clone(), big.clone()],
            true,
        ),
    ];
    println!("\n## game_loop (release)");
    let _ = writeln!(
        summary,
        "game_loop (60 fps; frame time = work before the sleep):"
    );
    let keys = [
        "frames",
        "frame_max_ms",
        "frame_p99_ms",
        "poll_max_us",
        "poll_p99_us",
        "mb_per_s",
        "result",
    ];
    let mut worker_mbps = Vec::new();
    let mut frame_max: f64 = 0.0;
    let mut poll_p99: f64 = 0.0;
    let mut big_mbps = None;
    for (label, argv, pin) in &runs {
        let (s, out) = measure(argv, dir, *pin)?;
        let m = parse_game_line(&out)?;
        let line = keys
            .iter()
            .map(|k| format!("{k}={}", m.get(*k).map_or("?", String::as_str)))
            .collect::<Vec<_>>()
            .join(" ");
        println!("{label}: {line}  (process CPU {:.2} s)", s.cpu());
        let _ = writeln!(summary, "  {label}: {line}");
        let num = |k: &str| {
            m.get(k)
                .and_then(|v| v.parse::<f64>().ok())
                .unwrap_or(f64::NAN)
        };
        if !label.contains("--inline") {
            frame_max = frame_max.max(num("frame_max_ms"));
            poll_p99 = poll_p99.max(num("poll_p99_us"));
            if *pin {
                big_mbps = Some(num("mb_per_s"));
            } else {
                worker_mbps.push(num("mb_per_s"));
            }
        }
    }
    let _ = writeln!(
        summary,
        "  target no frame over 16.7 ms (worker runs): max {frame_max:.3} ms: {}",
        if frame_max <= 16.7 { "MET" } else { "MISSED" }
    );
    let _ = writeln!(
        summary,
        "  target p99 poll() < 1 ms (worker runs): max p99 {poll_p99:.1} us: {}",
        if poll_p99 < 1000.0 { "MET" } else { "MISSED" }
    );
    if let (Some(f), Some(b)) = (fetch_mbps, big_mbps) {
        let _ = writeln!(
            summary,
            "  throughput on nginx 1 GiB: game_loop {b:.0} MB/s vs fetch -o {f:.0} MB/s = {:.2}x (target >= 0.5x: {})",
            b / f,
            if b / f >= 0.5 { "MET" } else { "MISSED" }
        );
    }
    if let Some(f) = fetch_mbps {
        let _ = writeln!(
            summary,
            "  built-in asset (worker): {:.0} MB/s mean = {:.2}x fetch's nginx MB/s",
            mean(&worker_mbps),
            mean(&worker_mbps) / f
        );
    }
    Ok(())
}
