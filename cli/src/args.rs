//! The command line: every option spelled as curl spells it, in groups
//! (`fetch -h` the common ones, `fetch --help` / `fetch --help all` every
//! one), and the value parsers that check each value as it is read.

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::error::ErrorKind;
use clap::{ArgAction, ArgMatches, CommandFactory, FromArgMatches, Parser};
use pollhttp::web::{parse_field_lines, FieldLineErrorKind};

pub(crate) const USAGE: &str = "fetch [options...] <URL>...";

/// `--help` and `-h`: curl's layout (the usage line, then the options by
/// group, one line each, the argument in caps).
pub(crate) const HELP_TEMPLATE: &str = "usage: {usage}\n{about}\n\n{all-args}{after-help}";

pub(crate) const AFTER_SHORT_HELP: &str =
    "This is not the full list: 'fetch --help' shows every option.";

pub(crate) const AFTER_LONG_HELP: &str = "\
As curl: a 3xx is the response unless -L follows it, and a body is what the
server sent unless --compressed asks for gzip/deflate and decodes it.
Exit status: curl's codes (0 when every response arrived, any status
without -f; 2 usage, 3 bad URL, 6 resolve, 7 connect, 22 -f and a status
>= 400, 28 timeout, 47 redirects, 52 empty reply, 56 receive, 60 certificate
...; docs/fetch.md has the table). Write-out variables (-w): http_code,
response_code, size_download, size_header, size_upload, time_total,
url_effective, url, num_redirects, num_headers, content_type, exitcode,
errormsg, filename_effective, method, http_version, redirect_url, json,
header_json, and %header{name}; \\n \\r \\t escapes, @FILE reads FORMAT.";

/// The command line. The groups are flattened in; each field's id is its
/// name (`data_urlencode`...), which [`crate::plan::data_pieces`] uses to put the data
/// options back in the order they were given.
#[derive(Parser, Debug)]
#[command(
    name = "fetch",
    about = "fetch: a curl-compatible HTTP/1.1 client on pollhttp",
    override_usage = USAGE,
    help_template = HELP_TEMPLATE,
    after_help = AFTER_SHORT_HELP,
    after_long_help = AFTER_LONG_HELP,
    disable_help_flag = true,
    disable_version_flag = true,
    max_term_width = 100
)]
pub(crate) struct Cli {
    /// The URLs: one after the other, at once with -Z
    #[arg(value_name = "URL", required = true)]
    pub(crate) urls: Vec<String>,
    #[command(flatten)]
    pub(crate) request: RequestArgs,
    #[command(flatten)]
    pub(crate) data: DataArgs,
    #[command(flatten)]
    pub(crate) auth: AuthArgs,
    #[command(flatten)]
    pub(crate) cookies: CookieArgs,
    #[command(flatten)]
    pub(crate) output: OutputArgs,
    #[command(flatten)]
    pub(crate) transfer: TransferArgs,
    #[command(flatten)]
    pub(crate) connection: ConnectionArgs,
    #[command(flatten)]
    pub(crate) help: HelpArgs,
}

