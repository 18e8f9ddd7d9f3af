//! `pool_scale`: does a `RequestPool`'s `poll()` cost follow ready events or
//! open connections? (issue 8: with many open connections and one active
//! transfer, `poll()` within 2× of the same with one connection.)
//!
//! ```text
//! pool_scale [--connections N]     (default 500)
//! ```
//!
//! Two runs against nginx: with 1 and with N kept-alive idle connections in
//! the pool, one 64 MiB download while `poll()` is timed call by call (byte
//! budget 256 KiB, so every call does comparable work); it prints the median
//! and p99 cost of a call of each run and their ratios, then completes
//! 10 000 small GETs over the N connections.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use pollhttp::{PoolSettings, RequestPool, RequestResult, Settings};
use pollhttp_tests::nginx::{Nginx, NginxOptions};

fn pool(n: usize) -> RequestPool {
    RequestPool::with_settings(PoolSettings {
        max_connections: n + 1,
        max_connections_per_origin: n + 1,
        max_idle: n + 1,
        max_idle_per_origin: n + 1,
        poll_budget: pollhttp::PollBudget::new(256 * 1024, Some(Duration::from_secs(1))),
        ..PoolSettings::default()
    })
    .expect("a poller")
}

/// Median and p99 of the cost of one `poll()` during a big download beside
/// `idle` idle connections.
fn run(nginx: &Nginx, idle: usize) -> Result<(f64, f64), String> {
    let mut p = pool(idle);
    let s = Settings::default();
    for _ in 0..idle {
        p.get(nginx.url("/hello.txt"), &s)
            .map_err(|e| e.to_string())?;
    }
    pollhttp_benches::drain_pool(&mut p, idle)?;
    let big = Settings {
        body: pollhttp::BodySettings {
            accept_gzip: false,
            ..Default::default()
        },
        ..Settings::default()
    };
    p.get(nginx.url("/big.bin"), &big)
        .map_err(|e| e.to_string())?;
    let mut costs = Vec::new();
    let start = Instant::now();
    loop {
        if start.elapsed() > Duration::from_secs(120) {
            return Err("the download took more than 120 s".into());
        }
        p.wait(Some(Duration::from_millis(100)));
        let t = Instant::now();
        let before = p.bytes_read();
        p.poll();
        let cost = t.elapsed();
        if p.bytes_read() - before >= 128 * 1024 {
            costs.push(cost.as_secs_f64() * 1e6);
        }
        if let Some((_, c)) = p.poll_completed() {
            if c.result != RequestResult::Success {
                return Err(c.reason);
            }
            break;
        }
    }
    if p.idle_connections() < idle {
        return Err(format!("{} idle connections left", p.idle_connections()));
    }
    costs.sort_by(f64::total_cmp);
    let q = |f: f64| costs[((costs.len() - 1) as f64 * f) as usize];
    Ok((q(0.5), q(0.99)))
}

fn main() -> ExitCode {
    let mut n = 500;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match (a.as_str(), args.next()) {
            ("--connections", Some(v)) => n = v.parse().unwrap_or(n),
            _ => {
                eprintln!("usage: pool_scale [--connections N]");
                return ExitCode::FAILURE;
            }
        }
    }
    let nginx = Nginx::start_with(NginxOptions {
        big_file_len: 64 << 20,
        // Each connection is one of nginx's, with room to spare.
        worker_connections: (2 * n + 64) as u32,
        ..NginxOptions::default()
    });
    let mut results = Vec::new();
    // Interleaved, twice each, to see the noise.
    for idle in [1, n, 1, n] {
        match run(&nginx, idle) {
            Ok((med, p99)) => {
                println!("{idle:>5} idle connections: poll() median {med:.1} us, p99 {p99:.1} us (256 KiB budget)");
                results.push((idle, med, p99));
            }
            Err(e) => {
                eprintln!("pool_scale: {idle} idle: {e}");
                return ExitCode::FAILURE;
            }
        }
    }
    let avg = |k: usize, f: fn(&(usize, f64, f64)) -> f64| {
        let v: Vec<f64> = results.iter().filter(|r| r.0 == k).map(f).collect();
        v.iter().sum::<f64>() / v.len() as f64
    };
    let med_ratio = avg(n, |r| r.1) / avg(1, |r| r.1);
    let p99_ratio = avg(n, |r| r.2) / avg(1, |r| r.2);
    println!("ratio {n} idle / 1 idle: median {med_ratio:.2}, p99 {p99_ratio:.2} (target <= 2)");
    // 10 000 small GETs over n connections.
    let mut p = pool(n);
    let start = Instant::now();
    for _ in 0..10_000 {
        if let Err(e) = p.get(nginx.url("/hello.txt"), &Settings::default()) {
            eprintln!("pool_scale: {e}");
            return ExitCode::FAILURE;
        }
    }
    if let Err(e) = pollhttp_benches::drain_pool(&mut p, 10_000) {
        eprintln!("pool_scale: 10 000 GETs: {e}");
        return ExitCode::FAILURE;
    }
    let secs = start.elapsed().as_secs_f64();
    println!(
        "10 000 GETs over at most {n} connections: {:.0} req/s, {} connections opened",
        10_000.0 / secs,
        p.connections_opened()
    );
    println!(
        "{}",
        serde_json::json!({
            "bench": "pool_scale",
            "connections": n,
            "poll_median_ratio": med_ratio,
            "poll_p99_ratio": p99_ratio,
            "gets_10k_req_s": 10_000.0 / secs,
            "connections_opened": p.connections_opened(),
        })
    );
    ExitCode::SUCCESS
}
