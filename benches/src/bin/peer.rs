//! One HTTP client run per process, for the side-by-side peer benchmark
//! (driven by `peer_bench`; see benches/README.md).
//!
//! ```text
//! peer --client {pollhttp|ureq|hyper|raw} --mode {download|seq} --url URL
//!      [--cacert PEM_FILE] [--count N] [--call-cpu] [--no-timing]
//! ```
//!
//! `download` GETs URL once; `seq` GETs it `--count` times (default 20 000)
//! one after the other on one keep-alive connection. Every client discards
//! the body (counting bytes) and checks status 200 and the byte count against
//! Content-Length. Prints one JSON line on stdout, exits non-zero on failure.
//!
//! Clients:
//! - `pollhttp`: [`pollhttp::HttpClient`] driven like `tests/src/drive.rs`:
//!   `wait(Some(100 ms))`, `poll()`, then `read_response_body_chunk()` while
//!   the status is `Body`. Every `poll()` and `read_response_body_chunk()`
//!   call is timed (max and p99 reported); `--call-cpu` also records each
//!   call's thread CPU time (excludes preemption; costs two syscalls a call);
//!   `--no-timing` times nothing (the driver's `seq` runs: at ~5 calls per
//!   request the two `Instant::now()` per call would cost pollhttp ~3 %).
//! - `ureq`: a ureq 3 blocking `Agent` (keep-alive pool), body through
//!   `into_body().into_reader()` with a 64 KiB buffer; TLS roots from
//!   `--cacert`.
//! - `hyper`: `hyper::client::conn::http1::handshake` over
//!   `hyper_util::rt::TokioIo<tokio::net::TcpStream>` on tokio's
//!   current-thread runtime, body drained frame by frame; TLS through
//!   `tokio_rustls` with pollhttp's rustls configuration (as `raw`).
//! - `raw`: a blocking std `TcpStream` (TLS: rustls `StreamOwned` over it,
//!   with pollhttp's rustls configuration), minimal GET, 64 KiB read buffer,
//!   parses only the head's Content-Length. The floor for what any client on
//!   these sockets and this TLS stack can do. With `--call-cpu` every
//!   `read()` call is timed like pollhttp's calls (the control for them).
//!
//! Timing: `wall_s` and `transfer_cpu_s` cover connect → last body byte
//! (process start-up excluded); `cpu_s` is this process's whole CPU time at
//! exit (`/proc/self/task/*/schedstat`, ns). The driver measures the
//! process's CPU time again from outside (the figure it uses, so that curl is
//! measured the same way).

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::time::{Duration, Instant};

use pollhttp::{HttpClient, Status, TlsOptions};
use pollhttp_benches::peer::{schedstat_cpu, status_kib, Histogram, Url};

const BUF: usize = 64 * 1024;
const DEADLINE: Duration = Duration::from_secs(600);

#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    Download,
    Seq,
}

struct Args {
    client: String,
    mode: Mode,
    url: Url,
    url_str: String,
    cacert: Option<Vec<u8>>,
    count: u64,
    call_cpu: bool,
    no_timing: bool,
}

/// What a run measured, beyond time.
#[derive(Default)]
struct Outcome {
    bytes: u64,
    requests: u64,
    /// pollhttp: durations of poll() / read_response_body_chunk() calls.
    calls: Option<CallTimer>,
    /// Negotiated TLS cipher suite, where the client exposes it.
    tls_suite: Option<String>,
}

fn usage() -> ! {
    eprintln!(
        "usage: peer --client {{pollhttp|ureq|hyper|raw}} --mode {{download|seq}} --url URL \
         [--cacert PEM_FILE] [--count N] [--call-cpu] [--no-timing]"
    );
    std::process::exit(2)
}

