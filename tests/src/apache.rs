//! Apache httpd (Debian package `apache2`) as a user-level instance, for
//! the content-coding checks: `mod_brotli` and `mod_deflate` over static
//! files.
//!
//! [`Apache::start`] writes its own `httpd.conf` into a fresh temp dir (no
//! part of the system's `/etc/apache2` is read) and runs
//! `apache2 -f <dir>/httpd.conf -X`: one process in the foreground (the
//! prefork MPM's debug mode, so SIGKILL is a clean stop), listening on
//! `127.0.0.1:<port>` only, under a [`ServerProcess`] watchdog. Started as
//! root it serves as `nobody` (httpd refuses to serve as root), so the
//! temp dir and the files written with [`Apache::write_file`] are
//! world-readable. The port is picked free and the start retried on a
//! collision; start-up is verified by fetching a per-instance token
//! (bounded, 5 s).
//!
//! Every file of the docroot ([`Apache::docroot`]) is served with
//! `AddOutputFilterByType BROTLI_COMPRESS;DEFLATE` for `text/plain`
//! (`.txt`), `application/json` (`.json`) and `application/octet-stream`
//! (`.bin`): `Accept-Encoding: br` gets `Content-Encoding: br`, `gzip` gets
//! gzip (chunked; mod_brotli's default window, 18 bits, and quality 5).
//! mod_deflate answers only gzip, never `deflate`.

use std::fs::{self, File};
use std::net::{Ipv4Addr, SocketAddr};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::process::{free_port, wait_until, ServerProcess, StopSignal, TempDir};

/// The modules the configuration loads, from [`MODULES_DIR`].
const MODULES: [(&str, &str); 6] = [
    ("mpm_prefork_module", "mod_mpm_prefork.so"),
    ("authz_core_module", "mod_authz_core.so"),
    ("mime_module", "mod_mime.so"),
    ("filter_module", "mod_filter.so"),
    ("deflate_module", "mod_deflate.so"),
    ("brotli_module", "mod_brotli.so"),
];

/// Where Debian's `apache2` package keeps its modules.
pub const MODULES_DIR: &str = "/usr/lib/apache2/modules";

/// A running Apache; killed on drop (and by its watchdog if the test
/// process vanishes).
#[derive(Debug)]
pub struct Apache {
    /// Port on 127.0.0.1.
    pub port: u16,
    /// The docroot (inside the temp dir).
    pub docroot: PathBuf,
    /// The temp dir (config, logs).
    pub dir: PathBuf,
    process: ServerProcess,
    _dir: TempDir,
}

/// The httpd binary, if installed with the modules the tests need.
pub fn apache_binary() -> Option<PathBuf> {
    let bin = PathBuf::from("/usr/sbin/apache2");
    let modules = MODULES
        .iter()
        .all(|(_, file)| Path::new(MODULES_DIR).join(file).is_file());
    (bin.is_file() && modules).then_some(bin)
}

fn missing_message() -> String {
    format!(
        "Apache is not installed (looked for /usr/sbin/apache2 and mod_brotli, \
         mod_deflate, mod_mpm_prefork in {MODULES_DIR}). Install it with \
         `apt-get install -y apache2` (Debian; its service is not needed) or run \
         `.ci/install-deps.sh` from the workspace root; or set \
         POLLHTTP_SKIP_REAL_SERVERS=1 to skip tests that need it."
    )
}

impl Apache {
    /// Starts Apache with an empty docroot. Panics if it is not installed
    /// (with install instructions) or fails to start.
    pub fn start() -> Apache {
        let bin = apache_binary().unwrap_or_else(|| panic!("{}", missing_message()));
        Self::launch(&bin)
    }

    /// Like [`Apache::start`], but if Apache is not installed and
    /// `POLLHTTP_SKIP_REAL_SERVERS=1` is set, records the running test as
    /// skipped ([`crate::record_skip`]) and returns `None`.
    pub fn try_start() -> Option<Apache> {
        let bin = crate::installed_or_skip(apache_binary(), "apache2", missing_message)?;
        Some(Self::launch(&bin))
    }

