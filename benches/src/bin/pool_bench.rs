//! `pool_bench`: many small GETs over many connections from ONE thread,
//! side by side (issue 8's figure): `RequestPool`, hyper on tokio's
//! current-thread runtime, and `curl --parallel`.
//!
//! ```text
//! pool_bench [--count N] [--connections C] [--rounds R] [--no-pin]
//! ```
//!
//! nginx serves a 13-byte `/small` from core 1; every client runs as a child
//! process of this binary (or curl itself) on core 0, timed from spawn to
//! exit, in interleaved rounds (ours, hyper, curl, ours-window, ours, ...).
//! `ours` submits all the requests at once; `ours-window` keeps at most two
//! per connection submitted, as curl's `--parallel` and the hyper child (50
//! tasks, one request each at a time) do. It prints the
//! requests per second of each round, the median ratios ours/hyper and
//! ours/curl, the connections nginx saw for each client, and a JSON line.

use std::fs;
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use pollhttp::{PoolSettings, RequestPool, RequestResult, Settings};
use pollhttp_tests::nginx::{Nginx, NginxOptions, HELLO_BODY};

const SERVER_CORE: u32 = 1;
const CLIENT_CORE: u32 = 0;

struct Opts {
    count: usize,
    connections: usize,
    rounds: usize,
    pin: bool,
}