fn parse_args() -> Args {
    let mut client = None;
    let mut mode = None;
    let mut url = None;
    let mut cacert = None;
    let mut count = None;
    let mut call_cpu = false;
    let mut no_timing = false;
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        let mut val = || it.next().unwrap_or_else(|| usage());
        match a.as_str() {
            "--client" => client = Some(val()),
            "--mode" => {
                mode = Some(match val().as_str() {
                    "download" => Mode::Download,
                    "seq" => Mode::Seq,
                    _ => usage(),
                })
            }
            "--url" => url = Some(val()),
            "--cacert" => {
                let p = val();
                cacert = Some(std::fs::read(&p).unwrap_or_else(|e| {
                    eprintln!("peer: cannot read {p}: {e}");
                    std::process::exit(2)
                }))
            }
            "--count" => count = Some(val().parse().unwrap_or_else(|_| usage())),
            "--call-cpu" => call_cpu = true,
            "--no-timing" => no_timing = true,
            "-h" | "--help" => usage(),
            _ => usage(),
        }
    }
    let (Some(client), Some(mode), Some(url_str)) = (client, mode, url) else {
        usage()
    };
    let url = Url::parse(&url_str).unwrap_or_else(|e| {
        eprintln!("peer: {e}");
        std::process::exit(2)
    });
    let count = match mode {
        Mode::Download => 1,
        Mode::Seq => count.unwrap_or(20_000),
    };
    Args {
        client,
        mode,
        url,
        url_str,
        cacert,
        count,
        call_cpu,
        no_timing,
    }
}

type Res<T> = Result<T, Box<dyn std::error::Error>>;

fn main() {
    let args = parse_args();
    let rss_before = status_kib(None, "VmRSS").unwrap_or(0);
    let cpu0 = schedstat_cpu(None).unwrap_or_default();
    let t0 = Instant::now();
    let result = match args.client.as_str() {
        "pollhttp" => run_pollhttp(&args),
        "ureq" => run_ureq(&args),
        "hyper" => run_hyper(&args),
        "raw" => run_raw(&args),
        other => Err(format!("unknown client {other}").into()),
    };
    let wall = t0.elapsed();
    let cpu1 = schedstat_cpu(None).unwrap_or_default();
    let out = match result {
        Ok(o) => o,
        Err(e) => {
            eprintln!("peer: {} {}: {e}", args.client, args.url_str);
            std::process::exit(1);
        }
    };
    let mut j = serde_json::json!({
        "client": args.client,
        "mode": match args.mode { Mode::Download => "download", Mode::Seq => "seq" },
        "tls": args.url.tls,
        "bytes": out.bytes,
        "requests": out.requests,
        "wall_s": wall.as_secs_f64(),
        "transfer_cpu_s": (cpu1.saturating_sub(cpu0)).as_secs_f64(),
        "cpu_s": cpu1.as_secs_f64(),
        "rss_before_kib": rss_before,
        "max_rss_kib": status_kib(None, "VmHWM").unwrap_or(0),
        "threads": status_kib(None, "Threads").unwrap_or(0),
    });
    if let Some(t) = out.calls.as_ref().filter(|t| !t.off) {
        let us = |d: Duration| d.as_secs_f64() * 1e6;
        j["calls"] = t.wall.count().into();
        j["max_poll_us"] = us(t.wall.max()).into();
        j["p99_poll_us"] = us(t.wall.quantile(0.99)).into();
        j["p50_poll_us"] = us(t.wall.quantile(0.5)).into();
        if let Some(c) = &t.cpu {
            j["max_poll_cpu_us"] = us(c.max()).into();
            j["p99_poll_cpu_us"] = us(c.quantile(0.99)).into();
        }
    }
    if let Some(s) = out.tls_suite {
        j["tls_suite"] = s.into();
    }
    println!("{j}");
}

fn check_deadline(t0: Instant) -> Res<()> {
    if t0.elapsed() > DEADLINE {
        return Err(format!("gave up after {DEADLINE:?}").into());
    }
    Ok(())
}

// ---------------------------------------------------------------- pollhttp

