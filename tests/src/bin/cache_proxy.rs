//! A reverse proxy on 127.0.0.1 whose cache is pollhttp's: every request it
//! receives goes to one origin through an [`HttpRequest`] sharing one
//! in-memory [`Cache`], and the answer (from the network or the store) is
//! written back as the cache gave it. The adapter that puts pollhttp's cache
//! under the HTTP cache-tests suite (`scripts/cache-conformance.sh`); not a
//! general proxy: HTTP/1.1 and 1.0 requests with a `Content-Length` body or
//! none, one thread per connection, keep-alive, loopback only.
//!
//! ```text
//! cache_proxy --origin http://127.0.0.1:8000 [--listen 127.0.0.1:0]
//! ```
//!
//! Prints `listening on 127.0.0.1:PORT` on stdout once it accepts.
//! Redirects are not followed (a 3xx is the answer); gzip is not decoded
//! (the caller's `Accept-Encoding` goes through and the body is passed as
//! received); hop-by-hop fields are dropped both ways.

use std::io::{self, BufWriter, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::ExitCode;
use std::time::Duration;

use pollhttp::{Cache, CacheMode, CacheSettings, HttpRequest, RequestResult, StoreLimits};
use url::Url;

/// Largest request head read (a longer one is answered 431).
const MAX_HEAD: usize = 64 * 1024;
/// Largest request body read (a larger one is answered 413).
const MAX_BODY: usize = 16 * 1024 * 1024;
/// A connection idle this long is closed; a request to the origin that takes
/// longer than [`ORIGIN_TOTAL`] is answered 502.
const IDLE: Duration = Duration::from_secs(60);
const ORIGIN_TOTAL: Duration = Duration::from_secs(30);

/// Hop-by-hop fields (RFC 9110 §7.6.1), never forwarded; plus the framing
/// this proxy sets itself.
const HOP_BY_HOP: [&str; 9] = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "host",
    "content-length",
];

fn main() -> ExitCode {
    let mut origin = None;
    let mut listen = "127.0.0.1:0".to_string();
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match (a.as_str(), args.next()) {
            ("--origin", Some(v)) => origin = Some(v),
            ("--listen", Some(v)) => listen = v,
            _ => {
                eprintln!(
                    "usage: cache_proxy --origin http://127.0.0.1:PORT [--listen 127.0.0.1:PORT]"
                );
                return ExitCode::from(2);
            }
        }
    }
    let Some(origin) = origin.and_then(|o| Url::parse(&o).ok()) else {
        eprintln!("cache_proxy: --origin http://HOST:PORT is required");
        return ExitCode::from(2);
    };
    let addr: SocketAddr = match listen.parse() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("cache_proxy: bad --listen {listen}: {e}");
            return ExitCode::from(2);
        }
    };
    if !addr.ip().is_loopback() {
        eprintln!("cache_proxy: listens on loopback only, not {addr}");
        return ExitCode::from(2);
    }
    let listener = match TcpListener::bind(addr) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("cache_proxy: bind {addr}: {e}");
            return ExitCode::FAILURE;
        }
    };
    let local = listener.local_addr().map_or(addr, |a| a);
    println!("listening on {local}");
    let _ = io::stdout().flush();

    let cache = Cache::memory(StoreLimits::default());
    for conn in listener.incoming() {
        let Ok(conn) = conn else { continue };
        let (cache, origin) = (cache.clone(), origin.clone());
        let spawned = std::thread::Builder::new()
            .name("cache-proxy-conn".into())
            .spawn(move || {
                if let Err(e) = serve(conn, &origin, &cache) {
                    if !matches!(
                        e.kind(),
                        io::ErrorKind::UnexpectedEof
                            | io::ErrorKind::ConnectionReset
                            | io::ErrorKind::BrokenPipe
                            | io::ErrorKind::WouldBlock
                            | io::ErrorKind::TimedOut
                    ) {
                        eprintln!("cache_proxy: connection: {e}");
                    }
                }
            });
        if let Err(e) = spawned {
            eprintln!("cache_proxy: thread: {e}");
        }
    }
    ExitCode::SUCCESS
}

/// One request read from the client.
struct Incoming {
    method: String,
    target: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    /// The client wants the connection kept (HTTP/1.1 without
    /// `Connection: close`).
    keep_alive: bool,
}

/// Serve the requests of one client connection in turn.
fn serve(conn: TcpStream, origin: &Url, cache: &Cache) -> io::Result<()> {
    conn.set_read_timeout(Some(IDLE))?;
    conn.set_nodelay(true)?;
    let mut reader = conn.try_clone()?;
    let mut out = BufWriter::new(conn);
    let mut buf = Vec::new();
    loop {
        let incoming = match read_request(&mut reader, &mut buf)? {
            Ok(Some(r)) => r,
            Ok(None) => return Ok(()),
            Err((status, why)) => {
                write_error(&mut out, status, why)?;
                return out.flush();
            }
        };
        let keep = forward(&incoming, origin, cache, &mut out)?;
        out.flush()?;
        if !keep {
            return Ok(());
        }
    }
}

