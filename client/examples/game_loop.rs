//! `game_loop`: a 60 fps frame loop that downloads with
//! [`pollhttp::HttpRequest`] while it "renders", and measures what the
//! download costs the frames.
//!
//! ```text
//! game_loop [URL] [--inline] [--memory] [--asset-mib N] [--poll-budget-kib N]
//!           [--timeout SECS] [--plot FILE.svg]
//! ```
//!
//! Each frame calls `req.poll()` exactly once (timed), runs a small fake
//! update/render workload, and draws a one-line status on stderr (`\r` + the
//! line every frame when stderr is a terminal; otherwise a plain line every
//! 30th frame). The rest of the 16.667 ms frame is slept with
//! `std::thread::sleep`: that is the game's own frame pacing, not the
//! library's.
//!
//! - Without a URL it serves a generated asset (`--asset-mib N`, default 256
//!   MiB, deterministic bytes, `Content-Length`) from a loopback server thread
//!   inside this process, so it runs on a machine without network, and checks
//!   the received bytes at the end.
//! - By default the request runs on the library's worker thread
//!   (`use_threads = true`): the worker downloads at full speed and `poll()`
//!   only collects. `--inline` runs it in the frame loop instead: each
//!   `poll()` then does at most `poll_budget` bytes of work
//!   (`--poll-budget-kib`, default the library's 1 MiB), so the download is
//!   capped at about budget × 60 per second.
//! - The body is streamed into a temporary file (`download_file`), as a game
//!   would do with an asset; `--memory` keeps it in memory instead.
//! - `--plot FILE.svg` draws the frame time and the `poll()` cost of every
//!   frame (two panels, plotters).
//!
//! At the end it prints the frame-time distribution (the work done in a
//! frame, before the sleep), the `poll()` cost, the throughput, and as its
//! last line:
//!
//! ```text
//! frames=N frame_max_ms=X frame_p99_ms=X poll_max_us=X poll_p99_us=X mb_per_s=X result=Success
//! ```
//!
//! MB/s means 10^6 bytes per second, over the time from `request()` to the
//! frame whose `poll()` returned the result. The exit status is non-zero
//! unless the result is `Success` (and, for the built-in asset, the bytes
//! check out).

