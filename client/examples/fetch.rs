//! `fetch`: a small curl-like command built on [`pollhttp::web::Request`],
//! run on a [`pollhttp::HttpRequest`] one transfer after another or, with
//! `-Z`, on one [`pollhttp::RequestPool`].
//!
//! ```text
//! fetch [options...] <URL>...
//! ```
//!
//! The options are curl's, spelled as curl spells them (`fetch --help`
//! lists them by group, `fetch -h` the common ones). What differs from
//! curl, or is fetch's own:
//!
//! - Redirects are followed by default (at most 8, `--max-redirs N`); `-L`
//!   is accepted and changes nothing, `--no-location` turns following off.
//! - gzip and deflate are asked for and decoded by default: `--compressed`
//!   is accepted and changes nothing, `--no-gzip` turns it off.
//! - The body goes to stdout as raw bytes, or into FILE with `-o FILE`
//!   (streamed there by the library's `download_file`; `-o -` is stdout;
//!   one URL only). `-O` (`--remote-name`) saves each body under its URL's
//!   file name (the last path segment, as it is in the URL) in the current
//!   directory, or in DIR with `--output-dir DIR` (which implies `-O`; DIR
//!   is created). A URL without a file name, or two URLs with the same one,
//!   are usage errors.
//! - Several URLs run one after the other, as curl does (one `HttpRequest`,
//!   so a connection to the same origin is reused); with `-Z`
//!   (`--parallel`) they run at once through one `RequestPool`, at most
//!   `--parallel-max N` (default 50) connections at a time, in all and to
//!   one origin; the others wait in its queue.
//! - The body: `-d`/`--data`, `--data-binary`, `--data-raw` and
//!   `--data-urlencode` as curl (`-d @FILE` drops CR and LF,
//!   `--data-binary @FILE` keeps every byte; several are joined with `&`;
//!   `application/x-www-form-urlencoded` unless a Content-Type header is
//!   given; POST). `--data-urlencode` takes curl's forms `content`,
//!   `=content`, `name=content`, `@file` and `name@file`, the content
//!   encoded as a form does (a space is `+`). With `-G` (`--get`) the same
//!   data goes into the query string instead, and the request is a GET.
//!   `--data-file PATH` (fetch's own) streams a file from disk as the
//!   body. `--json-body DATA` (curl's `--json`, whose name fetch keeps for
//!   its report) sends DATA or `@FILE` as it is with `Content-Type` and
//!   `Accept: application/json`. `-F name=value`, `-F name=@FILE` (with
//!   `;type=TYPE` and `;filename=NAME` as curl) and `-F name=<FILE` (the
//!   file's text as a value) build a `multipart/form-data` body whose files
//!   are streamed from disk. `@-` reads stdin. With several URLs each gets
//!   the same body.
//! - `-u USER:PASSWORD` with `--basic` (the default) or `--digest`;
//!   `-U USER:PASSWORD` (`--proxy-user`: Basic, to the proxy). A `-u`
//!   without a colon is a usage error (curl would prompt for the password).
//!   As with curl, a URL's `user:password@` are the credentials when no
//!   `-u` is given (`-u` wins): sent as Basic, or with `--digest` taken
//!   out of the URL (percent-decoded) to answer the Digest challenge.
//! - `-b 'n=v; n2=v2'` sends those cookies; `-b FILE` reads a cookie file
//!   (Netscape's format, as curl writes it, or the library's JSON) into a
//!   jar; a FILE that does not exist starts an empty jar, as with curl.
//!   `-c FILE` writes the jar in Netscape's format after every transfer
//!   ended. `-b` and `-c` share one jar, which every transfer reads and
//!   fills (a `Set-Cookie` on a redirect applies to the next hop).
//! - `--retry N` retries transient failures (connection failures, 408,
//!   429, 500, 502, 503, 504; idempotent methods only, or when nothing was
//!   sent) with an exponential backoff from 1 s (equal jitter), honouring
//!   `Retry-After`; `--retry-delay SECS` sets the first delay (later ones
//!   double: curl waits SECS each time); `--retry-max-time SECS` is the
//!   deadline of each transfer, retries included (as `-m`: the earlier of
//!   the two wins), and the longest wait between two tries (a longer
//!   `Retry-After` makes that response the result). No retry budget:
//!   every transfer may use its N retries.
//! - `-f` (`--fail`): a status of 400 or more prints nothing of the body
//!   (a file it would have gone to is not written: the body is downloaded
//!   into a temporary file beside it, renamed on success) and exits 22.
//! - `-I` (`--head`) sends HEAD and prints the response head; `-i`
//!   (`--include`) prints the head before the body. The head always goes
//!   to stdout (with `-o`/`-O` too, while the body goes to the file), as
//!   received: the status line (version, code, reason phrase) and the
//!   fields in order.
//! - `-C -` (`--continue-at -`) resumes a partial `-o`/`-O` file: `Range`
//!   from its size, with `If-Range` the validator (strong ETag, else
//!   Last-Modified) of the response its bytes came from, which the library
//!   keeps in `FILE.resume` beside it until the download completes (so a
//!   killed fetch resumes right); without that note the `Range` goes alone,
//!   as curl's. Only `-` is supported, not an offset.
//! - `--paginate` follows each response's `Link: <...>; rel="next"`,
//!   writing each page's body in turn (with `-i`, each page's head before
//!   it); `--page-limit N` stops after N pages. Not with `-Z`; no progress
//!   bar.
//! - `--limit-rate RATE`: at most RATE bytes per second read, with curl's
//!   suffixes `k`, `M`, `G` (powers of 1024; a fraction is allowed: `1.5M`).
//! - `-m SECS` (`--max-time`, also spelled `--timeout`) is one deadline for
//!   the whole transfer; `--connect-timeout SECS`.
//! - `-x URL` (`--proxy`): an `http://[user:password@]host:port` proxy for
//!   both http (absolute-form) and https (CONNECT tunnel) URLs; its
//!   `user:password` (percent-decoded) go to the proxy as
//!   `Proxy-Authorization: Basic`, unless `-U` is given (which wins, as
//!   with curl). Without `-x` the proxy comes from the environment
//!   (`http_proxy`, `https_proxy`, `all_proxy`, `no_proxy`), as with curl;
//!   `--noproxy '*'` ignores it (only `*` is supported, not a host list).
//! - `--cacert PEM` trusts the CA certificates in PEM instead of the
//!   built-in roots; `-k` (`--insecure`) skips certificate verification.
//! - `--max-filesize BYTES` (also spelled `--limit`) fails a transfer
//!   whose body is larger (counted after decoding).
//! - `-s` (`--silent`) shows no progress bar and no error message; `-S`
//!   (`--show-error`) brings the messages back. `-v` (`--verbose`) tells on
//!   stderr what is sent (`>`: the method, the URL and the fields given;
//!   the library adds its own, such as `Accept-Encoding`), what came back
//!   (`<`: the head) and how (`*`: tries, redirects, settings).
//! - `--json` prints one JSON line per transfer instead of the body, as
//!   each completes: `result`, `reason`, `response_code`, `headers`
//!   (`[[name, value], ...]`), `body_bytes`, `body_sha256` (of the decoded
//!   body; of the file's contents when saved to a file), `wire_bytes`,
//!   `seconds` (from the start of the transfer; with `-Z`, from when it
//!   was queued), `redirects`, `url` (the final URL), `request_url` (the URL
//!   as given, less the userinfo `--digest` took), `file` (where the body
//!   was saved, or `null`), `attempts` (tries: 1 when no retry happened),
//!   `pages` (with `--paginate` the pages fetched, else 1) and `cookies`
//!   (the `Set-Cookie` cookies of the final response, `[[name, value],
//!   ...]`). With `--paginate` the line describes the last page, with
//!   `body_bytes`, `body_sha256`, `wire_bytes`, `redirects` and `attempts`
//!   over all the pages.
//!
//! On a terminal, stderr shows a progress bar for a long download (a body
//! over 1 MiB, or one still running after 0.5 s); with `-Z`, one line per
//! running transfer (indicatif's `MultiProgress`), and a line for each that
//! ends.
//!
//! Exit status: 0 when every response arrived (`Success`, whatever the
//! status code, as curl without `-f`), 1 when any transfer ended with
//! another result, 22 (curl's `CURLE_HTTP_RETURNED_ERROR`) when none did but
//! `-f` met a status of 400 or more, 2 for usage errors (and a request
//! refused at once).
//!
//! The loop is the one a tool (not a game) would write: `poll()`, and when
//! nothing finished, `wait(Some(100 ms))`, which sleeps on the sockets.

