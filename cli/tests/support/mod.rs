//! What the CLI tests share: a bounded run of `fetch` (or any command),
//! the shared nginx, JSON helpers.
#![allow(dead_code)]

use std::io::Read;
use std::process::{Command, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use pollhttp_tests::nginx::Nginx;
use serde_json::Value;

/// What a bounded run produced.
#[derive(Debug)]
pub struct Output {
    pub code: Option<i32>,
    pub stdout: Vec<u8>,
    pub stderr: String,
}

impl Output {
    pub fn stdout_text(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }

    /// The stdout parsed as one JSON value (fetch --json prints one line).
    pub fn json(&self) -> Value {
        let text = self.stdout_text();
        assert_eq!(
            text.lines().count(),
            1,
            "expected one JSON line, got:\n{text}\nstderr:\n{}",
            self.stderr
        );
        serde_json::from_str(text.trim()).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
    }
}

/// Runs `cmd` to completion with piped output; kills it and panics when it
/// is still running after `limit`.
pub fn run_bounded(mut cmd: Command, limit: Duration) -> Output {
    let what = format!("{cmd:?}");
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {what}: {e}"));
    let mut out = child.stdout.take().expect("stdout");
    let mut err = child.stderr.take().expect("stderr");
    let out_reader = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = out.read_to_end(&mut v);
        v
    });
    let err_reader = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = err.read_to_end(&mut v);
        v
    });
    let deadline = Instant::now() + limit;
    let status = loop {
        match child.try_wait().expect("try_wait") {
            Some(status) => break status,
            None if Instant::now() >= deadline => {
                let _ = child.kill();
                let _ = child.wait();
                let stderr =
                    String::from_utf8_lossy(&err_reader.join().unwrap_or_default()).into_owned();
                panic!("{what} still running after {limit:?}: killed\nstderr:\n{stderr}");
            }
            None => std::thread::sleep(Duration::from_millis(10)),
        }
    };
    Output {
        code: status.code(),
        stdout: out_reader.join().unwrap_or_default(),
        stderr: String::from_utf8_lossy(&err_reader.join().unwrap_or_default()).into_owned(),
    }
}

/// Runs `fetch` with `args`, bounded by 60 s.
pub fn fetch(args: &[&str]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_fetch"));
    cmd.args(args);
    run_bounded(cmd, Duration::from_secs(60))
}

/// One nginx for the whole test binary (its watchdog stops it at exit).
/// `None` when it is not installed and `POLLHTTP_SKIP_REAL_SERVERS=1`.
pub fn nginx() -> Option<&'static Nginx> {
    static NGINX: OnceLock<Mutex<Option<&'static Nginx>>> = OnceLock::new();
    let cell = NGINX.get_or_init(|| Mutex::new(None));
    let mut guard = cell.lock().unwrap_or_else(|e| e.into_inner());
    if guard.is_none() {
        *guard = Nginx::try_start().map(|n| &*Box::leak(Box::new(n)));
    }
    *guard
}

pub fn str_of<'a>(v: &'a Value, key: &str) -> &'a str {
    v[key]
        .as_str()
        .unwrap_or_else(|| panic!("{key} is not a string in {v}"))
}