use std::fs::File;
use std::io::{self, BufRead, BufReader, IsTerminal, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use pollhttp::{HttpRequest, RequestResult};

/// The frame period: 60 frames per second.
const FRAME: Duration = Duration::from_nanos(16_666_667);

/// The asset server writes (and the check compares) this many bytes per call.
const BLOCK: usize = 1 << 20;

const USAGE: &str = "\
usage: game_loop [URL] [options]
      --inline             run the request in the frame loop (no worker thread)
      --memory             keep the body in memory instead of a temporary file
      --asset-mib N        size of the built-in asset (no URL), default 256
      --poll-budget-kib N  bytes one inline poll() may process, default 1024
      --timeout SECS       request deadline, default 300
      --plot FILE.svg      plot frame time and poll() cost per frame";

#[derive(Debug)]
struct Args {
    url: Option<String>,
    inline: bool,
    memory: bool,
    asset_mib: u64,
    poll_budget_kib: Option<usize>,
    timeout: Duration,
    plot: Option<PathBuf>,
}

/// What one frame cost.
#[derive(Debug, Clone, Copy)]
struct Frame {
    /// Work time of the frame (poll + update/render + status), ms.
    work_ms: f64,
    /// `poll()` alone, µs.
    poll_us: f64,
    /// From this frame's start to the next one's, ms (0 for the last).
    interval_ms: f64,
}

fn main() -> ExitCode {
    let args = match parse_args(std::env::args().skip(1)) {
        Ok(Some(a)) => a,
        Ok(None) => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("game_loop: {e}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    match run(&args) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            eprintln!("game_loop: {e}");
            ExitCode::from(1)
        }
    }
}

fn parse_args(mut it: impl Iterator<Item = String>) -> Result<Option<Args>, String> {
    let mut a = Args {
        url: None,
        inline: false,
        memory: false,
        asset_mib: 256,
        poll_budget_kib: None,
        timeout: Duration::from_secs(300),
        plot: None,
    };
    while let Some(arg) = it.next() {
        let mut value = |name: &str| it.next().ok_or_else(|| format!("{name} needs a value"));
        match arg.as_str() {
            "-h" | "--help" => return Ok(None),
            "--inline" => a.inline = true,
            "--memory" => a.memory = true,
            "--asset-mib" => a.asset_mib = number(&arg, &value(&arg)?)?,
            "--poll-budget-kib" => a.poll_budget_kib = Some(number(&arg, &value(&arg)?)?),
            "--timeout" => {
                let s: f64 = number(&arg, &value(&arg)?)?;
                a.timeout =
                    Duration::try_from_secs_f64(s).map_err(|_| format!("bad --timeout {s}"))?;
            }
            "--plot" => a.plot = Some(PathBuf::from(value(&arg)?)),
            s if s.starts_with('-') => return Err(format!("unknown option {s}")),
            _ if a.url.is_none() => a.url = Some(arg),
            _ => return Err(format!("unexpected argument {arg:?}")),
        }
    }
    Ok(Some(a))
}

fn number<T: std::str::FromStr>(flag: &str, v: &str) -> Result<T, String> {
    v.parse()
        .map_err(|_| format!("{flag}: not a valid number: {v:?}"))
}

fn run(args: &Args) -> Result<bool, String> {
    // The asset: the given URL, or our own loopback server.
    let asset_len = args.asset_mib << 20;
    let url = match &args.url {
        Some(u) => u.clone(),
        None => {
            let addr = start_asset_server(asset_len)
                .map_err(|e| format!("cannot start the asset server: {e}"))?;
            format!("http://{addr}/asset.bin")
        }
    };
    let file = (!args.memory).then(|| {
        std::env::temp_dir().join(format!("pollhttp-game-loop-{}.bin", std::process::id()))
    });
    let _cleanup = file.clone().map(RemoveOnDrop);

    let mut req = HttpRequest::new();
    {
        let s = req.settings_mut();
        s.use_threads = !args.inline;
        s.timeout = Some(args.timeout);
        s.download_file = file.clone();
        if let Some(kib) = args.poll_budget_kib {
            s.poll_budget = kib.max(1) * 1024;
        }
    }
    let mode = if args.inline {
        format!(
            "inline, poll budget {} KiB",
            req.settings().poll_budget / 1024
        )
    } else {
        "worker thread".to_string()
    };
    println!(
        "game_loop: GET {url} ({mode}) into {}",
        file.as_deref()
            .map_or("memory".to_string(), |p| p.display().to_string())
    );

    let tty = io::stderr().is_terminal();
    let mut world = World::new();
    let mut frames: Vec<Frame> = Vec::with_capacity(4096);
    let mut rate = Rate::default();
    let started = Instant::now();
    req.request(&url, &[], "GET", "")
        .map_err(|e| e.to_string())?;
    let mut next = started;
    let mut last_start: Option<Instant> = None;
    let done = loop {
        let frame_start = Instant::now();
        if let (Some(prev), Some(last)) = (last_start, frames.last_mut()) {
            last.interval_ms = ms(frame_start - prev);
        }
        last_start = Some(frame_start);

        let t = Instant::now();
        let polled = req.poll();
        let poll_cost = t.elapsed();

        world.update_and_render();

        let n = frames.len();
        if tty || n % 30 == 0 || polled.is_some() {
            let got = polled
                .as_ref()
                .map_or_else(|| req.downloaded_bytes(), |d| d.body_bytes);
            let line = format!(
                "frame {n:5}  {:>15}  {:7.1}/{} MiB  {:7.1} MB/s  frame {:6.3} ms  poll {:7.1} µs",
                polled.as_ref().map_or_else(
                    || format!("{:?}", req.http_client_status()),
                    |d| d.result.name().to_string()
                ),
                got as f64 / (1 << 20) as f64,
                req.body_size()
                    .or(polled.as_ref().map(|d| d.body_bytes))
                    .map_or("?".to_string(), |s| format!(
                        "{:.1}",
                        s as f64 / (1 << 20) as f64
                    )),
                rate.update(frame_start, got),
                ms(frame_start.elapsed()),
                poll_cost.as_secs_f64() * 1e6,
            );
            let mut err = io::stderr().lock();
            let _ = if tty {
                write!(err, "\r{line}\x1b[K")
            } else {
                writeln!(err, "{line}")
            };
        }

        frames.push(Frame {
            work_ms: ms(frame_start.elapsed()),
            poll_us: poll_cost.as_secs_f64() * 1e6,
            interval_ms: 0.0,
        });
        if let Some(done) = polled {
            break done;
        }
        // The game's frame pacing: sleep out the rest of the frame.
        next += FRAME;
        let now = Instant::now();
        if next > now {
            std::thread::sleep(next - now);
        } else {
            next = now; // a late frame: do not try to catch up
        }
    };
    let seconds = started.elapsed().as_secs_f64();
    if tty {
        eprintln!();
    }

    // The bytes, when they are ours to check.
    let mut ok = done.result == RequestResult::Success;
    let check = if args.url.is_none() && ok {
        let verdict = match &file {
            Some(path) => check_file(path, asset_len),
            None => check_bytes(&done.body, asset_len),
        };
        ok &= verdict.is_ok();
        Some(verdict)
    } else {
        None
    };
    if let Some(path) = &args.plot {
        plot(path, &frames, &mode).map_err(|e| format!("cannot plot {}: {e}", path.display()))?;
        println!("plot: {}", path.display());
    }
    report(&frames, &done, seconds, check.as_ref());
    Ok(ok)
}

fn report(
    frames: &[Frame],
    done: &pollhttp::Completed,
    seconds: f64,
    check: Option<&Result<(), String>>,
) {
    let work: Vec<f64> = frames.iter().map(|f| f.work_ms).collect();
    let poll: Vec<f64> = frames.iter().map(|f| f.poll_us).collect();
    let intervals: Vec<f64> = frames
        .iter()
        .map(|f| f.interval_ms)
        .filter(|&i| i > 0.0)
        .collect();
    let budget = ms(FRAME);
    let over = work.iter().filter(|&&w| w > budget).count();
    let late = intervals.iter().filter(|&&i| i > 2.0 * budget).count();
    let mb_per_s = done.body_bytes as f64 / seconds / 1e6;
    if done.result != RequestResult::Success {
        println!("result: {} ({})", done.result, done.reason);
    } else {
        println!("result: Success, HTTP {}", done.response_code);
    }
    println!("frames: {} at 60 fps (period {budget:.3} ms)", frames.len());
    println!(
        "frame time (work before the sleep): max {:.3} ms  p99 {:.3} ms  p50 {:.3} ms  over {budget:.3} ms: {over}",
        max(&work),
        percentile(&work, 0.99),
        percentile(&work, 0.50),
    );
    println!(
        "frame interval (start to start):    max {:.3} ms  p99 {:.3} ms  p50 {:.3} ms  dropped (> 2 periods): {late}",
        max(&intervals),
        percentile(&intervals, 0.99),
        percentile(&intervals, 0.50),
    );
    println!(
        "poll() cost: max {:.1} µs  p99 {:.1} µs  p50 {:.1} µs",
        max(&poll),
        percentile(&poll, 0.99),
        percentile(&poll, 0.50),
    );
    println!(
        "download: {} body bytes ({} on the wire) in {seconds:.3} s = {mb_per_s:.1} MB/s",
        done.body_bytes, done.wire_bytes
    );
    match check {
        Some(Ok(())) => println!("content: verified"),
        Some(Err(e)) => println!("content: WRONG: {e}"),
        None => {}
    }
    println!(
        "frames={} frame_max_ms={:.3} frame_p99_ms={:.3} poll_max_us={:.1} poll_p99_us={:.1} mb_per_s={:.1} result={}",
        frames.len(),
        max(&work),
        percentile(&work, 0.99),
        max(&poll),
        percentile(&poll, 0.99),
        mb_per_s,
        done.result.name()
    );
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn max(v: &[f64]) -> f64 {
    v.iter().copied().fold(0.0, f64::max)
}

/// Nearest-rank percentile (0 for no samples).
fn percentile(v: &[f64], p: f64) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    let rank = ((p * s.len() as f64).ceil() as usize).clamp(1, s.len());
    s[rank - 1]
}

/// Throughput over roughly the last half second, for the status line.
#[derive(Default)]
struct Rate {
    marks: std::collections::VecDeque<(Instant, u64)>,
}

impl Rate {
    fn update(&mut self, now: Instant, bytes: u64) -> f64 {
        self.marks.push_back((now, bytes));
        while self.marks.len() > 2
            && now.duration_since(self.marks[0].0) > Duration::from_millis(500)
        {
            self.marks.pop_front();
        }
        let (t0, b0) = self.marks[0];
        let dt = now.duration_since(t0).as_secs_f64();
        if dt > 0.0 {
            bytes.saturating_sub(b0) as f64 / dt / 1e6
        } else {
            0.0
        }
    }
}

/// A stand-in for a game's per-frame CPU work: move and "draw" sprites.
struct World {
    sprites: Vec<[f32; 4]>,
    frame: u32,
}

impl World {
    fn new() -> World {
        let sprites = (0..20_000)
            .map(|i| {
                let f = i as f32;
                [
                    f % 640.0,
                    (f * 7.0) % 480.0,
                    (f % 13.0) - 6.0,
                    (f % 7.0) - 3.0,
                ]
            })
            .collect();
        World { sprites, frame: 0 }
    }

    fn update_and_render(&mut self) {
        self.frame += 1;
        let mut checksum = 0.0f32;
        for s in &mut self.sprites {
            s[0] += s[2] * 0.016;
            s[1] += s[3] * 0.016;
            if !(0.0..640.0).contains(&s[0]) {
                s[2] = -s[2];
            }
            if !(0.0..480.0).contains(&s[1]) {
                s[3] = -s[3];
            }
            checksum += (s[0] * 0.5 + s[1]).sin();
        }
        std::hint::black_box(checksum);
    }
}

// ------------------------------------------------------------ the asset

/// One block of the asset: xorshift32 bytes; the asset repeats it.
fn asset_block() -> Vec<u8> {
    let mut x: u32 = 0x9E37_79B9;
    (0..BLOCK)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x as u8
        })
        .collect()
}

