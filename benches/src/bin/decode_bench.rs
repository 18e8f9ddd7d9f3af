//! Decode and hash speed for the asset pipeline (issue 18), in one run:
//!
//! 1. Each content coding's decoder, as pollhttp drives it (a streaming
//!    writer fed 8 KiB pieces), over the game_loop example's asset set
//!    (46 assets from 1 KiB to `--max-mib` MiB, 16 MiB by default; text of
//!    16 letters for every third, random bytes for the others), coded by
//!    each coding's encoder: gzip and deflate (flate2 on zlib-rs), br
//!    (`brotli-decompressor`), zstd (the `zstd` crate, zstd's C library)
//!    and, for comparison, `ruzstd` (pure Rust; not used by pollhttp, see
//!    the README). Decoded MB/s by wall time and by the thread's CPU time.
//! 2. sha-256 and sha-512 (the `sha2` crate) MB/s, and what hashing one
//!    poll's default byte budget (4 MiB) costs a frame.
//! 3. Bombs: 1 GiB of zeros coded as br and as zstd, fetched by an
//!    `HttpRequest` from a loopback server with a 256 MiB body limit into
//!    `/dev/null`, in a child process: the result, the bytes decoded, and
//!    the RSS the request took (the child's peak, reset when the request
//!    starts, less its RSS then: the server thread and the bomb's bytes
//!    are there before). `tests/tests/request_bombs.rs` asserts it.
//!
//! `cargo run --release -p pollhttp-benches --bin decode_bench [-- --max-mib N]`

use std::io::{Read, Write};
use std::time::{Duration, Instant};

use sha2::Digest;

const BLOCK: usize = 1 << 20;

/// The game_loop example's content patterns (the same xorshift).
fn patterns() -> (Vec<u8>, Vec<u8>) {
    let mut x: u32 = 0x9E37_79B9;
    let binary: Vec<u8> = (0..BLOCK)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x as u8
        })
        .collect();
    let text = binary
        .iter()
        .enumerate()
        .map(|(i, b)| {
            if i % 64 == 63 {
                b'\n'
            } else {
                b"etaoinshrdlucmfw"[(b & 15) as usize]
            }
        })
        .collect();
    (binary, text)
}

fn asset_set(max_mib: u64) -> Vec<Vec<u8>> {
    let (binary, text) = patterns();
    const N: u64 = 46;
    let max = (max_mib << 20) as f64;
    let min = 1024f64.min(max);
    (0..N)
        .map(|i| {
            let len = (min * (max / min).powf(i as f64 / (N - 1) as f64)).round() as usize;
            let src = if i % 3 == 0 { &text } else { &binary };
            let off = (i as usize * 65_537) % BLOCK;
            (0..len).map(|k| src[(off + k) % BLOCK]).collect()
        })
        .collect()
}

fn thread_cpu() -> Duration {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::ThreadCPUTime);
    Duration::new(t.tv_sec as u64, t.tv_nsec as u32)
}

struct Count(usize);
impl Write for Count {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0 += b.len();
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn encode(coding: &str, data: &[u8]) -> Vec<u8> {
    match coding {
        "gzip" => {
            let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::new(6));
            e.write_all(data).unwrap();
            e.finish().unwrap()
        }
        "deflate" => {
            let mut e = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::new(6));
            e.write_all(data).unwrap();
            e.finish().unwrap()
        }
        "br" => {
            let mut out = Vec::new();
            {
                let mut w = brotli::CompressorWriter::new(&mut out, 4096, 5, 22);
                w.write_all(data).unwrap();
            }
            out
        }
        _ => zstd::encode_all(data, 3).unwrap(),
    }
}

/// Decode `coded` as pollhttp does (8 KiB pieces into a streaming writer);
/// the decoded length.
fn decode(decoder: &str, coded: &[u8]) -> usize {
    match decoder {
        "gzip" => {
            let mut w = flate2::write::GzDecoder::new(Count(0));
            for c in coded.chunks(8192) {
                w.write_all(c).unwrap();
            }
            w.finish().unwrap().0
        }
        "deflate" => {
            let mut w = flate2::write::ZlibDecoder::new(Count(0));
            for c in coded.chunks(8192) {
                w.write_all(c).unwrap();
            }
            w.finish().unwrap().0
        }
        "br" => {
            let mut w = brotli_decompressor::DecompressorWriter::new(Count(0), 16 * 1024);
            for c in coded.chunks(8192) {
                w.write_all(c).unwrap();
            }
            w.close().unwrap();
            w.into_inner().ok().unwrap().0
        }
        "zstd" => {
            let mut w = zstd::stream::write::Decoder::new(Count(0)).unwrap();
            w.window_log_max(23).unwrap();
            for c in coded.chunks(8192) {
                w.write_all(c).unwrap();
            }
            w.finish().unwrap().0
        }
        _ => {
            // ruzstd pulls from a reader: it cannot be fed as bytes arrive.
            let mut r = ruzstd::decoding::StreamingDecoder::new(coded).unwrap();
            let mut buf = vec![0u8; 64 * 1024];
            let mut n = 0;
            loop {
                match r.read(&mut buf).unwrap() {
                    0 => return n,
                    k => n += k,
                }
            }
        }
    }
}

