//! Issue 7's sequential-`HttpRequest` benchmark: 1 000 GETs of a 13-byte
//! file to nginx, one after the other, with one `HttpRequest`, next to
//! `curl -s -o /dev/null "http://127.0.0.1:PORT/small?[1-1000]"` (curl over
//! its one kept-alive connection), measured side by side in the same run.
//!
//! ```text
//! seq_gets [--rounds N] [--count N] [--no-pin] [--json-out FILE]
//! seq_gets --child --url BASE --count N        (one measured run of ours)
//! ```
//!
//! Starts nginx from `pollhttp_tests::nginx` with a 13-byte `/small`, pins
//! nginx and both clients to core 1 with `taskset` (as `peer_bench`'s `seq`
//! test does: with client and server on one core the wall time is the sum of
//! both sides' CPU per request), then runs `--rounds` (default 5) rounds,
//! each `ours` then `curl`. Both are one process per run, timed by this
//! driver from spawn to exit, so both include their process start-up.
//! `ours` is this binary re-run with `--child`: one `HttpRequest`, `count`
//! sequential `request` + `poll`/`wait` loops, each checked (Success, 200,
//! 13 bytes). After each run the access-log lines of that run are checked
//! (all 200, 13 bytes, `count` of them) and their distinct `$connection`
//! serials counted.
//!
//! Prints per-round times, the median ratio `curl_time / our_time` (the
//! issue-7 target is ≥ 2.0) and how many connections nginx saw for our runs
//! (the target is 1), then one JSON summary line.

use std::collections::BTreeSet;
use std::fs::{self, File};
use std::io::{Read, Seek, SeekFrom};
use std::path::PathBuf;
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use pollhttp::{HttpRequest, RequestResult};
use pollhttp_benches::peer::median;
use pollhttp_tests::nginx::{Nginx, NginxOptions, HELLO_BODY};
use serde_json::json;

/// nginx and both clients run on this core (see the module docs).
const CORE: u32 = 1;

struct Opts {
    rounds: usize,
    count: u64,
    pin: bool,
    json_out: Option<PathBuf>,
    child: bool,
    url: Option<String>,
}

