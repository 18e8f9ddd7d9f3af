//! `game_loop_bench`: the C API's frame loop (`ffi/examples/game_loop.c`)
//! beside the same loop in Rust on `RequestPool`, on the same asset set
//! served by nginx, in the same run (interleaved), and their MB/s ratio.
//!
//! ```text
//! cargo run --release -p pollhttp-ffi --example game_loop_bench -- [--runs N] [--max-mib N] [--budget-ms MS]
//! ```
//!
//! The asset set (written into a fresh nginx's docroot): `--max-mib`
//! (default 32) sets the largest of 44 assets whose sizes grow
//! geometrically from 1 KiB, pseudo-random bytes; every fifth is text served
//! gzip-encoded (`/gzip/`) or chunked (`/chunked/`, SSI), one is paced by
//! nginx at 64 KiB/s (`/slow/`, 64 KiB), one does not exist (404): 46
//! requests. Both loops: one pool (6 connections per origin, a poll budget
//! of 4 MiB and `--budget-ms`, default 2 ms), polled once per 60 fps frame,
//! completions taken and checked (status and size), the same fake frame
//! work, the rest of the frame slept; bodies collected by the pool (the C
//! API has no `collect_into`, so neither loop hands the pool an arena).
//!
//! Prints each run's line (`game_loop.c`'s format), the medians, the ratio
//! C / Rust of MB/s (target ≥ 0.95) and the frame and poll targets (no
//! frame over 16.7 ms; `poll()` p99 within the budget + 0.25 ms).
//! Needs nginx and gcc.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use pollhttp::{PollBudget, PoolSettings, RequestPool, Settings};
use pollhttp_tests::nginx::{Nginx, NginxOptions};

/// One asset: expected status, expected decoded size, URL.
struct Asset {
    status: u16,
    size: i64,
    url: String,
}

fn pseudo_random(len: usize, seed: u32) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x as u8
        })
        .collect()
}

fn text(len: usize) -> Vec<u8> {
    let line = b"level geometry, textures and sounds for the next map; ";
    line.iter().copied().cycle().take(len).collect()
}

fn asset_set(nginx: &Nginx, max_mib: u64) -> Vec<Asset> {
    let dir = nginx.docroot.join("assets");
    std::fs::create_dir_all(&dir).expect("assets dir");
    let count = 44;
    let (min, max) = (1024f64, (max_mib << 20) as f64);
    let mut assets = Vec::new();
    for i in 0..count {
        let size = (min * (max / min).powf(i as f64 / (count - 1) as f64)) as usize;
        let name = format!("a{i:02}.bin");
        let is_text = i % 5 == 2 && size <= 8 << 20;
        let data = if is_text {
            text(size)
        } else {
            pseudo_random(size, 0x2545_F491 ^ i as u32)
        };
        std::fs::write(dir.join(&name), &data).expect("write asset");
        let path = match (is_text, i % 10 == 2) {
            (true, true) => format!("/gzip/assets/{name}"),
            (true, false) => format!("/chunked/assets/{name}"),
            _ => format!("/assets/{name}"),
        };
        assets.push(Asset {
            status: 200,
            size: size as i64,
            url: nginx.url(&path),
        });
    }
    std::fs::write(dir.join("slow.bin"), pseudo_random(64 << 10, 7)).expect("write");
    assets.push(Asset {
        status: 200,
        size: 64 << 10,
        url: nginx.url("/slow/assets/slow.bin"),
    });
    assets.push(Asset {
        status: 404,
        size: -1,
        url: nginx.url("/assets/missing.bin"),
    });
    assets
}

/// The game's own work in a frame (the same as game_loop.c's).
fn fake_work(scene: &mut [u32; 16384], mut seed: u32) -> u32 {
    for v in scene.iter_mut() {
        seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
        *v ^= seed;
    }
    scene[(seed % 16384) as usize]
}

fn p99(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    let i = (v.len() as f64 * 0.99) as usize;
    v[i.min(v.len() - 1)]
}