type Refusal = (u16, &'static str);

/// Read one request from `r` (`buf` keeps bytes read past it). `Ok(None)`:
/// the client closed between requests.
fn read_request(
    r: &mut TcpStream,
    buf: &mut Vec<u8>,
) -> io::Result<Result<Option<Incoming>, Refusal>> {
    let mut chunk = [0u8; 16 * 1024];
    let (head_len, method, target, version, headers) = loop {
        let mut fields = [httparse::EMPTY_HEADER; 128];
        let mut req = httparse::Request::new(&mut fields);
        match req.parse(buf) {
            Ok(httparse::Status::Complete(n)) => {
                let headers: Vec<(String, String)> = req
                    .headers
                    .iter()
                    .map(|h| {
                        (
                            h.name.to_string(),
                            String::from_utf8_lossy(h.value).into_owned(),
                        )
                    })
                    .collect();
                break (
                    n,
                    req.method.unwrap_or("GET").to_string(),
                    req.path.unwrap_or("/").to_string(),
                    req.version.unwrap_or(1),
                    headers,
                );
            }
            Ok(httparse::Status::Partial) => {
                if buf.len() > MAX_HEAD {
                    return Ok(Err((431, "request head too large")));
                }
            }
            Err(_) => return Ok(Err((400, "malformed request"))),
        }
        let n = r.read(&mut chunk)?;
        if n == 0 {
            return if buf.is_empty() {
                Ok(Ok(None))
            } else {
                Err(io::ErrorKind::UnexpectedEof.into())
            };
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    buf.drain(..head_len);
    let value = |name: &str| {
        headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    };
    if value("transfer-encoding").is_some() {
        return Ok(Err((501, "request bodies must have a Content-Length")));
    }
    let len = match value("content-length").map(|v| v.trim().parse::<usize>()) {
        None => 0,
        Some(Ok(n)) if n <= MAX_BODY => n,
        Some(Ok(_)) => return Ok(Err((413, "request body too large"))),
        Some(Err(_)) => return Ok(Err((400, "bad Content-Length"))),
    };
    while buf.len() < len {
        let n = r.read(&mut chunk)?;
        if n == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    let body: Vec<u8> = buf.drain(..len).collect();
    let connection = value("connection").unwrap_or("").to_ascii_lowercase();
    let keep_alive = if version == 0 {
        connection.contains("keep-alive")
    } else {
        !connection.contains("close")
    };
    // Fields named in Connection are hop-by-hop too.
    let named: Vec<String> = connection
        .split(',')
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect();
    let headers = headers
        .into_iter()
        .filter(|(k, _)| {
            let k = k.to_ascii_lowercase();
            !HOP_BY_HOP.contains(&k.as_str()) && !named.contains(&k)
        })
        .collect();
    Ok(Ok(Some(Incoming {
        method,
        target,
        headers,
        body,
        keep_alive,
    })))
}

/// Send `req` to the origin through the cache and write the answer.
/// Returns whether the connection is kept for another request.
fn forward(req: &Incoming, origin: &Url, cache: &Cache, out: &mut impl Write) -> io::Result<bool> {
    let Ok(url) = origin.join(&req.target) else {
        return write_error(out, 400, "bad request-target").map(|()| false);
    };
    let mut http = HttpRequest::new();
    let s = http.settings_mut();
    s.redirects.follow = false;
    s.body.accept_gzip = false;
    s.timeouts.total = Some(ORIGIN_TOTAL);
    s.cache = CacheSettings {
        cache: Some(cache.clone()),
        mode: CacheMode::Default,
    };
    let fields: Vec<(&str, &str)> = req
        .headers
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    if let Err(e) = http.request_raw(url.as_str(), &fields, &req.method, &req.body) {
        eprintln!("cache_proxy: {} {url}: {e}", req.method);
        return write_error(out, 400, "request refused by pollhttp").map(|()| false);
    }
    let done = loop {
        if let Some(done) = http.poll() {
            break done;
        }
        http.wait(Some(Duration::from_millis(100)));
    };
    let head = match (&done.result, &done.head) {
        (RequestResult::Success, Some(head)) => head,
        _ => {
            eprintln!(
                "cache_proxy: {} {url}: {:?} {}",
                req.method, done.result, done.reason
            );
            return write_error(out, 502, "origin failed").map(|()| false);
        }
    };
    let status = head.status();
    write!(out, "HTTP/1.1 {status} {}\r\n", head.reason_str())?;
    let mut origin_length = None;
    for f in head.fields().iter() {
        let name = f.name();
        if name.eq_ignore_ascii_case("content-length") {
            origin_length = Some(f.value().to_vec());
        }
        if HOP_BY_HOP.iter().any(|h| name.eq_ignore_ascii_case(h)) {
            continue;
        }
        out.write_all(name.as_bytes())?;
        out.write_all(b": ")?;
        out.write_all(f.value())?;
        out.write_all(b"\r\n")?;
    }
    let bodiless = req.method == "HEAD" || status == 204 || status == 304 || status < 200;
    if req.method == "HEAD" {
        // The length the origin declared for the body a GET would have.
        if let Some(v) = origin_length {
            out.write_all(b"Content-Length: ")?;
            out.write_all(&v)?;
            out.write_all(b"\r\n")?;
        }
    } else if !bodiless {
        write!(out, "Content-Length: {}\r\n", done.body.len())?;
    }
    if !req.keep_alive {
        out.write_all(b"Connection: close\r\n")?;
    }
    out.write_all(b"\r\n")?;
    if !bodiless {
        out.write_all(&done.body)?;
    }
    Ok(req.keep_alive)
}

fn write_error(out: &mut impl Write, status: u16, why: &str) -> io::Result<()> {
    write!(
        out,
        "HTTP/1.1 {status} Proxy Error\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{why}",
        why.len()
    )
}
