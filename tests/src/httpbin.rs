//! httpbin (PyPI `httpbin`) under gunicorn, from a virtualenv.
//!
//! The virtualenv is `$POLLHTTP_VENV` if set, else `<workspace root>/.ci-venv`
//! (created by `.ci/install-deps.sh`). The server runs as
//! `gunicorn -b 127.0.0.1:<port> -k gthread --threads 8 -w 1 --keep-alive 30
//! httpbin:app` (the gthread worker keeps connections alive; idle keep-alive
//! connections are closed after 30 s) under a [`ServerProcess`] watchdog, and
//! is stopped with SIGQUIT (then SIGKILL after 3 s) on drop.
//!
//! Start-up takes ~0.5-1 s, so a test binary can share one instance through
//! [`Httpbin::shared`]; the watchdog stops it when the test process exits.
//!
//! Notable endpoints (see the reference notes): `/get`, `/post`, `/status/N`,
//! `/redirect/N` (relative Location), `/absolute-redirect/N`,
//! `/basic-auth/u/p`, `/digest-auth/auth/u/p`, `/gzip`, `/deflate`,
//! `/brotli`, `/stream/N` and `/stream-bytes/N?chunk_size=M` (chunked),
//! `/drip`, `/delay/N`, `/cookies/set?a=b`, `/response-headers?K=V`,
//! `/bytes/N`, `/range/N`.

use std::fs::{self, File};
use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use crate::process::{free_port, wait_until, ServerProcess, StopSignal, TempDir};

/// A running httpbin; stopped on drop (and by its watchdog if the test
/// process vanishes).
#[derive(Debug)]
pub struct Httpbin {
    /// Port on 127.0.0.1.
    pub port: u16,
    /// The temp directory holding gunicorn's log.
    pub dir: PathBuf,
    process: ServerProcess,
    _dir: TempDir,
}

/// The virtualenv used: `$POLLHTTP_VENV`, else `<workspace root>/.ci-venv`.
pub fn venv_dir() -> PathBuf {
    match std::env::var_os("POLLHTTP_VENV") {
        Some(v) if !v.is_empty() => PathBuf::from(v),
        _ => crate::workspace_root().join(".ci-venv"),
    }
}

fn missing_message(gunicorn: &std::path::Path) -> String {
    format!(
        "httpbin/gunicorn not installed ({} not found). Run `.ci/install-deps.sh` \
         from the workspace root (creates .ci-venv with httpbin + gunicorn), or point \
         POLLHTTP_VENV at a virtualenv that has them; or set \
         POLLHTTP_SKIP_REAL_SERVERS=1 to skip tests that need it.",
        gunicorn.display()
    )
}

impl Httpbin {
    /// Starts httpbin. Panics if it is not installed (with instructions) or
    /// fails to answer `/get` within 20 s.
    pub fn start() -> Httpbin {
        let gunicorn = venv_dir().join("bin").join("gunicorn");
        if !gunicorn.is_file() {
            panic!("{}", missing_message(&gunicorn));
        }
        Self::launch(gunicorn)
    }

    /// Like [`Httpbin::start`], but if it is not installed and
    /// `POLLHTTP_SKIP_REAL_SERVERS=1` is set, records the running test as
    /// skipped ([`crate::record_skip`]) and returns `None`.
    pub fn try_start() -> Option<Httpbin> {
        let started = Self::start_unless_skipping();
        if started.is_none() {
            crate::record_skip("httpbin not installed");
        }
        started
    }

    /// `None` when httpbin is not installed and skipping is allowed (not
    /// recorded: the callers do that); panics like [`Httpbin::start`]
    /// otherwise.
    fn start_unless_skipping() -> Option<Httpbin> {
        let gunicorn = venv_dir().join("bin").join("gunicorn");
        if !gunicorn.is_file() {
            if crate::skip_real_servers() {
                return None;
            }
            panic!("{}", missing_message(&gunicorn));
        }
        Some(Self::launch(gunicorn))
    }

