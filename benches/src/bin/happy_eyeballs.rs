//! `happy_eyeballs`: how long a `RequestPool` takes to connect when the first
//! address of a name is dead (issue 8: about the attempt delay, RFC 8305
//! §5, not the connect timeout), beside curl given the same two addresses.
//!
//! ```text
//! happy_eyeballs [--trials N]     (default 5)
//! ```
//!
//! The dead address is a listener whose accept queue is full (its kernel
//! drops further SYNs, so a connect to it hangs as to a host that is down);
//! the live one answers `200` with two bytes. The pool is given both
//! addresses, the dead one first, through an injected lookup, for attempt
//! delays of 100 and 250 ms (connect timeout 20 s); each trial is one GET
//! from `get()` to its completion. The same GET with only the live address
//! is the baseline. curl (if installed) gets the same two addresses, dead
//! first, with `--resolve` (dead on 127.0.0.2, live on 127.0.0.1, one port)
//! and `--connect-timeout 20`, as the pool's; its `time_connect` is printed
//! (curl 7.88 gives the first of two addresses half the connect timeout, so
//! this takes about 11 s). The last line is JSON.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Command, ExitCode};
use std::sync::Arc;
use std::time::{Duration, Instant};

use pollhttp::{RequestPool, RequestResult, Settings};

/// A listener on `addr` whose accept queue is full: further SYNs are
/// dropped. Returns it and the connections that fill it (kept open).
fn dead_listener(addr: SocketAddr) -> std::io::Result<(socket2::Socket, Vec<TcpStream>)> {
    let sock = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None)?;
    sock.set_reuse_address(true)?;
    sock.bind(&addr.into())?;
    sock.listen(0)?;
    let at = sock
        .local_addr()?
        .as_socket()
        .ok_or_else(|| std::io::Error::other("not an IP socket"))?;
    let fill = (0..4)
        .filter_map(|_| TcpStream::connect_timeout(&at, Duration::from_millis(200)).ok())
        .collect();
    Ok((sock, fill))
}

/// A server on `listener` that answers every connection with `200` and
/// `up`, then closes it.
fn serve(listener: TcpListener) {
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { continue };
            let _ = conn.set_read_timeout(Some(Duration::from_secs(5)));
            let mut head = Vec::new();
            let mut buf = [0u8; 1024];
            while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                match conn.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => head.extend_from_slice(&buf[..n]),
                }
            }
            let _ = conn
                .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nup");
        }
    });
}

/// Seconds from `get()` to the completion of one GET with `addrs` as the
/// name's addresses.
fn one_get(addrs: Vec<SocketAddr>, delay: Duration) -> Result<f64, String> {
    let mut pool = RequestPool::new().map_err(|e| e.to_string())?;
    let port = addrs[addrs.len() - 1].port();
    pool.set_lookup(Arc::new(move |_: &str, _: u16| Ok(addrs.clone())));
    let settings = Settings {
        timeouts: pollhttp::Timeouts {
            attempt_delay: delay,
            connect: Duration::from_secs(20),
            ..Default::default()
        },
        ..Settings::default()
    };
    let start = Instant::now();
    pool.get(format!("http://dual.test:{port}/"), &settings)
        .map_err(|e| e.to_string())?;
    loop {
        if start.elapsed() > Duration::from_secs(30) {
            return Err("no completion in 30 s".into());
        }
        pool.wait(Some(Duration::from_millis(50)));
        pool.poll();
        if let Some((_, done)) = pool.poll_completed() {
            if done.result != RequestResult::Success || &done.body[..] != b"up" {
                return Err(format!("{}: {}", done.result, done.reason));
            }
            return Ok(start.elapsed().as_secs_f64());
        }
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn run(trials: usize) -> Result<(), String> {
    let io = |e: std::io::Error| e.to_string();
    let live = TcpListener::bind("127.0.0.1:0").map_err(io)?;
    let good = live.local_addr().map_err(io)?;
    serve(live);
    // The dead address: the same port on 127.0.0.2 (for curl's --resolve,
    // which gives every address one port).
    let (_dead_sock, _fill) =
        dead_listener(SocketAddr::from(([127, 0, 0, 2], good.port()))).map_err(io)?;
    let dead = SocketAddr::from(([127, 0, 0, 2], good.port()));
    let baseline = median(
        (0..trials)
            .map(|_| one_get(vec![good], Duration::from_millis(250)))
            .collect::<Result<_, _>>()?,
    );
    println!(
        "# happy_eyeballs: one GET, the first address dead (full accept queue), {trials} trials each"
    );
    println!("live address only: {:.1} ms (median)", baseline * 1e3);
    let mut json = serde_json::json!({"bench": "happy_eyeballs", "trials": trials, "baseline_ms": baseline * 1e3});
    for delay_ms in [100u64, 250] {
        let delay = Duration::from_millis(delay_ms);
        let times: Vec<f64> = (0..trials)
            .map(|_| one_get(vec![dead, good], delay))
            .collect::<Result<_, _>>()?;
        let (lo, hi) = times
            .iter()
            .fold((f64::MAX, 0f64), |(l, h), &t| (l.min(t), h.max(t)));
        let m = median(times);
        println!(
            "attempt delay {delay_ms} ms: done after {:.1} ms (median; {:.1}-{:.1}), {:.2}x the delay; connect timeout 20 s",
            m * 1e3,
            lo * 1e3,
            hi * 1e3,
            m / delay.as_secs_f64()
        );
        json[format!("delay_{delay_ms}_ms")] = serde_json::json!(m * 1e3);
    }
    // curl, given the same two addresses in the same order.
    let out = Command::new("curl")
        .args([
            "-s",
            "-o",
            "/dev/null",
            "-w",
            "%{time_connect} %{http_code}",
        ])
        .args(["--connect-timeout", "20"])
        .arg("--resolve")
        .arg(format!("dual.test:{0}:127.0.0.2,127.0.0.1", good.port()))
        .arg(format!("http://dual.test:{}/", good.port()))
        .output();
    match out {
        Ok(o) => {
            let text = String::from_utf8_lossy(&o.stdout).into_owned();
            let mut parts = text.split_whitespace();
            let connect: f64 = parts
                .next()
                .and_then(|t| t.parse().ok())
                .unwrap_or(f64::NAN);
            let code = parts.next().unwrap_or("?");
            println!(
                "curl --connect-timeout 20 (one trial): connected after {:.1} ms (HTTP {code})",
                connect * 1e3
            );
            json["curl_connect_ms"] = serde_json::json!(connect * 1e3);
        }
        Err(e) => println!("curl: not run ({e})"),
    }
    println!("{json}");
    Ok(())
}

fn main() -> ExitCode {
    let mut trials = 5;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match (a.as_str(), args.next().and_then(|v| v.parse().ok())) {
            ("--trials", Some(n)) if n > 0 => trials = n,
            _ => {
                eprintln!("usage: happy_eyeballs [--trials N]");
                return ExitCode::from(2);
            }
        }
    }
    match run(trials) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("happy_eyeballs: {e}");
            ExitCode::from(1)
        }
    }
}
