//! Side-by-side peer benchmark driver (issue #3's figures). See
//! benches/README.md for what each figure means.
//!
//! ```text
//! peer_bench [--rounds N] [--quick] [--tls-mib N] [--count N]
//!            [--clients a,b,..] [--tests plain,tls,seq] [--json-out FILE]
//!            [--peer PATH] [--before-peer PATH] [--no-pin] [--serve SECONDS]
//! ```
//!
//! Starts nginx (pollhttp-tests) with a sparse 1 GiB `/big.bin` (64 MiB with
//! `--quick`), then runs `--rounds` (default 3) interleaved rounds; each
//! round runs, for every client, one process per test:
//!
//! - `plain`: download the big file over HTTP (pollhttp, ureq, hyper, curl,
//!   raw); client on core 0, nginx on core 1.
//! - `tls`: download `--tls-mib` MiB (default: the big file's size) over
//!   HTTPS (pollhttp, ureq, hyper, curl, raw-TLS); same placement.
//! - `seq`: `--count` (default 20 000; 2 000 with `--quick`) sequential GETs
//!   of the 13-byte `/hello.txt` on one keep-alive connection (pollhttp, ureq,
//!   hyper, curl, raw); client and nginx both on core 1.
//!
//! The client order rotates from round to round. Every run's CPU time is
//! measured from outside the same way for every client (curl included): the
//! driver waits for the process to exit, reads `/proc/<pid>/schedstat`
//! (nanoseconds) and `/proc/<pid>/stat` (utime + stime, clock ticks, whole
//! thread group) of the zombie, then reaps it. Each run is checked in nginx's
//! access log (status 200, expected bytes, one connection for `seq`).
//!
//! Prints a table per round (absolute values and ratios against ureq and raw
//! measured in that same round), then a JSON summary with the median over
//! rounds of every ratio and the issue #3 targets met or missed.
//!
//! `--before-peer PATH` adds a client `pollhttp-before`: pollhttp run by
//! another build of `peer` (e.g. one built from an older commit), with the
//! same arguments as `pollhttp`, in every test and every round, so a change
//! is compared against its own baseline measured in the same rounds
//! (`median_ratios.<test>.pollhttp` next to `...pollhttp-before`, and
//! `median_vs_before`: pollhttp / pollhttp-before per round, the same as the
//! ratio of their ratios against ureq).
//!
//! `--serve SECONDS` only starts nginx (pinned), prints its URLs and the CA
//! path as JSON, and keeps it up that long: for profiling one client by hand
//! (`perf record ... peer --client pollhttp ...`).

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::{Read, Seek, SeekFrom};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use pollhttp_benches::peer::{median, schedstat_cpu, stat_cpu_ticks, stat_state, status_kib};
use pollhttp_tests::nginx::{Nginx, NginxOptions};
use serde_json::{json, Value};

const MIB: u64 = 1 << 20;
const GIB: f64 = (1u64 << 30) as f64;
/// Cores: downloads put the client on `DL_CLIENT_CORE` and nginx on
/// `SERVER_CORE`; `seq` puts both on `SERVER_CORE`.
const DL_CLIENT_CORE: u32 = 0;
const SERVER_CORE: u32 = 1;
/// An extra pollhttp run per download (`peer --call-cpu`) that also records
/// each call's thread CPU time; left out of the ratios (the timing syscalls
/// perturb it).
const CALL_CPU: &str = "pollhttp-cpu";
/// The control for [`CALL_CPU`]: a raw run timing each `read()` call.
const RAW_CPU: &str = "raw-cpu";
/// pollhttp run by the `--before-peer` build of `peer`.
const BEFORE: &str = "pollhttp-before";

fn is_timing_run(c: &str) -> bool {
    c == CALL_CPU || c == RAW_CPU
}

#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
enum Test {
    Plain,
    Tls,
    Seq,
}

impl Test {
    fn name(self) -> &'static str {
        match self {
            Test::Plain => "plain",
            Test::Tls => "tls",
            Test::Seq => "seq",
        }
    }
    fn clients(self) -> &'static [&'static str] {
        match self {
            Test::Plain => &[
                "pollhttp", BEFORE, "ureq", "hyper", "curl", "raw", CALL_CPU, RAW_CPU,
            ],
            Test::Tls => &[
                "pollhttp", BEFORE, "ureq", "hyper", "curl", "raw", CALL_CPU, RAW_CPU,
            ],
            Test::Seq => &["pollhttp", BEFORE, "ureq", "hyper", "curl", "raw"],
        }
    }
}

