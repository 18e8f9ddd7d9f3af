//! The `game_loop` and `frame_loop` examples of the `pollhttp` crate, run as
//! real commands against real servers (the `fetch` binary has its own tests in
//! `cli/tests/fetch.rs`).
//!
//! Which binaries: `cargo test --workspace` builds the examples into
//! `<target>/<profile>/examples/` before it runs any test; those are used
//! when they are newer than every source file they are built from. Otherwise
//! (e.g. `cargo test -p pollhttp-tests`, or stale binaries) they are built
//! once per test process with `cargo build -q -p pollhttp --examples` into a
//! dedicated target directory (`<target>/examples-under-test`), so the inner
//! cargo never waits for the lock of the outer build's directory.
//! `POLLHTTP_EXAMPLES_DIR=<dir>` uses the binaries in `<dir>` as they are.
//! Every run is bounded by a deadline and killed when it passes.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use pollhttp_tests::nginx::Nginx;
use pollhttp_tests::process::{free_port, run_bounded, Output, TempDir};

/// Where the example binaries are (built on first use).
fn examples_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        if let Some(dir) = std::env::var_os("POLLHTTP_EXAMPLES_DIR").filter(|d| !d.is_empty()) {
            return PathBuf::from(dir);
        }
        // This test binary is <target>/<profile>/deps/examples_cli-<hash>.
        let exe = std::env::current_exe().expect("current_exe");
        if let Some(built) = exe.ancestors().nth(2).map(|p| p.join("examples")) {
            if fresh(&built) {
                return built;
            }
        }
        let target = exe
            .ancestors()
            .nth(3)
            .map(Path::to_path_buf)
            .unwrap_or_else(|| pollhttp_tests::workspace_root().join("target"));
        let target = target.join("examples-under-test");
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| env!("CARGO").to_string());
        let mut cmd = Command::new(cargo);
        cmd.args(["build", "-q", "-p", "pollhttp", "--examples"])
            .current_dir(pollhttp_tests::workspace_root())
            .env("CARGO_TARGET_DIR", &target)
            .env_remove("CARGO_MAKEFLAGS")
            .env_remove("MAKEFLAGS")
            .env_remove("MFLAGS");
        let out = run_bounded(cmd, Duration::from_secs(20 * 60));
        assert_eq!(
            out.code,
            Some(0),
            "building the examples failed:\n{}",
            out.stderr
        );
        target.join("debug").join("examples")
    })
}

/// Whether `dir` holds the examples, each newer than every file it is built
/// from (the `proto` and `client` crates, their manifests, `Cargo.lock`).
fn fresh(dir: &Path) -> bool {
    fn newest(path: &Path, acc: &mut std::time::SystemTime) {
        let Ok(meta) = std::fs::metadata(path) else {
            return;
        };
        if meta.is_dir() {
            for entry in std::fs::read_dir(path).into_iter().flatten().flatten() {
                newest(&entry.path(), acc);
            }
        } else if let Ok(m) = meta.modified() {
            *acc = (*acc).max(m);
        }
    }
    let root = pollhttp_tests::workspace_root();
    let mut sources = std::time::SystemTime::UNIX_EPOCH;
    for p in [
        "Cargo.toml",
        "Cargo.lock",
        "client/Cargo.toml",
        "client/src",
        "client/examples",
        "proto/Cargo.toml",
        "proto/src",
    ] {
        newest(&root.join(p), &mut sources);
    }
    ["game_loop", "frame_loop"].iter().all(|name| {
        std::fs::metadata(dir.join(name))
            .and_then(|m| m.modified())
            .is_ok_and(|built| built > sources)
    })
}

/// Runs an example with `args`, bounded by 60 s.
fn example(name: &str, args: &[&str]) -> Output {
    let mut cmd = Command::new(examples_dir().join(name));
    cmd.args(args);
    run_bounded(cmd, Duration::from_secs(60))
}

/// One nginx for the whole test binary (its watchdog stops it at exit).
/// `None` when it is not installed and `POLLHTTP_SKIP_REAL_SERVERS=1`.
fn nginx() -> Option<&'static Nginx> {
    static NGINX: OnceLock<Mutex<Option<&'static Nginx>>> = OnceLock::new();
    let cell = NGINX.get_or_init(|| Mutex::new(None));
    let mut guard = cell.lock().unwrap_or_else(|e| e.into_inner());
    if guard.is_none() {
        *guard = Nginx::try_start().map(|n| &*Box::leak(Box::new(n)));
    }
    *guard
}

