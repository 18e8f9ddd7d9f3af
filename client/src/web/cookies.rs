//! Cookies: the `Set-Cookie` fields of a response parsed (the `cookie`
//! crate; Parse's `cookies`), and an opt-in jar across requests
//! (`cookie_store`: RFC 6265 domain and path matching, host-only cookies,
//! Secure only over https, expiry) with curl's bounds, saved and loaded in
//! JSON or curl's Netscape cookie-file format.

use std::fmt;
use std::io::{self, BufRead, Write};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use cookie_store::{CookieDomain, CookieExpiration, CookieStore, RawCookie};
use pollhttp_proto::Fields;
use url::Url;

use crate::Completed;

/// Most cookies taken from one response (curl's `MAX_SET_COOKIE_AMOUNT`).
pub const MAX_COOKIES_PER_RESPONSE: usize = 50;
/// Longest name plus value of a cookie kept (curl's 4096-byte
/// `MAX_NAME`/`MAX_COOKIE_LINE` bound); a longer one is ignored.
pub const MAX_COOKIE_SIZE: usize = 4096;
/// Most cookies in a jar; past it new cookies are dropped (curl bounds
/// cookies per domain; one bound for the whole jar is simpler and as safe).
pub const MAX_COOKIES: usize = 3000;
/// Longest `Cookie` field value sent (curl's `MAX_COOKIE_HEADER_LEN`);
/// cookies that would go past it are left out.
pub const MAX_COOKIE_HEADER: usize = 8190;

/// A cookie jar shared by requests (and threads): [`crate::Settings::cookie_jar`].
pub type SharedCookieJar = Arc<Mutex<CookieJar>>;

/// The `SameSite` attribute.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SameSite {
    /// `Strict`.
    Strict,
    /// `Lax`.
    Lax,
    /// `None`.
    None,
}

/// One `Set-Cookie` field, parsed (RFC 6265 §5.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetCookie {
    /// The name.
    pub name: String,
    /// The value.
    pub value: String,
    /// `Domain`, without a leading dot.
    pub domain: Option<String>,
    /// `Path`.
    pub path: Option<String>,
    /// `Expires`.
    pub expires: Option<SystemTime>,
    /// `Max-Age` (a negative one is zero: expire now).
    pub max_age: Option<Duration>,
    /// `Secure`.
    pub secure: bool,
    /// `HttpOnly`.
    pub http_only: bool,
    /// `SameSite`.
    pub same_site: Option<SameSite>,
}

fn unix_time(secs: i64) -> SystemTime {
    if secs >= 0 {
        SystemTime::UNIX_EPOCH + Duration::from_secs(secs as u64)
    } else {
        SystemTime::UNIX_EPOCH - Duration::from_secs(secs.unsigned_abs())
    }
}

/// Parse one `Set-Cookie` value; `None` when it is not a cookie.
pub fn parse_set_cookie(value: &str) -> Option<SetCookie> {
    let c = RawCookie::parse(value).ok()?;
    Some(SetCookie {
        name: c.name().to_string(),
        value: c.value().to_string(),
        domain: c.domain().map(|d| d.trim_start_matches('.').to_string()),
        path: c.path().map(str::to_string),
        expires: c.expires_datetime().map(|t| unix_time(t.unix_timestamp())),
        max_age: c
            .max_age()
            .map(|d| Duration::from_secs(d.whole_seconds().max(0) as u64)),
        secure: c.secure().unwrap_or(false),
        http_only: c.http_only().unwrap_or(false),
        same_site: c.same_site().map(|s| match s {
            cookie::SameSite::Strict => SameSite::Strict,
            cookie::SameSite::Lax => SameSite::Lax,
            cookie::SameSite::None => SameSite::None,
        }),
    })
}

fn set_cookie_values(fields: &Fields) -> impl Iterator<Item = &str> {
    fields
        .get_all("set-cookie")
        .filter_map(|v| std::str::from_utf8(v).ok())
        .take(MAX_COOKIES_PER_RESPONSE)
}