fn parse() -> Result<(Opts, Option<(String, String)>), String> {
    let mut o = Opts {
        count: 10_000,
        connections: 50,
        rounds: 5,
        pin: true,
    };
    let mut child = None;
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        let mut val = || it.next().ok_or_else(|| format!("{a} needs a value"));
        match a.as_str() {
            "--count" => o.count = val()?.parse().map_err(|e| format!("--count: {e}"))?,
            "--connections" => {
                o.connections = val()?.parse().map_err(|e| format!("--connections: {e}"))?
            }
            "--rounds" => o.rounds = val()?.parse().map_err(|e| format!("--rounds: {e}"))?,
            "--no-pin" => o.pin = false,
            "--child" => {
                let which = val()?;
                let url = val()?;
                child = Some((which, url));
            }
            "-h" | "--help" => {
                return Err(
                    "usage: pool_bench [--count N] [--connections C] [--rounds R] [--no-pin]"
                        .into(),
                )
            }
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    Ok((o, child))
}

/// The pool, one thread, `connections` at most, with at most `window`
/// requests submitted and not yet completed: `ours` submits all `count` at
/// once (`window = count`); `ours-window` feeds it as curl's `--parallel`
/// feeds its multi handle, two per connection, the next as one completes.
fn child_ours(url: &str, count: usize, connections: usize, window: usize) -> Result<(), String> {
    let mut pool = RequestPool::with_settings(PoolSettings {
        max_connections: connections,
        max_connections_per_origin: connections,
        max_idle_per_origin: connections,
        max_idle: connections,
        // A tool, not a game: no frame to share.
        poll_budget: pollhttp::PollBudget::new(usize::MAX, Some(Duration::from_secs(1))),
        ..PoolSettings::default()
    })
    .map_err(|e| e.to_string())?;
    let settings = Settings {
        body: pollhttp::BodySettings {
            accept_gzip: false,
            ..Default::default()
        },
        ..Settings::default()
    };
    // Parsed once, as the hyper child splits its URL once: each request
    // takes a copy of the parsed URL.
    let url = url::Url::parse(url).map_err(|e| e.to_string())?;
    let (mut submitted, mut done) = (0, 0);
    while done < count {
        while submitted < count && submitted - done < window {
            pool.get(&url, &settings).map_err(|e| e.to_string())?;
            submitted += 1;
        }
        pool.wait(Some(Duration::from_secs(5)));
        pool.poll();
        for (_, c) in pool.drain_completed() {
            if c.result != RequestResult::Success || c.body.len() != HELLO_BODY.len() {
                return Err(format!("{}: {}", c.result, c.reason));
            }
            done += 1;
        }
    }
    Ok(())
}

/// hyper: `connections` connections on a current-thread runtime, each task
/// sending its share of the requests one after the other.
fn child_hyper(url: &str, count: usize, connections: usize) -> Result<(), String> {
    use http_body_util::{BodyExt, Empty};
    use hyper_util::rt::TokioIo;
    let u = url
        .strip_prefix("http://")
        .ok_or("http only")?
        .split_once('/')
        .ok_or("no path")?;
    let (authority, path) = (u.0.to_string(), format!("/{}", u.1));
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()
        .map_err(|e| e.to_string())?;
    rt.block_on(async move {
        let mut tasks = Vec::new();
        for c in 0..connections {
            let n = count / connections + usize::from(c < count % connections);
            let (authority, path) = (authority.clone(), path.clone());
            tasks.push(tokio::task::spawn(async move {
                let stream = tokio::net::TcpStream::connect(authority.as_str())
                    .await
                    .map_err(|e| e.to_string())?;
                stream.set_nodelay(true).map_err(|e| e.to_string())?;
                let (mut sender, conn) =
                    hyper::client::conn::http1::handshake(TokioIo::new(stream))
                        .await
                        .map_err(|e| e.to_string())?;
                tokio::task::spawn(conn);
                for _ in 0..n {
                    sender.ready().await.map_err(|e| e.to_string())?;
                    let req = hyper::Request::builder()
                        .uri(path.as_str())
                        .header(hyper::header::HOST, authority.as_str())
                        .body(Empty::<bytes::Bytes>::new())
                        .map_err(|e| e.to_string())?;
                    let resp = sender.send_request(req).await.map_err(|e| e.to_string())?;
                    let body = resp
                        .into_body()
                        .collect()
                        .await
                        .map_err(|e| e.to_string())?
                        .to_bytes();
                    if body.len() != HELLO_BODY.len() {
                        return Err(format!("body of {} bytes", body.len()));
                    }
                }
                Ok::<(), String>(())
            }));
        }
        for t in tasks {
            t.await.map_err(|e| e.to_string())??;
        }
        Ok(())
    })
}

struct Bench {
    nginx: Nginx,
    opts: Opts,
    exe: std::path::PathBuf,
    taskset: bool,
}

impl Bench {
    fn url(&self) -> String {
        self.nginx.url("/small")
    }

    fn command(&self, program: &str) -> Command {
        if self.taskset {
            let mut c = Command::new("taskset");
            c.args(["-c", &CLIENT_CORE.to_string(), program]);
            c
        } else {
            Command::new(program)
        }
    }

    /// One run of `client`: seconds and the connections nginx saw.
    fn run(&self, client: &str) -> Result<(f64, usize), String> {
        let log = self.nginx.prefix.join("access.log");
        let before = fs::metadata(&log).map_or(0, |m| m.len()) as usize;
        let exe = self.exe.to_string_lossy().into_owned();
        let mut cmd = match client {
            "curl" => {
                let mut c = self.command("curl");
                c.args([
                    "-s",
                    "--parallel",
                    "--parallel-immediate",
                    "--parallel-max",
                    &self.opts.connections.to_string(),
                    "-o",
                    "/dev/null",
                ])
                .arg(format!("{}?[1-{}]", self.url(), self.opts.count));
                c
            }
            which => {
                let mut c = self.command(&exe);
                c.args(["--child", which, &self.url()])
                    .args(["--count", &self.opts.count.to_string()])
                    .args(["--connections", &self.opts.connections.to_string()]);
                c
            }
        };
        let start = Instant::now();
        let status = cmd
            .stdout(Stdio::null())
            .stderr(if client == "curl" {
                Stdio::null()
            } else {
                Stdio::inherit()
            })
            .status()
            .map_err(|e| format!("{client}: {e}"))?;
        let secs = start.elapsed().as_secs_f64();
        if !status.success() {
            return Err(format!("{client} failed: {status}"));
        }
        // Count this run's lines and connections in the access log.
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let text = fs::read_to_string(&log).map_err(|e| e.to_string())?;
            let ours: Vec<&str> = text[before.min(text.len())..]
                .lines()
                .filter(|l| l.contains("/small"))
                .collect();
            if ours.len() >= self.opts.count || Instant::now() > deadline {
                if ours.len() != self.opts.count {
                    return Err(format!("{client}: nginx logged {} requests", ours.len()));
                }
                let conns: std::collections::HashSet<&str> =
                    ours.iter().filter_map(|l| l.split(' ').next()).collect();
                return Ok((secs, conns.len()));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn have(program: &str) -> bool {
    Command::new(program)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok()
}

fn main() -> ExitCode {
    let (opts, child) = match parse() {
        Ok(p) => p,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::FAILURE;
        }
    };
    if let Some((which, url)) = child {
        let r = match which.as_str() {
            "ours" => child_ours(&url, opts.count, opts.connections, opts.count),
            "ours-window" => child_ours(&url, opts.count, opts.connections, 2 * opts.connections),
            "hyper" => child_hyper(&url, opts.count, opts.connections),
            other => Err(format!("unknown child {other}")),
        };
        return match r {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("pool_bench child: {e}");
                ExitCode::FAILURE
            }
        };
    }
    if !have("curl") {
        eprintln!("pool_bench: curl is not installed");
        return ExitCode::FAILURE;
    }
    let taskset = opts.pin && have("taskset");
    let nginx = Nginx::start_with(NginxOptions {
        big_file_len: 1 << 20,
        ..NginxOptions::default()
    });
    fs::write(nginx.docroot.join("small"), HELLO_BODY).expect("write /small");
    if taskset {
        let _ = Command::new("taskset")
            .args(["-a", "-p", "-c", &SERVER_CORE.to_string()])
            .arg(nginx.pid().to_string())
            .stdout(Stdio::null())
            .status();
    }
    let exe = std::env::current_exe().expect("this executable");
    let b = Bench {
        nginx,
        opts,
        exe,
        taskset,
    };
    println!(
        "# pool_bench: {} GETs of a 13-byte /small over {} connections, one client thread, {} rounds{}",
        b.opts.count,
        b.opts.connections,
        b.opts.rounds,
        if taskset {
            format!(", nginx on core {SERVER_CORE}, clients on core {CLIENT_CORE}")
        } else {
            ", unpinned".into()
        }
    );
    let clients = ["ours", "hyper", "curl", "ours-window"];
    for c in clients {
        if let Err(e) = b.run(c) {
            eprintln!("pool_bench: warm-up: {e}");
            return ExitCode::FAILURE;
        }
    }
    let mut rates: [Vec<f64>; 4] = Default::default();
    let mut conns = [0usize; 4];
    println!("round  ours_req_s  hyper_req_s  curl_req_s  ours/hyper  ours/curl  window_req_s  window/hyper");
    for round in 1..=b.opts.rounds {
        let mut row = [0f64; 4];
        for (i, c) in clients.iter().enumerate() {
            match b.run(c) {
                Ok((secs, n)) => {
                    row[i] = b.opts.count as f64 / secs;
                    conns[i] = n;
                    rates[i].push(row[i]);
                }
                Err(e) => {
                    eprintln!("pool_bench: round {round}: {e}");
                    return ExitCode::FAILURE;
                }
            }
        }
        println!(
            "{round:>5}  {:>10.0}  {:>11.0}  {:>10.0}  {:>10.2}  {:>9.2}  {:>12.0}  {:>12.2}",
            row[0],
            row[1],
            row[2],
            row[0] / row[1],
            row[0] / row[2],
            row[3],
            row[3] / row[1]
        );
    }
    let ratio_of =
        |a: usize, i: usize| median(rates[a].iter().zip(&rates[i]).map(|(o, p)| o / p).collect());
    let ratio = |i: usize| ratio_of(0, i);
    let (vs_hyper, vs_curl) = (ratio(1), ratio(2));
    let window_vs_hyper = ratio_of(3, 1);
    println!(
        "median: ours {:.0} req/s, hyper {:.0}, curl {:.0}; ours/hyper {vs_hyper:.2} (target >= 1.0), ours/curl {vs_curl:.2} (target >= 1.5); connections seen by nginx: ours {}, hyper {}, curl {}",
        median(rates[0].clone()),
        median(rates[1].clone()),
        median(rates[2].clone()),
        conns[0],
        conns[1],
        conns[2]
    );
    println!(
        "windowed (at most 2 requests per connection submitted at a time): ours {:.0} req/s, ours/hyper {window_vs_hyper:.2}; connections seen by nginx: {}",
        median(rates[3].clone()),
        conns[3]
    );
    println!(
        "{}",
        serde_json::json!({
            "bench": "pool_bench",
            "count": b.opts.count,
            "connections": b.opts.connections,
            "ours_req_s": median(rates[0].clone()),
            "hyper_req_s": median(rates[1].clone()),
            "curl_req_s": median(rates[2].clone()),
            "ours_over_hyper": vs_hyper,
            "ours_over_curl": vs_curl,
            "window_req_s": median(rates[3].clone()),
            "window_over_hyper": window_vs_hyper,
            "nginx_connections": {"ours": conns[0], "hyper": conns[1], "curl": conns[2]},
        })
    );
    ExitCode::SUCCESS
}