use std::collections::{HashMap, HashSet};
use std::ffi::OsString;
use std::fs::File;
use std::io::{self, IsTerminal, Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use clap::error::ErrorKind;
use clap::{ArgAction, ArgMatches, CommandFactory, FromArgMatches, Parser};
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use pollhttp::web::{
    parse_field_lines, Auth, CookieJar, FieldLineErrorKind, Multipart, Pagination, Paginator,
    Request, RetryBudget, RetryPolicy, SharedCookieJar, WebError,
};
use pollhttp::{
    Completed, HttpRequest, PoolSettings, RequestBody, RequestId, RequestPool, RequestProgress,
    RequestResult, Settings, Status, TlsOptions,
};
use sha2::{Digest, Sha256};

/// The usage line, in the help and after a usage error.
const USAGE: &str = "fetch [options...] <URL>...";

/// `--help` and `-h`: curl's layout (the usage line, then the options by
/// group, one line each, the argument in caps).
const HELP_TEMPLATE: &str = "usage: {usage}\n{about}\n\n{all-args}{after-help}";

const AFTER_SHORT_HELP: &str = "This is not the full list: 'fetch --help' shows every option.";

const AFTER_LONG_HELP: &str = "\
Redirects are followed and gzip is decoded by default (-L and --compressed
change nothing). Exit status: 0 when every response arrived (any status
without -f), 1 when a transfer failed, 22 when -f met a status >= 400,
2 for a usage error or a request refused at once.";

/// The command line. The groups are flattened in; each field's id is its
/// name (`data_urlencode`...), which [`data_pieces`] uses to put the data
/// options back in the order they were given.
#[derive(Parser, Debug)]
#[command(
    name = "fetch",
    about = "fetch: a curl-like client on pollhttp's web layer",
    override_usage = USAGE,
    help_template = HELP_TEMPLATE,
    after_help = AFTER_SHORT_HELP,
    after_long_help = AFTER_LONG_HELP,
    disable_help_flag = true,
    disable_version_flag = true,
    max_term_width = 100
)]
struct Cli {
    /// The URLs: one after the other, at once with -Z
    #[arg(value_name = "URL", required = true)]
    urls: Vec<String>,
    #[command(flatten)]
    request: RequestArgs,
    #[command(flatten)]
    data: DataArgs,
    #[command(flatten)]
    auth: AuthArgs,
    #[command(flatten)]
    cookies: CookieArgs,
    #[command(flatten)]
    output: OutputArgs,
    #[command(flatten)]
    transfer: TransferArgs,
    #[command(flatten)]
    connection: ConnectionArgs,
    #[command(flatten)]
    help: HelpArgs,
}

#[derive(clap::Args, Debug)]
#[command(next_help_heading = "Request")]
struct RequestArgs {
    /// Request method (default GET; POST with a body, HEAD with -I)
    #[arg(short = 'X', long = "request", value_name = "METHOD")]
    method: Option<String>,
    /// Add a 'Name: value' header field (repeatable)
    #[arg(short = 'H', long = "header", value_name = "LINE", value_parser = header_line)]
    headers: Vec<String>,
    /// Put the -d/--data-urlencode data in the query string; GET
    #[arg(short = 'G', long = "get")]
    get: bool,
    /// Send HEAD and print the response head
    #[arg(short = 'I', long = "head")]
    head: bool,
    /// The User-Agent to send
    #[arg(short = 'A', long = "user-agent", value_name = "NAME")]
    user_agent: Option<String>,
    /// The Referer to send
    #[arg(
        short = 'e',
        long = "referer",
        value_name = "URL",
        hide_short_help = true
    )]
    referer: Option<String>,
    /// Follow redirects (the default: accepted for curl's sake)
    #[arg(short = 'L', long = "location", overrides_with = "no_location")]
    location: bool,
    /// Do not follow redirects: a 3xx is the response
    #[arg(long = "no-location", hide_short_help = true)]
    no_location: bool,
    /// Follow at most N redirects (default 8; alias --max-redirects)
    #[arg(
        long = "max-redirs",
        alias = "max-redirects",
        value_name = "N",
        hide_short_help = true
    )]
    max_redirs: Option<u32>,
}

#[derive(clap::Args, Debug)]
#[command(next_help_heading = "Data")]
struct DataArgs {
    /// POST data; @FILE reads it (CR and LF dropped)
    #[arg(short = 'd', long = "data", value_name = "DATA")]
    data: Vec<String>,
    /// POST data; @FILE reads it byte for byte
    #[arg(long = "data-binary", value_name = "DATA", hide_short_help = true)]
    data_binary: Vec<String>,
    /// POST data, '@' not special
    #[arg(long = "data-raw", value_name = "DATA", hide_short_help = true)]
    data_raw: Vec<String>,
    /// POST data URL-encoded: [name]=TEXT, [name]@FILE
    #[arg(long = "data-urlencode", value_name = "DATA")]
    data_urlencode: Vec<String>,
    /// Stream this file from disk as the body
    #[arg(long = "data-file", value_name = "PATH", hide_short_help = true)]
    data_file: Option<PathBuf>,
    /// JSON body (DATA or @FILE), JSON Content-Type and Accept
    #[arg(long = "json-body", value_name = "DATA")]
    json_body: Option<String>,
    /// Multipart part: name=TEXT, name=@FILE[;type=T][;filename=F]
    #[arg(short = 'F', long = "form", value_name = "NAME=CONTENT", value_parser = form_part)]
    form: Vec<FormPart>,
}

#[derive(clap::Args, Debug)]
#[command(next_help_heading = "Authentication")]
struct AuthArgs {
    /// Server user and password
    #[arg(short = 'u', long = "user", value_name = "USER:PASSWORD", value_parser = user_password)]
    user: Option<(String, String)>,
    /// Use HTTP Basic authentication (the default)
    #[arg(long = "basic", overrides_with = "digest", hide_short_help = true)]
    basic: bool,
    /// Use HTTP Digest authentication
    #[arg(long = "digest", overrides_with = "basic")]
    digest: bool,
    /// Proxy user and password (Basic; wins over -x's user:password@)
    #[arg(
        short = 'U',
        long = "proxy-user",
        value_name = "USER:PASSWORD",
        value_parser = user_password,
        hide_short_help = true
    )]
    proxy_user: Option<(String, String)>,
}

#[derive(clap::Args, Debug)]
#[command(next_help_heading = "Cookies")]
struct CookieArgs {
    /// Send cookies from 'n=v; n2=v2', or read them from FILE
    #[arg(short = 'b', long = "cookie", value_name = "DATA|FILE", value_parser = cookie_source)]
    cookie: Vec<CookieSource>,
    /// Write every cookie to FILE (Netscape format) at the end
    #[arg(short = 'c', long = "cookie-jar", value_name = "FILE")]
    cookie_jar: Option<PathBuf>,
}