struct Opts {
    rounds: usize,
    quick: bool,
    big_len: u64,
    tls_len: u64,
    count: u64,
    clients: Option<Vec<String>>,
    tests: Vec<Test>,
    json_out: Option<PathBuf>,
    peer: PathBuf,
    before_peer: Option<PathBuf>,
    pin: bool,
    serve: Option<u64>,
}

fn usage() -> ! {
    eprintln!(
        "usage: peer_bench [--rounds N] [--quick] [--tls-mib N] [--count N] \
         [--clients a,b,..] [--tests plain,tls,seq] [--json-out FILE] [--peer PATH] [--before-peer PATH] [--no-pin] \
         [--serve SECONDS]"
    );
    std::process::exit(2)
}

fn parse_opts() -> Opts {
    let mut rounds = 3;
    let mut quick = false;
    let mut tls_mib: Option<u64> = None;
    let mut count: Option<u64> = None;
    let mut clients = None;
    let mut tests = vec![Test::Plain, Test::Tls, Test::Seq];
    let mut json_out = None;
    let mut peer = None;
    let mut before_peer = None;
    let mut pin = true;
    let mut serve = None;
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        let mut val = || it.next().unwrap_or_else(|| usage());
        match a.as_str() {
            "--rounds" => rounds = val().parse().unwrap_or_else(|_| usage()),
            "--quick" => quick = true,
            "--tls-mib" => tls_mib = Some(val().parse().unwrap_or_else(|_| usage())),
            "--count" => count = Some(val().parse().unwrap_or_else(|_| usage())),
            "--clients" => clients = Some(val().split(',').map(str::to_string).collect()),
            "--tests" => {
                tests = val()
                    .split(',')
                    .map(|t| match t {
                        "plain" => Test::Plain,
                        "tls" => Test::Tls,
                        "seq" => Test::Seq,
                        _ => usage(),
                    })
                    .collect()
            }
            "--json-out" => json_out = Some(PathBuf::from(val())),
            "--peer" => peer = Some(PathBuf::from(val())),
            "--before-peer" => before_peer = Some(PathBuf::from(val())),
            "--no-pin" => pin = false,
            "--serve" => serve = Some(val().parse().unwrap_or_else(|_| usage())),
            _ => usage(),
        }
    }
    let big_len = if quick { 64 * MIB } else { 1024 * MIB };
    let peer = peer.unwrap_or_else(|| {
        let exe = std::env::current_exe().expect("current_exe");
        exe.with_file_name("peer")
    });
    if !peer.is_file() {
        eprintln!(
            "peer_bench: {} not found: build it with `cargo build --release -p pollhttp-benches --bins`",
            peer.display()
        );
        std::process::exit(2);
    }
    if let Some(p) = before_peer.as_ref().filter(|p| !p.is_file()) {
        eprintln!("peer_bench: --before-peer {} not found", p.display());
        std::process::exit(2);
    }
    Opts {
        rounds: rounds.max(1),
        quick,
        big_len,
        tls_len: tls_mib.map_or(big_len, |m| m * MIB),
        count: count.unwrap_or(if quick { 2_000 } else { 20_000 }),
        clients,
        tests,
        json_out,
        peer,
        before_peer,
        pin,
        serve,
    }
}

fn have(cmd: &str) -> bool {
    Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {cmd}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn clk_tck() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok()?.trim().parse().ok())
        .unwrap_or(100.0)
}