#[derive(clap::Args, Debug)]
#[command(next_help_heading = "Request")]
pub(crate) struct RequestArgs {
    /// Request method (default GET; POST with a body, HEAD with -I)
    #[arg(short = 'X', long = "request", value_name = "METHOD")]
    pub(crate) method: Option<String>,
    /// Add a 'Name: value' header field (repeatable)
    #[arg(short = 'H', long = "header", value_name = "LINE", value_parser = header_line)]
    pub(crate) headers: Vec<String>,
    /// Put the -d/--data-urlencode data in the query string; GET
    #[arg(short = 'G', long = "get")]
    pub(crate) get: bool,
    /// Send HEAD and print the response head
    #[arg(short = 'I', long = "head")]
    pub(crate) head: bool,
    /// The User-Agent to send
    #[arg(short = 'A', long = "user-agent", value_name = "NAME")]
    pub(crate) user_agent: Option<String>,
    /// The Referer to send
    #[arg(
        short = 'e',
        long = "referer",
        value_name = "URL",
        hide_short_help = true
    )]
    pub(crate) referer: Option<String>,
    /// Follow redirects (without it a 3xx is the response, as curl)
    #[arg(short = 'L', long = "location")]
    pub(crate) location: bool,
    /// Follow at most N redirects (default 50, as curl; alias --max-redirects)
    #[arg(
        long = "max-redirs",
        alias = "max-redirects",
        value_name = "N",
        hide_short_help = true
    )]
    pub(crate) max_redirs: Option<u32>,
    /// Send FILE with PUT ('-': stdin); a URL ending in '/' gets its name
    #[arg(short = 'T', long = "upload-file", value_name = "FILE")]
    pub(crate) upload_file: Option<PathBuf>,
    /// If-Modified-Since TIME, or FILE's time; '-TIME': If-Unmodified-Since
    #[arg(
        short = 'z',
        long = "time-cond",
        value_name = "TIME|FILE",
        allow_hyphen_values = true,
        hide_short_help = true
    )]
    pub(crate) time_cond: Option<String>,
    /// Send If-None-Match with the ETag saved in FILE (none if FILE is
    /// missing or empty)
    #[arg(long = "etag-compare", value_name = "FILE", hide_short_help = true)]
    pub(crate) etag_compare: Option<PathBuf>,
    /// Save the response's ETag in FILE (an empty FILE when it has none)
    #[arg(long = "etag-save", value_name = "FILE", hide_short_help = true)]
    pub(crate) etag_save: Option<PathBuf>,
}

#[derive(clap::Args, Debug)]
#[command(next_help_heading = "Data")]
pub(crate) struct DataArgs {
    /// POST data; @FILE reads it (CR and LF dropped)
    #[arg(short = 'd', long = "data", value_name = "DATA")]
    pub(crate) data: Vec<String>,
    /// POST data; @FILE reads it byte for byte
    #[arg(long = "data-binary", value_name = "DATA", hide_short_help = true)]
    pub(crate) data_binary: Vec<String>,
    /// POST data, '@' not special
    #[arg(long = "data-raw", value_name = "DATA", hide_short_help = true)]
    pub(crate) data_raw: Vec<String>,
    /// POST data URL-encoded: TEXT, NAME=TEXT, @FILE or NAME@FILE
    #[arg(long = "data-urlencode", value_name = "DATA")]
    pub(crate) data_urlencode: Vec<String>,
    /// Stream this file from disk as the body
    #[arg(long = "data-file", value_name = "PATH", hide_short_help = true)]
    pub(crate) data_file: Option<PathBuf>,
    /// JSON body (DATA or @FILE, several joined), JSON Content-Type, Accept; POST
    #[arg(long = "json", value_name = "DATA")]
    pub(crate) json: Vec<String>,
    /// Multipart part: name=TEXT, name=@FILE[;type=T][;filename=F]
    #[arg(short = 'F', long = "form", value_name = "NAME=CONTENT", value_parser = form_part)]
    pub(crate) form: Vec<FormPart>,
}

#[derive(clap::Args, Debug)]
#[command(next_help_heading = "Authentication")]
pub(crate) struct AuthArgs {
    /// Server user and password
    #[arg(short = 'u', long = "user", value_name = "USER:PASSWORD", value_parser = user_password)]
    pub(crate) user: Option<(String, String)>,
    /// Use HTTP Basic authentication (the default)
    #[arg(long = "basic", overrides_with_all = ["digest", "anyauth"], hide_short_help = true)]
    pub(crate) basic: bool,
    /// Use HTTP Digest authentication
    #[arg(long = "digest", overrides_with_all = ["basic", "anyauth"])]
    pub(crate) digest: bool,
    /// Use the scheme the server asks for (Digest or Basic)
    #[arg(long = "anyauth", overrides_with_all = ["basic", "digest"], hide_short_help = true)]
    pub(crate) anyauth: bool,
    /// Proxy user and password (Basic; wins over -x's user:password@)
    #[arg(
        short = 'U',
        long = "proxy-user",
        value_name = "USER:PASSWORD",
        value_parser = user_password,
        hide_short_help = true
    )]
    pub(crate) proxy_user: Option<(String, String)>,
}