impl Completed {
    /// The cookies the response sets (its `Set-Cookie` fields, at most 50
    /// as curl takes; ones that do not parse are skipped): Parse's
    /// `httpRequest` `cookies`.
    pub fn cookies(&self) -> Vec<SetCookie> {
        set_cookie_values(&self.headers)
            .filter_map(parse_set_cookie)
            .collect()
    }
}

/// A cookie jar ([`crate::Settings::cookie_jar`]): what responses set,
/// sent back to the requests they match.
#[derive(Debug, Default, Clone)]
pub struct CookieJar {
    store: CookieStore,
}

/// A jar that cannot be loaded.
#[derive(Debug)]
#[non_exhaustive]
pub enum CookieJarError {
    /// Reading failed.
    Io(io::Error),
    /// The input is not a cookie jar: this line (from 1) is neither JSON
    /// of the jar's format nor a Netscape cookie line.
    NotAJar {
        /// The line, counted from 1.
        line: usize,
    },
}

impl fmt::Display for CookieJarError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CookieJarError::Io(e) => write!(f, "cannot read the cookie jar: {e}"),
            CookieJarError::NotAJar { line } => {
                write!(f, "not a cookie jar (line {line} is not a cookie)")
            }
        }
    }
}

impl std::error::Error for CookieJarError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            CookieJarError::Io(e) => Some(e),
            CookieJarError::NotAJar { .. } => None,
        }
    }
}

impl CookieJar {
    /// An empty jar.
    pub fn new() -> CookieJar {
        CookieJar::default()
    }

    /// A new empty jar to share between requests.
    pub fn shared() -> SharedCookieJar {
        Arc::new(Mutex::new(CookieJar::new()))
    }

    /// Store the cookies a response to `url` sets (RFC 6265 §5.3 by
    /// cookie_store), within curl's bounds: at most 50 from one response,
    /// none whose name and value pass 4096 bytes, none past 3000 in the
    /// jar.
    pub fn store_response(&mut self, url: &Url, fields: &Fields) {
        for value in set_cookie_values(fields) {
            let Ok(c) = RawCookie::parse(value.to_string()) else {
                continue;
            };
            if c.name().len() + c.value().len() > MAX_COOKIE_SIZE {
                continue;
            }
            if self.len() >= MAX_COOKIES && !c.name().is_empty() {
                continue;
            }
            let _ = self.store.insert_raw(&c, url);
        }
    }

    /// The `Cookie` field value for a request to `url`: `name=value`
    /// pairs of the unexpired cookies that match it (domain, path, Secure
    /// only over https), joined by `; `, at most 8190 bytes (cookies that
    /// would pass it are left out). `None` when no cookie matches.
    pub fn cookie_header(&self, url: &Url) -> Option<String> {
        let mut out = String::new();
        for (name, value) in self.store.get_request_values(url) {
            let add = name.len() + value.len() + 1 + if out.is_empty() { 0 } else { 2 };
            if out.len() + add > MAX_COOKIE_HEADER {
                continue;
            }
            if !out.is_empty() {
                out.push_str("; ");
            }
            out.push_str(name);
            out.push('=');
            out.push_str(value);
        }
        (!out.is_empty()).then_some(out)
    }

    /// Cookies in the jar (unexpired).
    pub fn len(&self) -> usize {
        self.store.iter_unexpired().count()
    }

    /// Whether the jar holds no unexpired cookie.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Forget every cookie.
    pub fn clear(&mut self) {
        self.store.clear();
    }

    /// The unexpired cookies as (name, value, domain, path).
    pub fn cookies(&self) -> Vec<(String, String, String, String)> {
        self.store
            .iter_unexpired()
            .map(|c| {
                let domain = match &c.domain {
                    CookieDomain::HostOnly(d) | CookieDomain::Suffix(d) => d.clone(),
                    _ => String::new(),
                };
                (
                    c.name().to_string(),
                    c.value().to_string(),
                    domain,
                    String::from(&c.path),
                )
            })
            .collect()
    }

    /// Save every cookie, session cookies included (as curl's `-c`), in
    /// cookie_store's JSON format.
    ///
    /// # Errors
    /// Writing fails.
    pub fn save(&self, w: &mut impl Write) -> io::Result<()> {
        cookie_store::serde::json::save_incl_expired_and_nonpersistent(&self.store, w)
            .map_err(io::Error::other)
    }

