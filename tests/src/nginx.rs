//! A real nginx (Debian package `nginx`) in a temporary prefix directory.
//!
//! [`Nginx::start`] writes a config, certificates (from
//! [`TestCa::shared`]) and a docroot into a fresh temp dir, then runs
//! `nginx -p <dir> -c <dir>/nginx.conf -e <dir>/error.log` in the foreground
//! (`daemon off; master_process off;`: one process, so SIGKILL is a clean
//! stop) under a [`ServerProcess`] watchdog. It listens on 127.0.0.1 on a
//! plain port and a TLS port (TLS 1.2 + 1.3, ALPN http/1.1; the certificate's
//! SANs are `localhost`, `127.0.0.1`, `::1`). Ports are picked free and the
//! start is retried on a collision; start-up is verified by fetching a
//! per-instance token over both ports (bounded, 5 s).
//!
//! `keepalive_requests 1000000; keepalive_timeout 60s;`
//!
//! # Docroot
//! - `/hello.txt`: `Hello, world!` (13 bytes, [`HELLO_BODY`]).
//! - `/1k.bin`, `/1m.bin`: 1024 and 1 MiB bytes of
//!   [`crate::pseudo_random_bytes`] (xorshift32, documented there).
//! - `/big.bin`: a sparse file of [`NginxOptions::big_file_len`] zero bytes
//!   (default 1 GiB; SHA-256 via [`crate::zeros_sha256`]).
//! - `/etag.txt`: [`ETAG_BODY`]. nginx handles conditional requests on static
//!   files natively: repeating a GET with `If-None-Match: <ETag of a previous
//!   response>` (or `If-Modified-Since: <its Last-Modified>`) answers `304 Not
//!   Modified` without a body. Every static file also supports `Range` (206).
//!
//! # Locations
//! - `/gzip/<file>`: the docroot file with `gzip on; gzip_types *;
//!   gzip_min_length 0;`: with `Accept-Encoding: gzip` nginx answers
//!   `Content-Encoding: gzip` + `Transfer-Encoding: chunked` (no
//!   Content-Length); without it, the plain file.
//! - `/chunked/<file>`: the docroot file through SSI (`ssi on; ssi_types *;`),
//!   which drops Content-Length: a chunked, unencoded response (HTTP/1.1
//!   requests; an HTTP/1.0 request gets a close-delimited body instead).
//! - `/slow/<file>`: the docroot file at `limit_rate 64k` (64 KiB/s).
//! - `/coded/<file>` (only with [`NginxOptions::brotli`], which loads
//!   Debian's `libnginx-mod-http-brotli-filter`): the docroot file with
//!   `brotli on; brotli_types *; brotli_min_length 0;` and gzip as under
//!   `/gzip/`: `Accept-Encoding: br` gets `Content-Encoding: br`, `gzip`
//!   gets gzip (br preferred when both are asked for), chunked.
//! - `/redirect/{301,302,303,307,308}`: `return <code> /hello.txt;` nginx
//!   makes the Location absolute (`absolute_redirect on`, the default), built
//!   from the request's Host name and the listening port, e.g.
//!   `http://127.0.0.1:<port>/hello.txt`.
//! - `/redirect-relative/{301,302,303,307,308}`: the same with
//!   `absolute_redirect off;`: `Location: /hello.txt`.
//! - `/redirect/chain/N` (N = 1..=5): N hops (`chain/N` -> `chain/N-1` ...
//!   `chain/1` -> `/hello.txt`), 302 each.
//! - `/redirect/loop`: 302 to itself, forever.
//! - `/redirect/to-https`: 302 to `https://127.0.0.1:<https_port>/hello.txt`;
//!   `/redirect/to-http`: 302 to `http://127.0.0.1:<http_port>/hello.txt`.
//! - `/status/{204,404,500,503}`: `return <code>;` (nginx's HTML error page
//!   as the body, except 204).
//! - `/close`: `Hello, world!` with `keepalive_timeout 0`, so nginx answers
//!   `Connection: close` and closes.
//! - `/upload`: accepts any method and any body size, discards the body
//!   (answering `Expect: 100-continue`), answers `200` with `uploaded\n`.
//! - Other methods than GET/HEAD on static files give 405.
//!
//! nginx answers HTTP/1.0 requests with an `HTTP/1.1` status line.
//! The access log ([`Nginx::access_log`]) has one line per request:
//! `<connection serial> <request number on that connection> "<request line>"
//! <status> <body bytes>`, handy to assert connection reuse.