#[derive(clap::Args, Debug)]
#[command(next_help_heading = "Cookies")]
pub(crate) struct CookieArgs {
    /// Send cookies from 'n=v; n2=v2', or read them from FILE
    #[arg(short = 'b', long = "cookie", value_name = "DATA|FILE", value_parser = cookie_source)]
    pub(crate) cookie: Vec<CookieSource>,
    /// Write every cookie to FILE (Netscape format) at the end
    #[arg(short = 'c', long = "cookie-jar", value_name = "FILE")]
    pub(crate) cookie_jar: Option<PathBuf>,
}

#[derive(clap::Args, Debug)]
#[command(next_help_heading = "Output")]
pub(crate) struct OutputArgs {
    /// Write the body to FILE ('-': stdout); one per URL, in order
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    pub(crate) output: Vec<PathBuf>,
    /// Save the body under its URL's file name; one per URL, in order
    #[arg(
        short = 'O',
        long = "remote-name",
        action = ArgAction::Append,
        num_args = 0,
        default_missing_value = "true",
        value_parser = clap::value_parser!(bool)
    )]
    pub(crate) remote_name: Vec<bool>,
    /// -O for every URL
    #[arg(long = "remote-name-all", hide_short_help = true)]
    pub(crate) remote_name_all: bool,
    /// With -O, the name the Content-Disposition header gives
    #[arg(short = 'J', long = "remote-header-name", hide_short_help = true)]
    pub(crate) remote_header_name: bool,
    /// Write the response head to FILE ('-': stdout)
    #[arg(short = 'D', long = "dump-header", value_name = "FILE")]
    pub(crate) dump_header: Option<PathBuf>,
    /// After each transfer, print FORMAT with its %{variables} (@FILE reads it)
    #[arg(short = 'w', long = "write-out", value_name = "FORMAT")]
    pub(crate) write_out: Option<String>,
    /// Save the -o/-O files in DIR (no -o/-O: implies -O)
    #[arg(long = "output-dir", value_name = "DIR")]
    pub(crate) output_dir: Option<PathBuf>,
    /// Resume at OFFSET ('-': a partial -o/-O file's size)
    #[arg(short = 'C', long = "continue-at", value_name = "OFFSET", value_parser = continue_at)]
    pub(crate) continue_at: Option<ContinueAt>,
    /// Print the response head before the body
    #[arg(short = 'i', long = "include")]
    pub(crate) include: bool,
    /// A status >= 400 prints no body and exits 22
    #[arg(short = 'f', long = "fail")]
    pub(crate) fail: bool,
    /// A status >= 400 exits 22, with its body
    #[arg(long = "fail-with-body", hide_short_help = true)]
    pub(crate) fail_with_body: bool,
    /// No progress bar, no error messages
    #[arg(short = 's', long = "silent")]
    pub(crate) silent: bool,
    /// With -s, still print error messages
    #[arg(short = 'S', long = "show-error", hide_short_help = true)]
    pub(crate) show_error: bool,
    /// Tell on stderr what is sent and what came back
    #[arg(short = 'v', long = "verbose")]
    pub(crate) verbose: bool,
    /// Print fetch's JSON report line per transfer instead of the body
    #[arg(long = "report", hide_short_help = true)]
    pub(crate) report: bool,
    /// curl's progress bar of #s instead of its meter (on stderr)
    #[arg(short = '#', long = "progress-bar", hide_short_help = true)]
    pub(crate) progress_bar: bool,
}