fn loadavg() -> String {
    fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

/// One client run, as measured.
#[derive(Debug, Clone)]
struct Run {
    client: String,
    test: Test,
    bytes: u64,
    requests: u64,
    /// Transfer wall time (s): the peer's connect → end; curl's
    /// `time_total` for downloads, its whole process for `seq`.
    wall_s: f64,
    /// Whole-process CPU time (s) measured by the driver.
    cpu_s: f64,
    /// Same from clock ticks (whole thread group).
    cpu_ticks_s: f64,
    /// User share of the tick figure (utime / (utime + stime)).
    user_share: f64,
    /// Peak RSS (KiB): the peer's own VmHWM; curl's sampled every 10 ms.
    max_rss_kib: u64,
    /// The peer's self-report (pollhttp: poll timings), if any.
    peer: Value,
}

impl Run {
    fn cpu_per_gib(&self) -> f64 {
        self.cpu_s / (self.bytes as f64 / GIB)
    }
    fn gbps(&self) -> f64 {
        self.bytes as f64 / self.wall_s / 1e9
    }
    fn req_per_s(&self) -> f64 {
        self.requests as f64 / self.wall_s
    }
    fn cpu_us_per_req(&self) -> f64 {
        self.cpu_s * 1e6 / self.requests as f64
    }
}

struct Bench {
    opts: Opts,
    nginx: Nginx,
    tck: f64,
    taskset: bool,
    cacert: PathBuf,
    curl_seq_cfg: PathBuf,
    log_offset: u64,
}

impl Bench {
    fn url(&self, test: Test) -> String {
        match test {
            Test::Plain => self.nginx.url("/big.bin"),
            Test::Tls if self.opts.tls_len == self.opts.big_len => self.nginx.url_tls("/big.bin"),
            Test::Tls => self.nginx.url_tls("/tls.bin"),
            Test::Seq => self.nginx.url("/hello.txt"),
        }
    }

    fn expected_len(&self, test: Test) -> u64 {
        match test {
            Test::Plain => self.opts.big_len,
            Test::Tls => self.opts.tls_len,
            Test::Seq => 13,
        }
    }

    fn count(&self, test: Test) -> u64 {
        if test == Test::Seq {
            self.opts.count
        } else {
            1
        }
    }

    fn client_core(test: Test) -> u32 {
        if test == Test::Seq {
            SERVER_CORE
        } else {
            DL_CLIENT_CORE
        }
    }

    fn pin_nginx(&self) {
        if !self.taskset {
            return;
        }
        let ok = Command::new("taskset")
            .args(["-a", "-p", "-c", &SERVER_CORE.to_string()])
            .arg(self.nginx.pid().to_string())
            .stdout(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "taskset -p on nginx failed");
    }

    fn command(&self, client: &str, test: Test) -> Command {
        let peer = match (client, &self.opts.before_peer) {
            (BEFORE, Some(before)) => before,
            _ => &self.opts.peer,
        };
        let mut cmd = if self.taskset {
            let mut c = Command::new("taskset");
            c.arg("-c").arg(Self::client_core(test).to_string());
            if client == "curl" {
                c.arg("curl");
            } else {
                c.arg(peer);
            }
            c
        } else if client == "curl" {
            Command::new("curl")
        } else {
            Command::new(peer)
        };
        if client == "curl" {
            cmd.args([
                "-s",
                "-S",
                "--fail",
                "-w",
                "%{http_code} %{size_download} %{time_total}\\n",
            ]);
            if test == Test::Tls {
                cmd.arg("--cacert").arg(&self.cacert);
            }
            if test == Test::Seq {
                cmd.arg("-K").arg(&self.curl_seq_cfg);
            } else {
                cmd.args(["-o", "/dev/null"]).arg(self.url(test));
            }
        } else {
            let peer_client = match client {
                CALL_CPU | BEFORE => "pollhttp",
                RAW_CPU => "raw",
                c => c,
            };
            cmd.args(["--client", peer_client, "--mode"])
                .arg(if test == Test::Seq { "seq" } else { "download" })
                .arg("--url")
                .arg(self.url(test))
                .arg("--count")
                .arg(self.count(test).to_string());
            if test == Test::Tls {
                cmd.arg("--cacert").arg(&self.cacert);
            }
            if test == Test::Seq && (client == "pollhttp" || client == BEFORE) {
                // Per-call timing is for the download figures; here it
                // would only slow pollhttp down (~5 calls per request).
                cmd.arg("--no-timing");
            }
            if is_timing_run(client) {
                cmd.arg("--call-cpu");
            }
        }
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        cmd
    }

    /// Runs one client process and measures it.
    fn run(&mut self, client: &str, test: Test) -> Result<Run, String> {
        let mut cmd = self.command(client, test);
        let t0 = Instant::now();
        let mut child = cmd.spawn().map_err(|e| format!("spawn {client}: {e}"))?;
        let pid = child.id();
        let mut stdout = child.stdout.take().expect("piped stdout");
        let (tx, rx) = mpsc::channel();
        let reader = std::thread::spawn(move || {
            let mut s = String::new();
            let r = stdout.read_to_string(&mut s);
            let _ = tx.send(());
            r.map(|_| s)
        });
        // curl cannot report its own peak RSS: sample it (every 10 ms).
        let mut sampled_hwm = 0;
        if client == "curl" {
            while rx.recv_timeout(Duration::from_millis(10)).is_err() {
                if let Some(k) = status_kib(Some(pid), "VmHWM") {
                    sampled_hwm = sampled_hwm.max(k);
                }
            }
        }
        let out = reader
            .join()
            .map_err(|_| "reader panicked".to_string())?
            .map_err(|e| format!("read {client} stdout: {e}"))?;
        let proc_wall = t0.elapsed().as_secs_f64();
        // stdout closed: the process is exiting. Measure the zombie.
        let deadline = Instant::now() + Duration::from_secs(10);
        while stat_state(pid) != Some('Z') && Instant::now() < deadline {
            std::thread::sleep(Duration::from_micros(200));
        }
        let cpu = schedstat_cpu(Some(pid));
        let ticks = stat_cpu_ticks(pid);
        let status = child.wait().map_err(|e| format!("wait {client}: {e}"))?;
        if !status.success() {
            return Err(format!(
                "{client} {} failed: {status}; output: {out}",
                test.name()
            ));
        }
        let (Some(cpu), Some(ticks)) = (cpu, ticks) else {
            return Err(format!("could not read /proc/{pid} of {client}"));
        };
        let cpu_ticks_s = (ticks.0 + ticks.1) as f64 / self.tck;
        let user_share = ticks.0 as f64 / (ticks.0 + ticks.1).max(1) as f64;
        let mut cpu_s = cpu.as_secs_f64();
        if cpu_ticks_s > cpu_s + 2.5 / self.tck {
            // Other threads ran (schedstat covers the leader only).
            eprintln!(
                "note: {client} {}: {cpu_ticks_s:.3}s by ticks > {cpu_s:.3}s by schedstat: \
                 more than one thread; using the tick figure",
                test.name()
            );
            cpu_s = cpu_ticks_s;
        }
        let expected = self.expected_len(test);
        let count = self.count(test);
        let run = if client == "curl" {
            let lines: Vec<&str> = out.lines().collect();
            let mut bytes = 0u64;
            let mut time_total = 0.0;
            for l in &lines {
                let f: Vec<&str> = l.split_whitespace().collect();
                if f.len() != 3 || f[0] != "200" {
                    return Err(format!("curl: unexpected write-out line {l:?}"));
                }
                bytes += f[1].parse::<u64>().map_err(|e| e.to_string())?;
                time_total += f[2].parse::<f64>().map_err(|e| e.to_string())?;
            }
            Run {
                client: client.to_string(),
                test,
                bytes,
                requests: lines.len() as u64,
                wall_s: if test == Test::Seq {
                    proc_wall
                } else {
                    time_total
                },
                cpu_s,
                cpu_ticks_s,
                user_share,
                max_rss_kib: sampled_hwm,
                peer: Value::Null,
            }
        } else {
            let v: Value = serde_json::from_str(out.trim())
                .map_err(|e| format!("{client}: bad JSON {out:?}: {e}"))?;
            Run {
                client: client.to_string(),
                test,
                bytes: v["bytes"].as_u64().unwrap_or(0),
                requests: v["requests"].as_u64().unwrap_or(0),
                wall_s: v["wall_s"].as_f64().unwrap_or(f64::NAN),
                cpu_s,
                cpu_ticks_s,
                user_share,
                max_rss_kib: v["max_rss_kib"].as_u64().unwrap_or(0),
                peer: v,
            }
        };
        if run.bytes != expected * count || run.requests != count {
            return Err(format!(
                "{client} {}: {} bytes in {} requests, expected {} in {count}",
                test.name(),
                run.bytes,
                run.requests,
                expected * count
            ));
        }
        self.check_access_log(client, test, count, expected)?;
        Ok(run)
    }

    /// The access-log lines since the last check: all `count` requests,
    /// 200 with the expected body size, all on one connection.
    fn check_access_log(
        &mut self,
        client: &str,
        test: Test,
        count: u64,
        len: u64,
    ) -> Result<(), String> {
        let path = self.nginx.prefix.join("access.log");
        let deadline = Instant::now() + Duration::from_secs(5);
        let text = loop {
            let mut f = File::open(&path).map_err(|e| e.to_string())?;
            f.seek(SeekFrom::Start(self.log_offset))
                .map_err(|e| e.to_string())?;
            let mut text = String::new();
            f.read_to_string(&mut text).map_err(|e| e.to_string())?;
            let complete = text.lines().count() as u64 >= count && text.ends_with('\n');
            if complete || Instant::now() >= deadline {
                break text;
            }
            std::thread::sleep(Duration::from_millis(5));
        };
        self.log_offset += text.len() as u64;
        let mut conns = std::collections::BTreeSet::new();
        let mut n = 0u64;
        for l in text.lines() {
            // `<conn> <n on conn> "<request line>" <status> <bytes>`
            let f: Vec<&str> = l.split_whitespace().collect();
            let ok = f.len() >= 4 && f[f.len() - 2] == "200" && f[f.len() - 1] == len.to_string();
            if !ok {
                return Err(format!("{client} {}: access log line {l:?}", test.name()));
            }
            conns.insert(f[0].to_string());
            n += 1;
        }
        if n != count || conns.len() != 1 {
            return Err(format!(
                "{client} {}: access log has {n} requests on {} connections, expected {count} on 1",
                test.name(),
                conns.len()
            ));
        }
        Ok(())
    }
}

fn fmt_ratio(x: Option<f64>) -> String {
    x.map_or("-".into(), |x| format!("{x:.2}x"))
}

fn main() {
    let opts = parse_opts();
    let taskset = opts.pin && have("taskset");
    let curl = have("curl");
    if !curl {
        eprintln!("note: curl not installed (apt-get install -y curl): curl runs skipped");
    }
    if opts.pin && !taskset {
        eprintln!("note: taskset not found (util-linux): runs are NOT pinned");
    }
    let only = opts.clients.clone();
    let before = opts.before_peer.is_some();
    let wanted = move |c: &str| {
        (c != "curl" || curl)
            && (c != BEFORE || before)
            && only.as_ref().is_none_or(|l| {
                l.iter().any(|x| {
                    x == c
                        || ((c == CALL_CPU || c == BEFORE) && x == "pollhttp")
                        || (c == RAW_CPU && x == "raw")
                })
            })
    };
    let started = Instant::now();
    eprintln!(
        "starting nginx ({} MiB /big.bin){}",
        opts.big_len / MIB,
        if opts.quick { ", quick mode" } else { "" }
    );
    let nginx = Nginx::start_with(NginxOptions {
        big_file_len: opts.big_len,
        ..NginxOptions::default()
    });
    if opts.tls_len != opts.big_len {
        let f = File::create(nginx.docroot.join("tls.bin")).expect("create tls.bin");
        f.set_len(opts.tls_len).expect("size tls.bin");
    }
    let cacert = nginx.prefix.join("bench-ca.pem");
    fs::write(&cacert, &nginx.ca_pem).expect("write CA PEM");
    let curl_seq_cfg = nginx.prefix.join("curl-seq.cfg");
    {
        let url = nginx.url("/hello.txt");
        let mut cfg = String::new();
        for _ in 0..opts.count {
            cfg.push_str(&format!("url = \"{url}\"\noutput = \"/dev/null\"\n"));
        }
        fs::write(&curl_seq_cfg, cfg).expect("write curl config");
    }
    let log_offset = fs::metadata(nginx.prefix.join("access.log")).map_or(0, |m| m.len());
    let mut b = Bench {
        tck: clk_tck(),
        taskset,
        cacert,
        curl_seq_cfg,
        log_offset,
        nginx,
        opts,
    };
    b.pin_nginx();
    if let Some(secs) = b.opts.serve {
        // Profiling aid: keep nginx up (pinned to its core) and say where.
        println!(
            "{}",
            json!({
                "plain": b.url(Test::Plain),
                "tls": b.url(Test::Tls),
                "seq": b.url(Test::Seq),
                "cacert": b.cacert,
                "nginx_pid": b.nginx.pid(),
                "seconds": secs,
            })
        );
        std::thread::sleep(Duration::from_secs(secs));
        return;
    }
    let load_start = loadavg();

    // Warm-up (not counted): page cache for the sparse files, TLS session
    // machinery, binaries in the cache.
    for test in b.opts.tests.clone() {
        if let Err(e) = b.run("raw", test) {
            eprintln!("warm-up failed: {e}");
            std::process::exit(1);
        }
    }

    // rounds[r][(test, client)] = Run
    let mut rounds: Vec<BTreeMap<(Test, String), Run>> = Vec::new();
    for r in 0..b.opts.rounds {
        let mut this = BTreeMap::new();
        for test in b.opts.tests.clone() {
            let mut clients: Vec<&str> = test
                .clients()
                .iter()
                .copied()
                .filter(|c| wanted(c))
                .collect();
            let n = clients.len().max(1);
            clients.rotate_left(r % n);
            for c in clients {
                eprint!("round {} {} {c} ... ", r + 1, test.name());
                match b.run(c, test) {
                    Ok(run) => {
                        eprintln!("{:.3}s cpu, {:.3}s wall", run.cpu_s, run.wall_s);
                        this.insert((test, c.to_string()), run);
                    }
                    Err(e) => {
                        eprintln!("FAILED: {e}");
                        std::process::exit(1);
                    }
                }
            }
        }
        print_round(r, &this, &b);
        rounds.push(this);
    }
    let summary = summarize(&rounds, &b, &load_start, started.elapsed());
    println!("{}", serde_json::to_string_pretty(&summary).expect("json"));
    if let Some(p) = &b.opts.json_out {
        fs::write(p, serde_json::to_string_pretty(&summary).expect("json")).expect("write json");
    }
}

/// A compared figure: JSON name, how to compute it from a run, table unit.
type Metric = (&'static str, fn(&Run) -> f64, &'static str);

/// The two figures compared for `test`.
fn metrics(test: Test) -> &'static [Metric] {
    match test {
        Test::Plain | Test::Tls => &[
            ("cpu_s_per_gib", Run::cpu_per_gib, "CPU s/GiB"),
            ("gb_per_s", Run::gbps, "GB/s"),
        ],
        Test::Seq => &[
            ("req_per_s", Run::req_per_s, "req/s"),
            ("cpu_us_per_req", Run::cpu_us_per_req, "CPU us/req"),
        ],
    }
}