#[derive(clap::Args, Debug)]
#[command(next_help_heading = "Output")]
struct OutputArgs {
    /// Write the body to FILE instead of stdout ('-': stdout)
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    output: Option<PathBuf>,
    /// Save each body under its URL's file name
    #[arg(short = 'O', long = "remote-name")]
    remote_name: bool,
    /// Save the -O files in DIR (implies -O)
    #[arg(long = "output-dir", value_name = "DIR")]
    output_dir: Option<PathBuf>,
    /// Resume a partial -o/-O file (OFFSET '-' only: its size)
    #[arg(short = 'C', long = "continue-at", value_name = "OFFSET", value_parser = continue_at)]
    continue_at: Option<String>,
    /// Print the response head before the body
    #[arg(short = 'i', long = "include")]
    include: bool,
    /// A status >= 400 prints no body and exits 22
    #[arg(short = 'f', long = "fail")]
    fail: bool,
    /// No progress bar, no error messages
    #[arg(short = 's', long = "silent")]
    silent: bool,
    /// With -s, still print error messages
    #[arg(short = 'S', long = "show-error", hide_short_help = true)]
    show_error: bool,
    /// Tell on stderr what is sent and what came back
    #[arg(short = 'v', long = "verbose")]
    verbose: bool,
    /// Print one JSON line per transfer instead of the body
    #[arg(long = "json")]
    json: bool,
}

#[derive(clap::Args, Debug)]
#[command(next_help_heading = "Transfer")]
struct TransferArgs {
    /// Run the URLs at once through one RequestPool
    #[arg(short = 'Z', long = "parallel")]
    parallel: bool,
    /// With -Z, at most N connections at a time (default 50)
    #[arg(
        long = "parallel-max",
        value_name = "N",
        default_value_t = 50,
        hide_default_value = true,
        value_parser = clap::value_parser!(u32).range(1..),
        hide_short_help = true
    )]
    parallel_max: u32,
    /// Follow Link rel="next" pages, each body in turn
    #[arg(long = "paginate")]
    paginate: bool,
    /// With --paginate, at most N pages
    #[arg(
        long = "page-limit",
        value_name = "N",
        requires = "paginate",
        value_parser = clap::value_parser!(u32).range(1..),
        hide_short_help = true
    )]
    page_limit: Option<u32>,
    /// Retry a transient failure up to N times
    #[arg(long = "retry", value_name = "N")]
    retry: Option<u32>,
    /// First wait before a retry (default 1; then doubled)
    #[arg(long = "retry-delay", value_name = "SECS", value_parser = seconds, hide_short_help = true)]
    retry_delay: Option<Duration>,
    /// Deadline of a transfer with its retries; longest wait
    #[arg(long = "retry-max-time", value_name = "SECS", value_parser = seconds, hide_short_help = true)]
    retry_max_time: Option<Duration>,
    /// Read at most RATE bytes per second (suffixes k, M, G)
    #[arg(long = "limit-rate", value_name = "RATE", value_parser = rate)]
    limit_rate: Option<u64>,
    /// Fail when the body is larger (alias --limit)
    #[arg(
        long = "max-filesize",
        alias = "limit",
        value_name = "BYTES",
        hide_short_help = true
    )]
    max_filesize: Option<u64>,
    /// Do not ask for (nor decode) gzip and deflate
    #[arg(long = "no-gzip", hide_short_help = true)]
    no_gzip: bool,
    /// Ask for gzip and deflate (the default: accepted for curl's sake)
    #[arg(long = "compressed", hide_short_help = true)]
    compressed: bool,
}

#[derive(clap::Args, Debug)]
#[command(next_help_heading = "Connection")]
struct ConnectionArgs {
    /// Longest time a transfer may take (alias --timeout)
    #[arg(
        short = 'm',
        long = "max-time",
        alias = "timeout",
        value_name = "SECS",
        value_parser = seconds
    )]
    max_time: Option<Duration>,
    /// Longest time connecting may take (default 30)
    #[arg(long = "connect-timeout", value_name = "SECS", value_parser = seconds, hide_short_help = true)]
    connect_timeout: Option<Duration>,
    /// An http://[user:password@]host:port proxy for http and https URLs
    #[arg(short = 'x', long = "proxy", value_name = "URL", value_parser = proxy)]
    proxy: Option<ProxyArg>,
    /// No proxy for LIST: only '*' (no env proxy at all)
    #[arg(long = "noproxy", value_name = "LIST", value_parser = no_proxy, hide_short_help = true)]
    noproxy: Option<String>,
    /// Trust the CA certificate(s) in FILE (PEM)
    #[arg(long = "cacert", value_name = "FILE", hide_short_help = true)]
    cacert: Option<PathBuf>,
    /// Do not verify the server certificate
    #[arg(short = 'k', long = "insecure")]
    insecure: bool,
}

#[derive(clap::Args, Debug)]
#[command(next_help_heading = "Help")]
struct HelpArgs {
    /// The common options
    #[arg(short = 'h', action = ArgAction::HelpShort)]
    short_help: Option<bool>,
    /// Every option
    #[arg(long = "help", action = ArgAction::HelpLong)]
    long_help: Option<bool>,
}

// ------------------------------------------------------------ value parsers