#[derive(clap::Args, Debug)]
#[command(next_help_heading = "Transfer")]
pub(crate) struct TransferArgs {
    /// Run the URLs at once through one RequestPool
    #[arg(short = 'Z', long = "parallel")]
    pub(crate) parallel: bool,
    /// With -Z, at most N connections at a time (default 50)
    #[arg(
        long = "parallel-max",
        value_name = "N",
        default_value_t = 50,
        hide_default_value = true,
        value_parser = clap::value_parser!(u32).range(1..),
        hide_short_help = true
    )]
    pub(crate) parallel_max: u32,
    /// Follow Link rel="next" pages, each body in turn
    #[arg(long = "paginate")]
    pub(crate) paginate: bool,
    /// With --paginate, at most N pages
    #[arg(
        long = "page-limit",
        value_name = "N",
        requires = "paginate",
        value_parser = clap::value_parser!(u32).range(1..),
        hide_short_help = true
    )]
    pub(crate) page_limit: Option<u32>,
    /// Retry a transient failure up to N times
    #[arg(long = "retry", value_name = "N")]
    pub(crate) retry: Option<u32>,
    /// First wait before a retry (default 1; then doubled)
    #[arg(long = "retry-delay", value_name = "SECS", value_parser = seconds, hide_short_help = true)]
    pub(crate) retry_delay: Option<Duration>,
    /// Deadline of a transfer with its retries; longest wait
    #[arg(long = "retry-max-time", value_name = "SECS", value_parser = seconds, hide_short_help = true)]
    pub(crate) retry_max_time: Option<Duration>,
    /// Read at most RATE bytes per second (suffixes k, M, G)
    #[arg(long = "limit-rate", value_name = "RATE", value_parser = rate)]
    pub(crate) limit_rate: Option<u64>,
    /// Fail when the body is larger (alias --limit)
    #[arg(
        long = "max-filesize",
        alias = "limit",
        value_name = "BYTES",
        hide_short_help = true
    )]
    pub(crate) max_filesize: Option<u64>,
    /// Ask for gzip and deflate, and decode the body
    #[arg(long = "compressed")]
    pub(crate) compressed: bool,
    /// With --retry, retry every error (with -f, every status >= 400)
    #[arg(long = "retry-all-errors", hide_short_help = true)]
    pub(crate) retry_all_errors: bool,
    /// Fail (exit 100) unless the body's SHA-256 is HEX (fetch's own)
    #[arg(long = "expect-sha256", value_name = "HEX")]
    pub(crate) expect_sha256: Option<String>,
    /// An HTTP cache in DIR (RFC 9111, private; shared with other runs):
    /// fresh answers come from it, stale ones are revalidated (fetch's own)
    #[arg(long = "cache", value_name = "DIR")]
    pub(crate) cache: Option<PathBuf>,
    /// How the cache is used: default, refresh, only-if-cached, bypass
    #[arg(long = "cache-mode", value_name = "MODE", value_parser = cache_mode, hide_short_help = true)]
    pub(crate) cache_mode: Option<pollhttp::CacheMode>,
}

/// `--cache-mode`'s value, as `fetch()`'s `cache` option names them.
fn cache_mode(s: &str) -> Result<pollhttp::CacheMode, String> {
    match s {
        "default" => Ok(pollhttp::CacheMode::Default),
        "refresh" | "no-cache" => Ok(pollhttp::CacheMode::Refresh),
        "only-if-cached" => Ok(pollhttp::CacheMode::OnlyIfCached),
        "bypass" | "no-store" => Ok(pollhttp::CacheMode::Bypass),
        _ => Err(format!(
            "not a cache mode: {s:?} (default, refresh, only-if-cached, bypass)"
        )),
    }
}