    /// Load a jar saved by [`save`](Self::save) (expired cookies dropped).
    ///
    /// # Errors
    /// [`CookieJarError::Io`]; [`CookieJarError::NotAJar`] with the line
    /// where the JSON breaks (1 for JSON that is not a list of cookies).
    pub fn load(mut r: impl BufRead) -> Result<CookieJar, CookieJarError> {
        let mut text = String::new();
        r.read_to_string(&mut text).map_err(CookieJarError::Io)?;
        CookieJar::load_json_text(&text)
    }

    fn load_json_text(text: &str) -> Result<CookieJar, CookieJarError> {
        let value: serde_json::Value =
            serde_json::from_str(text).map_err(|e| CookieJarError::NotAJar {
                line: e.line().max(1),
            })?;
        if !value.is_array() {
            return Err(CookieJarError::NotAJar { line: 1 });
        }
        let store = cookie_store::serde::json::load(text.as_bytes())
            .map_err(|_| CookieJarError::NotAJar { line: 1 })?;
        Ok(CookieJar { store })
    }

    /// Save in curl's Netscape cookie-file format (`-c FILE`): a `# Netscape
    /// HTTP Cookie File` header, then one line per cookie, tab-separated:
    /// domain, include-subdomains, path, secure, expiry (Unix seconds, 0
    /// for a session cookie), name, value; `#HttpOnly_` before the domain
    /// of an HttpOnly cookie.
    ///
    /// # Errors
    /// Writing fails.
    pub fn save_netscape(&self, w: &mut impl Write) -> io::Result<()> {
        writeln!(w, "# Netscape HTTP Cookie File")?;
        writeln!(w, "# Written by pollhttp.")?;
        writeln!(w)?;
        for c in self.store.iter_unexpired() {
            let (domain, sub) = match &c.domain {
                CookieDomain::HostOnly(d) => (d.clone(), "FALSE"),
                CookieDomain::Suffix(d) => (format!(".{d}"), "TRUE"),
                _ => continue,
            };
            let expiry = match &c.expires {
                CookieExpiration::AtUtc(t) => t.unix_timestamp().max(0),
                CookieExpiration::SessionEnd => 0,
            };
            let prefix = if c.http_only() == Some(true) {
                "#HttpOnly_"
            } else {
                ""
            };
            let secure = if c.secure() == Some(true) {
                "TRUE"
            } else {
                "FALSE"
            };
            writeln!(
                w,
                "{prefix}{domain}\t{sub}\t{}\t{secure}\t{expiry}\t{}\t{}",
                String::from(&c.path),
                c.name(),
                c.value()
            )?;
        }
        Ok(())
    }

    /// Load curl's Netscape cookie-file format (`-b FILE`): blank lines and
    /// `#` comments skipped (but `#HttpOnly_` lines read), every other line
    /// seven tab-separated fields. Expired cookies are dropped.
    ///
    /// # Errors
    /// [`CookieJarError::Io`]; [`CookieJarError::NotAJar`] for a line that
    /// is not a cookie.
    pub fn load_netscape(r: impl BufRead) -> Result<CookieJar, CookieJarError> {
        let mut jar = CookieJar::new();
        for (i, line) in r.lines().enumerate() {
            let line = line.map_err(CookieJarError::Io)?;
            jar.netscape_line(&line, i + 1)?;
        }
        Ok(jar)
    }

