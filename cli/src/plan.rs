//! The plan: the command line checked and worked out once into what every
//! transfer shares (method, fields, body, settings) and the transfers
//! themselves (each URL with where its body goes).

use std::collections::HashSet;
use std::fs::File;
use std::io::{self, IsTerminal, Read};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use clap::ArgMatches;
use pollhttp::web::{Auth, CookieJar, Request, RetryBudget, RetryPolicy, SharedCookieJar};
use pollhttp::{Completed, LookupFn, RequestBody, RequestResult, Settings, TlsOptions};

use crate::args::{url_credentials, Cli, ConnectTo, ContinueAt, CookieSource, FormPart, Resolve};
use crate::exit::Error;

/// Request bodies larger than this (bytes) are sent with
/// `Expect: 100-continue`, as curl's (`EXPECT_100_THRESHOLD`, 1 MiB).
const EXPECT_100_THRESHOLD: u64 = 1 << 20;

/// Everything the transfers share, worked out (and checked) once.
pub(crate) struct Plan {
    pub(crate) method: String,
    /// `-G`: the data, as a query string.
    pub(crate) query: Option<String>,
    /// `-H` lines, as given.
    pub(crate) header_lines: Vec<String>,
    /// Fields fetch adds (Content-Type, Accept, Cookie, User-Agent,
    /// Referer), each only when no `-H` gives it.
    pub(crate) fields: Vec<(String, String)>,
    pub(crate) payload: Payload,
    pub(crate) settings: Settings,
    pub(crate) jar: Option<SharedCookieJar>,
    pub(crate) jar_out: Option<PathBuf>,
    pub(crate) transfers: Vec<Transfer>,
    pub(crate) parallel: Option<usize>,
    /// `--paginate`: the page limit (-1: none).
    pub(crate) paginate: Option<i64>,
    /// `--report`: fetch's JSON line instead of the body.
    pub(crate) report: bool,
    /// `-f` or `--fail-with-body`: a status >= 400 exits 22.
    pub(crate) fail: bool,
    /// `--fail-with-body`: and its body is written.
    pub(crate) fail_with_body: bool,
    /// `-w`: the format, parsed.
    pub(crate) write_out: Option<crate::writeout::WriteOut>,
    /// `-D FILE`: where the heads go.
    pub(crate) dump_header: Option<PathBuf>,
    /// `--etag-save FILE`: where the response's ETag goes.
    pub(crate) etag_save: Option<PathBuf>,
    /// `--resolve`, `--connect-to`: the lookup that applies them.
    pub(crate) lookup: Option<LookupFn>,
    /// `--noproxy`: the hosts (or `*`) no proxy is used for.
    pub(crate) noproxy: Vec<String>,
    /// `--anyauth`: a Basic challenge after Digest credentials is answered.
    pub(crate) anyauth: bool,
    /// `-z`: "unmodified since" or "modified since", and the time.
    pub(crate) time_cond: Option<(bool, std::time::SystemTime)>,
    /// A proxy is in the way (`-x`, or the environment's).
    pub(crate) via_proxy: bool,
    /// Print the response head (`-i`, `-I`).
    pub(crate) show_head: bool,
    pub(crate) verbose: bool,
    /// Error messages on stderr (not with `-s` alone).
    pub(crate) errors: bool,
    /// `-Z`: a line per transfer on a terminal stderr (not with `-s`).
    pub(crate) progress: bool,
    /// curl's meter on stderr (not with `-s`): `-#`'s bar, else the
    /// classic meter; hidden for a transfer whose body goes to a terminal.
    pub(crate) meter: Option<crate::progress::MeterKind>,
    /// stdout is a terminal.
    pub(crate) stdout_tty: bool,
    pub(crate) several: bool,
    /// `-C OFFSET`: the offset asked for.
    pub(crate) continue_from: Option<u64>,
}

/// The body every transfer sends.
pub(crate) enum Payload {
    None,
    /// In memory.
    Bytes(Bytes),
    /// `--data-file`: streamed from disk.
    File(PathBuf),
    /// `-F`: built again for each transfer.
    Form(Vec<FormPart>),
}

