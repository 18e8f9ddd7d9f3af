//! Issue 7's upload-memory benchmark: the peak RSS of one `HttpRequest`
//! upload to a loopback sink, each case in a child process of its own.
//!
//! ```text
//! upload_rss [--body-mib N] [--file-mib N] [--before-bin PATH] [--json-out FILE]
//! upload_rss --child CASE --url URL (--size BYTES | --path FILE)
//! ```
//!
//! The driver runs a sink server on a thread (127.0.0.1, an ephemeral port):
//! it reads a request head with `Content-Length`, reads and discards the body
//! while hashing it with SHA-256, and answers `200` with the hex digest as the
//! body. Each case is this binary re-run with `--child`, so the peak RSS
//! (`VmHWM` from `/proc/self/status`, read by the child when its request has
//! completed) is that of a process that did one upload and nothing else:
//!
//! | case | how | target |
//! |---|---|---|
//! | `bytes` | `request_body(url, .., "POST", RequestBody::Bytes(body))`, an 8 MiB body in memory (not copied) | peak ≤ body + 2 MiB |
//! | `file` | `request_file(url, .., "POST", path)`, a 1 GiB file (sparse, with patterned MiBs at the start, middle and end) | peak ≤ 8 MiB |
//! | `raw` | `request_raw(url, .., "POST", &body)`, the same 8 MiB (copied once), for comparison | — |
//!
//! A memory body is a non-zero pattern written into every page, so all of
//! it is resident (a zeroed allocation would not be). The driver checks each
//! child's digest against its own of the same bytes.
//!
//! `--before-bin PATH` also runs the `raw` case with PATH as the child: this
//! file built against the code before issue 7's rewrite (commit fb51b4f),
//! where `request_raw` was the only way to send a body. Built with
//! `--cfg before_rewrite` it is a child only (no sink, no `RequestBody`):
//!
//! ```sh
//! mkdir -p /tmp/before && git archive fb51b4f | tar -x -C /tmp/before
//! cp benches/src/bin/upload_rss.rs /tmp/before/benches/src/bin/
//! (cd /tmp/before && RUSTFLAGS="--cfg before_rewrite" CARGO_TARGET_DIR=/tmp/before-target \
//!     cargo build --release -p pollhttp-benches --bin upload_rss)
//! target/release/upload_rss --before-bin /tmp/before-target/release/upload_rss
//! ```
//!
//! Prints a table and one JSON line.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use pollhttp::{HttpRequest, RequestResult};
use serde_json::json;

/// The child's longest wait for its one request.
const CHILD_TIMEOUT: Duration = Duration::from_secs(300);

/// Byte `i` of a memory body: a non-zero-heavy pattern, so every page is
/// written (resident) and a reordering would change the digest.
fn pattern_byte(i: usize) -> u8 {
    ((i as u32).wrapping_mul(2_654_435_761) >> 24) as u8 ^ (i >> 20) as u8
}

fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(pattern_byte).collect()
}

/// A `kB` field of `/proc/self/status` (`VmHWM`, `VmRSS`), in KiB.
fn status_kib(field: &str) -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status.lines().find_map(|l| {
        let rest = l.strip_prefix(field)?.strip_prefix(':')?;
        rest.trim().strip_suffix("kB")?.trim().parse().ok()
    })
}