use std::fs::{self, File};
use std::io::Write;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::certs::TestCa;
use crate::process::{free_port, wait_until, ServerProcess, StopSignal, TempDir};

/// Body of `/hello.txt`.
pub const HELLO_BODY: &str = "Hello, world!";

/// Body of `/etag.txt`.
pub const ETAG_BODY: &str = "etag test body\n";

/// Length of `/1k.bin`.
pub const ONE_K_LEN: usize = 1024;

/// Length of `/1m.bin`.
pub const ONE_M_LEN: usize = 1 << 20;

/// Redirect codes served under `/redirect/` and `/redirect-relative/`.
pub const REDIRECT_CODES: [u16; 5] = [301, 302, 303, 307, 308];

/// Options for [`Nginx::start_with`].
#[derive(Debug, Clone)]
pub struct NginxOptions {
    /// Length of the sparse all-zero `/big.bin` (default 1 GiB).
    pub big_file_len: u64,
    /// nginx's `keepalive_timeout` in whole seconds (default 60): how long
    /// it keeps an idle keep-alive connection before closing it.
    pub keepalive_timeout_secs: u32,
    /// nginx's `worker_connections` (default 1024; raise it, with the fd
    /// limit, for tests of more open connections).
    pub worker_connections: u32,
    /// Load the brotli filter module ([`BROTLI_MODULE`]) and serve
    /// `/coded/` (default off: the module is a separate package).
    pub brotli: bool,
}

/// Where Debian's `libnginx-mod-http-brotli-filter` puts the module.
pub const BROTLI_MODULE: &str = "/usr/lib/nginx/modules/ngx_http_brotli_filter_module.so";

impl Default for NginxOptions {
    fn default() -> Self {
        NginxOptions {
            big_file_len: 1 << 30,
            keepalive_timeout_secs: 60,
            worker_connections: 1024,
            brotli: false,
        }
    }
}

/// A running nginx; killed on drop (and by its watchdog if the test process
/// vanishes).
#[derive(Debug)]
pub struct Nginx {
    /// Plain HTTP port on 127.0.0.1.
    pub http_port: u16,
    /// HTTPS port on 127.0.0.1.
    pub https_port: u16,
    /// PEM of the CA that signed the server certificate.
    pub ca_pem: String,
    /// The docroot (inside the temp prefix directory).
    pub docroot: PathBuf,
    /// The temp prefix directory (config, logs, temp paths).
    pub prefix: PathBuf,
    /// Length of `/big.bin`.
    pub big_file_len: u64,
    process: ServerProcess,
    _dir: TempDir,
}

/// Path of the nginx binary, if installed (`/usr/sbin/nginx` or on PATH).
pub fn nginx_binary() -> Option<PathBuf> {
    let sbin = PathBuf::from("/usr/sbin/nginx");
    if sbin.is_file() {
        return Some(sbin);
    }
    find_in_path("nginx")
}

pub(crate) fn find_in_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

impl Nginx {
    /// Starts nginx with default options. Panics if nginx is not installed
    /// (with install instructions) or fails to start.
    pub fn start() -> Nginx {
        Self::start_with(NginxOptions::default())
    }

    /// Starts nginx with `opts`; panics like [`Nginx::start`].
    pub fn start_with(opts: NginxOptions) -> Nginx {
        match (nginx_binary(), missing_module(&opts)) {
            (Some(bin), None) => Self::launch(&bin, &opts),
            (None, _) => panic!("{}", missing_message()),
            (_, Some(why)) => panic!("{why}"),
        }
    }