    /// `http://127.0.0.1:<port>` + `path` (`path` starts with `/`).
    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// Writes `data` as `name` in the docroot, readable by the server.
    pub fn write_file(&self, name: &str, data: &[u8]) {
        write_readable(&self.docroot.join(name), data);
    }

    /// The error log so far.
    pub fn error_log(&self) -> String {
        fs::read_to_string(self.dir.join("error.log")).unwrap_or_default()
    }

    fn launch(bin: &Path) -> Apache {
        let dir = TempDir::new("apache").expect("create apache temp dir");
        let root = dir.path().to_path_buf();
        let docroot = root.join("html");
        fs::create_dir_all(&docroot).expect("docroot");
        for d in [&root, &docroot] {
            fs::set_permissions(d, fs::Permissions::from_mode(0o755)).expect("chmod");
        }
        let token = format!("pollhttp-apache-{}", root.display());
        write_readable(&docroot.join(".pollhttp-instance.txt"), token.as_bytes());
        let mut last_err = String::new();
        for _attempt in 0..6 {
            let port = free_port().expect("free port");
            fs::write(root.join("httpd.conf"), config(&root, &docroot, port))
                .expect("write httpd.conf");
            let _ = fs::remove_file(root.join("error.log"));
            let stderr = File::create(root.join("stderr.log")).expect("stderr log");
            let mut cmd = Command::new(bin);
            cmd.arg("-f")
                .arg(root.join("httpd.conf"))
                .arg("-X")
                .stdout(Stdio::null())
                .stderr(Stdio::from(stderr));
            let mut process = ServerProcess::spawn("apache2", cmd, StopSignal::Kill, Some(&root))
                .expect("spawn apache2");
            let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
            let req = b"GET /.pollhttp-instance.txt HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
            let ready = wait_until(
                &mut process,
                Duration::from_secs(5),
                Some(&root.join("error.log")),
                || crate::raw_exchange(addr, req).is_ok_and(|r| r.ends_with(token.as_bytes())),
            );
            match ready {
                Ok(()) => {
                    return Apache {
                        port,
                        docroot,
                        dir: root,
                        process,
                        _dir: dir,
                    }
                }
                Err(e) => {
                    process.stop();
                    let log = fs::read_to_string(root.join("error.log")).unwrap_or_default()
                        + &fs::read_to_string(root.join("stderr.log")).unwrap_or_default();
                    if log.contains("Address already in use") {
                        last_err = e;
                        continue;
                    }
                    panic!("apache2 failed to start: {e}\n{log}");
                }
            }
        }
        panic!("apache2 failed to start after retries: {last_err}");
    }

    /// Apache's process id.
    pub fn pid(&self) -> u32 {
        self.process.pid()
    }
}

/// Writes `data` to `path`, world-readable (a server started as root reads
/// it as `nobody`).
pub(crate) fn write_readable(path: &Path, data: &[u8]) {
    fs::write(path, data).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
    fs::set_permissions(path, fs::Permissions::from_mode(0o644)).expect("chmod");
}

fn config(root: &Path, docroot: &Path, port: u16) -> String {
    let r = root.display();
    let d = docroot.display();
    let modules: String = MODULES
        .iter()
        .map(|(name, file)| format!("LoadModule {name} {MODULES_DIR}/{file}\n"))
        .collect();
    format!(
        r#"# Generated by pollhttp-tests (tests/src/apache.rs).
ServerRoot "{r}"
DefaultRuntimeDir "{r}"
PidFile "{r}/httpd.pid"
Listen 127.0.0.1:{port}
ServerName 127.0.0.1
{modules}# Ignored unless started as root (httpd will not serve as root).
User nobody
Group nogroup
ErrorLog "{r}/error.log"
LogLevel warn
KeepAlive On
MaxKeepAliveRequests 0
DocumentRoot "{d}"
<Directory "{d}">
    Require all granted
</Directory>
TypesConfig /dev/null
AddType text/plain .txt
AddType application/json .json
AddType application/octet-stream .bin
AddOutputFilterByType BROTLI_COMPRESS;DEFLATE text/plain application/json application/octet-stream
"#
    )
}
