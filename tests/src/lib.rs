//! Shared support for pollhttp's integration tests: real servers on 127.0.0.1.
//!
//! Everything here binds only to `127.0.0.1`, is bounded in time (socket
//! timeouts, bounded start-up waits) and cleans up after itself:
//!
//! - [`certs`]: a test CA and leaf certificates minted at run time with rcgen,
//!   plus rustls server and client configurations built from them.
//! - [`nginx`]: a real nginx (Debian package) in a temporary prefix, plain and
//!   TLS ports, a generated docroot and fixed locations (gzip, redirects, ...).
//! - [`httpbin`]: httpbin under gunicorn from a virtualenv.
//! - [`apache`], [`caddy`]: Apache httpd (mod_brotli, mod_deflate) and Caddy
//!   (`encode zstd gzip`) from their Debian packages, each a user-level
//!   instance with its own configuration in a temp dir, for the
//!   content-coding checks against real servers.
//! - [`script`]: scripted, misbehaving servers (plain and TLS) on std sockets.
//! - [`proxy`]: an HTTP proxy (CONNECT tunnels and absolute-form forwarding).
//! - [`process`]: external server processes with a watchdog, and temp dirs.
//! - [`simnet`]: a simulated network for the request layer (scripted peers
//!   stepped from the test's thread, name lookups, a fake clock).
//!
//! External servers (and nginx's brotli module) missing from the machine
//! make `start()` panic with an install hint (run `.ci/install-deps.sh`),
//! unless `POLLHTTP_SKIP_REAL_SERVERS=1` is set, in which case `try_start()`
//! returns `None` so a test can skip.
//! A skip is never silent: every `None` goes through [`record_skip`], which
//! prints `SKIPPED <binary>::<test>: <why>` to stderr and appends that line
//! to the skip log ([`skip_log_path`]), which `scripts/test.sh` checks.

pub mod apache;
pub mod caddy;
pub mod certs;
pub mod coding;
pub mod drive;
pub mod httpbin;
pub mod nginx;
pub mod process;
pub mod proxy;
pub mod script;
pub mod simnet;

use std::path::PathBuf;

use sha2::{Digest, Sha256};

/// The workspace root (the parent of this crate's manifest directory).
pub fn workspace_root() -> PathBuf {
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    manifest.parent().map(PathBuf::from).unwrap_or(manifest)
}

/// Lower-case hex SHA-256 of `data`.
pub fn sha256_hex(data: &[u8]) -> String {
    hex(&Sha256::digest(data))
}

/// Lower-case hex encoding of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

/// Whether `POLLHTTP_SKIP_REAL_SERVERS=1` is set: tests may then skip when an
/// external server (nginx, httpbin) is not installed instead of failing.
pub fn skip_real_servers() -> bool {
    std::env::var("POLLHTTP_SKIP_REAL_SERVERS").is_ok_and(|v| v == "1")
}

/// The file every skipped test appends a line to: `$POLLHTTP_SKIP_LOG` when
/// set, else `pollhttp-skipped.log` in the target profile directory that
/// holds this test binary (e.g. `target/debug/`).
pub fn skip_log_path() -> PathBuf {
    if let Some(p) = std::env::var_os("POLLHTTP_SKIP_LOG") {
        return PathBuf::from(p);
    }
    let exe = std::env::current_exe().unwrap_or_default();
    // target/<profile>/deps/<binary>-<hash>
    let profile_dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .map(PathBuf::from)
        .unwrap_or_else(std::env::temp_dir);
    profile_dir.join("pollhttp-skipped.log")
}

/// A server's binary for `try_start`: `found` when installed; else, under
/// `POLLHTTP_SKIP_REAL_SERVERS=1`, the running test recorded as skipped
/// (`<name> not installed`) and `None`.
///
/// # Panics
/// Not installed and skipping not allowed: with `missing()`, the install
/// instructions.
pub fn installed_or_skip(
    found: Option<PathBuf>,
    name: &str,
    missing: impl FnOnce() -> String,
) -> Option<PathBuf> {
    match found {
        Some(bin) => Some(bin),
        None if skip_real_servers() => {
            record_skip(&format!("{name} not installed"));
            None
        }
        None => panic!("{}", missing()),
    }
}