    /// Like [`Nginx::start`], but if nginx is not installed and
    /// `POLLHTTP_SKIP_REAL_SERVERS=1` is set, records the running test as
    /// skipped ([`crate::record_skip`]) and returns `None`.
    pub fn try_start() -> Option<Nginx> {
        Self::try_start_with(NginxOptions::default())
    }

    /// [`Nginx::try_start`] with options.
    pub fn try_start_with(opts: NginxOptions) -> Option<Nginx> {
        match (nginx_binary(), missing_module(&opts)) {
            (Some(bin), None) => Some(Self::launch(&bin, &opts)),
            (None, _) if crate::skip_real_servers() => {
                crate::record_skip("nginx not installed");
                None
            }
            (Some(_), Some(_)) if crate::skip_real_servers() => {
                crate::record_skip("nginx's brotli filter module not installed");
                None
            }
            (None, _) => panic!("{}", missing_message()),
            (_, Some(why)) => panic!("{why}"),
        }
    }

    /// `http://127.0.0.1:<http_port>`.
    pub fn base_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.http_port)
    }

    /// `https://127.0.0.1:<https_port>` (`https://localhost:<port>` works too).
    pub fn base_url_tls(&self) -> String {
        format!("https://127.0.0.1:{}", self.https_port)
    }

    /// `base_url() + path` (`path` starts with `/`).
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base_url())
    }

    /// `base_url_tls() + path`.
    pub fn url_tls(&self, path: &str) -> String {
        format!("{}{path}", self.base_url_tls())
    }

    /// `127.0.0.1:<http_port>`.
    pub fn http_addr(&self) -> SocketAddr {
        SocketAddr::from((Ipv4Addr::LOCALHOST, self.http_port))
    }

    /// `127.0.0.1:<https_port>`.
    pub fn https_addr(&self) -> SocketAddr {
        SocketAddr::from((Ipv4Addr::LOCALHOST, self.https_port))
    }

    /// The access log so far (format in the module docs).
    pub fn access_log(&self) -> String {
        fs::read_to_string(self.prefix.join("access.log")).unwrap_or_default()
    }

    /// Waits (bounded by `timeout`) until the access log has at least
    /// `min_lines` lines and returns it. nginx writes a line when it frees
    /// the request, which can be after the client saw the response: after a
    /// pipelined request nginx does a lingering close (up to 5 s) and logs
    /// only once the client closed its side too.
    /// Two start-up probe lines (`/.pollhttp-instance`) come first.
    pub fn wait_access_log(&self, min_lines: usize, timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            let log = self.access_log();
            if log.lines().count() >= min_lines || Instant::now() >= deadline {
                return log;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// The error log so far.
    pub fn error_log(&self) -> String {
        fs::read_to_string(self.prefix.join("error.log")).unwrap_or_default()
    }

    /// nginx's process id.
    pub fn pid(&self) -> u32 {
        self.process.pid()
    }

    fn launch(bin: &Path, opts: &NginxOptions) -> Nginx {
        let started = Instant::now();
        let dir = TempDir::new("nginx").expect("create nginx temp dir");
        let prefix = dir.path().to_path_buf();
        let docroot = prefix.join("html");
        let ca = TestCa::shared();
        write_docroot(&docroot, opts.big_file_len).expect("write nginx docroot");
        fs::write(prefix.join("leaf.pem"), &ca.leaf_cert_pem).expect("write cert");
        fs::write(prefix.join("leaf.key"), &ca.leaf_key_pem).expect("write key");
        let token = format!("pollhttp-nginx-{}", prefix.display());
        fs::write(docroot.join(".pollhttp-instance"), &token).expect("write token");

        let mut last_err = String::new();
        for _attempt in 0..6 {
            let http_port = free_port().expect("free port");
            let https_port = loop {
                let p = free_port().expect("free port");
                if p != http_port {
                    break p;
                }
            };
            let conf = config(&prefix, &docroot, http_port, https_port, opts);
            fs::write(prefix.join("nginx.conf"), conf).expect("write nginx.conf");
            let _ = fs::remove_file(prefix.join("error.log"));
            let stderr = File::create(prefix.join("stderr.log")).expect("stderr log");
            let mut cmd = Command::new(bin);
            cmd.arg("-p")
                .arg(format!("{}/", prefix.display()))
                .arg("-c")
                .arg(prefix.join("nginx.conf"))
                .arg("-e")
                .arg(prefix.join("error.log"))
                .stdout(Stdio::null())
                .stderr(Stdio::from(stderr));
            let mut process = ServerProcess::spawn("nginx", cmd, StopSignal::Kill, Some(&prefix))
                .expect("spawn nginx");
            let client_cfg = ca.client_config();
            let req =
                b"GET /.pollhttp-instance HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n";
            let http_addr = SocketAddr::from((Ipv4Addr::LOCALHOST, http_port));
            let https_addr = SocketAddr::from((Ipv4Addr::LOCALHOST, https_port));
            let mut http_ok = false;
            let ready = wait_until(
                &mut process,
                Duration::from_secs(5),
                Some(&prefix.join("error.log")),
                || {
                    if !http_ok {
                        http_ok = crate::raw_exchange(http_addr, req)
                            .is_ok_and(|r| r.ends_with(token.as_bytes()));
                    }
                    http_ok
                        && crate::tls_exchange(https_addr, "localhost", client_cfg.clone(), req)
                            .is_ok_and(|r| r.ends_with(token.as_bytes()))
                },
            );
            match ready {
                Ok(()) => {
                    if std::env::var_os("POLLHTTP_TEST_TIMINGS").is_some() {
                        eprintln!("nginx ready in {:?}", started.elapsed());
                    }
                    return Nginx {
                        http_port,
                        https_port,
                        ca_pem: ca.ca_pem.clone(),
                        docroot,
                        prefix,
                        big_file_len: opts.big_file_len,
                        process,
                        _dir: dir,
                    };
                }
                Err(e) => {
                    process.stop();
                    let log = fs::read_to_string(prefix.join("error.log")).unwrap_or_default()
                        + &fs::read_to_string(prefix.join("stderr.log")).unwrap_or_default();
                    if log.contains("Address already in use") {
                        // A port was taken between picking and binding:
                        // pick new ports.
                        last_err = e;
                        continue;
                    }
                    panic!("nginx failed to start: {e}");
                }
            }
        }
        panic!("nginx failed to start after retries: {last_err}");
    }
}

fn missing_message() -> String {
    "nginx is not installed (looked for /usr/sbin/nginx and nginx on PATH). \
     Install it with `apt-get install -y nginx` (Debian/Ubuntu) or run \
     `.ci/install-deps.sh` from the workspace root; or set \
     POLLHTTP_SKIP_REAL_SERVERS=1 to skip tests that need it."
        .to_string()
}

/// Why `opts` cannot be served here: a module it needs is missing.
fn missing_module(opts: &NginxOptions) -> Option<String> {
    (opts.brotli && !Path::new(BROTLI_MODULE).is_file()).then(|| {
        format!(
            "nginx's brotli filter module is not installed ({BROTLI_MODULE}). Install it \
             with `apt-get install -y libnginx-mod-http-brotli-filter` (Debian) or run \
             `.ci/install-deps.sh` from the workspace root; or set \
             POLLHTTP_SKIP_REAL_SERVERS=1 to skip tests that need it."
        )
    })
}

fn write_docroot(docroot: &Path, big_len: u64) -> std::io::Result<()> {
    fs::create_dir_all(docroot)?;
    fs::write(docroot.join("hello.txt"), HELLO_BODY)?;
    fs::write(docroot.join("etag.txt"), ETAG_BODY)?;
    fs::write(
        docroot.join("1k.bin"),
        crate::pseudo_random_bytes(ONE_K_LEN),
    )?;
    fs::write(
        docroot.join("1m.bin"),
        crate::pseudo_random_bytes(ONE_M_LEN),
    )?;
    let big = File::create(docroot.join("big.bin"))?;
    big.set_len(big_len)?;
    big.sync_all().ok();
    let mut f = File::create(docroot.join("index.html"))?;
    f.write_all(b"<!doctype html><title>pollhttp test nginx</title>\n")?;
    Ok(())
}

fn config(
    prefix: &Path,
    docroot: &Path,
    http_port: u16,
    https_port: u16,
    opts: &NginxOptions,
) -> String {
    let keepalive = opts.keepalive_timeout_secs;
    let workers = opts.worker_connections;
    let p = prefix.display();
    let d = docroot.display();
    let mut locations = String::new();
    for code in REDIRECT_CODES {
        locations.push_str(&format!(
            "        location = /redirect/{code} {{ return {code} /hello.txt; }}\n\
             \x20       location = /redirect-relative/{code} {{ absolute_redirect off; return {code} /hello.txt; }}\n"
        ));
    }
    locations.push_str("        location = /redirect/chain/1 { return 302 /hello.txt; }\n");
    for n in 2..=5 {
        locations.push_str(&format!(
            "        location = /redirect/chain/{n} {{ return 302 /redirect/chain/{}; }}\n",
            n - 1
        ));
    }
    for code in [204, 404, 500, 503] {
        locations.push_str(&format!(
            "        location = /status/{code} {{ return {code}; }}\n"
        ));
    }
    let (load_brotli, coded) = if opts.brotli {
        (
            format!("load_module {BROTLI_MODULE};\n"),
            format!(
                "        location /coded/ {{
            alias {d}/;
            gzip on;
            gzip_types *;
            gzip_min_length 0;
            gzip_proxied any;
            brotli on;
            brotli_types *;
            brotli_min_length 0;
        }}\n"
            ),
        )
    } else {
        (String::new(), String::new())
    };
    format!(
        r#"# Generated by pollhttp-tests (tests/src/nginx.rs).
{load_brotli}daemon off;
master_process off;
worker_processes 1;
pid {p}/nginx.pid;
error_log {p}/error.log warn;

events {{
    worker_connections {workers};
}}

http {{
    types {{
        text/plain txt;
        text/html html;
        application/octet-stream bin;
    }}
    default_type application/octet-stream;
    log_format pollhttp '$connection $connection_requests "$request" $status $body_bytes_sent';
    access_log {p}/access.log pollhttp;
    client_body_temp_path {p}/client_body_temp;
    proxy_temp_path {p}/proxy_temp;
    fastcgi_temp_path {p}/fastcgi_temp;
    uwsgi_temp_path {p}/uwsgi_temp;
    scgi_temp_path {p}/scgi_temp;
    sendfile on;
    server_tokens off;
    keepalive_requests 1000000;
    keepalive_timeout {keepalive}s;

    server {{
        listen 127.0.0.1:{http_port};
        listen 127.0.0.1:{https_port} ssl;
        server_name localhost;
        ssl_certificate {p}/leaf.pem;
        ssl_certificate_key {p}/leaf.key;
        ssl_protocols TLSv1.2 TLSv1.3;
        root {d};

        location /gzip/ {{
            alias {d}/;
            gzip on;
            gzip_types *;
            gzip_min_length 0;
            gzip_proxied any;
        }}
        location /chunked/ {{
            alias {d}/;
            ssi on;
            ssi_types *;
        }}
        location /slow/ {{
            alias {d}/;
            limit_rate 64k;
        }}
        location = /close {{
            keepalive_timeout 0;
            default_type text/plain;
            alias {d}/hello.txt;
        }}
        location = /upload {{
            client_max_body_size 0;
            default_type text/plain;
            return 200 "uploaded\n";
        }}
        location = /redirect/loop {{ return 302 /redirect/loop; }}
        location = /redirect/to-https {{ return 302 https://127.0.0.1:{https_port}/hello.txt; }}
        location = /redirect/to-http {{ return 302 http://127.0.0.1:{http_port}/hello.txt; }}
{coded}{locations}    }}
}}
"#
    )
}