fn max(v: &[f64]) -> f64 {
    v.iter().copied().fold(0.0, f64::max)
}

/// game_loop.c's loop, on `RequestPool`: its last line, in its format.
fn rust_loop(assets: &[Asset], budget_ms: f64) -> String {
    let frame = Duration::from_nanos(16_666_667);
    let mut pool = RequestPool::with_settings(PoolSettings {
        poll_budget: PollBudget::new(4 << 20, Some(Duration::from_secs_f64(budget_ms / 1e3))),
        ..PoolSettings::default()
    })
    .expect("pool");
    let settings = Settings::default();
    let start = Instant::now();
    let ids: Vec<_> = assets
        .iter()
        .map(|a| {
            pool.request(
                a.url.as_str(),
                &[],
                "GET",
                pollhttp::RequestBody::Empty,
                &settings,
            )
        })
        .collect::<Result<_, _>>()
        .expect("submit");
    let (mut frame_ms, mut poll_us) = (Vec::new(), Vec::new());
    let (mut done, mut failed, mut bytes) = (0, 0, 0u64);
    let mut result = "Success".to_string();
    let mut end = None;
    let mut scene = [0u32; 16384];
    let mut sink = 0u32;
    while done < assets.len() && frame_ms.len() < 60 * 600 {
        let frame_start = Instant::now();
        pool.poll();
        let polled = Instant::now();
        while let Some((id, c)) = pool.poll_completed() {
            let len = c.body.len();
            if let Some(i) = ids.iter().position(|x| *x == id) {
                let a = &assets[i];
                let status = c.response_code();
                if c.result != pollhttp::RequestResult::Success && result == "Success" {
                    result = c.result.name().to_string();
                } else if (status != a.status || (a.size >= 0 && len as i64 != a.size))
                    && result == "Success"
                {
                    result = "Mismatch".into();
                }
            }
            failed += usize::from(c.response_code() != 200);
            bytes += len as u64;
            done += 1;
        }
        if done == assets.len() {
            end = Some(Instant::now());
        }
        sink = sink.wrapping_add(fake_work(
            &mut scene,
            sink.wrapping_add(frame_ms.len() as u32),
        ));
        let work_end = Instant::now();
        poll_us.push((polled - frame_start).as_secs_f64() * 1e6);
        frame_ms.push((work_end - frame_start).as_secs_f64() * 1e3);
        if done < assets.len() {
            if let Some(left) = (frame_start + frame).checked_duration_since(Instant::now()) {
                std::thread::sleep(left);
            }
        }
    }
    let end = end.unwrap_or_else(|| {
        result = "Timeout".into();
        Instant::now()
    });
    let secs = (end - start).as_secs_f64();
    std::hint::black_box(sink);
    format!(
        "frames={} frame_max_ms={:.2} frame_p99_ms={:.2} poll_max_us={:.0} poll_p99_us={:.0} \
         mb_per_s={:.1} result={result} requests={} failed={failed}",
        frame_ms.len(),
        max(&frame_ms),
        p99(&mut frame_ms.clone()),
        max(&poll_us),
        p99(&mut poll_us.clone()),
        bytes as f64 / 1e6 / secs,
        assets.len(),
    )
}

fn field(line: &str, name: &str) -> f64 {
    line.split_whitespace()
        .find_map(|kv| kv.strip_prefix(name)?.strip_prefix('='))
        .and_then(|v| v.parse().ok())
        .unwrap_or(f64::NAN)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// The directory holding `libpollhttp_ffi.so` for this build.
fn lib_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("exe");
    // <target>/<profile>/examples/game_loop_bench
    let profile = exe.parent().and_then(Path::parent).expect("profile dir");
    [profile.to_path_buf(), profile.join("deps")]
        .into_iter()
        .find(|d| d.join("libpollhttp_ffi.so").is_file())
        .expect("libpollhttp_ffi.so next to the example (cargo builds it with the example)")
}