    fn netscape_line(&mut self, line: &str, number: usize) -> Result<(), CookieJarError> {
        let bad = CookieJarError::NotAJar { line: number };
        let (line, http_only) = match line.strip_prefix("#HttpOnly_") {
            Some(rest) => (rest, true),
            None if line.trim().is_empty() || line.starts_with('#') => return Ok(()),
            None => (line, false),
        };
        let fields: Vec<&str> = line.trim_end_matches(['\r', '\n']).split('\t').collect();
        let [domain, sub, path, secure, expiry, name, value] = fields[..] else {
            return Err(bad);
        };
        let expiry: i64 = expiry.trim().parse().map_err(|_| bad)?;
        let host = domain.trim_start_matches('.');
        let secure = secure.eq_ignore_ascii_case("TRUE");
        let scheme = if secure { "https" } else { "http" };
        let Ok(url) = Url::parse(&format!("{scheme}://{host}{path}")) else {
            return Err(CookieJarError::NotAJar { line: number });
        };
        let mut set = format!("{name}={value}; Path={path}");
        if sub.eq_ignore_ascii_case("TRUE") || domain.starts_with('.') {
            set.push_str(&format!("; Domain={host}"));
        }
        if expiry > 0 {
            set.push_str(&format!(
                "; Expires={}",
                httpdate::fmt_http_date(unix_time(expiry))
            ));
        }
        if secure {
            set.push_str("; Secure");
        }
        if http_only {
            set.push_str("; HttpOnly");
        }
        if let Ok(c) = RawCookie::parse(set) {
            if self.len() < MAX_COOKIES {
                let _ = self.store.insert_raw(&c, &url);
            }
        }
        Ok(())
    }