#[derive(clap::Args, Debug)]
#[command(next_help_heading = "Connection")]
pub(crate) struct ConnectionArgs {
    /// Longest time a transfer may take (alias --timeout)
    #[arg(
        short = 'm',
        long = "max-time",
        alias = "timeout",
        value_name = "SECS",
        value_parser = seconds
    )]
    pub(crate) max_time: Option<Duration>,
    /// Longest time connecting may take (default 30)
    #[arg(long = "connect-timeout", value_name = "SECS", value_parser = seconds, hide_short_help = true)]
    pub(crate) connect_timeout: Option<Duration>,
    /// Longest wait for 100 Continue before a body over 1 MiB is sent
    /// anyway (default 1)
    #[arg(long = "expect100-timeout", value_name = "SECS", value_parser = seconds, hide_short_help = true)]
    pub(crate) expect100_timeout: Option<Duration>,
    /// An http://[user:password@]host:port proxy for http and https URLs
    #[arg(short = 'x', long = "proxy", value_name = "URL", value_parser = proxy)]
    pub(crate) proxy: Option<ProxyArg>,
    /// No proxy for the hosts in LIST (comma-separated; '*': none at all)
    #[arg(long = "noproxy", value_name = "LIST", value_parser = no_proxy, hide_short_help = true)]
    pub(crate) noproxy: Option<String>,
    /// Connect to ADDR for HOST:PORT (HOST:PORT:ADDR[,ADDR]...)
    #[arg(long = "resolve", value_name = "HOST:PORT:ADDR", value_parser = resolve, hide_short_help = true)]
    pub(crate) resolve: Vec<Resolve>,
    /// Connect to HOST2:PORT2 for HOST1:PORT1 (empty: any)
    #[arg(long = "connect-to", value_name = "HOST1:PORT1:HOST2:PORT2", value_parser = connect_to, hide_short_help = true)]
    pub(crate) connect_to: Vec<ConnectTo>,
    /// Trust the CA certificate(s) in FILE (PEM)
    #[arg(long = "cacert", value_name = "FILE", hide_short_help = true)]
    pub(crate) cacert: Option<PathBuf>,
    /// Do not verify the server certificate
    #[arg(short = 'k', long = "insecure")]
    pub(crate) insecure: bool,
    /// Read responses that break RFC 9112 as curl does: alone, every rule
    /// below; =RULES, those (comma-separated: bare-lf, obs-fold,
    /// whitespace-before-colon, content-length-with-transfer-encoding,
    /// last-chunk-then-eof). fetch's own; without it fetch is strict
    #[arg(
        long = "lenient",
        value_name = "RULES",
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = "all",
        value_parser = leniency,
        hide_short_help = true
    )]
    pub(crate) lenient: Option<pollhttp::Leniency>,
}

/// `--lenient[=RULES]`: `all`, or leniencies by name (`-` or `_`), added to
/// the library's default (obs-fold on).
pub(crate) fn leniency(s: &str) -> Result<pollhttp::Leniency, String> {
    if s.eq_ignore_ascii_case("all") {
        return Ok(pollhttp::Leniency::all());
    }
    let mut l = pollhttp::Settings::default().leniency;
    for name in s.split(',').map(str::trim) {
        if !l.enable(name) {
            let names: Vec<String> = pollhttp::Leniency::NAMES
                .iter()
                .map(|n| n.replace('_', "-"))
                .collect();
            return Err(format!(
                "not a leniency: {name:?} (all, or some of {})",
                names.join(", ")
            ));
        }
    }
    Ok(l)
}

#[derive(clap::Args, Debug)]
#[command(next_help_heading = "Help")]
pub(crate) struct HelpArgs {
    /// The common options
    #[arg(short = 'h', action = ArgAction::HelpShort)]
    pub(crate) short_help: Option<bool>,
    /// Every option
    #[arg(long = "help", action = ArgAction::HelpLong)]
    pub(crate) long_help: Option<bool>,
}

// ------------------------------------------------------------ value parsers

/// `-H`: a `"Name: value"` line, checked now by the library's rules so a bad
/// one is a usage error with the reason (the builder checks again).
pub(crate) fn header_line(s: &str) -> Result<String, String> {
    let why = match parse_field_lines(&[s]) {
        Ok(_) => return Ok(s.to_string()),
        Err(e) => match e.kind {
            FieldLineErrorKind::NoColon => "no colon: a header is 'Name: value'",
            FieldLineErrorKind::InvalidName => {
                "the name is not a token (no space, no separator, nothing before the colon but the name)"
            }
            FieldLineErrorKind::InvalidValue => "the value holds a character a field cannot (CR, LF, NUL)",
            _ => "not a 'Name: value' header line",
        },
    };
    Err(why.to_string())
}

pub(crate) fn user_password(s: &str) -> Result<(String, String), String> {
    match s.split_once(':') {
        Some((user, password)) => Ok((user.to_string(), password.to_string())),
        None => Err("expected USER:PASSWORD (fetch does not prompt for a password)".into()),
    }
}