impl Plan {
    pub(crate) fn new(cli: &Cli, matches: &ArgMatches) -> Result<Plan, Error> {
        let r = &cli.request;
        let d = &cli.data;
        let o = &cli.output;
        let data = data_pieces(cli, matches)?;
        let get = r.get;
        let form_body = data.is_some() && !get;
        let bodies = [
            form_body,
            d.data_file.is_some(),
            !d.json.is_empty(),
            !d.form.is_empty(),
            r.upload_file.is_some(),
        ];
        if bodies.iter().filter(|b| **b).count() > 1 {
            return Err(
                "only one of -d/--data*, --data-file, --json, -F and -T can give the body".into(),
            );
        }
        if get
            && (d.data_file.is_some()
                || !d.json.is_empty()
                || !d.form.is_empty()
                || r.upload_file.is_some())
        {
            return Err("-G puts -d/--data-urlencode data in the query: it takes no --data-file, --json, -F or -T".into());
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
            None if r.upload_file.is_some() => "PUT".into(),
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
            if !given(name) && !fields.iter().any(|(n, _)| n.eq_ignore_ascii_case(name)) {
                fields.push((name.to_string(), value));
            }
        };
        let (query, payload) = match data {
            Some(data) if get && data.iter().any(|b| *b <= b' ') => {
                // curl pastes -G data into the URL as it is: a space makes
                // it malformed (3); --data-urlencode encodes it.
                return Err(Error::new(
                    3,
                    "-G: the data holds a space or a control character, which a URL cannot (use --data-urlencode)",
                ));
            }
            Some(data) if get => (
                Some(String::from_utf8_lossy(&data).into_owned()),
                Payload::None,
            ),
            Some(data) => (None, Payload::Bytes(Bytes::from(data))),
            None => (None, Payload::None),
        };
        let payload = if let Some(path) = &d.data_file {
            Payload::File(path.clone())
        } else if !d.json.is_empty() {
            // curl's --json: each piece as it is (@FILE byte for byte),
            // joined with nothing between them.
            add("Content-Type", "application/json".into());
            add("Accept", "application/json".into());
            let mut body = Vec::new();
            for piece in &d.json {
                body.extend(read_data(piece, false)?);
            }
            Payload::Bytes(Bytes::from(body))
        } else if let Some(path) = &r.upload_file {
            if path.as_os_str() == "-" {
                Payload::Bytes(Bytes::from(read_source("-")?))
            } else {
                if !path.is_file() {
                    return Err(Error::read(format!("cannot read {}", path.display())));
                }
                Payload::File(path.clone())
            }
        } else if !d.form.is_empty() {
            // Checked now (a bad part is a usage error), built per transfer.
            crate::form::Form::build(&d.form)?;
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
        let time_cond = match &r.time_cond {
            Some(cond) => {
                let (unmodified, time) = time_condition(cond)?;
                let name = if unmodified {
                    "If-Unmodified-Since"
                } else {
                    "If-Modified-Since"
                };
                add(name, httpdate::fmt_http_date(time));
                Some((unmodified, time))
            }
            None => None,
        };
        // curl's --etag-compare: a missing or empty file sends nothing.
        if let Some(path) = &r.etag_compare {
            let etag = std::fs::read_to_string(path).unwrap_or_default();
            let etag = etag.trim();
            if !etag.is_empty() {
                add("If-None-Match", etag.to_string());
            }
        }
        if let Some(ContinueAt::Offset(n)) = o.continue_at {
            add("Range", format!("bytes={n}-"));
        }
        // As curl: a User-Agent naming the tool, and Accept */*.
        add("User-Agent", format!("fetch/{}", env!("CARGO_PKG_VERSION")));
        add("Accept", "*/*".into());
        // As curl: a body over 1 MiB asks for 100 Continue first (the
        // library waits for it at most 1 s, then sends the body anyway).
        let body_len = match &payload {
            Payload::Bytes(b) => Some(b.len() as u64),
            Payload::File(p) => std::fs::metadata(p).ok().map(|m| m.len()),
            _ => None,
        };
        if body_len.is_some_and(|n| n > EXPECT_100_THRESHOLD) {
            add("Expect", "100-continue".into());
        }

        let jar = cookie_jar(cli)?;
        let mut settings = settings(cli)?;
        settings.cookie_jar = jar.clone().map(|j| j as Arc<dyn pollhttp::CookieStore>);

        let outputs = outputs(cli, matches);
        let resume = o.continue_at == Some(ContinueAt::FileSize);
        if resume && outputs.iter().all(|o| matches!(o, Output::Stdout)) {
            return Err("-C - resumes a file: give -o FILE or -O".into());
        }
        if o.continue_at.is_some() && cli.transfer.paginate {
            return Err("-C and --paginate do not go together".into());
        }
        let paginate = cli
            .transfer
            .paginate
            .then(|| cli.transfer.page_limit.map_or(-1, i64::from));
        let temporary = o.fail && o.continue_at.is_none() && paginate.is_none();
        let transfers = transfers(cli, &outputs, temporary)?;
        if let Some(path) = o.dump_header.as_ref().filter(|p| p.as_os_str() != "-") {
            File::create(path).map_err(|e| Error::write(format!("-D {}: {e}", path.display())))?;
        }
        if let Some(dir) = &o.output_dir {
            std::fs::create_dir_all(dir)
                .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        }
        let plan = Plan {
            method,
            query,
            // curl's `-H 'Name:'` removes the field fetch would give; it
            // is not sent empty.
            header_lines: r
                .headers
                .iter()
                .filter(|l| l.split_once(':').is_none_or(|(_, v)| !v.trim().is_empty()))
                .cloned()
                .collect(),
            fields,
            payload,
            jar,
            jar_out: cli.cookies.cookie_jar.clone(),
            transfers,
            parallel: cli
                .transfer
                .parallel
                .then_some(cli.transfer.parallel_max as usize),
            paginate,
            report: o.report,
            fail: o.fail || o.fail_with_body,
            fail_with_body: o.fail_with_body,
            write_out: match &o.write_out {
                Some(f) => Some(crate::writeout::parse(f)?),
                None => None,
            },
            dump_header: o.dump_header.clone(),
            lookup: lookup(&cli.connection.resolve, &cli.connection.connect_to),
            noproxy: cli
                .connection
                .noproxy
                .as_deref()
                .map(|l| {
                    l.split(',')
                        .map(|h| h.trim().trim_start_matches('.').to_ascii_lowercase())
                        .filter(|h| !h.is_empty())
                        .collect()
                })
                .unwrap_or_default(),
            anyauth: cli.auth.anyauth,
            time_cond,
            etag_save: r.etag_save.clone(),
            via_proxy: cli.connection.proxy.is_some() || env_proxy(&settings),
            settings,
            show_head: o.include || r.head,
            verbose: o.verbose,
            errors: !o.silent || o.show_error,
            progress: !o.silent && io::stderr().is_terminal(),
            meter: match (o.silent, o.progress_bar) {
                (true, _) => None,
                (false, true) => Some(crate::progress::MeterKind::Bar),
                (false, false) => Some(crate::progress::MeterKind::Classic),
            },
            stdout_tty: io::stdout().is_terminal(),
            several: cli.urls.len() > 1,
            continue_from: match o.continue_at {
                Some(ContinueAt::Offset(n)) => Some(n),
                _ => None,
            },
        };
        if plan.verbose {
            plan.tell_settings();
        }
        Ok(plan)
    }

    /// The builder of one transfer.
    pub(crate) fn request(&self, t: &Transfer) -> Result<Request, Error> {
        let mut settings = Settings {
            body: pollhttp::BodySettings {
                download_file: t.download.clone(),
                ..self.settings.body.clone()
            },
            auth: t.auth.clone().or_else(|| self.settings.auth.clone()),
            ..self.settings.clone()
        };
        if self.bypasses_proxy(&t.url) {
            settings.proxy = pollhttp::ProxySettings::default();
        }
        let mut r = Request::new(&self.method, &t.url).settings(settings);
        if let Some(q) = &self.query {
            r = r.query_raw(q);
        }
        // A form's Content-Type comes from the form (with the caller's
        // parameters, below).
        let form = matches!(self.payload, Payload::Form(_));
        let lines: Vec<&str> = self
            .header_lines
            .iter()
            .map(String::as_str)
            .filter(|l| {
                !(form
                    && l.split_once(':').is_some_and(|(n, v)| {
                        n.trim().eq_ignore_ascii_case("content-type")
                            && v.trim().to_ascii_lowercase().starts_with("multipart/")
                    }))
            })
            .collect();
        r = r.header_lines(&lines);
        for (name, value) in &self.fields {
            r = r.header(name, value);
        }
        let r = match &self.payload {
            Payload::None => r,
            Payload::Bytes(data) => r.body(RequestBody::Bytes(data.clone())),
            Payload::File(path) => r.body(RequestBody::File(path.clone())),
            Payload::Form(parts) => {
                let mut form = crate::form::Form::build(parts)?;
                // A caller's multipart Content-Type keeps its parameters and
                // gets the boundary, as curl's.
                let given = self.header_lines.iter().find_map(|l| {
                    let (n, v) = l.split_once(':')?;
                    let v = v.trim();
                    (n.trim().eq_ignore_ascii_case("content-type")
                        && v.to_ascii_lowercase().starts_with("multipart/"))
                    .then(|| v.to_string())
                });
                let content_type = form.content_type(given.as_deref());
                r.body(form.into_body())
                    .header("Content-Type", &content_type)
            }
        };
        Ok(r)
    }

    /// `--noproxy`: whether `url`'s host goes without a proxy.
    pub(crate) fn bypasses_proxy(&self, url: &str) -> bool {
        if self.noproxy.is_empty() {
            return false;
        }
        if self.noproxy.iter().any(|h| h == "*") {
            return true;
        }
        let Ok(u) = url::Url::parse(url) else {
            return false;
        };
        let host = u
            .host_str()
            .unwrap_or("")
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_ascii_lowercase();
        self.noproxy
            .iter()
            .any(|n| host == *n || host.ends_with(&format!(".{n}")))
    }

    /// `-f` and a status >= 400.
    pub(crate) fn fail_status(&self, done: &Completed) -> bool {
        self.fail && done.result == RequestResult::Success && done.response_code() >= 400
    }

    /// `-v`: the settings that shape every transfer.
    pub(crate) fn tell_settings(&self) {
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

    /// `-v`: the request head about to be sent, as curl shows it (`> `
    /// lines): the request line, Host, the fields fetch gives and those the
    /// library adds from the settings (Accept-Encoding with --compressed,
    /// the body's framing). Authorization and Cookie fields the library
    /// derives from credentials or a jar are said as `* ` notes.
    pub(crate) fn tell_request(&self, t: &Transfer) {
        if !self.verbose {
            return;
        }
        let Ok(mut u) = url::Url::parse(&t.url) else {
            eprintln!("> {} {}", self.method, t.url);
            return;
        };
        if let Some(q) = &self.query {
            let joined = match u.query() {
                Some(old) if !old.is_empty() => format!("{old}&{q}"),
                _ => q.clone(),
            };
            u.set_query(Some(&joined));
        }
        let host = match (u.host_str(), u.port()) {
            (Some(h), Some(p)) => format!("{h}:{p}"),
            (Some(h), None) => h.to_string(),
            _ => String::new(),
        };
        let proxied = u.scheme() == "http"
            && self.settings.proxy.http.is_some()
            && !self.bypasses_proxy(&t.url);
        let target = if proxied {
            u.to_string()
        } else {
            let mut target = u.path().to_string();
            if let Some(q) = u.query() {
                target.push('?');
                target.push_str(q);
            }
            target
        };
        if let Some(Auth::Digest { user, .. }) = t.auth.as_ref().or(self.settings.auth.as_ref()) {
            eprintln!("* Digest auth as {user:?}: sent in answer to a 401 challenge");
        }
        if let Some(Auth::Basic { user, .. }) = &self.settings.auth {
            eprintln!("* Server auth using Basic with user '{user}'");
        }
        if self.settings.cookie_jar.is_some() {
            eprintln!("* Cookie: from the jar, as it matches the URL");
        }
        let mut lines = vec![format!("{} {target} HTTP/1.1", self.method)];
        lines.push(format!("Host: {host}"));
        // The order on the wire: the -H lines, fetch's fields, then what
        // the library adds.
        lines.extend(self.header_lines.iter().cloned());
        for (k, v) in &self.fields {
            lines.push(format!("{k}: {v}"));
        }
        let given = |lines: &[String], name: &str| {
            lines.iter().skip(1).any(|l| {
                l.split_once(':')
                    .is_some_and(|(n, _)| n.trim().eq_ignore_ascii_case(name))
            })
        };
        let codings = &self.settings.body.codings;
        if self.settings.body.accept_gzip
            && !codings.is_empty()
            && !given(&lines, "Accept-Encoding")
        {
            let tokens: Vec<&str> = codings.iter().map(|c| c.token()).collect();
            lines.push(format!("Accept-Encoding: {}", tokens.join(", ")));
        }
        let given = given(&lines, "Content-Length") || given(&lines, "Transfer-Encoding");
        match &self.payload {
            Payload::Bytes(b) if !given => lines.push(format!("Content-Length: {}", b.len())),
            Payload::File(p) if !given => {
                if let Ok(m) = std::fs::metadata(p) {
                    lines.push(format!("Content-Length: {}", m.len()));
                }
            }
            _ => {}
        }
        for l in lines {
            eprintln!("> {l}");
        }
        eprintln!("> ");
    }

    /// `-z`, as curl checks it again on a 2xx: the response's
    /// Last-Modified does not meet the condition (the server ignored it),
    /// so its body is dropped and `%{http_code}` says 304.
    pub(crate) fn time_cond_unmet(&self, done: &Completed) -> bool {
        let Some((unmodified, time)) = self.time_cond else {
            return false;
        };
        if !(200..300).contains(&done.response_code()) {
            return false;
        }
        let Some(doc) = done
            .headers()
            .get_str("last-modified")
            .and_then(|v| httpdate::parse_http_date(v).ok())
        else {
            return false;
        };
        if unmodified {
            doc > time
        } else {
            doc <= time
        }
    }

    /// `-C OFFSET` and a GET whose response has a body that is not the
    /// range (no Content-Range, and not the whole of a document exactly
    /// OFFSET bytes long): curl's "HTTP server doesn't seem to support byte
    /// ranges. Cannot resume." (33), the body not written.
    pub(crate) fn range_ignored(&self, done: &Completed) -> bool {
        let Some(from) = self.continue_from.filter(|n| *n > 0) else {
            return false;
        };
        let length = done
            .headers()
            .get_str("content-length")
            .and_then(|v| v.trim().parse::<u64>().ok());
        done.result == RequestResult::Success
            && self.method == "GET"
            && done.headers().get("content-range").is_none()
            && done.body_bytes > 0
            && length != Some(from)
    }

    /// The meter a sequential transfer draws: none when its body goes to
    /// stdout and stdout is a terminal (as curl, whose meter would mix with
    /// the body there), nor with `--paginate`.
    pub(crate) fn meter_for(&self, t: &Transfer) -> Option<crate::progress::MeterKind> {
        if (t.file.is_none() && self.stdout_tty) || self.paginate.is_some() {
            return None;
        }
        self.meter
    }

    /// The request body's length, when known (the meter's upload total).
    pub(crate) fn upload_len(&self) -> Option<u64> {
        match &self.payload {
            Payload::Bytes(b) => Some(b.len() as u64),
            Payload::File(p) => std::fs::metadata(p).ok().map(|m| m.len()),
            _ => None,
        }
    }

    /// `%{size_upload}`: the request body's size when fetch knows it.
    pub(crate) fn upload_size(&self) -> u64 {
        match &self.payload {
            Payload::Bytes(b) => b.len() as u64,
            Payload::File(p) => std::fs::metadata(p).map_or(0, |m| m.len()),
            _ => 0,
        }
    }
}

/// The data options in the order given, each made into bytes as curl does,
/// joined with `&`; `None` when there are none.
pub(crate) fn data_pieces(cli: &Cli, m: &ArgMatches) -> Result<Option<Vec<u8>>, Error> {
    let d = &cli.data;
    let mut pieces: Vec<(usize, Vec<u8>)> = Vec::new();
    let mut collect =
        |id: &str, values: &[String], make: &dyn Fn(&str) -> Result<Vec<u8>, Error>| {
            let indices: Vec<usize> = m.indices_of(id).map(Iterator::collect).unwrap_or_default();
            for (i, v) in values.iter().enumerate() {
                pieces.push((indices.get(i).copied().unwrap_or(usize::MAX), make(v)?));
            }
            Ok::<(), Error>(())
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
pub(crate) fn read_data(v: &str, strip_newlines: bool) -> Result<Vec<u8>, Error> {
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
pub(crate) fn read_source(path: &str) -> Result<Vec<u8>, Error> {
    if path == "-" {
        let mut data = Vec::new();
        io::stdin()
            .read_to_end(&mut data)
            .map_err(|e| Error::read(format!("cannot read stdin: {e}")))?;
        Ok(data)
    } else {
        std::fs::read(path).map_err(|e| Error::read(format!("cannot read {path}: {e}")))
    }
}

/// `--data-urlencode`, curl's rules: a `=` makes `name=content` (an empty
/// name: the content alone); else a `@` makes `name@file` (the file's
/// contents); else the whole is the content. The content is encoded as a
/// form value (`application/x-www-form-urlencoded`: a space is `+`).
pub(crate) fn url_encoded(v: &str) -> Result<Vec<u8>, Error> {
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

/// The jar `-b FILE` and `-c FILE` share, when either is given.
pub(crate) fn cookie_jar(cli: &Cli) -> Result<Option<SharedCookieJar>, Error> {
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
pub(crate) fn settings(cli: &Cli) -> Result<Settings, Error> {
    let t = &cli.transfer;
    let c = &cli.connection;
    let mut s = Settings::default();
    if let Some(n) = cli.request.max_redirs {
        s.redirects.max = n;
    }
    // curl's defaults: a 3xx is the response without -L, 50 redirects.
    s.redirects.follow = cli.request.location;
    s.redirects.max = cli.request.max_redirs.unwrap_or(50);
    s.timeouts.total = c.max_time;
    if let Some(d) = c.connect_timeout {
        s.timeouts.connect = d;
    }
    if let Some(d) = c.expect100_timeout {
        s.timeouts.expect_continue = d;
    }
    // curl's default: the body as sent, unless --compressed.
    s.body.accept_gzip = t.compressed;
    if t.compressed {
        // curl asks for every coding it was built with.
        s.body.codings = pollhttp::ContentCoding::ALL.to_vec();
    }
    if let Some(hex) = &t.expect_sha256 {
        s.body.expected_sha256 = Some(pollhttp::sha256_from_hex(hex).ok_or_else(|| {
            Error::usage(format!("--expect-sha256: not a SHA-256 in hex: {hex:?}"))
        })?);
    }
    s.body.size_limit = t.max_filesize;
    if let Some(dir) = &t.cache {
        let cache = pollhttp::Cache::disk(dir, pollhttp::StoreLimits::default())
            .map_err(|e| Error::new(23, format!("cannot open the cache {}: {e}", dir.display())))?;
        s.cache = pollhttp::CacheSettings {
            cache: Some(cache),
            mode: t.cache_mode.unwrap_or_default(),
        };
    }
    s.body.max_recv_speed = t.limit_rate.filter(|r| *r > 0);
    s.body.resume = cli.output.continue_at == Some(ContinueAt::FileSize);
    // A tool has no frame to protect: bigger reads mean fewer syscalls.
    s.body.download_chunk_size = 256 * 1024;
    if let Some(p) = &c.proxy {
        s.proxy.http = Some((p.host.clone(), p.port));
        s.proxy.https = Some((p.host.clone(), p.port));
    }
    s.proxy.from_env = c.proxy.is_none() && c.noproxy.as_deref() != Some("*");
    // --proxy-user wins over the -x URL's userinfo (curl's rule); an
    // environment proxy's userinfo the library takes itself.
    s.proxy.auth = cli
        .auth
        .proxy_user
        .clone()
        .or_else(|| c.proxy.as_ref().and_then(|p| p.credentials.clone()));
    s.auth = cli.auth.user.as_ref().map(|(user, password)| {
        if cli.auth.digest || cli.auth.anyauth {
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
        if t.retry_all_errors {
            policy.statuses = (400..600).collect();
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
    if let Some(l) = &c.lenient {
        s.leniency = l.clone();
    }
    Ok(s)
}

// ------------------------------------------------------------ transfers

/// One URL and where its body goes.
#[derive(Clone)]
pub(crate) struct Transfer {
    pub(crate) url: String,
    /// `-o FILE`, or `-O`'s file: `None` for stdout.
    pub(crate) file: Option<PathBuf>,
    /// Where the library writes the body: `file`, or with `-f` a temporary
    /// file beside it (renamed to `file` unless the status is >= 400).
    /// `None` with `--paginate`, whose pages fetch writes itself.
    pub(crate) download: Option<PathBuf>,
    /// Short name for progress lines.
    pub(crate) label: String,
    /// `--digest` without `-u`: the credentials of the URL's userinfo
    /// (taken out of `url`), as if given with `-u`.
    pub(crate) auth: Option<Auth>,
    /// `-J`: the file takes the name of the response's Content-Disposition.
    pub(crate) remote_header_name: bool,
    /// `-C OFFSET` with a file: the body (the bytes from OFFSET on) is
    /// appended to `file`, as curl does; the library writes it to
    /// `download`, a temporary file beside it.
    pub(crate) append: bool,
    /// Its place among the URLs.
    pub(crate) index: usize,
}

/// Where one URL's body goes, as `-o`/`-O` said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Output {
    Stdout,
    File(PathBuf),
    /// `-O`: the URL's file name.
    Remote,
}

/// The outputs paired with the URLs in order, as curl pairs them: the
/// n-th `-o FILE` or `-O` goes with the n-th URL; a URL without one goes
/// to stdout (`-O` with `--remote-name-all`, or `--output-dir` alone).
pub(crate) fn outputs(cli: &Cli, m: &ArgMatches) -> Vec<Output> {
    let o = &cli.output;
    let mut given: Vec<(usize, Output)> = Vec::new();
    let files = m
        .indices_of("output")
        .map(Iterator::collect::<Vec<_>>)
        .unwrap_or_default();
    for (i, f) in o.output.iter().enumerate() {
        let out = if f.as_os_str() == "-" {
            Output::Stdout
        } else {
            Output::File(f.clone())
        };
        given.push((files.get(i).copied().unwrap_or(usize::MAX), out));
    }
    for i in m.indices_of("remote_name").into_iter().flatten() {
        given.push((i, Output::Remote));
    }
    given.sort_by_key(|(i, _)| *i);
    let all_remote = o.remote_name_all || (o.output_dir.is_some() && given.is_empty());
    (0..cli.urls.len())
        .map(|n| match given.get(n) {
            Some((_, out)) => out.clone(),
            None if all_remote => Output::Remote,
            None => Output::Stdout,
        })
        .collect()
}

pub(crate) fn transfers(
    cli: &Cli,
    outputs: &[Output],
    temporary: bool,
) -> Result<Vec<Transfer>, Error> {
    let mut names = HashSet::new();
    cli.urls
        .iter()
        .zip(outputs)
        .enumerate()
        .map(|(index, (url, output))| {
            // -T FILE to a URL ending in '/': the file's name is appended.
            let url = match &cli.request.upload_file {
                Some(f) if url.ends_with('/') && f.as_os_str() != "-" => format!(
                    "{url}{}",
                    f.file_name()
                        .map(|n| n.to_string_lossy())
                        .unwrap_or_default()
                ),
                _ => url.clone(),
            };
            let url = &url;
            let in_dir = |name: PathBuf| match &cli.output.output_dir {
                Some(dir) if name.is_relative() => dir.join(name),
                _ => name,
            };
            let file = match output {
                Output::Remote => {
                    let name = remote_file_name(url)?;
                    if !names.insert(name.clone()) {
                        return Err(Error::usage(format!("two URLs would be saved as {name}")));
                    }
                    Some(in_dir(PathBuf::from(name)))
                }
                Output::File(f) => Some(in_dir(f.clone())),
                Output::Stdout => None,
            };
            let append =
                matches!(cli.output.continue_at, Some(ContinueAt::Offset(_))) && file.is_some();
            let download = match &file {
                _ if cli.transfer.paginate => None,
                Some(f) if temporary || append => {
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
                remote_header_name: cli.output.remote_header_name
                    && matches!(output, Output::Remote),
                append,
                index,
            })
        })
        .collect()
}

/// `--resolve` and `--connect-to` as one lookup function (`None` when
/// neither is given): a `--resolve` entry for the name and port wins, then
/// a `--connect-to` entry sends the lookup to its host and port, then the
/// system resolver.
pub(crate) fn lookup(resolve: &[Resolve], connect_to: &[ConnectTo]) -> Option<LookupFn> {
    if resolve.is_empty() && connect_to.is_empty() {
        return None;
    }
    let resolve = resolve.to_vec();
    let connect_to = connect_to.to_vec();
    Some(Arc::new(move |host: &str, port: u16| {
        let host = host.to_ascii_lowercase();
        if let Some(r) = resolve.iter().find(|r| r.host == host && r.port == port) {
            return Ok(r
                .addrs
                .iter()
                .map(|a| std::net::SocketAddr::new(*a, port))
                .collect());
        }
        let (host, port) = match connect_to.iter().find(|c| {
            c.from_host.as_ref().is_none_or(|h| *h == host) && c.from_port.is_none_or(|p| p == port)
        }) {
            Some(c) => (c.to_host.clone().unwrap_or(host), c.to_port.unwrap_or(port)),
            None => (host, port),
        };
        use std::net::ToSocketAddrs;
        let addrs: Vec<_> = (host.as_str(), port).to_socket_addrs()?.collect();
        if addrs.is_empty() {
            return Err(io::Error::new(
                io::ErrorKind::NotFound,
                format!("no addresses for {host:?}"),
            ));
        }
        Ok(addrs)
    }))
}

/// `-z TIME|FILE`: whether the condition is "unmodified since" (a leading
/// `-`) and its time: TIME is an HTTP date (RFC 9110 §5.6.7) or a file
/// whose modification time is taken (a file that is not there is an error
/// here, where curl ignores the option).
pub(crate) fn time_condition(cond: &str) -> Result<(bool, std::time::SystemTime), Error> {
    let (unmodified, what) = match cond.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, cond),
    };
    let time = match httpdate::parse_http_date(what) {
        Ok(t) => t,
        Err(_) => std::fs::metadata(what)
            .and_then(|m| m.modified())
            .map_err(|e| {
                Error::usage(format!("-z {what}: neither an HTTP date nor a file ({e})"))
            })?,
    };
    Ok((unmodified, time))
}

/// The file name `-O` saves `url` under: its last path segment, as curl
/// takes it (not percent-decoded).
pub(crate) fn remote_file_name(url: &str) -> Result<String, Error> {
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
        return Err(Error::usage(format!(
            "{url}: no file name in the URL to save it under"
        )));
    }
    Ok(name.to_string())
}

/// Whether the environment names a proxy fetch would use.
fn env_proxy(settings: &Settings) -> bool {
    settings.proxy.from_env
        && [
            "http_proxy",
            "https_proxy",
            "all_proxy",
            "HTTPS_PROXY",
            "ALL_PROXY",
        ]
        .iter()
        .any(|v| std::env::var_os(v).is_some_and(|p| !p.is_empty()))
}
