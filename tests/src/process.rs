//! External server processes that cannot outlive the test process, temporary
//! directories, and free-port picking.
//!
//! [`ServerProcess::spawn`] starts the server and, next to it, a tiny `sh`
//! watchdog that polls (every 0.5 s) whether the test process still exists;
//! when it does not (the test binary exited without running destructors, was
//! killed, aborted...), the watchdog signals the server, escalates to SIGKILL
//! after ~3 s, and removes the server's temporary directory. Dropping the
//! [`ServerProcess`] stops the watchdog first, then the server.

use std::io::{self, Read};
use std::net::{Ipv4Addr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// A directory under the system temp dir, removed (recursively) on drop.
#[derive(Debug)]
pub struct TempDir {
    path: PathBuf,
}

impl TempDir {
    /// Creates `<tmp>/pollhttp-<label>-<pid>-<n>-<nanos>`.
    pub fn new(label: &str) -> io::Result<TempDir> {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let path = std::env::temp_dir().join(format!(
            "pollhttp-{label}-{}-{n}-{nanos}",
            std::process::id()
        ));
        std::fs::create_dir_all(&path)?;
        Ok(TempDir { path })
    }

    /// The directory's path.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

/// Picks a currently free TCP port on 127.0.0.1 (bind port 0, read, drop).
/// Another process may grab it before it is used: callers retry on collision.
pub fn free_port() -> io::Result<u16> {
    let l = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
    Ok(l.local_addr()?.port())
}

/// How to stop a [`ServerProcess`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopSignal {
    /// SIGKILL right away (fine for single-process servers).
    Kill,
    /// This signal name (as understood by `kill -s`, e.g. `"QUIT"`, `"TERM"`)
    /// first, SIGKILL if the process is still alive after the grace period.
    Graceful(&'static str, Duration),
}

/// A running external server plus its watchdog; stopped on drop.
#[derive(Debug)]
pub struct ServerProcess {
    name: String,
    child: Child,
    watchdog: Option<Child>,
    stop: StopSignal,
}

impl ServerProcess {
    /// Spawns `cmd` (stdin/stdout/stderr are set to null unless `cmd`
    /// already redirected them to files; never inherit the test's pipes) and
    /// its watchdog. `cleanup_dir`, if given, is removed by the watchdog when
    /// it has to clean up after a vanished test process.
    pub fn spawn(
        name: &str,
        mut cmd: Command,
        stop: StopSignal,
        cleanup_dir: Option<&Path>,
    ) -> io::Result<ServerProcess> {
        cmd.stdin(Stdio::null());
        let child = cmd.spawn()?;
        let signal = match stop {
            StopSignal::Kill => "KILL",
            StopSignal::Graceful(sig, _) => sig,
        };
        let script = r#"
p=$1; c=$2; sig=$3; d=$4
# Alive = exists and is not a zombie (an unreaped zombie passes kill -0).
alive() {
    kill -0 "$1" 2>/dev/null || return 1
    st=$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | cut -c1)
    [ "$st" != Z ]
}
while alive "$p" && alive "$c"; do sleep 0.5; done
kill -s "$sig" "$c" 2>/dev/null
i=0
while alive "$c" && [ $i -lt 30 ]; do sleep 0.1; i=$((i+1)); done
kill -s KILL "$c" 2>/dev/null
if [ -n "$d" ] && ! alive "$p"; then rm -rf "$d"; fi
"#;
        let watchdog = Command::new("sh")
            .arg("-c")
            .arg(script)
            .arg("pollhttp-watchdog")
            .arg(std::process::id().to_string())
            .arg(child.id().to_string())
            .arg(signal)
            .arg(cleanup_dir.map(|d| d.as_os_str()).unwrap_or_default())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn();
        let mut server = ServerProcess {
            name: name.to_string(),
            child,
            watchdog: None,
            stop,
        };
        match watchdog {
            Ok(w) => server.watchdog = Some(w),
            Err(e) => {
                server.stop();
                return Err(e);
            }
        }
        Ok(server)
    }

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// `Some(description)` if the server has exited.
    pub fn exited(&mut self) -> Option<String> {
        match self.child.try_wait() {
            Ok(Some(status)) => Some(format!("{} exited: {status}", self.name)),
            Ok(None) => None,
            Err(e) => Some(format!("{}: try_wait failed: {e}", self.name)),
        }
    }

    /// Stops the watchdog, then the server (idempotent; also done on drop).
    pub fn stop(&mut self) {
        if let Some(mut w) = self.watchdog.take() {
            let _ = w.kill();
            let _ = w.wait();
        }
        if let Ok(Some(_)) = self.child.try_wait() {
            return;
        }
        if let StopSignal::Graceful(sig, grace) = self.stop {
            let sent = Command::new("kill")
                .arg("-s")
                .arg(sig)
                .arg(self.child.id().to_string())
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success());
            if sent {
                let deadline = Instant::now() + grace;
                while Instant::now() < deadline {
                    if let Ok(Some(_)) = self.child.try_wait() {
                        return;
                    }
                    thread::sleep(Duration::from_millis(20));
                }
            }
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Polls `check` every 10 ms until it returns `Ok(true)`, the process exits,
/// or `timeout` passes. Errors describe why (with the log tail, if given).
pub fn wait_until(
    server: &mut ServerProcess,
    timeout: Duration,
    log: Option<&Path>,
    mut check: impl FnMut() -> bool,
) -> Result<(), String> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(why) = server.exited() {
            return Err(format!("{why}{}", log_tail(log)));
        }
        if check() {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(format!(
                "{} not ready after {timeout:?}{}",
                server.name,
                log_tail(log)
            ));
        }
        thread::sleep(Duration::from_millis(10));
    }
}

fn log_tail(log: Option<&Path>) -> String {
    let Some(path) = log else {
        return String::new();
    };
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    let tail = lines[lines.len().saturating_sub(20)..].join("\n");
    format!("\n--- {} (tail) ---\n{tail}", path.display())
}

/// What a bounded run produced.
#[derive(Debug)]
pub struct Output {
    /// The exit code (`None`: killed by a signal).
    pub code: Option<i32>,
    /// Everything written to stdout.
    pub stdout: Vec<u8>,
    /// Everything written to stderr, lossily as text.
    pub stderr: String,
}

impl Output {
    /// The stdout, lossily as text.
    pub fn stdout_text(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }

    /// The stdout parsed as one JSON value (one line expected).
    pub fn json(&self) -> serde_json::Value {
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

/// A `kB` field of this process's `/proc/self/status` (`VmHWM`, `VmRSS`),
/// in KiB; 0 when it cannot be read (not Linux).
pub fn status_kib(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}