/// Child mode: one upload, then one JSON line with the RSS figures and the
/// sink's answer.
fn child(case: &str, url: &str, size: Option<usize>, path: Option<&str>) -> Result<(), String> {
    let baseline_kib = status_kib("VmRSS").ok_or("no VmRSS")?;
    let mut req = HttpRequest::new();
    let headers = [("Content-Type", "application/octet-stream")];
    let body_len;
    // Kept alive to the end: the caller's buffer is part of what an upload
    // from memory costs.
    let mut _caller_buf: Option<Vec<u8>> = None;
    let start = Instant::now();
    match case {
        "raw" => {
            let body = pattern(size.ok_or("raw needs --size")?);
            body_len = body.len() as u64;
            req.request_raw(url, &headers, "POST", &body)
                .map_err(|e| format!("request_raw: {e}"))?;
            _caller_buf = Some(body);
        }
        #[cfg(not(before_rewrite))]
        "bytes" => {
            let body = bytes::Bytes::from(pattern(size.ok_or("bytes needs --size")?));
            body_len = body.len() as u64;
            req.request_body(url, &headers, "POST", pollhttp::RequestBody::Bytes(body))
                .map_err(|e| format!("request_body: {e}"))?;
        }
        #[cfg(not(before_rewrite))]
        "file" => {
            let path = path.ok_or("file needs --path")?;
            body_len = std::fs::metadata(path).map_err(|e| e.to_string())?.len();
            req.request_file(url, &headers, "POST", path)
                .map_err(|e| format!("request_file: {e}"))?;
        }
        other => return Err(format!("unknown case {other:?}")),
    }
    let _ = path;
    let done = loop {
        if let Some(done) = req.poll() {
            break done;
        }
        if start.elapsed() > CHILD_TIMEOUT {
            return Err(format!("no result in {CHILD_TIMEOUT:?}"));
        }
        req.wait(Some(Duration::from_millis(100)));
    };
    let wall_s = start.elapsed().as_secs_f64();
    let peak_kib = status_kib("VmHWM").ok_or("no VmHWM")?;
    if done.result != RequestResult::Success || done.response_code() != 200 {
        return Err(format!(
            "{} {}: {}",
            done.result,
            done.response_code(),
            done.reason
        ));
    }
    let digest = String::from_utf8_lossy(&done.body).into_owned();
    println!(
        "{}",
        json!({
            "case": case,
            "body_bytes": body_len,
            "baseline_rss_kib": baseline_kib,
            "peak_rss_kib": peak_kib,
            "wall_s": wall_s,
            "sha256": digest,
        })
    );
    Ok(())
}

struct ChildArgs {
    case: String,
    url: Option<String>,
    size: Option<usize>,
    path: Option<String>,
}

fn parse_child(args: &[String]) -> Result<ChildArgs, String> {
    let mut c = ChildArgs {
        case: String::new(),
        url: None,
        size: None,
        path: None,
    };
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut value = |name: &str| it.next().cloned().ok_or(format!("{name} needs a value"));
        match a.as_str() {
            "--child" => c.case = value("--child")?,
            "--url" => c.url = Some(value("--url")?),
            "--size" => c.size = Some(value("--size")?.parse().map_err(|e| format!("{e}"))?),
            "--path" => c.path = Some(value("--path")?),
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    Ok(c)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("--child") {
        let result = parse_child(&args).and_then(|c| {
            let url = c.url.as_deref().ok_or("--child needs --url")?;
            child(&c.case, url, c.size, c.path.as_deref())
        });
        return match result {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("upload_rss child: {e}");
                ExitCode::FAILURE
            }
        };
    }
    #[cfg(not(before_rewrite))]
    {
        driver::main(&args)
    }
    #[cfg(before_rewrite)]
    {
        eprintln!("upload_rss: built with --cfg before_rewrite, a child only (--child raw)");
        ExitCode::from(2)
    }
}

#[cfg(not(before_rewrite))]
mod driver {
    //! The sink server, the cases and the report.

    use std::fs::{self, File};
    use std::io::{self, Read, Seek, SeekFrom, Write};
    use std::net::{TcpListener, TcpStream};
    use std::path::{Path, PathBuf};
    use std::process::{Command, ExitCode, Stdio};

    use serde_json::{json, Value};
    use sha2::{Digest, Sha256};

    use super::{pattern, pattern_byte};

    const MIB: u64 = 1 << 20;
    /// Targets of issue 7, item 7.
    const BYTES_OVER_BODY_TARGET_KIB: u64 = 2 * 1024;
    const FILE_PEAK_TARGET_KIB: u64 = 8 * 1024;
    /// The old code's figure for 8 MiB as issue 7 states it, when no
    /// `--before-bin` is given.
    const ISSUE_BEFORE_PEAK_KIB: u64 = 27 * 1024;