fn ratio(
    runs: &BTreeMap<(Test, String), Run>,
    test: Test,
    a: &str,
    b: &str,
    f: fn(&Run) -> f64,
) -> Option<f64> {
    let x = runs.get(&(test, a.to_string()))?;
    let y = runs.get(&(test, b.to_string()))?;
    Some(f(x) / f(y))
}

fn print_round(r: usize, runs: &BTreeMap<(Test, String), Run>, b: &Bench) {
    println!();
    println!("== round {} ==", r + 1);
    for test in b.opts.tests.iter().copied() {
        let placement = if test == Test::Seq {
            format!("client core {SERVER_CORE}, nginx core {SERVER_CORE}")
        } else {
            format!("client core {DL_CLIENT_CORE}, nginx core {SERVER_CORE}")
        };
        let what = match test {
            Test::Plain => format!("{} MiB over HTTP", b.opts.big_len / MIB),
            Test::Tls => format!("{} MiB over HTTPS", b.opts.tls_len / MIB),
            Test::Seq => format!("{} x GET /hello.txt, one connection", b.opts.count),
        };
        println!(
            "-- {} ({what}; {})",
            test.name(),
            if b.taskset {
                placement
            } else {
                "unpinned".into()
            }
        );
        let ms = metrics(test);
        println!(
            "{:<15} {:>10} {:>5} {:>10} {:>9} {:>9} {:>9} {:>9} {:>9}",
            "client", ms[0].2, "usr%", ms[1].2, "rss KiB", "vs ureq", "vs raw", "vs ureq", "vs raw"
        );
        for c in test.clients() {
            let Some(run) = runs.get(&(test, c.to_string())) else {
                continue;
            };
            if is_timing_run(c) {
                continue;
            }
            println!(
                "{:<15} {:>10.3} {:>5.0} {:>10.3} {:>9} {:>9} {:>9} {:>9} {:>9}",
                c,
                (ms[0].1)(run),
                run.user_share * 100.0,
                (ms[1].1)(run),
                run.max_rss_kib,
                fmt_ratio(ratio(runs, test, c, "ureq", ms[0].1)),
                fmt_ratio(ratio(runs, test, c, "raw", ms[0].1)),
                fmt_ratio(ratio(runs, test, c, "ureq", ms[1].1)),
                fmt_ratio(ratio(runs, test, c, "raw", ms[1].1)),
            );
        }
        if let (Some(a), Some(b)) = (
            ratio(runs, test, "pollhttp", BEFORE, ms[0].1),
            ratio(runs, test, "pollhttp", BEFORE, ms[1].1),
        ) {
            println!(
                "pollhttp / pollhttp-before: {} {a:.3}x, {} {b:.3}x",
                ms[0].2, ms[1].2
            );
        }
        if let Some(p) = runs
            .get(&(test, "pollhttp".to_string()))
            .filter(|p| p.peer.get("calls").is_some())
        {
            println!(
                "pollhttp calls: {} (poll + read_response_body_chunk), max {:.0} us, p99 {:.1} us, p50 {:.1} us; rss before connect {} KiB",
                p.peer["calls"],
                p.peer["max_poll_us"].as_f64().unwrap_or(f64::NAN),
                p.peer["p99_poll_us"].as_f64().unwrap_or(f64::NAN),
                p.peer["p50_poll_us"].as_f64().unwrap_or(f64::NAN),
                p.peer["rss_before_kib"],
            );
        }
        if let Some(p) = runs.get(&(test, CALL_CPU.to_string())) {
            println!(
                "pollhttp --call-cpu run: per-call thread CPU max {:.0} us, p99 {:.1} us (wall max {:.0} us); {:.3} CPU s/GiB with the timing syscalls",
                p.peer["max_poll_cpu_us"].as_f64().unwrap_or(f64::NAN),
                p.peer["p99_poll_cpu_us"].as_f64().unwrap_or(f64::NAN),
                p.peer["max_poll_us"].as_f64().unwrap_or(f64::NAN),
                p.cpu_per_gib(),
            );
        }
        if let Some(p) = runs.get(&(test, RAW_CPU.to_string())) {
            println!(
                "control, raw --call-cpu run: per-read() thread CPU max {:.0} us, p99 {:.1} us (wall max {:.0} us)",
                p.peer["max_poll_cpu_us"].as_f64().unwrap_or(f64::NAN),
                p.peer["p99_poll_cpu_us"].as_f64().unwrap_or(f64::NAN),
                p.peer["max_poll_us"].as_f64().unwrap_or(f64::NAN),
            );
        }
    }
}