/// Serves `GET /asset.bin` (`len` bytes) on 127.0.0.1, one thread per
/// connection, until the process exits.
fn start_asset_server(len: u64) -> io::Result<SocketAddr> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
    let addr = listener.local_addr()?;
    std::thread::Builder::new()
        .name("asset-server".into())
        .spawn(move || {
            let block = std::sync::Arc::new(asset_block());
            for conn in listener.incoming() {
                let Ok(conn) = conn else { continue };
                let block = std::sync::Arc::clone(&block);
                let _ = std::thread::Builder::new()
                    .name("asset-conn".into())
                    .spawn(move || serve(conn, len, &block));
            }
        })?;
    Ok(addr)
}

fn serve(conn: TcpStream, len: u64, block: &[u8]) -> io::Result<()> {
    conn.set_read_timeout(Some(Duration::from_secs(10)))?;
    conn.set_write_timeout(Some(Duration::from_secs(60)))?;
    let mut reader = BufReader::new(conn.try_clone()?);
    let mut request_line = String::new();
    reader.read_line(&mut request_line)?;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 || line == "\r\n" || line == "\n" {
            break;
        }
    }
    let mut parts = request_line.split_whitespace();
    let (method, path) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let mut out = conn;
    if path != "/asset.bin" || !matches!(method, "GET" | "HEAD") {
        return out.write_all(
            b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
        );
    }
    let head = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: {len}\r\nConnection: close\r\n\r\n"
    );
    out.write_all(head.as_bytes())?;
    if method == "HEAD" {
        return Ok(());
    }
    let mut left = len;
    while left > 0 {
        let n = left.min(block.len() as u64) as usize;
        out.write_all(&block[..n])?;
        left -= n as u64;
    }
    out.flush()
}