/// Seconds, fractions allowed.
pub(crate) fn seconds(s: &str) -> Result<Duration, String> {
    let secs: f64 = s
        .parse()
        .map_err(|_| "not a number of seconds".to_string())?;
    Duration::try_from_secs_f64(secs).map_err(|_| "not a number of seconds >= 0".to_string())
}

/// `--limit-rate`: bytes per second, with curl's suffixes k, M, G (powers of
/// 1024, either case). 0 means no limit, as with curl.
pub(crate) fn rate(s: &str) -> Result<u64, String> {
    let (number, unit) = match s.char_indices().next_back() {
        Some((i, c)) if c.is_ascii_alphabetic() => {
            let unit: u64 = match c.to_ascii_lowercase() {
                'k' => 1 << 10,
                'm' => 1 << 20,
                'g' => 1 << 30,
                _ => return Err(format!("unknown unit {c:?}: use k, M or G")),
            };
            (&s[..i], unit)
        }
        _ => (s, 1),
    };
    let n: f64 = number
        .parse()
        .ok()
        .filter(|n: &f64| n.is_finite() && *n >= 0.0)
        .ok_or_else(|| "not a rate: bytes per second, optionally with k, M or G".to_string())?;
    let bytes = n * unit as f64;
    if bytes >= u64::MAX as f64 {
        return Err("too large a rate".into());
    }
    Ok(bytes as u64)
}

/// `-C`: `-` (from the file's size) or a byte offset.
pub(crate) fn continue_at(s: &str) -> Result<ContinueAt, String> {
    if s == "-" {
        return Ok(ContinueAt::FileSize);
    }
    s.parse()
        .map(ContinueAt::Offset)
        .map_err(|_| "expected '-' (the file's size) or a byte offset".into())
}

/// `-C`: where a transfer starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ContinueAt {
    /// `-C -`: the partial file's size (the library's resume).
    FileSize,
    /// `-C N`: `Range: bytes=N-`.
    Offset(u64),
}

/// `--noproxy`: `*`, or host names (a name matches itself and its
/// subdomains; a leading dot is ignored), as curl.
pub(crate) fn no_proxy(s: &str) -> Result<String, String> {
    Ok(s.trim().to_string())
}

/// `--resolve HOST:PORT:ADDR[,ADDR]...`: the addresses HOST:PORT connects to.
#[derive(Debug, Clone)]
pub(crate) struct Resolve {
    pub(crate) host: String,
    pub(crate) port: u16,
    pub(crate) addrs: Vec<std::net::IpAddr>,
}