fn summarize(
    rounds: &[BTreeMap<(Test, String), Run>],
    b: &Bench,
    load_start: &str,
    elapsed: Duration,
) -> Value {
    let mut ratios = serde_json::Map::new();
    let mut absolute = serde_json::Map::new();
    let mut vs_before = serde_json::Map::new();
    for test in b.opts.tests.iter().copied() {
        let mut t_ratios = serde_json::Map::new();
        let mut t_abs = serde_json::Map::new();
        for c in test.clients() {
            let mut c_ratios = serde_json::Map::new();
            let mut c_abs = serde_json::Map::new();
            for (name, f, _) in metrics(test) {
                if is_timing_run(c) {
                    break;
                }
                for base in ["ureq", "raw"] {
                    if *c == base {
                        continue;
                    }
                    let v: Vec<f64> = rounds
                        .iter()
                        .filter_map(|r| ratio(r, test, c, base, *f))
                        .collect();
                    if let Some(m) = median(&v) {
                        c_ratios.insert(format!("{name}_vs_{base}"), json!(m));
                    }
                }
                let v: Vec<f64> = rounds
                    .iter()
                    .filter_map(|r| r.get(&(test, c.to_string())).map(*f))
                    .collect();
                if let Some(m) = median(&v) {
                    c_abs.insert(name.to_string(), json!(m));
                }
            }
            let rss: Vec<f64> = rounds
                .iter()
                .filter_map(|r| r.get(&(test, c.to_string())))
                .map(|run| run.max_rss_kib as f64)
                .collect();
            if let Some(m) = median(&rss) {
                c_abs.insert("max_rss_kib".into(), json!(m));
            }
            let user: Vec<f64> = rounds
                .iter()
                .filter_map(|r| r.get(&(test, c.to_string())))
                .map(|run| run.user_share)
                .collect();
            if let Some(m) = median(&user) {
                c_abs.insert("user_share".into(), json!(m));
            }
            let keys: &[&str] = match *c {
                "pollhttp" | BEFORE => &["max_poll_us", "p99_poll_us"],
                CALL_CPU | RAW_CPU => &["max_poll_cpu_us", "p99_poll_cpu_us", "max_poll_us"],
                _ => &[],
            };
            {
                for key in keys.iter().copied() {
                    let v: Vec<f64> = rounds
                        .iter()
                        .filter_map(|r| r.get(&(test, c.to_string()))?.peer[key].as_f64())
                        .collect();
                    if let Some(m) = median(&v) {
                        c_abs.insert(key.into(), json!(m));
                    }
                    if let Some(mx) = v.iter().copied().reduce(f64::max) {
                        c_abs.insert(format!("{key}_worst_round"), json!(mx));
                    }
                }
            }
            if !c_ratios.is_empty() {
                t_ratios.insert(c.to_string(), Value::Object(c_ratios));
            }
            if !c_abs.is_empty() {
                t_abs.insert(c.to_string(), Value::Object(c_abs));
            }
        }
        ratios.insert(test.name().into(), Value::Object(t_ratios));
        absolute.insert(test.name().into(), Value::Object(t_abs));
        let mut t_before = serde_json::Map::new();
        for (name, f, _) in metrics(test) {
            let v: Vec<f64> = rounds
                .iter()
                .filter_map(|r| ratio(r, test, "pollhttp", BEFORE, *f))
                .collect();
            if let Some(m) = median(&v) {
                t_before.insert(format!("{name}_vs_before"), json!(m));
                t_before.insert(format!("{name}_vs_before_rounds"), json!(v));
            }
        }
        if !t_before.is_empty() {
            vs_before.insert(test.name().into(), Value::Object(t_before));
        }
    }
    let get = |m: &serde_json::Map<String, Value>, t: &str, c: &str, k: &str| {
        m.get(t)?.get(c)?.get(k)?.as_f64()
    };
    let target = |value: Option<f64>, op: &str, limit: f64| -> Value {
        match value {
            None => json!({"value": null, "target": format!("{op} {limit}"), "met": null}),
            Some(v) => {
                let met = if op == "<=" { v <= limit } else { v >= limit };
                json!({"value": v, "target": format!("{op} {limit}"), "met": met})
            }
        }
    };
    let before = |t: &str, k: &str| vs_before.get(t)?.get(k)?.as_f64();
    let full_size = b.opts.big_len == 1 << 30;
    let targets = json!({
        "plain_cpu_per_gib_vs_ureq": target(get(&ratios, "plain", "pollhttp", "cpu_s_per_gib_vs_ureq"), "<=", 0.8),
        "tls_cpu_per_gib_vs_ureq": target(get(&ratios, "tls", "pollhttp", "cpu_s_per_gib_vs_ureq"), "<=", 0.9),
        "plain_throughput_vs_raw": target(get(&ratios, "plain", "pollhttp", "gb_per_s_vs_raw"), ">=", 0.95),
        "tls_throughput_vs_raw": target(get(&ratios, "tls", "pollhttp", "gb_per_s_vs_raw"), ">=", 0.95),
        "seq_req_per_s_vs_ureq": target(get(&ratios, "seq", "pollhttp", "req_per_s_vs_ureq"), ">=", 1.15),
        "plain_peak_rss_kib": target(get(&absolute, "plain", "pollhttp", "max_rss_kib"), "<=", 4096.0),
        "plain_max_poll_us": target(get(&absolute, "plain", "pollhttp", "max_poll_us"), "<=", 1000.0),
        "tls_peak_rss_kib (context)": target(get(&absolute, "tls", "pollhttp", "max_rss_kib"), "<=", 4096.0),
        "tls_max_poll_us (context)": target(get(&absolute, "tls", "pollhttp", "max_poll_us"), "<=", 1000.0),
        "plain_max_poll_thread_cpu_us (context)": target(get(&absolute, "plain", CALL_CPU, "max_poll_cpu_us"), "<=", 1000.0),
        "tls_max_poll_thread_cpu_us (context)": target(get(&absolute, "tls", CALL_CPU, "max_poll_cpu_us"), "<=", 1000.0),
        "plain_raw_max_read_thread_cpu_us (control)": target(get(&absolute, "plain", RAW_CPU, "max_poll_cpu_us"), "<=", 1000.0),
        "tls_raw_max_read_thread_cpu_us (control)": target(get(&absolute, "tls", RAW_CPU, "max_poll_cpu_us"), "<=", 1000.0),
        // Issue 7: within 3 % of the code before (with --before-peer).
        "plain_cpu_per_gib_vs_before": target(before("plain", "cpu_s_per_gib_vs_before"), "<=", 1.03),
        "tls_cpu_per_gib_vs_before": target(before("tls", "cpu_s_per_gib_vs_before"), "<=", 1.03),
        "seq_req_per_s_vs_before": target(before("seq", "req_per_s_vs_before"), ">=", 0.97),
    });
    json!({
        "rounds": rounds.len(),
        "quick": b.opts.quick,
        "rss_target_applies": full_size,
        "sizes": {
            "plain_bytes": b.opts.big_len,
            "tls_bytes": b.opts.tls_len,
            "seq_requests": b.opts.count,
        },
        "placement": if b.taskset {
            json!({
                "download": {"client_core": DL_CLIENT_CORE, "nginx_core": SERVER_CORE},
                "seq": {"client_core": SERVER_CORE, "nginx_core": SERVER_CORE},
            })
        } else {
            json!("unpinned")
        },
        "cpu_measure": "driver: /proc/<pid>/schedstat of the exited (zombie) client, whole process",
        "loadavg_start": load_start,
        "loadavg_end": loadavg(),
        "elapsed_s": elapsed.as_secs_f64(),
        "median_ratios": ratios,
        "median_absolute": absolute,
        "median_vs_before": vs_before,
        "targets": targets,
        "runs": rounds.iter().enumerate().flat_map(|(i, r)| r.values().map(move |run| json!({
            "round": i + 1,
            "test": run.test.name(),
            "client": run.client,
            "bytes": run.bytes,
            "requests": run.requests,
            "wall_s": run.wall_s,
            "cpu_s": run.cpu_s,
            "cpu_ticks_s": run.cpu_ticks_s,
            "user_share": run.user_share,
            "max_rss_kib": run.max_rss_kib,
            "peer": run.peer,
        }))).collect::<Vec<_>>(),
    })
}