/// Records that the running test skips its checks (`why`, e.g. `nginx not
/// installed`): prints `SKIPPED <binary>::<test>: <why>` to stderr and
/// appends the line to [`skip_log_path`]. The test name is the thread's
/// (libtest names each test's thread after it).
pub fn record_skip(why: &str) {
    use std::io::Write;
    let binary = std::env::current_exe()
        .ok()
        .and_then(|p| p.file_stem().map(|s| s.to_string_lossy().into_owned()))
        .map(|s| match s.rsplit_once('-') {
            Some((name, hash)) if hash.bytes().all(|b| b.is_ascii_hexdigit()) => name.to_string(),
            _ => s,
        })
        .unwrap_or_else(|| "?".into());
    let thread = std::thread::current();
    let test = thread.name().unwrap_or("?");
    let line = format!("SKIPPED {binary}::{test}: {why}");
    // Straight to the process's stderr: libtest captures eprintln! of a
    // passing test, and a skip must show.
    let _ = writeln!(std::io::stderr(), "{line}");
    let path = skip_log_path();
    let written = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .and_then(|mut f| f.write_all(format!("{line}\n").as_bytes()));
    if let Err(e) = written {
        panic!(
            "{line}, and it could not be recorded in {}: {e}",
            path.display()
        );
    }
}

/// Deterministic pseudo-random bytes, as served by nginx's `/1k.bin` and
/// `/1m.bin`: xorshift32 (`x ^= x << 13; x ^= x >> 17; x ^= x << 5`) seeded
/// with `0x2545_F491`, each step emitting the low 8 bits of the new state.
pub fn pseudo_random_bytes(len: usize) -> Vec<u8> {
    let mut x: u32 = 0x2545_F491;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x as u8
        })
        .collect()
}

/// SHA-256 (hex) of 1 GiB of zero bytes: the default `/big.bin`.
pub const ZEROS_1GIB_SHA256: &str =
    "49bc20df15e412a64472421e13fe86ff1c5165e18b2afccf160d4dc19fe68a14";

/// SHA-256 (hex) of `len` zero bytes, computed by streaming (memoised per
/// length; 1 GiB is answered from [`ZEROS_1GIB_SHA256`] without hashing).
pub fn zeros_sha256(len: u64) -> String {
    use std::collections::HashMap;
    use std::sync::{Mutex, OnceLock};
    if len == 1 << 30 {
        return ZEROS_1GIB_SHA256.to_string();
    }
    static CACHE: OnceLock<Mutex<HashMap<u64, String>>> = OnceLock::new();
    let cache = CACHE.get_or_init(Default::default);
    if let Some(h) = cache.lock().unwrap_or_else(|e| e.into_inner()).get(&len) {
        return h.clone();
    }
    let zeros = vec![0u8; 1 << 16];
    let mut hasher = Sha256::new();
    let mut left = len;
    while left > 0 {
        let n = left.min(zeros.len() as u64) as usize;
        hasher.update(&zeros[..n]);
        left -= n as u64;
    }
    let h = hex(&hasher.finalize());
    cache
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(len, h.clone());
    h
}

/// Decodes a `Transfer-Encoding: chunked` body (as received, starting at the
/// first chunk-size line): the concatenated chunk data. Stops at the last
/// chunk or at the first malformed or incomplete chunk; trailers are dropped.
pub fn dechunk(body: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut rest = body;
    while let Some(eol) = rest.windows(2).position(|w| w == b"\r\n") {
        let line = String::from_utf8_lossy(&rest[..eol]);
        let size_str = line.split(';').next().unwrap_or("").trim();
        let Ok(size) = usize::from_str_radix(size_str, 16) else {
            break;
        };
        rest = &rest[eol + 2..];
        if size == 0 || rest.len() < size {
            break;
        }
        out.extend_from_slice(&rest[..size]);
        rest = rest.get(size + 2..).unwrap_or(&[]);
    }
    out
}