pub(crate) fn resolve(s: &str) -> Result<Resolve, String> {
    let s = s.strip_prefix('+').unwrap_or(s);
    let mut it = s.splitn(3, ':');
    let (Some(host), Some(port), Some(addrs)) = (it.next(), it.next(), it.next()) else {
        return Err("expected HOST:PORT:ADDR[,ADDR]...".into());
    };
    let port: u16 = port.parse().map_err(|_| format!("bad port {port:?}"))?;
    let addrs = addrs
        .split(',')
        .map(|a| {
            a.trim_start_matches('[')
                .trim_end_matches(']')
                .parse()
                .map_err(|_| format!("not an IP address: {a:?}"))
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Resolve {
        host: host.to_ascii_lowercase(),
        port,
        addrs,
    })
}

/// `--connect-to HOST1:PORT1:HOST2:PORT2`: a connection to HOST1:PORT1
/// goes to HOST2:PORT2 instead (an empty part: any host or port; the same).
#[derive(Debug, Clone)]
pub(crate) struct ConnectTo {
    pub(crate) from_host: Option<String>,
    pub(crate) from_port: Option<u16>,
    pub(crate) to_host: Option<String>,
    pub(crate) to_port: Option<u16>,
}

pub(crate) fn connect_to(s: &str) -> Result<ConnectTo, String> {
    let parts = split_host_port_pairs(s)?;
    let port = |p: &str| -> Result<Option<u16>, String> {
        if p.is_empty() {
            Ok(None)
        } else {
            p.parse().map(Some).map_err(|_| format!("bad port {p:?}"))
        }
    };
    let host = |h: &str| {
        (!h.is_empty()).then(|| {
            h.trim_start_matches('[')
                .trim_end_matches(']')
                .to_ascii_lowercase()
        })
    };
    Ok(ConnectTo {
        from_host: host(&parts[0]),
        from_port: port(&parts[1])?,
        to_host: host(&parts[2]),
        to_port: port(&parts[3])?,
    })
}

/// `HOST1:PORT1:HOST2:PORT2`, a host in brackets when it is IPv6.
fn split_host_port_pairs(s: &str) -> Result<Vec<String>, String> {
    let mut parts = Vec::new();
    let mut cur = String::new();
    let mut bracket = false;
    for c in s.chars() {
        match c {
            '[' => bracket = true,
            ']' => bracket = false,
            ':' if !bracket => {
                parts.push(std::mem::take(&mut cur));
                continue;
            }
            _ => {}
        }
        cur.push(c);
    }
    parts.push(cur);
    if parts.len() != 4 {
        return Err("expected HOST1:PORT1:HOST2:PORT2".into());
    }
    Ok(parts)
}

/// `-x`: the proxy, and the credentials of its URL's userinfo.
#[derive(Debug, Clone)]
pub(crate) struct ProxyArg {
    pub(crate) host: String,
    pub(crate) port: u16,
    /// `user:password@` (percent-decoded): `Proxy-Authorization: Basic`,
    /// unless `-U`/`--proxy-user` is given (as curl).
    pub(crate) credentials: Option<(String, String)>,
}

/// `http://[user[:password]@]host:port`, `host:port` or `host` (port 1080,
/// as curl).
pub(crate) fn proxy(s: &str) -> Result<ProxyArg, String> {
    let with_scheme = if s.contains("://") {
        s.to_string()
    } else {
        format!("http://{s}")
    };
    let u = url::Url::parse(&with_scheme).map_err(|e| e.to_string())?;
    if u.scheme() != "http" {
        return Err("only http:// proxies are supported".into());
    }
    let host = u
        .host_str()
        .filter(|h| !h.is_empty())
        .ok_or_else(|| "no host".to_string())?;
    let host = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_string();
    Ok(ProxyArg {
        host,
        port: u.port().unwrap_or(1080),
        credentials: userinfo(&u),
    })
}

/// A URL's userinfo, percent-decoded (RFC 3986 §3.2.1): a user name, or a
/// password with an empty user name; `None` when it has neither.
pub(crate) fn userinfo(u: &url::Url) -> Option<(String, String)> {
    if u.username().is_empty() && u.password().is_none() {
        return None;
    }
    let decode = |s: &str| {
        percent_encoding::percent_decode_str(s)
            .decode_utf8_lossy()
            .into_owned()
    };
    Some((decode(u.username()), decode(u.password().unwrap_or(""))))
}

/// `--digest` without `-u`: the URL's userinfo are the credentials, as if
/// given with `-u` (curl's rule). Returns the URL without them (so they are
/// not also sent as Basic) and the credentials; `None` when the URL has no
/// userinfo (or does not parse: the library says so).
pub(crate) fn url_credentials(url: &str) -> Option<(String, (String, String))> {
    let full = if url.contains("://") {
        url.to_string()
    } else {
        format!("http://{url}")
    };
    let mut u = url::Url::parse(&full).ok()?;
    let credentials = userinfo(&u)?;
    u.set_username("").ok()?;
    u.set_password(None).ok()?;
    Some((u.to_string(), credentials))
}

/// `-b`: as curl, a string with `=` is cookies to send, anything else a
/// file to read.
#[derive(Debug, Clone)]
pub(crate) enum CookieSource {
    Header(String),
    File(PathBuf),
}

pub(crate) fn cookie_source(s: &str) -> Result<CookieSource, String> {
    if s.contains('=') {
        Ok(CookieSource::Header(s.trim().to_string()))
    } else if s.is_empty() {
        Err("expected 'name=value; ...' or a file".into())
    } else {
        Ok(CookieSource::File(PathBuf::from(s)))
    }
}

/// One `-F` part.
#[derive(Debug, Clone)]
pub(crate) struct FormPart {
    pub(crate) name: String,
    pub(crate) content: FormContent,
    pub(crate) content_type: Option<String>,
    pub(crate) filename: Option<String>,
}

#[derive(Debug, Clone)]
pub(crate) enum FormContent {
    /// `name=value`.
    Text(String),
    /// `name=@path`: the file, streamed.
    File(PathBuf),
    /// `name=<path`: the file's text as the value.
    FileText(PathBuf),
}

/// `-F name=content[;type=T][;filename=F]`, curl's forms: `@path` a file,
/// `<path` a file's text, else the text itself. A `;` piece that is not
/// `type=` or `filename=` stays in the content (so `a;b` is a value).
pub(crate) fn form_part(s: &str) -> Result<FormPart, String> {
    let (name, rest) = s
        .split_once('=')
        .ok_or_else(|| "expected name=value, name=@FILE or name=<FILE".to_string())?;
    if name.is_empty() {
        return Err("the part has no name".into());
    }
    let mut content = String::new();
    let mut content_type = None;
    let mut filename = None;
    for (i, piece) in rest.split(';').enumerate() {
        if i > 0 {
            if let Some(t) = piece.strip_prefix("type=") {
                content_type = Some(t.to_string());
                continue;
            }
            if let Some(f) = piece.strip_prefix("filename=") {
                filename = Some(f.trim_matches('"').to_string());
                continue;
            }
            content.push(';');
        }
        content.push_str(piece);
    }
    let content = if let Some(path) = content.strip_prefix('@') {
        FormContent::File(PathBuf::from(path))
    } else if let Some(path) = content.strip_prefix('<') {
        FormContent::FileText(PathBuf::from(path))
    } else {
        FormContent::Text(content)
    };
    Ok(FormPart {
        name: name.to_string(),
        content,
        content_type,
        filename,
    })
}

/// The command line, or the exit code: 0 after `-h`/`--help`, 2 after a
/// usage error (said on stderr).
pub(crate) fn parse(
    args: impl IntoIterator<Item = OsString>,
) -> Result<(Cli, ArgMatches), ExitCode> {
    let mut args: Vec<OsString> = args.into_iter().collect();
    // curl's `--help all` (and `--help CATEGORY`, shown whole here).
    if let Some(i) = args.iter().position(|a| a == "--help") {
        if args
            .get(i + 1)
            .and_then(|a| a.to_str())
            .is_some_and(|a| a.chars().all(|c| c.is_ascii_lowercase()) && !a.is_empty())
        {
            args.remove(i + 1);
        }
    }
    let long_help = args
        .iter()
        .skip(1)
        .take_while(|a| *a != "--")
        .any(|a| a == "--help");
    let parsed = Cli::command()
        .try_get_matches_from(&args)
        .and_then(|m| Cli::from_arg_matches(&m).map(|cli| (cli, m)));
    match parsed {
        Ok(parsed) => Ok(parsed),
        Err(e) if e.kind() == ErrorKind::DisplayHelp && long_help => {
            // clap lays out long help with each description on a line of its
            // own; --help is the short layout with every option shown.
            let help = Cli::command()
                .mut_args(|a| a.hide_short_help(false))
                .after_help(AFTER_LONG_HELP)
                .render_help();
            print!("{help}");
            Err(ExitCode::SUCCESS)
        }
        Err(e) if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) => {
            let _ = e.print();
            Err(ExitCode::SUCCESS)
        }
        Err(e) => {
            // clap's first paragraph says what is wrong; the usage line
            // follows, as after every usage error.
            let text = e.to_string();
            let first = text.split("\n\n").next().unwrap_or("");
            let first = first.strip_prefix("error: ").unwrap_or(first);
            usage_error(first.trim());
            Err(ExitCode::from(2))
        }
    }
}

pub(crate) fn usage_error(message: &str) {
    eprintln!(
        "fetch: {message}\nusage: {USAGE}\ntry 'fetch --help' for every option, 'fetch -h' for the common ones"
    );
}

// ------------------------------------------------------------ the plan