    /// The instance shared by the whole test process, or `None` (skipping).
    fn shared_cell() -> Option<&'static Httpbin> {
        static SHARED: OnceLock<Option<Httpbin>> = OnceLock::new();
        SHARED.get_or_init(Httpbin::start_unless_skipping).as_ref()
    }

    /// One instance shared by the whole test process (started on first use;
    /// panics like [`Httpbin::start`], also when skipping is allowed).
    pub fn shared() -> &'static Httpbin {
        match Self::shared_cell() {
            Some(h) => h,
            None => panic!("{}", missing_message(&venv_dir().join("bin/gunicorn"))),
        }
    }

    /// [`Httpbin::shared`] with the skip behaviour of [`Httpbin::try_start`]:
    /// every caller that gets `None` is recorded as skipped.
    pub fn try_shared() -> Option<&'static Httpbin> {
        let shared = Self::shared_cell();
        if shared.is_none() {
            crate::record_skip("httpbin not installed");
        }
        shared
    }

    /// `http://127.0.0.1:<port>`.
    pub fn base_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// `base_url() + path` (`path` starts with `/`).
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base_url())
    }

    /// `127.0.0.1:<port>`.
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from((Ipv4Addr::LOCALHOST, self.port))
    }

    /// gunicorn's (master) process id.
    pub fn pid(&self) -> u32 {
        self.process.pid()
    }

    /// gunicorn's log so far (errors, start-up).
    pub fn log(&self) -> String {
        fs::read_to_string(self.dir.join("gunicorn.log")).unwrap_or_default()
    }

    fn launch(gunicorn: PathBuf) -> Httpbin {
        let started = Instant::now();
        let dir = TempDir::new("httpbin").expect("create httpbin temp dir");
        let path = dir.path().to_path_buf();
        let log = path.join("gunicorn.log");
        let mut last_err = String::new();
        for _attempt in 0..5 {
            let port = free_port().expect("free port");
            let _ = fs::remove_file(&log);
            let out = File::create(path.join("stdout.log")).expect("stdout log");
            let mut cmd = Command::new(&gunicorn);
            cmd.arg("-b")
                .arg(format!("127.0.0.1:{port}"))
                .args(["-k", "gthread", "--threads", "8", "-w", "1"])
                .args(["--keep-alive", "30", "--graceful-timeout", "2"])
                .arg("--worker-tmp-dir")
                .arg(&path)
                .arg("--error-logfile")
                .arg(&log)
                .arg("httpbin:app")
                .current_dir(&path)
                .env("PYTHONDONTWRITEBYTECODE", "1")
                .stdout(Stdio::from(out.try_clone().expect("dup log")))
                .stderr(Stdio::from(out));
            let mut process = ServerProcess::spawn(
                "gunicorn",
                cmd,
                StopSignal::Graceful("QUIT", Duration::from_secs(3)),
                Some(&path),
            )
            .expect("spawn gunicorn");
            let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
            let listening = format!("Listening at: http://127.0.0.1:{port}");
            let mut collided = false;
            let ready = wait_until(&mut process, Duration::from_secs(20), Some(&log), || {
                let text = fs::read_to_string(&log).unwrap_or_default();
                if text.contains("Connection in use") {
                    collided = true;
                    return true;
                }
                // Only trust /get once *our* gunicorn has bound the port.
                text.contains(&listening)
                    && crate::raw_exchange(
                        addr,
                        b"GET /get HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n",
                    )
                    .is_ok_and(|r| r.starts_with(b"HTTP/1.1 200"))
            });
            match ready {
                Ok(()) if !collided => {
                    if std::env::var_os("POLLHTTP_TEST_TIMINGS").is_some() {
                        eprintln!("httpbin ready in {:?}", started.elapsed());
                    }
                    return Httpbin {
                        port,
                        dir: path,
                        process,
                        _dir: dir,
                    };
                }
                Ok(()) => {
                    process.stop();
                    last_err = format!("port {port} in use");
                }
                Err(e) => {
                    process.stop();
                    panic!("httpbin failed to start: {e}");
                }
            }
        }
        panic!("httpbin failed to start after retries: {last_err}");
    }
}