    struct Opts {
        body_mib: u64,
        file_mib: u64,
        before_bin: Option<PathBuf>,
        json_out: Option<PathBuf>,
    }

    fn parse(args: &[String]) -> Result<Opts, String> {
        let mut o = Opts {
            body_mib: 8,
            file_mib: 1024,
            before_bin: None,
            json_out: None,
        };
        let mut it = args.iter();
        while let Some(a) = it.next() {
            let mut value = |name: &str| it.next().cloned().ok_or(format!("{name} needs a value"));
            match a.as_str() {
                "--body-mib" => {
                    o.body_mib = value("--body-mib")?.parse().map_err(|e| format!("{e}"))?;
                }
                "--file-mib" => {
                    o.file_mib = value("--file-mib")?.parse().map_err(|e| format!("{e}"))?;
                }
                "--before-bin" => o.before_bin = Some(value("--before-bin")?.into()),
                "--json-out" => o.json_out = Some(value("--json-out")?.into()),
                "-h" | "--help" => {
                    return Err("usage: upload_rss [--body-mib N] [--file-mib N] \
                                [--before-bin PATH] [--json-out FILE]"
                        .into())
                }
                other => return Err(format!("unknown argument {other:?}")),
            }
        }
        if o.body_mib == 0 || o.file_mib < 3 {
            return Err("--body-mib must be at least 1 and --file-mib at least 3".into());
        }
        Ok(o)
    }