fn parse_opts() -> Result<Opts, String> {
    let mut o = Opts {
        rounds: 5,
        count: 1000,
        pin: true,
        json_out: None,
        child: false,
        url: None,
    };
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut value = |name: &str| args.next().ok_or(format!("{name} needs a value"));
        match a.as_str() {
            "--rounds" => {
                o.rounds = value("--rounds")?.parse().map_err(|e| format!("{e}"))?;
            }
            "--count" => o.count = value("--count")?.parse().map_err(|e| format!("{e}"))?,
            "--no-pin" => o.pin = false,
            "--json-out" => o.json_out = Some(value("--json-out")?.into()),
            "--child" => o.child = true,
            "--url" => o.url = Some(value("--url")?),
            "-h" | "--help" => {
                return Err(
                    "usage: seq_gets [--rounds N] [--count N] [--no-pin] [--json-out FILE]".into(),
                )
            }
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    if o.rounds == 0 || o.count == 0 {
        return Err("--rounds and --count must be at least 1".into());
    }
    Ok(o)
}

/// Child mode: `count` sequential GETs of `base/small?i` with one
/// `HttpRequest`; prints `{"requests":..,"wall_s":..}`. Fails on the first
/// request that is not a 13-byte 200 Success.
fn child(base: &str, count: u64) -> Result<(), String> {
    let mut req = HttpRequest::new();
    let start = Instant::now();
    for i in 1..=count {
        let url = format!("{base}/small?{i}");
        req.request(&url, &[], "GET", "")
            .map_err(|e| format!("request {i}: {e}"))?;
        let began = Instant::now();
        let done = loop {
            if let Some(done) = req.poll() {
                break done;
            }
            if began.elapsed() > Duration::from_secs(30) {
                return Err(format!("request {i}: no result in 30 s"));
            }
            req.wait(Some(Duration::from_millis(100)));
        };
        if done.result != RequestResult::Success
            || done.response_code() != 200
            || done.body.len() != HELLO_BODY.len()
        {
            return Err(format!(
                "request {i}: {} {} ({} bytes): {}",
                done.result,
                done.response_code(),
                done.body.len(),
                done.reason
            ));
        }
    }
    let wall = start.elapsed().as_secs_f64();
    println!("{}", json!({ "requests": count, "wall_s": wall }));
    Ok(())
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

struct Bench {
    nginx: Nginx,
    count: u64,
    taskset: bool,
    exe: PathBuf,
    log_offset: u64,
}

/// One measured run.
#[derive(Debug, Clone, Copy)]
struct Run {
    /// Spawn → exit, as this driver measured it.
    wall_s: f64,
    /// Distinct nginx connections of the run's requests.
    connections: usize,
}

impl Bench {
    fn command(&self, program: &str) -> Command {
        if self.taskset {
            let mut c = Command::new("taskset");
            c.arg("-c").arg(CORE.to_string()).arg(program);
            c
        } else {
            Command::new(program)
        }
    }

    fn run(&mut self, client: &str) -> Result<Run, String> {
        let mut cmd = if client == "curl" {
            let mut c = self.command("curl");
            c.args(["-s", "-o", "/dev/null"]).arg(format!(
                "{}/small?[1-{}]",
                self.nginx.base_url(),
                self.count
            ));
            // `-o` applies to the first URL of the glob only; the others go
            // to stdout.
            c.stdout(Stdio::null());
            c
        } else {
            let mut c = self.command(&self.exe.to_string_lossy());
            c.arg("--child")
                .arg("--url")
                .arg(self.nginx.base_url())
                .arg("--count")
                .arg(self.count.to_string());
            c.stdout(Stdio::piped());
            c
        };
        cmd.stderr(Stdio::inherit());
        let start = Instant::now();
        let out = cmd
            .spawn()
            .and_then(|c| c.wait_with_output())
            .map_err(|e| format!("{client}: {e}"))?;
        let wall_s = start.elapsed().as_secs_f64();
        if !out.status.success() {
            return Err(format!("{client}: exited with {}", out.status));
        }
        let connections = self.check_access_log(client)?;
        Ok(Run {
            wall_s,
            connections,
        })
    }

    /// The access-log lines since the last check: `count` requests, all 200
    /// with 13 bytes. Returns how many distinct connections they used.
    fn check_access_log(&mut self, client: &str) -> Result<usize, String> {
        let path = self.nginx.prefix.join("access.log");
        let deadline = Instant::now() + Duration::from_secs(10);
        let text = loop {
            let mut f = File::open(&path).map_err(|e| e.to_string())?;
            f.seek(SeekFrom::Start(self.log_offset))
                .map_err(|e| e.to_string())?;
            let mut text = String::new();
            f.read_to_string(&mut text).map_err(|e| e.to_string())?;
            let complete = text.lines().count() as u64 >= self.count && text.ends_with('\n');
            if complete || Instant::now() >= deadline {
                break text;
            }
            std::thread::sleep(Duration::from_millis(5));
        };
        self.log_offset += text.len() as u64;
        let mut conns = BTreeSet::new();
        let mut n = 0u64;
        let len = HELLO_BODY.len().to_string();
        for l in text.lines() {
            // `<conn> <n on conn> "<request line>" <status> <bytes>`
            let f: Vec<&str> = l.split_whitespace().collect();
            let ok = f.len() >= 4 && f[f.len() - 2] == "200" && f[f.len() - 1] == len;
            if !ok || !l.contains("/small?") {
                return Err(format!("{client}: access log line {l:?}"));
            }
            conns.insert(f[0].to_string());
            n += 1;
        }
        if n != self.count {
            return Err(format!(
                "{client}: access log has {n} requests, expected {}",
                self.count
            ));
        }
        Ok(conns.len())
    }
}

fn main() -> ExitCode {
    let opts = match parse_opts() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("seq_gets: {e}");
            return ExitCode::from(2);
        }
    };
    if opts.child {
        let Some(url) = opts.url.as_deref() else {
            eprintln!("seq_gets --child needs --url");
            return ExitCode::from(2);
        };
        return match child(url, opts.count) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("seq_gets child: {e}");
                ExitCode::FAILURE
            }
        };
    }
    if !have("curl") {
        eprintln!("seq_gets: curl is not installed (apt-get install -y curl)");
        return ExitCode::FAILURE;
    }
    let taskset = opts.pin && have("taskset");
    if opts.pin && !taskset {
        eprintln!("note: taskset not found (util-linux): runs are NOT pinned");
    }
    let exe = match std::env::current_exe() {
        Ok(p) => p,
        Err(e) => {
            eprintln!("seq_gets: cannot find this executable: {e}");
            return ExitCode::FAILURE;
        }
    };
    let nginx = Nginx::start_with(NginxOptions {
        big_file_len: 1 << 20,
        ..NginxOptions::default()
    });
    fs::write(nginx.docroot.join("small"), HELLO_BODY).expect("write /small");
    let log_offset = fs::metadata(nginx.prefix.join("access.log")).map_or(0, |m| m.len());
    if taskset {
        let ok = Command::new("taskset")
            .args(["-a", "-p", "-c", &CORE.to_string()])
            .arg(nginx.pid().to_string())
            .stdout(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            eprintln!("seq_gets: taskset -p on nginx failed");
            return ExitCode::FAILURE;
        }
    }
    let mut b = Bench {
        nginx,
        count: opts.count,
        taskset,
        exe,
        log_offset,
    };
    let placement = if taskset {
        format!("nginx and both clients on core {CORE}")
    } else {
        "unpinned".to_string()
    };
    println!(
        "# seq_gets: {} sequential GETs of a 13-byte /small, {} rounds (ours, curl), {placement}",
        b.count, opts.rounds
    );

    // Warm-up (not counted): binaries and nginx's open-file state.
    for client in ["ours", "curl"] {
        if let Err(e) = b.run(client) {
            eprintln!("seq_gets: warm-up: {e}");
            return ExitCode::FAILURE;
        }
    }

    let mut ours = Vec::new();
    let mut curl = Vec::new();
    println!("round  ours_s  curl_s  curl/ours  ours_conns  curl_conns");
    for round in 1..=opts.rounds {
        let o = match b.run("ours") {
            Ok(r) => r,
            Err(e) => {
                eprintln!("seq_gets: round {round}: {e}");
                return ExitCode::FAILURE;
            }
        };
        let c = match b.run("curl") {
            Ok(r) => r,
            Err(e) => {
                eprintln!("seq_gets: round {round}: {e}");
                return ExitCode::FAILURE;
            }
        };
        println!(
            "{round:>5}  {:>6.3}  {:>6.3}  {:>8.2}x  {:>10}  {:>10}",
            o.wall_s,
            c.wall_s,
            c.wall_s / o.wall_s,
            o.connections,
            c.connections
        );
        ours.push(o);
        curl.push(c);
    }

    let ratios: Vec<f64> = ours
        .iter()
        .zip(&curl)
        .map(|(o, c)| c.wall_s / o.wall_s)
        .collect();
    let median_ratio = median(&ratios).unwrap_or(f64::NAN);
    let ours_s: Vec<f64> = ours.iter().map(|r| r.wall_s).collect();
    let curl_s: Vec<f64> = curl.iter().map(|r| r.wall_s).collect();
    let ours_conns: Vec<usize> = ours.iter().map(|r| r.connections).collect();
    let curl_conns: Vec<usize> = curl.iter().map(|r| r.connections).collect();
    let one_connection = ours_conns.iter().all(|&n| n == 1);
    let fast_enough = median_ratio >= 2.0;
    let met = |b: bool| if b { "met" } else { "MISSED" };
    println!(
        "median: ours {:.3} s, curl {:.3} s, curl/ours {median_ratio:.2}x (target >= 2.00x: {})",
        median(&ours_s).unwrap_or(f64::NAN),
        median(&curl_s).unwrap_or(f64::NAN),
        met(fast_enough)
    );
    println!(
        "nginx connections for our runs: {ours_conns:?} (target 1: {}); for curl: {curl_conns:?}",
        met(one_connection)
    );
    let summary = json!({
        "bench": "seq_gets",
        "count": b.count,
        "rounds": opts.rounds,
        "placement": placement,
        "ours_s": ours_s,
        "curl_s": curl_s,
        "ratios_curl_over_ours": ratios,
        "median_ratio_curl_over_ours": median_ratio,
        "ours_connections": ours_conns,
        "curl_connections": curl_conns,
        "targets": {
            "ratio_at_least_2": fast_enough,
            "one_connection": one_connection,
        },
    });
    println!("{summary}");
    if let Some(path) = opts.json_out {
        if let Err(e) = fs::write(&path, format!("{summary}\n")) {
            eprintln!("seq_gets: cannot write {}: {e}", path.display());
            return ExitCode::FAILURE;
        }
    }
    ExitCode::SUCCESS
}