/// The values of the last line: `frames=N ... result=Success`.
fn last_line_values(out: &Output) -> std::collections::HashMap<String, String> {
    let text = out.stdout_text();
    let last = text
        .lines()
        .last()
        .unwrap_or_else(|| panic!("no output; stderr:\n{}", out.stderr));
    let values: std::collections::HashMap<String, String> = last
        .split_whitespace()
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    for key in [
        "frames",
        "frame_max_ms",
        "frame_p99_ms",
        "poll_max_us",
        "poll_p99_us",
        "mb_per_s",
        "result",
        "requests",
        "failed",
        "connections",
    ] {
        assert!(
            values.contains_key(key),
            "{key} missing in the last line {last:?}"
        );
    }
    for key in [
        "frame_max_ms",
        "frame_p99_ms",
        "poll_max_us",
        "poll_p99_us",
        "mb_per_s",
    ] {
        let x: f64 = values[key]
            .parse()
            .unwrap_or_else(|_| panic!("{key} is not a number in {last:?}"));
        assert!(x.is_finite() && x >= 0.0, "{last}");
    }
    values
}

/// Checks a run of the built-in asset set: everything expected happened.
fn assert_asset_set_ok(out: &Output) -> std::collections::HashMap<String, String> {
    assert_eq!(
        out.code,
        Some(0),
        "stdout:\n{}\nstderr:\n{}",
        out.stdout_text(),
        out.stderr
    );
    let v = last_line_values(out);
    assert_eq!(v["result"], "Success", "{v:?}");
    // 46 assets, the slow one and the 404, which is the one failure.
    assert_eq!(v["requests"], "48", "{v:?}");
    assert_eq!(v["failed"], "1", "{v:?}");
    assert!(v["frames"].parse::<u64>().unwrap() > 0);
    let text = out.stdout_text();
    assert!(
        text.contains("content: 47 of 47 assets verified byte for byte"),
        "{text}"
    );
    assert!(
        text.contains("/assets/missing.bin: 404, as expected"),
        "{text}"
    );
    v
}

#[test]
fn game_loop_worker_thread() {
    let out = example("game_loop", &["--worker", "--max-mib", "16"]);
    let v = assert_asset_set_ok(&out);
    // Six nodes, each keeping its connection.
    let conns: u64 = v["connections"].parse().unwrap();
    assert!((1..=6).contains(&conns), "{v:?}");
}

#[test]
fn game_loop_pool_with_plot() {
    let dir = TempDir::new("game-loop").unwrap();
    let svg = dir.path().join("plot.svg");
    let out = example(
        "game_loop",
        &["--max-mib", "4", "--plot", svg.to_str().unwrap()],
    );
    let v = assert_asset_set_ok(&out);
    // One pool, keep-alive: at most the pool's 6 connections per origin for
    // 48 requests.
    let conns: u64 = v["connections"].parse().unwrap();
    assert!((1..=6).contains(&conns), "{v:?}");
    let plot = std::fs::read_to_string(&svg).expect("the plot was written");
    assert!(
        plot.contains("<svg")
            && plot.contains("poll() cost")
            && plot.contains("bytes read per frame"),
        "not the expected SVG"
    );
}

#[test]
fn game_loop_stream_and_files() {
    let out = example("game_loop", &["--stream", "--max-mib", "2"]);
    assert_asset_set_ok(&out);
    let out = example("game_loop", &["--files", "--max-mib", "2"]);
    assert_asset_set_ok(&out);
    let out = example("game_loop", &["--stream", "--files"]);
    assert_eq!(out.code, Some(2), "{}", out.stderr);
}

#[test]
fn game_loop_fetches_a_url() {
    let Some(nginx) = nginx() else { return };
    let out = example("game_loop", &["--url", &nginx.url("/1m.bin")]);
    assert_eq!(
        out.code,
        Some(0),
        "stdout:\n{}\nstderr:\n{}",
        out.stdout_text(),
        out.stderr
    );
    let v = last_line_values(&out);
    assert_eq!(v["result"], "Success");
    assert_eq!(v["requests"], "1");
    assert_eq!(v["failed"], "0");

    // The same through a worker thread, the URL given bare (as before --url).
    let out = example("game_loop", &["--worker", &nginx.url("/1m.bin")]);
    assert_eq!(out.code, Some(0), "stderr:\n{}", out.stderr);
    assert_eq!(last_line_values(&out)["result"], "Success");

    let port = free_port().unwrap();
    let out = example(
        "game_loop",
        &["--url", &format!("http://127.0.0.1:{port}/")],
    );
    assert_eq!(out.code, Some(1));
    let v = last_line_values(&out);
    assert_eq!(v["result"], "CantConnect");
    assert_eq!(v["failed"], "1");
}

#[test]
fn frame_loop_downloads_its_urls() {
    let Some(nginx) = nginx() else { return };
    let out = example(
        "frame_loop",
        &[&nginx.url("/hello.txt"), &nginx.url("/1k.bin")],
    );
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let mut lines: Vec<String> = out.stdout_text().lines().map(str::to_string).collect();
    lines.sort();
    assert_eq!(lines, ["200 1024 bytes", "200 13 bytes"]);
    let out = example(
        "frame_loop",
        &[&nginx.url("/status/404"), "http://127.0.0.1:9/"],
    );
    assert_eq!(out.code, Some(1), "{}", out.stdout_text());
    let out = example("frame_loop", &[]);
    assert_eq!(out.code, Some(2));
}