fn main() {
    let mut args = std::env::args().skip(1);
    let (mut runs, mut max_mib, mut budget_ms) = (3usize, 32u64, 2.0f64);
    while let Some(a) = args.next() {
        let mut value = || args.next().expect("a value");
        match a.as_str() {
            "--runs" => runs = value().parse().expect("--runs N"),
            "--max-mib" => max_mib = value().parse().expect("--max-mib N"),
            "--budget-ms" => budget_ms = value().parse().expect("--budget-ms MS"),
            _ => panic!("unknown argument {a} (see the doc comment)"),
        }
    }
    let nginx = Nginx::start_with(NginxOptions {
        big_file_len: 1 << 20,
        ..NginxOptions::default()
    });
    let assets = asset_set(&nginx, max_mib);
    let total: i64 = assets.iter().map(|a| a.size.max(0)).sum();
    println!(
        "asset set: {} requests, {:.0} MiB, served by nginx on 127.0.0.1:{}",
        assets.len(),
        total as f64 / (1 << 20) as f64,
        nginx.http_port
    );
    let work = std::env::temp_dir().join(format!("ph-game-loop-{}", std::process::id()));
    std::fs::create_dir_all(&work).expect("work dir");
    let list = work.join("assets.txt");
    let lines: String = assets
        .iter()
        .map(|a| format!("{} {} {}\n", a.status, a.size, a.url))
        .collect();
    std::fs::write(&list, lines).expect("write list");
    let crate_dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let lib = lib_dir();
    let bin = work.join("game_loop_c");
    let status = Command::new("gcc")
        .args(["-std=c11", "-O2", "-Wall", "-Wextra", "-Werror"])
        .arg("-I")
        .arg(crate_dir.join("include"))
        .arg(crate_dir.join("examples/game_loop.c"))
        .arg("-o")
        .arg(&bin)
        .arg("-L")
        .arg(&lib)
        .arg(format!("-Wl,-rpath,{}", lib.display()))
        .arg("-lpollhttp_ffi")
        .status()
        .expect("gcc");
    assert!(status.success(), "gcc failed");

    let (mut c_lines, mut rust_lines) = (Vec::new(), Vec::new());
    for run in 0..runs {
        let out = Command::new(&bin)
            .arg("--budget-ms")
            .arg(budget_ms.to_string())
            .arg(&list)
            .env("LD_LIBRARY_PATH", &lib)
            .output()
            .expect("run game_loop_c");
        let c = String::from_utf8_lossy(&out.stdout)
            .lines()
            .last()
            .unwrap_or_default()
            .to_string();
        println!("run {run} C:    {c}");
        c_lines.push(c);
        let r = rust_loop(&assets, budget_ms);
        println!("run {run} Rust: {r}");
        rust_lines.push(r);
    }
    let med = |lines: &[String], f: &str| median(lines.iter().map(|l| field(l, f)).collect());
    let limit_us = budget_ms * 1e3 + 250.0;
    println!("\nmedians over {runs} runs:");
    for (name, lines) in [("C", &c_lines), ("Rust", &rust_lines)] {
        let ok = lines.iter().all(|l| l.contains("result=Success"));
        let (fmax, p99) = (med(lines, "frame_max_ms"), med(lines, "poll_p99_us"));
        println!(
            "  {name:<4} {:.1} MB/s, frame max {fmax:.2} ms ({}), poll p99 {p99:.0} us ({}), results {}",
            med(lines, "mb_per_s"),
            if fmax <= 16.7 { "met" } else { "missed" },
            if p99 <= limit_us { "met" } else { "missed" },
            if ok { "all Success" } else { "NOT all Success" },
        );
    }
    let ratio = med(&c_lines, "mb_per_s") / med(&rust_lines, "mb_per_s");
    println!(
        "  ratio C / Rust MB/s: {ratio:.3} (target >= 0.95: {})",
        if ratio >= 0.95 { "met" } else { "missed" }
    );
    let _ = std::fs::remove_dir_all(&work);
}