/// Times every `poll()` / `read_response_body_chunk()` call: wall clock
/// always (two vDSO `clock_gettime` calls), and with `--call-cpu` also the
/// thread's CPU time (`CLOCK_THREAD_CPUTIME_ID`, two real syscalls per call:
/// excludes time the thread was preempted, but perturbs the run, so the
/// driver does it in a separate run).
struct CallTimer {
    /// `--no-timing`: call through, record nothing.
    off: bool,
    wall: Histogram,
    cpu: Option<Histogram>,
}

fn thread_cpu() -> Duration {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::ThreadCPUTime);
    Duration::new(t.tv_sec as u64, t.tv_nsec as u32)
}

impl CallTimer {
    fn time<R>(&mut self, f: impl FnOnce() -> R) -> R {
        if self.off {
            return f();
        }
        let c0 = self.cpu.is_some().then(thread_cpu);
        let t = Instant::now();
        let r = f();
        let wall = t.elapsed();
        if let (Some(h), Some(c0)) = (self.cpu.as_mut(), c0) {
            h.record(thread_cpu().saturating_sub(c0));
        }
        self.wall.record(wall);
        r
    }
}

fn run_pollhttp(a: &Args) -> Res<Outcome> {
    let t0 = Instant::now();
    let mut c = HttpClient::new()?;
    if let Some(pem) = &a.cacert {
        c.set_tls_options(TlsOptions::with_root_pem(pem)?);
    }
    // A download tool's budget per poll (fetch's is 8 MiB): the default
    // 256 KiB is a frame's. The drain loop below honours it (issue 16: a
    // `read_response_body_chunk` loop stays within the poll's budget), so
    // the default would add a wait() and a poll() per 256 KiB, which the
    // builds before that never paid; the clients compared here all read
    // as fast as the data comes.
    c.set_poll_budget(pollhttp::PollBudget::new(8 << 20, None));
    let mut timer = CallTimer {
        wall: Histogram::new(),
        cpu: a.call_cpu.then(Histogram::new),
        off: a.no_timing,
    };
    c.connect_to_host(&a.url.host, Some(a.url.port), a.url.tls)?;
    while matches!(c.status(), Status::Resolving | Status::Connecting) {
        check_deadline(t0)?;
        c.wait(Some(Duration::from_millis(100)));
        timer.time(|| c.poll());
    }
    if c.status() != Status::Connected {
        return Err(format!("connect: {:?} {:?}", c.status(), c.failure()).into());
    }
    let mut out = Outcome::default();
    let no_headers: &[(&str, &str)] = &[];
    for _ in 0..a.count {
        c.request("GET", &a.url.path, no_headers, b"")?;
        let mut got = 0u64;
        loop {
            if !matches!(c.status(), Status::Requesting | Status::Body) {
                break;
            }
            check_deadline(t0)?;
            c.wait(Some(Duration::from_millis(100)));
            timer.time(|| c.poll());
            while c.status() == Status::Body {
                match timer.time(|| c.read_response_body_chunk()) {
                    Some(b) => got += b.len() as u64,
                    None => break,
                }
            }
        }
        if c.status() != Status::Connected || c.response_code() != 200 {
            return Err(format!(
                "request {}: status {:?}, code {}, failure {:?}",
                out.requests,
                c.status(),
                c.response_code(),
                c.failure()
            )
            .into());
        }
        if let Some(len) = c.response_body_length() {
            if len != got {
                return Err(format!("body {got} bytes, Content-Length {len}").into());
            }
        }
        out.bytes += got;
        out.requests += 1;
    }
    out.calls = Some(timer);
    Ok(out)
}

// ---------------------------------------------------------------- ureq