fn check_bytes(body: &[u8], len: u64) -> Result<(), String> {
    if body.len() as u64 != len {
        return Err(format!("{} bytes, expected {len}", body.len()));
    }
    let block = asset_block();
    match body.chunks(BLOCK).position(|c| c != &block[..c.len()]) {
        Some(i) => Err(format!("block {i} differs")),
        None => Ok(()),
    }
}

fn check_file(path: &Path, len: u64) -> Result<(), String> {
    let block = asset_block();
    let mut f = File::open(path).map_err(|e| format!("cannot open {}: {e}", path.display()))?;
    let mut buf = vec![0u8; BLOCK];
    let mut total = 0u64;
    loop {
        let mut filled = 0;
        while filled < BLOCK {
            match f.read(&mut buf[filled..]) {
                Ok(0) => break,
                Ok(n) => filled += n,
                Err(e) => return Err(format!("cannot read {}: {e}", path.display())),
            }
        }
        if filled == 0 {
            break;
        }
        if buf[..filled] != block[..filled] {
            return Err(format!("block {} differs", total / BLOCK as u64));
        }
        total += filled as u64;
    }
    if total != len {
        return Err(format!("{total} bytes, expected {len}"));
    }
    Ok(())
}

/// Removes the download file at the end.
struct RemoveOnDrop(PathBuf);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