    /// Load either format, told apart by the first line that is not blank:
    /// `[` or `{` is JSON, anything else Netscape (curl's `-b FILE`).
    ///
    /// # Errors
    /// As [`load`](Self::load) and [`load_netscape`](Self::load_netscape).
    pub fn load_any(mut r: impl BufRead) -> Result<CookieJar, CookieJarError> {
        let mut text = String::new();
        r.read_to_string(&mut text).map_err(CookieJarError::Io)?;
        let first = text.lines().map(str::trim).find(|l| !l.is_empty());
        if first.is_some_and(|l| l.starts_with('[') || l.starts_with('{')) {
            return CookieJar::load_json_text(&text);
        }
        let mut jar = CookieJar::new();
        for (i, line) in text.lines().enumerate() {
            jar.netscape_line(line, i + 1)?;
        }
        Ok(jar)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pollhttp_proto::{Connection, Event};

    fn fields(set_cookies: &[&str]) -> Fields {
        let mut raw = String::from("HTTP/1.1 200 OK\r\n");
        for v in set_cookies {
            raw.push_str(&format!("Set-Cookie: {v}\r\n"));
        }
        raw.push_str("Content-Length: 0\r\n\r\n");
        let mut c = Connection::new(pollhttp_proto::Config::default());
        c.send_request("GET", "/", [("Host", "h")]).unwrap();
        c.receive(raw.as_bytes());
        loop {
            if let Some(Event::Head(h)) = c.poll_event().unwrap() {
                return h.fields().clone();
            }
        }
    }

    fn url(s: &str) -> Url {
        Url::parse(s).unwrap()
    }

    #[test]
    fn set_cookie_attributes() {
        let c = parse_set_cookie(
            "id=a3f; Domain=.Example.com; Path=/docs; Expires=Wed, 21 Oct 2099 07:28:00 GMT; \
             Max-Age=-5; Secure; HttpOnly; SameSite=Lax",
        )
        .unwrap();
        assert_eq!((c.name.as_str(), c.value.as_str()), ("id", "a3f"));
        assert_eq!(c.domain.as_deref(), Some("Example.com"));
        assert_eq!(c.path.as_deref(), Some("/docs"));
        assert_eq!(
            c.expires,
            Some(httpdate::parse_http_date("Wed, 21 Oct 2099 07:28:00 GMT").unwrap())
        );
        assert_eq!(c.max_age, Some(Duration::ZERO));
        assert!(c.secure && c.http_only);
        assert_eq!(c.same_site, Some(SameSite::Lax));
        assert_eq!(parse_set_cookie("no equals sign"), None);
    }

    #[test]
    fn host_only_domain_and_path_rules() {
        let mut jar = CookieJar::new();
        jar.store_response(
            &url("http://a.example.com/page"),
            &fields(&["host=1", "dom=2; Domain=example.com", "p=3; Path=/a"]),
        );
        let header = jar.cookie_header(&url("http://a.example.com/a/b")).unwrap();
        for c in ["host=1", "dom=2", "p=3"] {
            assert!(header.contains(c), "{header}");
        }
        let other = jar.cookie_header(&url("http://b.example.com/ab")).unwrap();
        assert_eq!(other, "dom=2", "host-only and /a cookies stay out");
    }

    #[test]
    fn secure_expiry_and_bounds() {
        let mut jar = CookieJar::new();
        jar.store_response(
            &url("https://s.test/"),
            &fields(&["s=1; Secure", "gone=1; Max-Age=0"]),
        );
        assert_eq!(jar.cookie_header(&url("http://s.test/")), None);
        assert_eq!(
            jar.cookie_header(&url("https://s.test/")).as_deref(),
            Some("s=1")
        );
        let many: Vec<String> = (0..51).map(|i| format!("c{i}=v")).collect();
        let refs: Vec<&str> = many.iter().map(String::as_str).collect();
        let mut jar = CookieJar::new();
        jar.store_response(&url("http://m.test/"), &fields(&refs));
        assert_eq!(jar.len(), MAX_COOKIES_PER_RESPONSE);
        let big = format!("big={}", "x".repeat(MAX_COOKIE_SIZE));
        jar.store_response(&url("http://m.test/"), &fields(&[&big]));
        assert_eq!(jar.len(), MAX_COOKIES_PER_RESPONSE);
    }

    #[test]
    fn the_cookie_line_is_bounded() {
        let mut jar = CookieJar::new();
        let values: Vec<String> = (0..3)
            .map(|i| format!("k{i}={}", "v".repeat(3000)))
            .collect();
        let refs: Vec<&str> = values.iter().map(String::as_str).collect();
        jar.store_response(&url("http://b.test/"), &fields(&refs));
        let header = jar.cookie_header(&url("http://b.test/")).unwrap();
        assert!(header.len() <= MAX_COOKIE_HEADER);
        assert_eq!(header.matches('=').count(), 2);
    }

    #[test]
    fn json_and_netscape_round_trips() {
        let mut jar = CookieJar::new();
        jar.store_response(
            &url("http://r.test/"),
            &fields(&[
                "session=1",
                "kept=2; Max-Age=3600; HttpOnly",
                "wide=3; Domain=r.test",
            ]),
        );
        let mut json = Vec::new();
        jar.save(&mut json).unwrap();
        let back = CookieJar::load(&json[..]).unwrap();
        assert_eq!(back.len(), 3);
        let mut netscape = Vec::new();
        jar.save_netscape(&mut netscape).unwrap();
        let text = String::from_utf8(netscape.clone()).unwrap();
        assert!(text.starts_with("# Netscape HTTP Cookie File"), "{text}");
        assert!(
            text.contains("#HttpOnly_r.test\tFALSE\t/\tFALSE\t"),
            "{text}"
        );
        assert!(
            text.contains("r.test\tFALSE\t/\tFALSE\t0\tsession\t1"),
            "{text}"
        );
        assert!(
            text.contains(".r.test\tTRUE\t/\tFALSE\t0\twide\t3"),
            "{text}"
        );
        let back = CookieJar::load_any(&netscape[..]).unwrap();
        let header = back.cookie_header(&url("http://r.test/")).unwrap();
        for c in ["session=1", "kept=2", "wide=3"] {
            assert!(header.contains(c), "{header}");
        }
        let back = CookieJar::load_any(&json[..]).unwrap();
        assert_eq!(back.len(), 3);
    }

    #[test]
    fn not_a_jar() {
        let e = CookieJar::load(&b"[1, 2,\n oops"[..]).unwrap_err();
        assert!(matches!(e, CookieJarError::NotAJar { line: 2 }), "{e:?}");
        let e = CookieJar::load(&b"{\"a\": 1}"[..]).unwrap_err();
        assert!(matches!(e, CookieJarError::NotAJar { line: 1 }), "{e:?}");
        let e = CookieJar::load_any(&b"# comment\n\nthis is not\ta cookie\n"[..]).unwrap_err();
        assert!(matches!(e, CookieJarError::NotAJar { line: 3 }), "{e:?}");
    }
}
