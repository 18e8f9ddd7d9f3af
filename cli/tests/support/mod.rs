//! What the CLI tests share: a bounded run of `fetch` (or any command),
//! the shared nginx, JSON helpers.
#![allow(dead_code)]

use std::process::Command;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use pollhttp_tests::nginx::Nginx;
use serde_json::Value;

pub use pollhttp_tests::process::{run_bounded, Output};

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