fn bomb(coding: &str) {
    // br with a 4 MiB window (22 bits), as the encoders usually make it.
    let coded = pollhttp_tests::coding::bomb(coding, 22);
    // The request runs in a fresh process, so its peak RSS is its own (not
    // the encoder's that made the bomb).
    let path =
        std::env::temp_dir().join(format!("decode-bench-bomb-{}.{coding}", std::process::id()));
    std::fs::write(&path, &coded).unwrap();
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--bomb-child", coding, path.to_str().unwrap()])
        .output()
        .unwrap();
    let _ = std::fs::remove_file(&path);
    print!("{}", String::from_utf8_lossy(&out.stdout));
}

/// The child of [`bomb`]: serve `path`'s bytes as a `coding` body and fetch
/// it with a 256 MiB limit into `/dev/null`.
fn bomb_child(coding: &str, path: &str) {
    let coded = std::fs::read(path).unwrap();
    let server = pollhttp_tests::script::ScriptServer::start(vec![vec![
        pollhttp_tests::script::Step::ReadRequest,
        pollhttp_tests::script::Step::Write(pollhttp_tests::script::response(
            "200 OK",
            &[("Content-Encoding", coding)],
            &coded,
        )),
    ]]);
    // The peak from here on is the request's (Linux: "5" resets VmHWM).
    let _ = std::fs::write("/proc/self/clear_refs", "5");
    let before = pollhttp_tests::process::status_kib("VmRSS");
    let mut req = pollhttp::HttpRequest::new();
    req.settings_mut().body.size_limit = Some(256 << 20);
    req.settings_mut().body.download_file = Some("/dev/null".into());
    req.request(&server.base_url(), &[], "GET", "").unwrap();
    let start = Instant::now();
    let done = pollhttp_tests::drive::run_request(&mut req, Duration::from_secs(600));
    println!(
        "bomb {coding:5} 1 GiB in {:>7} coded bytes: {} after {} MiB decoded, {:.2} s; the request took {} KiB of RSS (the process: {} KiB before, peak {} KiB)",
        coded.len(),
        done.result,
        done.body_bytes >> 20,
        start.elapsed().as_secs_f64(),
        pollhttp_tests::process::status_kib("VmHWM").saturating_sub(before),
        before,
        pollhttp_tests::process::status_kib("VmHWM")
    );
}

fn main() {
    let mut max_mib = 16;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        if a == "--bomb-child" {
            let (coding, path) = (args.next().unwrap(), args.next().unwrap());
            return bomb_child(&coding, &path);
        }
        if a == "--max-mib" {
            max_mib = args
                .next()
                .and_then(|v| v.parse().ok())
                .expect("--max-mib N");
        }
    }
    let set = asset_set(max_mib);
    let total: usize = set.iter().map(Vec::len).sum();
    println!(
        "asset set: {} assets, {:.1} MiB (game_loop's patterns: text every third, random bytes otherwise)",
        set.len(),
        total as f64 / (1 << 20) as f64
    );
    for (decoder, coding) in [
        ("gzip", "gzip"),
        ("deflate", "deflate"),
        ("br", "br"),
        ("zstd", "zstd"),
        ("ruzstd", "zstd"),
    ] {
        let coded: Vec<Vec<u8>> = set.iter().map(|a| encode(coding, a)).collect();
        let coded_len: usize = coded.iter().map(Vec::len).sum();
        let mut best = (f64::MAX, f64::MAX);
        for _ in 0..3 {
            let (t, c) = (Instant::now(), thread_cpu());
            let n: usize = coded.iter().map(|a| decode(decoder, a)).sum();
            assert_eq!(n, total);
            best.0 = best.0.min(t.elapsed().as_secs_f64());
            best.1 = best.1.min((thread_cpu() - c).as_secs_f64());
        }
        println!(
            "decode {decoder:8} coded {:5.1}%  {:7.0} MB/s wall  {:7.0} MB/s CPU",
            coded_len as f64 * 100.0 / total as f64,
            total as f64 / best.0 / 1e6,
            total as f64 / best.1 / 1e6
        );
    }
    let data: Vec<u8> = set.concat();
    for name in ["sha-256", "sha-512"] {
        let mut best = f64::MAX;
        for _ in 0..3 {
            let t = Instant::now();
            if name == "sha-256" {
                let mut h = sha2::Sha256::new();
                data.chunks(64 * 1024).for_each(|c| h.update(c));
                std::hint::black_box(h.finalize());
            } else {
                let mut h = sha2::Sha512::new();
                data.chunks(64 * 1024).for_each(|c| h.update(c));
                std::hint::black_box(h.finalize());
            }
            best = best.min(t.elapsed().as_secs_f64());
        }
        let mbs = data.len() as f64 / best / 1e6;
        println!(
            "hash {name}: {mbs:6.0} MB/s; one poll's default budget (4 MiB) costs {:.2} ms of a 16.7 ms frame",
            4.0 * 1.048_576 / mbs * 1e3
        );
    }
    drop(data);
    drop(set);
    for coding in ["br", "zstd"] {
        bomb(coding);
    }
}