/// `-H`: a `"Name: value"` line, checked now by the library's rules so a bad
/// one is a usage error with the reason (the builder checks again).
fn header_line(s: &str) -> Result<String, String> {
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

fn user_password(s: &str) -> Result<(String, String), String> {
    match s.split_once(':') {
        Some((user, password)) => Ok((user.to_string(), password.to_string())),
        None => Err("expected USER:PASSWORD (fetch does not prompt for a password)".into()),
    }
}

/// Seconds, fractions allowed.
fn seconds(s: &str) -> Result<Duration, String> {
    let secs: f64 = s
        .parse()
        .map_err(|_| "not a number of seconds".to_string())?;
    Duration::try_from_secs_f64(secs).map_err(|_| "not a number of seconds >= 0".to_string())
}

/// `--limit-rate`: bytes per second, with curl's suffixes k, M, G (powers of
/// 1024, either case). 0 means no limit, as with curl.
fn rate(s: &str) -> Result<u64, String> {
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

/// `-C`: only `-` (from the file's size).
fn continue_at(s: &str) -> Result<String, String> {
    if s == "-" {
        Ok(s.to_string())
    } else {
        Err("only '-C -' is supported (resume from the file's size), not an offset".into())
    }
}

fn no_proxy(s: &str) -> Result<String, String> {
    if s == "*" {
        Ok(s.to_string())
    } else {
        Err("only '--noproxy *' is supported (no host list)".into())
    }
}

/// `-x`: the proxy, and the credentials of its URL's userinfo.
#[derive(Debug, Clone)]
struct ProxyArg {
    host: String,
    port: u16,
    /// `user:password@` (percent-decoded): `Proxy-Authorization: Basic`,
    /// unless `-U`/`--proxy-user` is given (as curl).
    credentials: Option<(String, String)>,
}

/// `http://[user[:password]@]host:port`, `host:port` or `host` (port 1080,
/// as curl).
fn proxy(s: &str) -> Result<ProxyArg, String> {
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
fn userinfo(u: &url::Url) -> Option<(String, String)> {
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
fn url_credentials(url: &str) -> Option<(String, (String, String))> {
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
enum CookieSource {
    Header(String),
    File(PathBuf),
}

fn cookie_source(s: &str) -> Result<CookieSource, String> {
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
struct FormPart {
    name: String,
    content: FormContent,
    content_type: Option<String>,
    filename: Option<String>,
}

#[derive(Debug, Clone)]
enum FormContent {
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
fn form_part(s: &str) -> Result<FormPart, String> {
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
    if matches!(content, FormContent::Text(_) | FormContent::FileText(_))
        && content_type.is_some()
        && filename.is_none()
    {
        return Err("';type=' on a text part needs ';filename=' too (pollhttp's text parts carry no Content-Type)".into());
    }
    Ok(FormPart {
        name: name.to_string(),
        content,
        content_type,
        filename,
    })
}

// ------------------------------------------------------------ main

fn main() -> ExitCode {
    let (cli, matches) = match parse(std::env::args_os()) {
        Ok(parsed) => parsed,
        Err(code) => return code,
    };
    let plan = match Plan::new(&cli, &matches) {
        Ok(plan) => plan,
        Err(e) => {
            usage_error(&e);
            return ExitCode::from(2);
        }
    };
    match run(&plan) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("fetch: {e}");
            ExitCode::from(2)
        }
    }
}

/// The command line, or the exit code: 0 after `-h`/`--help`, 2 after a
/// usage error (said on stderr).
fn parse(args: impl IntoIterator<Item = OsString>) -> Result<(Cli, ArgMatches), ExitCode> {
    let args: Vec<OsString> = args.into_iter().collect();
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

fn usage_error(message: &str) {
    eprintln!(
        "fetch: {message}\nusage: {USAGE}\ntry 'fetch --help' for every option, 'fetch -h' for the common ones"
    );
}

// ------------------------------------------------------------ the plan

/// Everything the transfers share, worked out (and checked) once.
struct Plan {
    method: String,
    /// `-G`: the data, as a query string.
    query: Option<String>,
    /// `-H` lines, as given.
    header_lines: Vec<String>,
    /// Fields fetch adds (Content-Type, Accept, Cookie, User-Agent,
    /// Referer), each only when no `-H` gives it.
    fields: Vec<(String, String)>,
    payload: Payload,
    settings: Settings,
    jar: Option<SharedCookieJar>,
    jar_out: Option<PathBuf>,
    transfers: Vec<Transfer>,
    parallel: Option<usize>,
    /// `--paginate`: the page limit (-1: none).
    paginate: Option<i64>,
    json: bool,
    fail: bool,
    /// Print the response head (`-i`, `-I`).
    show_head: bool,
    verbose: bool,
    /// Error messages on stderr (not with `-s` alone).
    errors: bool,
    /// Progress bars on a terminal (not with `-s`).
    progress: bool,
    several: bool,
}

/// The body every transfer sends.
enum Payload {
    None,
    /// In memory.
    Bytes(Bytes),
    /// `--data-file`: streamed from disk.
    File(PathBuf),
    /// `-F`: built again for each transfer.
    Form(Vec<FormPart>),
}

impl Plan {
    fn new(cli: &Cli, matches: &ArgMatches) -> Result<Plan, String> {
        let r = &cli.request;
        let d = &cli.data;
        let o = &cli.output;
        let data = data_pieces(cli, matches)?;
        let get = r.get;
        let form_body = data.is_some() && !get;
        let bodies = [
            form_body,
            d.data_file.is_some(),
            d.json_body.is_some(),
            !d.form.is_empty(),
        ];
        if bodies.iter().filter(|b| **b).count() > 1 {
            return Err(
                "only one of -d/--data*, --data-file, --json-body and -F can give the body".into(),
            );
        }
        if get && (d.data_file.is_some() || d.json_body.is_some() || !d.form.is_empty()) {
            return Err("-G puts -d/--data-urlencode data in the query: it takes no --data-file, --json-body or -F".into());
        }
        let has_body = bodies.iter().any(|b| *b);
        if r.head && has_body && r.method.is_none() {
            return Err(
                "-I sends HEAD, which has no body (put -d data in the query with -G)".into(),
            );
        }
        let method = match &r.method {
            Some(m) => m.clone(),
            None if r.head => "HEAD".into(),
            None if get => "GET".into(),
            None if has_body => "POST".into(),
            None => "GET".into(),
        };
        let given = |name: &str| {
            r.headers.iter().any(|line| {
                line.split_once(':')
                    .is_some_and(|(n, _)| n.trim().eq_ignore_ascii_case(name))
            })
        };
        let mut fields: Vec<(String, String)> = Vec::new();
        let mut add = |name: &str, value: String| {
            if !given(name) {
                fields.push((name.to_string(), value));
            }
        };
        let (query, payload) = match data {
            Some(data) if get => (
                Some(String::from_utf8_lossy(&data).into_owned()),
                Payload::None,
            ),
            Some(data) => (None, Payload::Bytes(Bytes::from(data))),
            None => (None, Payload::None),
        };
        let payload = if let Some(path) = &d.data_file {
            Payload::File(path.clone())
        } else if let Some(json) = &d.json_body {
            add("Content-Type", "application/json".into());
            add("Accept", "application/json".into());
            Payload::Bytes(Bytes::from(read_data(json, false)?))
        } else if !d.form.is_empty() {
            // Checked now (a bad part is a usage error), built per transfer.
            build_form(&d.form)?;
            Payload::Form(d.form.clone())
        } else {
            payload
        };
        if form_body || d.data_file.is_some() {
            add("Content-Type", "application/x-www-form-urlencoded".into());
        }
        let cookie_strings: Vec<&str> = cli
            .cookies
            .cookie
            .iter()
            .filter_map(|c| match c {
                CookieSource::Header(h) => Some(h.as_str()),
                CookieSource::File(_) => None,
            })
            .collect();
        if !cookie_strings.is_empty() {
            add("Cookie", cookie_strings.join("; "));
        }
        if let Some(agent) = &r.user_agent {
            add("User-Agent", agent.clone());
        }
        if let Some(referer) = &r.referer {
            add("Referer", referer.clone());
        }

        let jar = cookie_jar(cli)?;
        let mut settings = settings(cli)?;
        settings.cookie_jar = jar.clone().map(|j| j as Arc<dyn pollhttp::CookieStore>);

        if cli.transfer.paginate && cli.transfer.parallel {
            return Err("--paginate runs one page after the other: not with -Z".into());
        }
        let remote_name = o.remote_name || o.output_dir.is_some();
        let output = o.output.clone().filter(|p| p.as_os_str() != "-");
        if output.is_some() && remote_name {
            return Err("-o and -O/--output-dir do not go together".into());
        }
        if output.is_some() && cli.urls.len() > 1 {
            return Err("-o FILE takes one URL; use -O or --output-dir DIR for several".into());
        }
        if o.continue_at.is_some() && output.is_none() && !remote_name {
            return Err("-C - resumes a file: give -o FILE or -O".into());
        }
        if o.continue_at.is_some() && cli.transfer.paginate {
            return Err("-C - and --paginate do not go together".into());
        }
        let paginate = cli
            .transfer
            .paginate
            .then(|| cli.transfer.page_limit.map_or(-1, i64::from));
        let temporary = o.fail && o.continue_at.is_none() && paginate.is_none();
        let transfers = transfers(cli, output, remote_name, temporary)?;
        if let Some(dir) = &o.output_dir {
            std::fs::create_dir_all(dir)
                .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        }
        let plan = Plan {
            method,
            query,
            header_lines: r.headers.clone(),
            fields,
            payload,
            settings,
            jar,
            jar_out: cli.cookies.cookie_jar.clone(),
            transfers,
            parallel: cli
                .transfer
                .parallel
                .then_some(cli.transfer.parallel_max as usize),
            paginate,
            json: o.json,
            fail: o.fail,
            show_head: o.include || r.head,
            verbose: o.verbose,
            errors: !o.silent || o.show_error,
            progress: !o.silent && io::stderr().is_terminal(),
            several: cli.urls.len() > 1,
        };
        if plan.verbose {
            plan.tell_settings();
        }
        Ok(plan)
    }

    /// The builder of one transfer.
    fn request(&self, t: &Transfer) -> Result<Request, String> {
        let settings = Settings {
            body: pollhttp::BodySettings {
                download_file: t.download.clone(),
                ..self.settings.body.clone()
            },
            auth: t.auth.clone().or_else(|| self.settings.auth.clone()),
            ..self.settings.clone()
        };
        let mut r = Request::new(&self.method, &t.url).settings(settings);
        if let Some(q) = &self.query {
            r = r.query_raw(q);
        }
        let lines: Vec<&str> = self.header_lines.iter().map(String::as_str).collect();
        r = r.header_lines(&lines);
        for (name, value) in &self.fields {
            r = r.header(name, value);
        }
        let r = match &self.payload {
            Payload::None => r,
            Payload::Bytes(data) => r.body(RequestBody::Bytes(data.clone())),
            Payload::File(path) => r.body(RequestBody::File(path.clone())),
            Payload::Form(parts) => r.multipart(build_form(parts)?),
        };
        Ok(r)
    }

    /// `-f` and a status >= 400.
    fn fail_status(&self, done: &Completed) -> bool {
        self.fail && done.result == RequestResult::Success && done.response_code() >= 400
    }

    /// `-v`: the settings that shape every transfer.
    fn tell_settings(&self) {
        let s = &self.settings;
        let mut notes = Vec::new();
        if let Some(rate) = s.body.max_recv_speed {
            notes.push(format!("rate limit {rate} bytes/s"));
        }
        if let Some(p) = &s.retry {
            notes.push(format!(
                "retry {} times, first wait {:?}, longest {:?}",
                p.retries, p.base_delay, p.max_delay
            ));
        }
        if let Some(t) = s.timeouts.total {
            notes.push(format!("deadline {t:?}"));
        }
        match &s.auth {
            Some(Auth::Basic { user, .. }) => notes.push(format!("Basic auth as {user:?}")),
            Some(Auth::Digest { user, .. }) => notes.push(format!("Digest auth as {user:?}")),
            _ => {}
        }
        if !s.redirects.follow {
            notes.push("redirects not followed".into());
        } else {
            notes.push(format!("at most {} redirects", s.redirects.max));
        }
        if s.cookie_jar.is_some() {
            notes.push("cookie jar on".into());
        }
        if let Some(n) = self.paginate {
            notes.push(format!("paginate, page limit {n}"));
        }
        for n in notes {
            eprintln!("* {n}");
        }
    }

    /// `-v`: what is about to be sent.
    fn tell_request(&self, t: &Transfer) {
        if !self.verbose {
            return;
        }
        if let Some(Auth::Digest { user, .. }) = &t.auth {
            eprintln!("* Digest auth as {user:?} (the URL's user)");
        }
        eprintln!("> {} {}", self.method, t.url);
        if let Some(q) = &self.query {
            eprintln!("> (query) {q}");
        }
        for line in &self.header_lines {
            eprintln!("> {line}");
        }
        for (k, v) in &self.fields {
            eprintln!("> {k}: {v}");
        }
    }
}

/// The data options in the order given, each made into bytes as curl does,
/// joined with `&`; `None` when there are none.
fn data_pieces(cli: &Cli, m: &ArgMatches) -> Result<Option<Vec<u8>>, String> {
    let d = &cli.data;
    let mut pieces: Vec<(usize, Vec<u8>)> = Vec::new();
    let mut collect =
        |id: &str, values: &[String], make: &dyn Fn(&str) -> Result<Vec<u8>, String>| {
            let indices: Vec<usize> = m.indices_of(id).map(Iterator::collect).unwrap_or_default();
            for (i, v) in values.iter().enumerate() {
                pieces.push((indices.get(i).copied().unwrap_or(usize::MAX), make(v)?));
            }
            Ok::<(), String>(())
        };
    collect("data", &d.data, &|v| read_data(v, true))?;
    collect("data_binary", &d.data_binary, &|v| read_data(v, false))?;
    collect("data_raw", &d.data_raw, &|v| Ok(v.as_bytes().to_vec()))?;
    collect("data_urlencode", &d.data_urlencode, &url_encoded)?;
    if pieces.is_empty() {
        return Ok(None);
    }
    pieces.sort_by_key(|(i, _)| *i);
    let mut out = Vec::new();
    for (n, (_, piece)) in pieces.into_iter().enumerate() {
        if n > 0 {
            out.push(b'&');
        }
        out.extend_from_slice(&piece);
    }
    Ok(Some(out))
}

/// DATA, or the contents of FILE for `@FILE` (`@-`: stdin); `-d` drops CR
/// and LF from a file, as curl does.
fn read_data(v: &str, strip_newlines: bool) -> Result<Vec<u8>, String> {
    let Some(path) = v.strip_prefix('@') else {
        return Ok(v.as_bytes().to_vec());
    };
    let mut data = read_source(path)?;
    if strip_newlines {
        data.retain(|b| *b != b'\r' && *b != b'\n');
    }
    Ok(data)
}

/// A file's bytes; `-` is stdin.
fn read_source(path: &str) -> Result<Vec<u8>, String> {
    if path == "-" {
        let mut data = Vec::new();
        io::stdin()
            .read_to_end(&mut data)
            .map_err(|e| format!("cannot read stdin: {e}"))?;
        Ok(data)
    } else {
        std::fs::read(path).map_err(|e| format!("cannot read {path}: {e}"))
    }
}

/// `--data-urlencode`, curl's rules: a `=` makes `name=content` (an empty
/// name: the content alone); else a `@` makes `name@file` (the file's
/// contents); else the whole is the content. The content is encoded as a
/// form value (`application/x-www-form-urlencoded`: a space is `+`).
fn url_encoded(v: &str) -> Result<Vec<u8>, String> {
    let (name, content) = if let Some((name, text)) = v.split_once('=') {
        (name, text.as_bytes().to_vec())
    } else if let Some((name, path)) = v.split_once('@') {
        (name, read_source(path)?)
    } else {
        ("", v.as_bytes().to_vec())
    };
    let encoded: String = form_urlencoded::byte_serialize(&content).collect();
    Ok(if name.is_empty() {
        encoded.into_bytes()
    } else {
        format!("{name}={encoded}").into_bytes()
    })
}

/// The multipart body of the `-F` parts.
fn build_form(parts: &[FormPart]) -> Result<Multipart, String> {
    let mut form = Multipart::new();
    for p in parts {
        let added = if let FormContent::File(path) = &p.content {
            if !path.is_file() {
                return Err(format!("-F {}: cannot read {}", p.name, path.display()));
            }
            if p.filename.is_none() && p.content_type.is_none() {
                form.file(&p.name, path)
            } else {
                let filename = match &p.filename {
                    Some(f) => f.clone(),
                    None => path
                        .file_name()
                        .map(|n| n.to_string_lossy().into_owned())
                        .unwrap_or_default(),
                };
                let media_type = match &p.content_type {
                    Some(t) => t.clone(),
                    None => pollhttp::web::guess_media_type(&filename).to_string(),
                };
                form.file_with(&p.name, path, &filename, &media_type)
            }
        } else {
            let text = match &p.content {
                FormContent::FileText(path) => file_text(path)?,
                FormContent::Text(text) => text.clone(),
                FormContent::File(_) => String::new(),
            };
            match &p.filename {
                None => form.text(&p.name, text),
                Some(filename) => {
                    let media_type = p.content_type.as_deref().unwrap_or("text/plain");
                    form.bytes(&p.name, filename, media_type, Bytes::from(text))
                }
            }
        };
        added.map_err(|e| format!("-F {}: {e}", p.name))?;
    }
    Ok(form)
}

fn file_text(path: &Path) -> Result<String, String> {
    let data = std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    String::from_utf8(data).map_err(|_| {
        format!(
            "{} is not UTF-8 text: send it with name=@FILE",
            path.display()
        )
    })
}

/// The jar `-b FILE` and `-c FILE` share, when either is given.
fn cookie_jar(cli: &Cli) -> Result<Option<SharedCookieJar>, String> {
    let files: Vec<&PathBuf> = cli
        .cookies
        .cookie
        .iter()
        .filter_map(|c| match c {
            CookieSource::File(p) => Some(p),
            CookieSource::Header(_) => None,
        })
        .collect();
    if files.is_empty() && cli.cookies.cookie_jar.is_none() {
        return Ok(None);
    }
    if files.len() > 1 {
        return Err("-b FILE: one cookie file only".into());
    }
    let jar = match files.first() {
        // As with curl, a file that is not there starts an empty jar.
        Some(path) if path.exists() => {
            let f = File::open(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
            CookieJar::load_any(io::BufReader::new(f))
                .map_err(|e| format!("-b {}: {e}", path.display()))?
        }
        _ => CookieJar::new(),
    };
    Ok(Some(Arc::new(Mutex::new(jar))))
}

/// The per-request settings every transfer shares (its file aside).
fn settings(cli: &Cli) -> Result<Settings, String> {
    let t = &cli.transfer;
    let c = &cli.connection;
    let mut s = Settings::default();
    if let Some(n) = cli.request.max_redirs {
        s.redirects.max = n;
    }
    s.redirects.follow = !cli.request.no_location;
    s.timeouts.total = c.max_time;
    if let Some(d) = c.connect_timeout {
        s.timeouts.connect = d;
    }
    s.body.accept_gzip = !t.no_gzip;
    s.body.size_limit = t.max_filesize;
    s.body.max_recv_speed = t.limit_rate.filter(|r| *r > 0);
    s.body.resume = cli.output.continue_at.is_some();
    // A tool has no frame to protect: bigger reads mean fewer syscalls.
    s.body.download_chunk_size = 256 * 1024;
    if let Some(p) = &c.proxy {
        s.proxy.http = Some((p.host.clone(), p.port));
        s.proxy.https = Some((p.host.clone(), p.port));
    }
    s.proxy.from_env = c.proxy.is_none() && c.noproxy.is_none();
    // --proxy-user wins over the -x URL's userinfo (curl's rule); an
    // environment proxy's userinfo the library takes itself.
    s.proxy.auth = cli
        .auth
        .proxy_user
        .clone()
        .or_else(|| c.proxy.as_ref().and_then(|p| p.credentials.clone()));
    s.auth = cli.auth.user.as_ref().map(|(user, password)| {
        if cli.auth.digest {
            Auth::digest(user, password)
        } else {
            Auth::basic(user, password)
        }
    });
    if let Some(n) = t.retry.filter(|n| *n > 0) {
        let mut policy = RetryPolicy::new(n).with_budget(RetryBudget::unlimited());
        if let Some(d) = t.retry_delay.filter(|d| !d.is_zero()) {
            policy.base_delay = d;
        }
        if let Some(max) = t.retry_max_time {
            policy.max_delay = policy.max_delay.min(max);
            s.timeouts.total = Some(s.timeouts.total.map_or(max, |m| m.min(max)));
        }
        s.retry = Some(policy);
    }
    let mut tls = match &c.cacert {
        Some(path) => {
            let pem =
                std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
            Some(
                TlsOptions::with_root_pem(&pem)
                    .map_err(|e| format!("bad --cacert {}: {e}", path.display()))?,
            )
        }
        None => None,
    };
    if c.insecure {
        tls = Some(tls.unwrap_or_default().dangerous_disable_verification());
    }
    s.tls = tls;
    Ok(s)
}

// ------------------------------------------------------------ transfers

/// One URL and where its body goes.
struct Transfer {
    url: String,
    /// `-o FILE`, or `-O`'s file: `None` for stdout.
    file: Option<PathBuf>,
    /// Where the library writes the body: `file`, or with `-f` a temporary
    /// file beside it (renamed to `file` unless the status is >= 400).
    /// `None` with `--paginate`, whose pages fetch writes itself.
    download: Option<PathBuf>,
    /// Short name for progress lines.
    label: String,
    /// `--digest` without `-u`: the credentials of the URL's userinfo
    /// (taken out of `url`), as if given with `-u`.
    auth: Option<Auth>,
}

fn transfers(
    cli: &Cli,
    output: Option<PathBuf>,
    remote_name: bool,
    temporary: bool,
) -> Result<Vec<Transfer>, String> {
    let mut names = HashSet::new();
    cli.urls
        .iter()
        .map(|url| {
            let file = if remote_name {
                let name = remote_file_name(url)?;
                if !names.insert(name.clone()) {
                    return Err(format!("two URLs would be saved as {name}"));
                }
                Some(match &cli.output.output_dir {
                    Some(dir) => dir.join(name),
                    None => PathBuf::from(name),
                })
            } else {
                output.clone()
            };
            let download = match &file {
                _ if cli.transfer.paginate => None,
                Some(f) if temporary => {
                    let name = f.file_name().map(|n| n.to_string_lossy().into_owned());
                    Some(f.with_file_name(format!(
                        ".{}.fetch-{}",
                        name.unwrap_or_default(),
                        std::process::id()
                    )))
                }
                other => other.clone(),
            };
            // curl takes a URL's userinfo as if given with -u (which wins
            // when given). The library sends it as Basic itself; for Digest
            // it becomes the settings' credentials, out of the URL so it is
            // not also sent as Basic.
            let (url, auth) = match url_credentials(url) {
                Some((bare, (user, password))) if cli.auth.digest && cli.auth.user.is_none() => {
                    (bare, Some(Auth::digest(&user, &password)))
                }
                _ => (url.clone(), None),
            };
            let label = match &file {
                Some(f) => f
                    .file_name()
                    .map_or_else(|| url.clone(), |n| n.to_string_lossy().into_owned()),
                None => url.clone(),
            };
            Ok(Transfer {
                url,
                file,
                download,
                label,
                auth,
            })
        })
        .collect()
}

/// The file name `-O` saves `url` under: its last path segment, as curl
/// takes it (not percent-decoded).
fn remote_file_name(url: &str) -> Result<String, String> {
    let full = if url.contains("://") {
        url.to_string()
    } else {
        format!("http://{url}")
    };
    let u = url::Url::parse(&full).map_err(|e| format!("bad URL {url:?}: {e}"))?;
    let name = u
        .path_segments()
        .and_then(|mut s| s.next_back())
        .unwrap_or("");
    if name.is_empty() || name == "." || name == ".." {
        return Err(format!("{url}: no file name in the URL to save it under"));
    }
    Ok(name.to_string())
}

/// What the exit status is made of.
#[derive(Default)]
struct Tally {
    /// A transfer did not complete (exit 1).
    failed: bool,
    /// `-f` met a status >= 400 (exit 22).
    http_error: bool,
}

fn run(plan: &Plan) -> Result<ExitCode, String> {
    let mut tally = Tally::default();
    if let Some(n) = plan.parallel {
        run_parallel(plan, n, &mut tally)?;
    } else {
        run_sequential(plan, &mut tally)?;
    }
    if let (Some(jar), Some(path)) = (&plan.jar, &plan.jar_out) {
        if let Err(e) = save_jar(jar, path) {
            if plan.errors {
                eprintln!("fetch: -c {}: {e}", path.display());
            }
            tally.failed = true;
        }
    }
    Ok(if tally.failed {
        ExitCode::from(1)
    } else if tally.http_error {
        ExitCode::from(22)
    } else {
        ExitCode::SUCCESS
    })
}

/// `-c FILE`: the jar in Netscape's format, written beside and renamed.
fn save_jar(jar: &SharedCookieJar, path: &Path) -> io::Result<()> {
    let jar = jar.lock().unwrap_or_else(|e| e.into_inner());
    let mut text = Vec::new();
    jar.save_netscape(&mut text)?;
    std::fs::write(path, text)
}

/// One transfer after another, on one `HttpRequest` (a kept connection
/// carries the next request to the same origin).
fn run_sequential(plan: &Plan, tally: &mut Tally) -> Result<(), String> {
    let mut req = HttpRequest::new();
    // A tool has no frame to protect: bytes only, 8 MiB per poll.
    req.set_poll_budget(pollhttp::PollBudget::new(8 << 20, None));
    for t in &plan.transfers {
        if let Some(limit) = plan.paginate {
            run_pages(plan, t, limit, tally)?;
            continue;
        }
        plan.tell_request(t);
        let start = Instant::now();
        plan.request(t)?
            .start(&mut req)
            .map_err(|e| format!("{}: {e}", t.url))?;
        let mut bar: Option<ProgressBar> = None;
        let done = loop {
            if let Some(done) = req.poll() {
                break done;
            }
            if plan.progress {
                update_progress(&mut bar, req.body_size(), req.downloaded_bytes(), start);
            }
            req.wait(Some(Duration::from_millis(100)));
        };
        if let Some(bar) = bar {
            bar.finish_and_clear();
        }
        let summary = Summary::of(&done, start.elapsed().as_secs_f64());
        finish(plan, t, &done, summary, None, tally)?;
    }
    Ok(())
}

/// `--paginate`: the pages of one URL, each body written in turn (to stdout
/// or the file), then one report for all.
fn run_pages(plan: &Plan, t: &Transfer, limit: i64, tally: &mut Tally) -> Result<(), String> {
    plan.tell_request(t);
    let start = Instant::now();
    let mut pages = Paginator::new(plan.request(t)?, Pagination::LinkNext).page_limit(limit);
    let mut out: Option<File> = None;
    let mut hasher = Sha256::new();
    let mut total = Summary::default();
    let mut last: Option<Completed> = None;
    loop {
        let page = match pages.poll() {
            Some(page) => page,
            None if pages.is_done() => break,
            None => {
                pages.wait(Some(Duration::from_millis(100)));
                continue;
            }
        };
        let page = match page {
            Ok(page) => page,
            Err(WebError::Refused(e)) => return Err(format!("{}: {e}", t.url)),
            Err(WebError::Failed(c)) | Err(WebError::Status(c)) => {
                total.add(&c);
                last = Some(*c);
                break;
            }
            Err(e) => return Err(format!("{}: {e}", t.url)),
        };
        total.add(&page);
        if plan.fail && page.response_code() >= 400 {
            last = Some(page);
            break;
        }
        hasher.update(&page.body);
        total.body_bytes += page.body.len() as u64;
        if plan.verbose {
            eprint!("{}", head_text(&page, "< "));
        }
        // The file gets every page (with --json too); stdout only without
        // --json.
        if let Some(path) = &t.file {
            let f = match &mut out {
                Some(f) => f,
                None => out.insert(
                    File::create(path)
                        .map_err(|e| format!("cannot create {}: {e}", path.display()))?,
                ),
            };
            f.write_all(&page.body)
                .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        }
        if !plan.json {
            if plan.show_head {
                write_stdout(head_text(&page, "").as_bytes(), None)?;
            }
            if t.file.is_none() {
                write_stdout(&page.body, None)?;
            }
        }
        last = Some(page);
    }
    let Some(done) = last else {
        return Ok(());
    };
    total.seconds = start.elapsed().as_secs_f64();
    total.pages = pages.pages();
    total.body_sha256 = Some(hex(&hasher.finalize()));
    total.body_written = true;
    finish(plan, t, &done, total, None, tally)
}

/// Every transfer at once through one `RequestPool`.
fn run_parallel(plan: &Plan, n: usize, tally: &mut Tally) -> Result<(), String> {
    let mut pool = RequestPool::with_settings(PoolSettings {
        max_connections: n,
        max_connections_per_origin: n,
        max_idle: n,
        max_idle_per_origin: n,
        // A tool has no frame to protect.
        poll_budget: pollhttp::PollBudget::new(64 << 20, Some(Duration::from_millis(50))),
        ..PoolSettings::default()
    })
    .map_err(|e| format!("cannot start a pool: {e}"))?;
    let start = Instant::now();
    let mut running: HashMap<RequestId, usize> = HashMap::new();
    for (i, t) in plan.transfers.iter().enumerate() {
        plan.tell_request(t);
        let id = plan
            .request(t)?
            .submit(&mut pool)
            .map_err(|e| format!("{}: {e}", t.url))?;
        running.insert(id, i);
    }
    let mut bars = Bars::new(plan.progress);
    while !running.is_empty() {
        pool.poll();
        while let Some((id, done)) = pool.poll_completed() {
            let Some(i) = running.remove(&id) else {
                continue;
            };
            let t = &plan.transfers[i];
            bars.end(id, t, &done);
            let summary = Summary::of(&done, start.elapsed().as_secs_f64());
            finish(plan, t, &done, summary, bars.multi.as_ref(), tally)?;
        }
        for (&id, &i) in &running {
            if let Some(p) = pool.progress(id) {
                bars.update(id, &plan.transfers[i], p);
            }
        }
        if !running.is_empty() {
            pool.wait(Some(Duration::from_millis(100)));
        }
    }
    Ok(())
}

/// `-Z` on a terminal: a line per running transfer, and one for each that
/// ends.
struct Bars {
    multi: Option<MultiProgress>,
    bars: HashMap<RequestId, ProgressBar>,
}

impl Bars {
    fn new(on: bool) -> Bars {
        Bars {
            multi: on.then(|| MultiProgress::with_draw_target(ProgressDrawTarget::stderr())),
            bars: HashMap::new(),
        }
    }

    fn update(&mut self, id: RequestId, t: &Transfer, p: RequestProgress) {
        let Some(multi) = &self.multi else { return };
        // A transfer still waiting for a connection has no line yet.
        if p.status == Status::Disconnected && p.downloaded == 0 {
            return;
        }
        let style = |sized: bool| {
            let template = if sized {
                "{prefix:32} {bytes:>10}/{total_bytes:10} [{bar:30}] {bytes_per_sec:>12} {msg}"
            } else {
                "{prefix:32} {bytes:>10} {spinner} {bytes_per_sec:>12} {msg}"
            };
            ProgressStyle::with_template(template).map(|s| s.progress_chars("=> "))
        };
        let pb = self.bars.entry(id).or_insert_with(|| {
            let pb = multi.add(ProgressBar::no_length());
            if let Ok(s) = style(false) {
                pb.set_style(s);
            }
            pb.set_prefix(short(&t.label, 32));
            pb
        });
        // The length is known once the head arrives (and changes after a
        // redirect).
        if pb.length() != p.body_size {
            if let Ok(s) = style(p.body_size.is_some()) {
                pb.set_style(s);
            }
            match p.body_size {
                Some(n) => pb.set_length(n),
                None => pb.unset_length(),
            }
        }
        pb.set_message(format!("{:?}", p.status));
        pb.set_position(p.downloaded);
    }

    fn end(&mut self, id: RequestId, t: &Transfer, done: &Completed) {
        let Some(multi) = &self.multi else { return };
        if let Some(pb) = self.bars.remove(&id) {
            pb.finish_and_clear();
            multi.remove(&pb);
        }
        let what = if done.result == RequestResult::Success {
            format!(
                "HTTP {} {}",
                done.response_code(),
                human_bytes(done.body_bytes)
            )
        } else {
            format!("{}: {}", done.result, done.reason)
        };
        let _ = multi.println(format!("{} {what}", short(&t.label, 32)));
    }
}

fn short(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        return s.to_string();
    }
    let tail: String = s
        .chars()
        .rev()
        .take(n - 1)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    format!("…{tail}")
}

fn human_bytes(n: u64) -> String {
    match n {
        n if n >= 1 << 20 => format!("{:.1} MiB", n as f64 / (1 << 20) as f64),
        n if n >= 1 << 10 => format!("{:.1} KiB", n as f64 / 1024.0),
        n => format!("{n} B"),
    }
}

/// What the report of a transfer says beside its completion: one
/// completion's figures, or the sums over `--paginate`'s pages.
#[derive(Default)]
struct Summary {
    seconds: f64,
    pages: u32,
    attempts: u32,
    redirects: u32,
    wire_bytes: u64,
    body_bytes: u64,
    /// Known already (`--paginate`), else taken from the body or file.
    body_sha256: Option<String>,
    /// The body was written already, and `-v` told each head
    /// (`--paginate`).
    body_written: bool,
}

impl Summary {
    fn of(done: &Completed, seconds: f64) -> Summary {
        Summary {
            seconds,
            pages: 1,
            attempts: done.attempts,
            redirects: done.redirects,
            wire_bytes: done.wire_bytes,
            body_bytes: done.body_bytes,
            body_sha256: None,
            body_written: false,
        }
    }

    fn add(&mut self, page: &Completed) {
        self.attempts += page.attempts;
        self.redirects += page.redirects;
        self.wire_bytes += page.wire_bytes;
    }
}

/// After a transfer: its file settled (renamed, removed, or created empty
/// as curl leaves it), then the JSON line, or the head and body on stdout
/// and the failure on stderr.
fn finish(
    plan: &Plan,
    t: &Transfer,
    done: &Completed,
    summary: Summary,
    multi: Option<&MultiProgress>,
    tally: &mut Tally,
) -> Result<(), String> {
    let ok = done.result == RequestResult::Success;
    let http_error = plan.fail_status(done);
    tally.failed |= !ok;
    tally.http_error |= http_error;
    let sha = match (&summary.body_sha256, &t.download, ok) {
        (Some(sha), _, _) => sha.clone(),
        (None, Some(path), true) if path.exists() => {
            sha256_file(path).map_err(|e| format!("cannot hash {}: {e}", path.display()))?
        }
        _ => hex(&Sha256::digest(&done.body)),
    };
    if !summary.body_written {
        settle_file(t, ok && !http_error)?;
    }
    if plan.verbose && !summary.body_written {
        if done.response_code() != 0 {
            eprint!("{}", head_text(done, "< "));
        }
        eprintln!(
            "* {} tries, {} redirects, final URL {}",
            done.attempts, done.redirects, done.final_url
        );
    }
    if plan.json {
        let line = json_line(t, done, &sha, &summary);
        return write_stdout(format!("{line}\n").as_bytes(), multi);
    }
    let url = if plan.several {
        format!("{}: ", t.url)
    } else {
        String::new()
    };
    // (With progress lines, the transfer's line said it already.)
    if !ok && multi.is_none() && plan.errors {
        eprintln!("fetch: {url}{}: {}", done.result, done.reason);
    }
    if http_error {
        if plan.errors {
            eprintln!(
                "fetch: {url}(22) The requested URL returned error: {}",
                done.response_code()
            );
        }
        return Ok(());
    }
    if summary.body_written || !ok {
        return Ok(());
    }
    if plan.show_head {
        write_stdout(head_text(done, "").as_bytes(), multi)?;
    }
    if t.file.is_none() && !done.body.is_empty() {
        write_stdout(&done.body, multi)?;
    }
    Ok(())
}

/// The body's file once the transfer ended: with `-f`'s temporary file,
/// renamed into place when `keep`, else removed; the empty file curl leaves
/// for a response whose file the library did not open (a resumed 416). The
/// library itself empties the download file when the final body is empty.
fn settle_file(t: &Transfer, keep: bool) -> Result<(), String> {
    let (Some(file), Some(download)) = (&t.file, &t.download) else {
        return Ok(());
    };
    let create = |path: &Path| {
        File::create(path)
            .map(drop)
            .map_err(|e| format!("cannot create {}: {e}", path.display()))
    };
    if file == download {
        if keep && !file.exists() {
            create(file)?;
        }
        return Ok(());
    }
    if !keep {
        let _ = std::fs::remove_file(download);
        return Ok(());
    }
    if download.exists() {
        std::fs::rename(download, file).map_err(|e| {
            format!(
                "cannot rename {} to {}: {e}",
                download.display(),
                file.display()
            )
        })
    } else {
        create(file)
    }
}

/// Output goes around the progress lines, not through them; a closed pipe
/// (`fetch ... | head`) is not an error.
fn write_stdout(bytes: &[u8], multi: Option<&MultiProgress>) -> Result<(), String> {
    let write = || {
        let mut out = io::stdout().lock();
        out.write_all(bytes)
            .and_then(|()| out.flush())
            .or_else(|e| {
                if e.kind() == io::ErrorKind::BrokenPipe {
                    Ok(())
                } else {
                    Err(format!("cannot write stdout: {e}"))
                }
            })
    };
    match multi {
        Some(m) => m.suspend(write),
        None => write(),
    }
}

/// The response head as `-i`/`-I` print it (`prefix` before each line, for
/// `-v`): the status line and the fields as received.
fn head_text(done: &Completed, prefix: &str) -> String {
    let Some(head) = &done.head else {
        return String::new();
    };
    let version = match head.version() {
        pollhttp::proto::Version::Http10 => "HTTP/1.0",
        pollhttp::proto::Version::Http11 => "HTTP/1.1",
    };
    let reason = String::from_utf8_lossy(head.reason());
    let mut s = format!("{prefix}{version} {} {reason}\r\n", head.status());
    for f in head.fields().iter() {
        s.push_str(&format!(
            "{prefix}{}: {}\r\n",
            f.name(),
            String::from_utf8_lossy(f.value())
        ));
    }
    s.push_str(prefix);
    s.push_str("\r\n");
    s
}

/// Shows (once the download is big or slow) and advances the progress bar.
fn update_progress(bar: &mut Option<ProgressBar>, size: Option<u64>, got: u64, start: Instant) {
    if bar.is_none() {
        let big = size.is_some_and(|n| n > 1 << 20);
        let slow = start.elapsed() > Duration::from_millis(500);
        if !(big || slow) {
            return;
        }
        let pb = ProgressBar::with_draw_target(size, ProgressDrawTarget::stderr());
        let template = if size.is_some() {
            "{bytes:>10}/{total_bytes} [{bar:30}] {bytes_per_sec:>12} eta {eta}"
        } else {
            "{spinner} {bytes:>10} {bytes_per_sec:>12} {elapsed}"
        };
        if let Ok(style) = ProgressStyle::with_template(template) {
            pb.set_style(style.progress_chars("=> "));
        }
        *bar = Some(pb);
    }
    if let Some(pb) = bar {
        // The length changes after a redirect, or when the head arrives.
        if pb.length() != size {
            match size {
                Some(n) => pb.set_length(n),
                None => pb.unset_length(),
            }
        }
        pb.set_position(got);
    }
}

fn json_line(t: &Transfer, done: &Completed, sha: &str, summary: &Summary) -> String {
    let headers: Vec<[String; 2]> = done
        .headers()
        .iter()
        .map(|f| {
            [
                f.name().to_string(),
                String::from_utf8_lossy(f.value()).into_owned(),
            ]
        })
        .collect();
    let cookies: Vec<[String; 2]> = done
        .cookies()
        .into_iter()
        .map(|c| [c.name, c.value])
        .collect();
    serde_json::json!({
        "result": done.result.name(),
        "reason": done.reason,
        "response_code": done.response_code(),
        "headers": headers,
        "body_bytes": summary.body_bytes,
        "body_sha256": sha,
        "wire_bytes": summary.wire_bytes,
        "seconds": summary.seconds,
        "redirects": summary.redirects,
        "url": done.final_url,
        "request_url": t.url,
        "file": t.file.as_ref().map(|p| p.display().to_string()),
        "attempts": summary.attempts,
        "pages": summary.pages,
        "cookies": cookies,
    })
    .to_string()
}

fn sha256_file(path: &Path) -> io::Result<String> {
    let mut f = File::open(path)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            return Ok(hex(&hasher.finalize()));
        }
        hasher.update(&buf[..n]);
    }
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}
