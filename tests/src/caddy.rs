//! Caddy (Debian package `caddy`) from a temporary Caddyfile, for the
//! content-coding checks: `encode zstd gzip` over static files.
//!
//! [`Caddy::start`] writes a Caddyfile into a fresh temp dir and runs
//! `caddy run --config <dir>/Caddyfile --adapter caddyfile` (one process;
//! SIGKILL is a clean stop) with `HOME`, `XDG_DATA_HOME` and
//! `XDG_CONFIG_HOME` in the temp dir, under a [`ServerProcess`] watchdog.
//! The admin endpoint and automatic HTTPS are off, HTTP/1.1 only, bound to
//! `127.0.0.1:<port>`. The port is picked free and the start retried on a
//! collision; start-up is verified by fetching a per-instance token
//! (bounded, 10 s).
//!
//! Every file of the docroot ([`Caddy::docroot`]) is served by
//! `file_server` under `encode zstd gzip`: `Accept-Encoding: zstd` gets
//! `Content-Encoding: zstd`, `gzip` gets gzip (chunked), for the content
//! types Caddy compresses (`text/*`, `application/json`, ...; not
//! `application/octet-stream`) and bodies of 512 bytes or more.

use std::fs::{self, File};
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::process::{free_port, wait_until, ServerProcess, StopSignal, TempDir};

/// A running Caddy; killed on drop (and by its watchdog if the test
/// process vanishes).
#[derive(Debug)]
pub struct Caddy {
    /// Port on 127.0.0.1.
    pub port: u16,
    /// The docroot (inside the temp dir).
    pub docroot: PathBuf,
    /// The temp dir (Caddyfile, log, Caddy's data).
    pub dir: PathBuf,
    process: ServerProcess,
    _dir: TempDir,
}

/// The caddy binary, if installed (`/usr/bin/caddy` or on PATH).
pub fn caddy_binary() -> Option<PathBuf> {
    let bin = PathBuf::from("/usr/bin/caddy");
    if bin.is_file() {
        return Some(bin);
    }
    crate::nginx::find_in_path("caddy")
}

fn missing_message() -> String {
    "Caddy is not installed (looked for /usr/bin/caddy and caddy on PATH). \
     Install it with `apt-get install -y caddy` (Debian; its service is not \
     needed) or run `.ci/install-deps.sh` from the workspace root; or set \
     POLLHTTP_SKIP_REAL_SERVERS=1 to skip tests that need it."
        .to_string()
}

impl Caddy {
    /// Starts Caddy with an empty docroot. Panics if it is not installed
    /// (with install instructions) or fails to start.
    pub fn start() -> Caddy {
        let bin = caddy_binary().unwrap_or_else(|| panic!("{}", missing_message()));
        Self::launch(&bin)
    }

    /// Like [`Caddy::start`], but if Caddy is not installed and
    /// `POLLHTTP_SKIP_REAL_SERVERS=1` is set, records the running test as
    /// skipped ([`crate::record_skip`]) and returns `None`.
    pub fn try_start() -> Option<Caddy> {
        let bin = crate::installed_or_skip(caddy_binary(), "caddy", missing_message)?;
        Some(Self::launch(&bin))
    }

    /// `http://127.0.0.1:<port>` + `path` (`path` starts with `/`).
    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// Writes `data` as `name` in the docroot.
    pub fn write_file(&self, name: &str, data: &[u8]) {
        crate::apache::write_readable(&self.docroot.join(name), data);
    }

    /// Caddy's log so far (JSON lines).
    pub fn log(&self) -> String {
        fs::read_to_string(self.dir.join("caddy.log")).unwrap_or_default()
    }

    fn launch(bin: &Path) -> Caddy {
        let dir = TempDir::new("caddy").expect("create caddy temp dir");
        let root = dir.path().to_path_buf();
        let docroot = root.join("html");
        fs::create_dir_all(&docroot).expect("docroot");
        let token = format!("pollhttp-caddy-{}", root.display());
        fs::write(docroot.join(".pollhttp-instance.txt"), &token).expect("write token");
        let log = root.join("caddy.log");
        let mut last_err = String::new();
        for _attempt in 0..6 {
            let port = free_port().expect("free port");
            fs::write(root.join("Caddyfile"), config(&docroot, port)).expect("write Caddyfile");
            let out = File::create(&log).expect("caddy log");
            let mut cmd = Command::new(bin);
            cmd.arg("run")
                .arg("--config")
                .arg(root.join("Caddyfile"))
                .args(["--adapter", "caddyfile"])
                .env("HOME", &root)
                .env("XDG_DATA_HOME", root.join("data"))
                .env("XDG_CONFIG_HOME", root.join("config"))
                .current_dir(&root)
                .stdout(Stdio::from(out.try_clone().expect("dup log")))
                .stderr(Stdio::from(out));
            let mut process = ServerProcess::spawn("caddy", cmd, StopSignal::Kill, Some(&root))
                .expect("spawn caddy");
            let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
            let req = b"GET /.pollhttp-instance.txt HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
            let ready = wait_until(&mut process, Duration::from_secs(10), Some(&log), || {
                crate::raw_exchange(addr, req).is_ok_and(|r| r.ends_with(token.as_bytes()))
            });
            match ready {
                Ok(()) => {
                    return Caddy {
                        port,
                        docroot,
                        dir: root,
                        process,
                        _dir: dir,
                    }
                }
                Err(e) => {
                    process.stop();
                    if fs::read_to_string(&log)
                        .unwrap_or_default()
                        .contains("address already in use")
                    {
                        last_err = e;
                        continue;
                    }
                    panic!("caddy failed to start: {e}");
                }
            }
        }
        panic!("caddy failed to start after retries: {last_err}");
    }

    /// Caddy's process id.
    pub fn pid(&self) -> u32 {
        self.process.pid()
    }
}

fn config(docroot: &Path, port: u16) -> String {
    let d = docroot.display();
    format!(
        r#"# Generated by pollhttp-tests (tests/src/caddy.rs).
{{
	admin off
	auto_https off
	servers {{
		protocols h1
	}}
}}
http://127.0.0.1:{port} {{
	bind 127.0.0.1
	root * {d}
	encode zstd gzip
	file_server
}}
"#
    )
}