fn run_ureq(a: &Args) -> Res<Outcome> {
    use ureq::tls::{Certificate, RootCerts, TlsConfig};
    let mut cfg = ureq::Agent::config_builder();
    if let Some(pem) = &a.cacert {
        let cert = Certificate::from_pem(pem)?;
        cfg = cfg.tls_config(
            TlsConfig::builder()
                .root_certs(RootCerts::new_with_certs(&[cert]))
                .build(),
        );
    }
    let agent = ureq::Agent::new_with_config(cfg.build());
    let mut buf = vec![0u8; BUF];
    let mut out = Outcome::default();
    for _ in 0..a.count {
        let resp = agent.get(&a.url_str).call()?;
        if resp.status() != 200 {
            return Err(format!("status {}", resp.status()).into());
        }
        let len: Option<u64> = resp
            .headers()
            .get("content-length")
            .and_then(|v| v.to_str().ok()?.parse().ok());
        let mut r = resp.into_body().into_reader();
        let mut got = 0u64;
        loop {
            let k = r.read(&mut buf)?;
            if k == 0 {
                break;
            }
            got += k as u64;
        }
        if len.is_some_and(|l| l != got) {
            return Err(format!("body {got} bytes, Content-Length {len:?}").into());
        }
        out.bytes += got;
        out.requests += 1;
    }
    Ok(out)
}

// ---------------------------------------------------------------- hyper

fn run_hyper(a: &Args) -> Res<Outcome> {
    use hyper_util::rt::TokioIo;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()?;
    rt.block_on(async {
        let stream = tokio::net::TcpStream::connect((a.url.host.as_str(), a.url.port)).await?;
        stream.set_nodelay(true)?;
        if !a.url.tls {
            return hyper_session(a, TokioIo::new(stream)).await;
        }
        // Exactly pollhttp's rustls configuration, as the raw TLS client.
        let options = match &a.cacert {
            Some(pem) => TlsOptions::with_root_pem(pem)?,
            None => TlsOptions::new(),
        };
        let name = options.server_name(&a.url.host)?;
        let tls = tokio_rustls::TlsConnector::from(Arc::clone(options.client_config()))
            .connect(name, stream)
            .await?;
        let suite = {
            let (_, conn) = tls.get_ref();
            conn.negotiated_cipher_suite()
                .map(|c| format!("{:?} {:?}", conn.protocol_version(), c.suite()))
        };
        let mut out = hyper_session(a, TokioIo::new(tls)).await?;
        out.tls_suite = suite;
        Ok(out)
    })
}

/// hyper's HTTP/1.1 client over `io` (plain or TLS): `--count` GETs, each
/// body drained frame by frame.
async fn hyper_session<IO>(a: &Args, io: IO) -> Res<Outcome>
where
    IO: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    use http_body_util::{BodyExt, Empty};
    let (mut sender, conn) = hyper::client::conn::http1::handshake(io).await?;
    let driver = tokio::spawn(conn);
    let authority = a.url.authority();
    let mut out = Outcome::default();
    for _ in 0..a.count {
        sender.ready().await?;
        let req = hyper::Request::builder()
            .uri(a.url.path.as_str())
            .header(hyper::header::HOST, authority.as_str())
            .body(Empty::<bytes::Bytes>::new())?;
        let resp = sender.send_request(req).await?;
        if resp.status() != 200 {
            return Err(format!("status {}", resp.status()).into());
        }
        let len: Option<u64> = resp
            .headers()
            .get(hyper::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok()?.parse().ok());
        let mut body = resp.into_body();
        let mut got = 0u64;
        while let Some(frame) = body.frame().await {
            if let Some(d) = frame?.data_ref() {
                got += d.len() as u64;
            }
        }
        if len.is_some_and(|l| l != got) {
            return Err(format!("body {got} bytes, Content-Length {len:?}").into());
        }
        out.bytes += got;
        out.requests += 1;
    }
    drop(sender);
    let _ = driver.await;
    Ok(out)
}

// ---------------------------------------------------------------- raw