// ------------------------------------------------------------ the plot

fn plot(path: &Path, frames: &[Frame], mode: &str) -> Result<(), Box<dyn std::error::Error>> {
    use plotters::prelude::*;

    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    let n = frames.len().max(2) as u32;
    let work_max = frames.iter().map(|f| f.work_ms).fold(0.0, f64::max);
    let poll_max = frames.iter().map(|f| f.poll_us).fold(0.0, f64::max);
    let root = SVGBackend::new(path, (960, 640)).into_drawing_area();
    root.fill(&WHITE)?;
    let (top, bottom) = root.split_vertically(320);
    let caption = ("sans-serif", 18);

    let mut chart = ChartBuilder::on(&top)
        .caption(
            format!(
                "frame time per frame ({mode}; budget {:.1} ms at 60 fps)",
                ms(FRAME)
            ),
            caption,
        )
        .margin(10)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d(0u32..n, 0.0..(work_max * 1.25).max(1.0))?;
    chart
        .configure_mesh()
        .x_desc("frame (60 fps)")
        .y_desc("frame time (ms)")
        .draw()?;
    chart
        .draw_series(LineSeries::new(
            frames
                .iter()
                .enumerate()
                .map(|(i, f)| (i as u32, f.work_ms)),
            &BLUE,
        ))?
        .label("frame time (ms): poll + update/render + status")
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], BLUE));
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()?;

    let mut chart = ChartBuilder::on(&bottom)
        .caption("HttpRequest::poll() cost per frame", caption)
        .margin(10)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d(0u32..n, 0.0..(poll_max * 1.25).max(1.0))?;
    chart
        .configure_mesh()
        .x_desc("frame (60 fps)")
        .y_desc("poll() cost (µs)")
        .draw()?;
    chart
        .draw_series(LineSeries::new(
            frames
                .iter()
                .enumerate()
                .map(|(i, f)| (i as u32, f.poll_us)),
            &RED,
        ))?
        .label("poll() (µs)")
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], RED));
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()?;
    root.present()?;
    Ok(())
}