/// Test-side helpers shared by the modules (not public API).
pub(crate) mod util {
    use std::io::{self, Read};

    /// Position just past the first `\r\n\r\n` in `buf`, if any.
    pub fn find_head_end(buf: &[u8]) -> Option<usize> {
        buf.windows(4).position(|w| w == b"\r\n\r\n").map(|p| p + 4)
    }

    /// Reads from `r` into `buf` until it holds a full head (`\r\n\r\n`).
    /// Returns the head length; bytes after it stay in `buf`.
    pub fn read_head(r: &mut impl Read, buf: &mut Vec<u8>, max: usize) -> io::Result<usize> {
        let mut tmp = [0u8; 8192];
        loop {
            if let Some(end) = find_head_end(buf) {
                return Ok(end);
            }
            if buf.len() > max {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    "request head too large",
                ));
            }
            let n = r.read(&mut tmp)?;
            if n == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    format!("EOF before end of head ({} bytes read)", buf.len()),
                ));
            }
            buf.extend_from_slice(&tmp[..n]);
        }
    }

    /// Value of header `name` (case-insensitive) in a raw head, trimmed.
    pub fn header_value(head: &[u8], name: &str) -> Option<String> {
        let text = String::from_utf8_lossy(head);
        text.split("\r\n").skip(1).find_map(|line| {
            let (n, v) = line.split_once(':')?;
            n.trim()
                .eq_ignore_ascii_case(name)
                .then(|| v.trim().to_string())
        })
    }
}

/// Sends `request` verbatim to `addr` over plain TCP and reads the answer
/// until the server closes (so send `Connection: close`). 5 s timeouts.
pub fn raw_exchange(addr: std::net::SocketAddr, request: &[u8]) -> std::io::Result<Vec<u8>> {
    use std::io::{Read, Write};
    use std::time::Duration;
    let mut s = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
    s.set_read_timeout(Some(Duration::from_secs(5)))?;
    s.set_write_timeout(Some(Duration::from_secs(5)))?;
    s.write_all(request)?;
    let mut out = Vec::new();
    s.read_to_end(&mut out)?;
    Ok(out)
}

/// Like [`raw_exchange`] over TLS (rustls, `config`), verifying the server
/// as `server_name` (a DNS name or an IP address). A TCP close without
/// `close_notify` ends the read like a clean close. 5 s timeouts.
pub fn tls_exchange(
    addr: std::net::SocketAddr,
    server_name: &str,
    config: std::sync::Arc<rustls::ClientConfig>,
    request: &[u8],
) -> std::io::Result<Vec<u8>> {
    use std::io::{Read, Write};
    use std::time::Duration;
    let name = rustls_pki_types::ServerName::try_from(server_name.to_string())
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
    let conn = rustls::ClientConnection::new(config, name).map_err(std::io::Error::other)?;
    let sock = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
    sock.set_read_timeout(Some(Duration::from_secs(5)))?;
    sock.set_write_timeout(Some(Duration::from_secs(5)))?;
    let mut tls = rustls::StreamOwned::new(conn, sock);
    tls.write_all(request)?;
    tls.flush()?;
    let mut out = Vec::new();
    match tls.read_to_end(&mut out) {
        Ok(_) => Ok(out),
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => Ok(out),
        Err(e) => Err(e),
    }
}

/// Splits a raw HTTP response into (status code, head text, body bytes as
/// received, i.e. not de-chunked). `None` if there is no complete head.
pub fn parse_raw_response(raw: &[u8]) -> Option<(u16, String, Vec<u8>)> {
    let end = util::find_head_end(raw)?;
    let head = String::from_utf8_lossy(&raw[..end]).into_owned();
    let code = head.split_whitespace().nth(1)?.parse().ok()?;
    Some((code, head, raw[end..].to_vec()))
}