    /// The sink: one request per connection, body hashed and discarded, the
    /// hex digest as the answer.
    fn serve(listener: TcpListener) {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { continue };
            if let Err(e) = sink_one(stream) {
                eprintln!("upload_rss sink: {e}");
            }
        }
    }

    fn sink_one(mut s: TcpStream) -> io::Result<()> {
        let mut buf = vec![0u8; 256 * 1024];
        let mut have = 0;
        let head_end = loop {
            if let Some(p) = buf[..have].windows(4).position(|w| w == b"\r\n\r\n") {
                break p + 4;
            }
            if have == buf.len() {
                return Err(io::Error::other("head too large"));
            }
            let n = s.read(&mut buf[have..])?;
            if n == 0 {
                return Err(io::Error::other("EOF in the head"));
            }
            have += n;
        };
        let head = String::from_utf8_lossy(&buf[..head_end]).to_ascii_lowercase();
        let field = |name: &str| {
            head.lines()
                .find_map(|l| l.strip_prefix(name)?.strip_prefix(':').map(str::trim))
        };
        let len: u64 = field("content-length")
            .ok_or_else(|| io::Error::other("no Content-Length"))?
            .parse()
            .map_err(io::Error::other)?;
        if field("expect").is_some_and(|v| v == "100-continue") {
            s.write_all(b"HTTP/1.1 100 Continue\r\n\r\n")?;
        }
        let mut hasher = Sha256::new();
        let first = ((have - head_end) as u64).min(len) as usize;
        hasher.update(&buf[head_end..head_end + first]);
        let mut left = len - first as u64;
        while left > 0 {
            let want = left.min(buf.len() as u64) as usize;
            let n = s.read(&mut buf[..want])?;
            if n == 0 {
                return Err(io::Error::other(format!(
                    "EOF with {left} body bytes to come"
                )));
            }
            hasher.update(&buf[..n]);
            left -= n as u64;
        }
        let hex = hex(&hasher.finalize());
        write!(
            s,
            "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\
             Connection: close\r\n\r\n{hex}",
            hex.len()
        )?;
        s.flush()
    }

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    /// A sparse file of `mib` MiB with patterned MiBs at the start, the
    /// middle and the end (the rest reads as zeros), and its digest.
    fn make_file(path: &Path, mib: u64) -> io::Result<String> {
        let mut f = File::create(path)?;
        f.set_len(mib * MIB)?;
        let block: Vec<u8> = (0..MIB as usize).map(|i| pattern_byte(i) | 1).collect();
        for at in [0, mib / 2, mib - 1] {
            f.seek(SeekFrom::Start(at * MIB))?;
            f.write_all(&block)?;
        }
        f.sync_all()?;
        drop(f);
        let mut f = File::open(path)?;
        let mut hasher = Sha256::new();
        let mut buf = vec![0u8; MIB as usize];
        loop {
            let n = f.read(&mut buf)?;
            if n == 0 {
                break;
            }
            hasher.update(&buf[..n]);
        }
        Ok(hex(&hasher.finalize()))
    }

    /// Run one child and check its digest.
    fn run(
        exe: &Path,
        case: &str,
        url: &str,
        size: Option<u64>,
        path: Option<&Path>,
        expected: &str,
    ) -> Result<Value, String> {
        let mut cmd = Command::new(exe);
        cmd.arg("--child").arg(case).arg("--url").arg(url);
        if let Some(n) = size {
            cmd.arg("--size").arg(n.to_string());
        }
        if let Some(p) = path {
            cmd.arg("--path").arg(p);
        }
        let out = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .output()
            .map_err(|e| format!("{case}: {}: {e}", exe.display()))?;
        if !out.status.success() {
            return Err(format!("{case}: child exited with {}", out.status));
        }
        let line = String::from_utf8_lossy(&out.stdout);
        let v: Value = serde_json::from_str(line.trim())
            .map_err(|e| format!("{case}: child printed {line:?}: {e}"))?;
        let got = v["sha256"].as_str().unwrap_or("");
        if got != expected {
            return Err(format!(
                "{case}: the sink's SHA-256 {got:?} is not the body's {expected:?}"
            ));
        }
        Ok(v)
    }

    fn kib(v: &Value, key: &str) -> u64 {
        v[key].as_u64().unwrap_or(0)
    }

    pub(super) fn main(args: &[String]) -> ExitCode {
        let o = match parse(args) {
            Ok(o) => o,
            Err(e) => {
                eprintln!("upload_rss: {e}");
                return ExitCode::from(2);
            }
        };
        match report(&o) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("upload_rss: {e}");
                ExitCode::FAILURE
            }
        }
    }

    fn report(o: &Opts) -> Result<(), String> {
        let exe = std::env::current_exe().map_err(|e| format!("this executable: {e}"))?;
        let listener = TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
        let url = format!(
            "http://{}/upload",
            listener.local_addr().map_err(|e| e.to_string())?
        );
        std::thread::spawn(move || serve(listener));

        let body_len = o.body_mib * MIB;
        let body_digest = hex(&Sha256::digest(pattern(body_len as usize)));
        let dir = std::env::temp_dir().join(format!("upload_rss-{}", std::process::id()));
        fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let file = dir.join("body.bin");
        let file_digest =
            make_file(&file, o.file_mib).map_err(|e| format!("{}: {e}", file.display()))?;

        println!(
            "# upload_rss: POST to a loopback SHA-256 sink, one child process per case; \
             peak = VmHWM of the child"
        );
        let result = (|| {
            let bytes = run(&exe, "bytes", &url, Some(body_len), None, &body_digest)?;
            let file_run = run(&exe, "file", &url, None, Some(&file), &file_digest)?;
            let raw = run(&exe, "raw", &url, Some(body_len), None, &body_digest)?;
            let before = match &o.before_bin {
                Some(bin) => Some(run(bin, "raw", &url, Some(body_len), None, &body_digest)?),
                None => None,
            };
            Ok::<_, String>((bytes, file_run, raw, before))
        })();
        let _ = fs::remove_dir_all(&dir);
        let (bytes, file_run, raw, before) = result?;

        let body_kib = body_len / 1024;
        let over = |v: &Value| kib(v, "peak_rss_kib").saturating_sub(body_kib);
        let met = |b: bool| if b { "met" } else { "MISSED" };
        let bytes_ok = over(&bytes) <= BYTES_OVER_BODY_TARGET_KIB;
        // The same bound on what the upload added, the process's RSS before
        // it (binary, libc: about 2.4 MiB) not counted.
        let bytes_own_kib = over(&bytes).saturating_sub(kib(&bytes, "baseline_rss_kib"));
        let bytes_own_ok = bytes_own_kib <= BYTES_OVER_BODY_TARGET_KIB;
        let file_ok = kib(&file_run, "peak_rss_kib") <= FILE_PEAK_TARGET_KIB;
        // base: the child's RSS before it made its body (binary, libc, the
        // allocator); peak-body: what the issue's target bounds; the last
        // column is what the upload itself added beyond its body (for the
        // file, the body is on disk, not in memory: peak - base).
        println!(
            "{:<42} {:>8} {:>9} {:>9} {:>10} {:>14} {:>6}  target",
            "case", "body MiB", "base KiB", "peak KiB", "peak-body", "peak-base-body", "MB/s"
        );
        let row = |name: &str, v: &Value, in_memory: bool, target: String| {
            let body = v["body_bytes"].as_u64().unwrap_or(0);
            let wall = v["wall_s"].as_f64().unwrap_or(f64::NAN);
            let peak = kib(v, "peak_rss_kib") as i64;
            let base = kib(v, "baseline_rss_kib") as i64;
            let resident_body = if in_memory { (body / 1024) as i64 } else { 0 };
            println!(
                "{name:<42} {:>8} {base:>9} {peak:>9} {:>10} {:>14} {:>6.0}  {target}",
                body / MIB,
                peak - (body / 1024) as i64,
                peak - base - resident_body,
                body as f64 / wall / 1e6,
            );
        };
        row(
            "bytes: request_body(RequestBody::Bytes)",
            &bytes,
            true,
            format!(
                "peak-body <= 2048 KiB: {}; peak-base-body <= 2048 KiB: {}",
                met(bytes_ok),
                met(bytes_own_ok)
            ),
        );
        row(
            "file: request_file",
            &file_run,
            false,
            format!("peak <= 8192 KiB: {}", met(file_ok)),
        );
        row(
            "raw: request_raw(&[u8]) (copies once)",
            &raw,
            true,
            String::new(),
        );
        if let Some(b) = &before {
            row(
                "before (fb51b4f): request_raw(&[u8])",
                b,
                true,
                String::new(),
            );
        }
        let (before_peak, before_source) = match &before {
            Some(b) => (kib(b, "peak_rss_kib"), "measured (--before-bin)"),
            None => (
                ISSUE_BEFORE_PEAK_KIB,
                "issue 7's figure (~27 MiB for 8 MiB)",
            ),
        };
        let ratio = kib(&bytes, "peak_rss_kib") as f64 / before_peak as f64;
        println!(
            "before/after for {} MiB from memory: peak {} KiB (before, {before_source}) -> {} KiB \
             (request_body Bytes): {:.2}x of before; request_raw now {:.2}x of before",
            o.body_mib,
            before_peak,
            kib(&bytes, "peak_rss_kib"),
            ratio,
            kib(&raw, "peak_rss_kib") as f64 / before_peak as f64,
        );
        let summary = json!({
            "bench": "upload_rss",
            "body_bytes": body_len,
            "file_bytes": o.file_mib * MIB,
            "bytes": bytes,
            "file": file_run,
            "raw": raw,
            "before_raw": before,
            "before_peak_rss_kib": before_peak,
            "before_source": before_source,
            "bytes_peak_over_body_kib": over(&bytes),
            "bytes_peak_over_baseline_and_body_kib": bytes_own_kib,
            "raw_peak_over_body_kib": over(&raw),
            "bytes_peak_vs_before": ratio,
            "targets": {
                "bytes_peak_over_body_le_2mib": bytes_ok,
                "bytes_peak_over_baseline_and_body_le_2mib": bytes_own_ok,
                "file_peak_le_8mib": file_ok,
            },
        });
        println!("{summary}");
        if let Some(path) = &o.json_out {
            fs::write(path, format!("{summary}\n"))
                .map_err(|e| format!("{}: {e}", path.display()))?;
        }
        Ok(())
    }
}