/// Reads one response (head + Content-Length body, discarded) from `s`,
/// keeping bytes past its end in `buf[..*filled]`. Returns the body length.
fn raw_response(s: &mut impl Read, buf: &mut [u8], filled: &mut usize) -> Res<u64> {
    // Head: read until CRLFCRLF.
    let head_end = loop {
        if let Some(i) = buf[..*filled].windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        if *filled == buf.len() {
            return Err("response head larger than the buffer".into());
        }
        let k = s.read(&mut buf[*filled..])?;
        if k == 0 {
            return Err("EOF in head".into());
        }
        *filled += k;
    };
    let head = std::str::from_utf8(&buf[..head_end])?;
    if !head.starts_with("HTTP/1.1 200 ") {
        return Err(format!(
            "unexpected status line: {}",
            head.lines().next().unwrap_or("")
        )
        .into());
    }
    let len: u64 = head
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("content-length")
                .then(|| v.trim().parse().ok())?
        })
        .ok_or("no Content-Length")?;
    let mut remaining = len;
    let in_buf = (*filled - head_end) as u64;
    if in_buf >= remaining {
        // The whole body (and maybe more) is buffered already.
        let end = head_end + remaining as usize;
        buf.copy_within(end..*filled, 0);
        *filled -= end;
        return Ok(len);
    }
    remaining -= in_buf;
    *filled = 0;
    while remaining > 0 {
        let want = buf.len().min(remaining.try_into().unwrap_or(usize::MAX));
        let k = s.read(&mut buf[..want])?;
        if k == 0 {
            return Err("EOF in body".into());
        }
        remaining -= k as u64;
    }
    Ok(len)
}

/// A stream whose `read` calls are timed (raw `--call-cpu`): the control
/// for pollhttp's per-call figures (what one bare `read()` costs here).
struct TimedRead<'a, S> {
    inner: &'a mut S,
    timer: Option<&'a mut CallTimer>,
}

impl<S: Read> Read for TimedRead<'_, S> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self.timer.as_deref_mut() {
            Some(t) => t.time(|| self.inner.read(buf)),
            None => self.inner.read(buf),
        }
    }
}

fn raw_loop<S: Read + Write>(a: &Args, s: &mut S) -> Res<Outcome> {
    let req = format!(
        "GET {} HTTP/1.1\r\nHost: {}\r\nUser-Agent: raw\r\nAccept: */*\r\n\r\n",
        a.url.path,
        a.url.authority()
    );
    let mut buf = vec![0u8; BUF];
    let mut filled = 0;
    let mut out = Outcome::default();
    let mut timer = a.call_cpu.then(|| CallTimer {
        off: false,
        wall: Histogram::new(),
        cpu: Some(Histogram::new()),
    });
    for _ in 0..a.count {
        s.write_all(req.as_bytes())?;
        s.flush()?;
        let mut r = TimedRead {
            inner: &mut *s,
            timer: timer.as_mut(),
        };
        out.bytes += raw_response(&mut r, &mut buf, &mut filled)?;
        out.requests += 1;
    }
    out.calls = timer;
    Ok(out)
}

fn run_raw(a: &Args) -> Res<Outcome> {
    let tcp = TcpStream::connect((a.url.host.as_str(), a.url.port))?;
    tcp.set_nodelay(true)?;
    if !a.url.tls {
        let mut tcp = tcp;
        return raw_loop(a, &mut tcp);
    }
    // Exactly pollhttp's rustls configuration (ring, TLS 1.2 + 1.3, ALPN
    // http/1.1, roots from --cacert).
    let options = match &a.cacert {
        Some(pem) => TlsOptions::with_root_pem(pem)?,
        None => TlsOptions::new(),
    };
    let name = options.server_name(&a.url.host)?;
    let conn = rustls::ClientConnection::new(Arc::clone(options.client_config()), name)?;
    let mut s = rustls::StreamOwned::new(conn, tcp);
    // Finish the handshake so the suite is known (the first write would too).
    while s.conn.is_handshaking() {
        s.conn.complete_io(&mut s.sock)?;
    }
    let suite = s
        .conn
        .negotiated_cipher_suite()
        .map(|c| format!("{:?} {:?}", s.conn.protocol_version(), c.suite()));
    let mut out = raw_loop(a, &mut s)?;
    out.tls_suite = suite;
    Ok(out)
}
