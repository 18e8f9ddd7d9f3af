//! Cookies: the `Set-Cookie` fields of a response parsed (the `cookie`
//! crate; Parse's `cookies`), and an opt-in jar across requests
//! (`cookie_store`: RFC 6265 domain and path matching, host-only cookies,
//! Secure only over https, expiry) with curl's bounds, saved and loaded in
//! JSON or curl's Netscape cookie-file format.

use std::convert::Infallible;
use std::fmt;
use std::io::{self, BufRead, Write};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use cookie_store::{
    Cookie as StoredCookie, CookieDomain, CookieExpiration, CookieStore, RawCookie,
};
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

/// `secs` from the Unix epoch (negative: before it); the epoch itself
/// should the platform's clock not reach that far.
fn unix_time(secs: i64) -> SystemTime {
    let span = Duration::from_secs(secs.unsigned_abs());
    if secs >= 0 {
        SystemTime::UNIX_EPOCH.checked_add(span)
    } else {
        SystemTime::UNIX_EPOCH.checked_sub(span)
    }
    .unwrap_or(SystemTime::UNIX_EPOCH)
}

/// Parse one `Set-Cookie` value (RFC 6265 §5.2, by the `cookie` crate):
/// `name=value` then `;`-separated attributes, names case-insensitive.
/// `Domain` loses its leading dot (§5.2.3), `Expires` becomes a
/// [`SystemTime`] (the date forms of §5.1.1), a negative `Max-Age` is
/// zero (§5.2.2), unknown attributes are ignored. Nothing is checked
/// against a request URL here: that is [`CookieJar::store_response`]'s
/// job.
///
/// `None` when the value is not a cookie (no `=`, an empty name).
///
/// # Examples
/// ```
/// # #[cfg(feature = "cookies")] {
/// let c = pollhttp::web::parse_set_cookie("id=7; Path=/; HttpOnly").unwrap();
/// assert_eq!((c.name.as_str(), c.value.as_str()), ("id", "7"));
/// assert!(c.http_only && !c.secure);
/// # }
/// ```
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
/// sent back to the requests they match (RFC 6265 §5.3 and §5.4, by
/// `cookie_store`; no public-suffix list, so a `Domain` like `com` from
/// `a.com` is kept, as curl without libpsl does).
///
/// Bounded as curl bounds its jar: 50 (`MAX_COOKIES_PER_RESPONSE`) cookies
/// read from one response, 4096 (`MAX_COOKIE_SIZE`) bytes of name and value,
/// 3000 (`MAX_COOKIES`) in all (when full, new cookies are dropped), a
/// `Cookie` line of at most 8190 (`MAX_COOKIE_HEADER`) bytes. Saved and
/// loaded as JSON ([`save`](Self::save)) or curl's Netscape file
/// ([`save_netscape`](Self::save_netscape)); [`load_any`](Self::load_any)
/// tells them apart.
///
/// # Examples
/// ```
/// # #[cfg(feature = "cookies")] {
/// use pollhttp::web::CookieJar;
///
/// let jar = CookieJar::load_netscape(
///     &b"# Netscape HTTP Cookie File\n.example.com\tTRUE\t/\tFALSE\t0\tsid\t42\n"[..],
/// )
/// .unwrap();
/// let url = url::Url::parse("http://www.example.com/").unwrap();
/// assert_eq!(jar.cookie_header(&url).as_deref(), Some("sid=42"));
/// # }
/// ```
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

    /// Store the cookies a response to `url` sets: RFC 6265 §5.3 by
    /// cookie_store (domain-match, host-only when there is no `Domain`,
    /// the default path, expiry by `Max-Age` over `Expires`; an expired
    /// cookie removes the one it names). curl's bounds apply: only the
    /// first 50 (`MAX_COOKIES_PER_RESPONSE`) `Set-Cookie` fields are read; a
    /// cookie whose name and value pass 4096 (`MAX_COOKIE_SIZE`) bytes, or whose
    /// name or value holds a control character (RFC 6265bis §5.6; a tab
    /// would break the Netscape file), is ignored; once the jar holds
    /// 3000 (`MAX_COOKIES`) (expired ones are purged first), new cookies are
    /// dropped while updates and removals of stored ones still apply.
    /// Fields that are not UTF-8 or not cookies are skipped.
    ///
    /// Costs one pass over the jar per cookie stored.
    pub fn store_response(&mut self, url: &Url, fields: &Fields) {
        for value in set_cookie_values(fields) {
            if let Ok(c) = RawCookie::parse(value) {
                self.insert(&c, url);
            }
        }
    }

    /// Store one cookie received from `url`, within the bounds.
    fn insert(&mut self, raw: &RawCookie<'_>, url: &Url) {
        let (name, value) = (raw.name(), raw.value());
        if name.len() + value.len() > MAX_COOKIE_SIZE
            || name.chars().chain(value.chars()).any(char::is_control)
        {
            return;
        }
        let Ok(c) = StoredCookie::try_from_raw_cookie(raw, url) else {
            return;
        };
        if self.has_room_for(&c) {
            let _ = self.store.insert(c.into_owned(), url);
        }
    }

    /// Whether `c` may go in: the jar is not full, or `c` replaces (or
    /// removes) a stored cookie. Purges expired cookies when full.
    fn has_room_for(&mut self, c: &StoredCookie<'_>) -> bool {
        if self.store.iter_any().count() < MAX_COOKIES
            || self
                .store
                .contains_any(&String::from(&c.domain), &c.path, c.name())
        {
            return true;
        }
        let expired: Vec<(String, String, String)> = self
            .store
            .iter_any()
            .filter(|c| c.is_expired())
            .map(|c| {
                (
                    String::from(&c.domain),
                    String::from(&c.path),
                    c.name().to_string(),
                )
            })
            .collect();
        for (domain, path, name) in &expired {
            self.store.remove(domain, path, name);
        }
        self.store.iter_any().count() < MAX_COOKIES
    }

    /// The `Cookie` field value for a request to `url`: `name=value`
    /// pairs of the unexpired cookies that match it now (RFC 6265 §5.4:
    /// domain-match or the same host for host-only cookies, path-match —
    /// `/a` matches `/a` and `/a/b`, not `/ab` — Secure only over https),
    /// longer paths first (§5.4 step 2; then by name, as cookie_store keeps
    /// no creation time), joined by `; `. At most 8190 (`MAX_COOKIE_HEADER`)
    /// bytes: a cookie that would pass it is left out (a shorter one after
    /// it may still fit). `None` when no cookie matches.
    pub fn cookie_header(&self, url: &Url) -> Option<String> {
        let mut matches = self.store.matches(url);
        matches.sort_by(|a, b| {
            b.path
                .len()
                .cmp(&a.path.len())
                .then_with(|| a.name().cmp(b.name()))
        });
        let mut out = String::new();
        for c in matches {
            let (name, value) = c.name_value();
            let sep = if out.is_empty() { 0 } else { 2 };
            if out.len() + sep + name.len() + 1 + value.len() > MAX_COOKIE_HEADER {
                continue;
            }
            if sep > 0 {
                out.push_str("; ");
            }
            out.push_str(name);
            out.push('=');
            out.push_str(value);
        }
        (!out.is_empty()).then_some(out)
    }

    /// How many unexpired cookies the jar holds. Costs a pass over the jar.
    pub fn len(&self) -> usize {
        self.store.iter_unexpired().count()
    }

    /// Whether the jar holds no unexpired cookie.
    pub fn is_empty(&self) -> bool {
        self.store.iter_unexpired().next().is_none()
    }

    /// Forget every cookie.
    pub fn clear(&mut self) {
        self.store.clear();
    }

    /// The unexpired cookies as `(name, value, domain, path)`, in no set
    /// order. The domain is the host for a host-only cookie, else the
    /// `Domain` attribute without its leading dot.
    pub fn cookies(&self) -> Vec<(String, String, String, String)> {
        self.store
            .iter_unexpired()
            .map(|c| {
                (
                    c.name().to_string(),
                    c.value().to_string(),
                    String::from(&c.domain),
                    String::from(&c.path),
                )
            })
            .collect()
    }

    /// Save the unexpired cookies, session cookies included (as curl's
    /// `-c` does), in cookie_store's JSON format: one array of cookies
    /// (what `cookie_store::serde::json::save` writes, which
    /// `cookie_store::serde::json::load` reads).
    ///
    /// # Errors
    /// Writing fails.
    pub fn save(&self, w: &mut impl Write) -> io::Result<()> {
        let cookies: Vec<&StoredCookie<'static>> = self.store.iter_unexpired().collect();
        serde_json::to_writer_pretty(&mut *w, &cookies)?;
        writeln!(w)
    }

    /// Load a jar saved by [`save`](Self::save). Expired cookies are
    /// dropped, and cookies past 3000 (`MAX_COOKIES`).
    ///
    /// # Errors
    /// [`CookieJarError::Io`] when reading fails; [`CookieJarError::NotAJar`]
    /// with the line (from 1) where the input stops being a JSON array of
    /// cookies (bad JSON, or a value that is not a cookie).
    pub fn load(mut r: impl BufRead) -> Result<CookieJar, CookieJarError> {
        let mut bytes = Vec::new();
        r.read_to_end(&mut bytes).map_err(CookieJarError::Io)?;
        CookieJar::from_json(&bytes)
    }

    fn from_json(bytes: &[u8]) -> Result<CookieJar, CookieJarError> {
        let cookies: Vec<StoredCookie<'static>> =
            serde_json::from_slice(bytes).map_err(|e| CookieJarError::NotAJar {
                line: e.line().max(1),
            })?;
        let unexpired = cookies
            .into_iter()
            .filter(|c| !c.is_expired())
            .take(MAX_COOKIES)
            .map(Ok::<_, Infallible>);
        let Ok(store) = CookieStore::from_cookies(unexpired, false);
        Ok(CookieJar { store })
    }

    /// Save the unexpired cookies in curl's Netscape cookie-file format
    /// (what `curl -c FILE` writes): a `# Netscape HTTP Cookie File`
    /// header, then one line per cookie of seven tab-separated fields:
    /// domain (with a leading dot when it covers subdomains), include
    /// subdomains (`TRUE` for a `Domain` cookie, `FALSE` for a host-only
    /// one), path, secure (`TRUE`/`FALSE`), expiry (Unix seconds; `0` for
    /// a session cookie), name, value. An HttpOnly cookie's line starts
    /// with `#HttpOnly_`. Session cookies are saved too.
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
            let path = String::from(&c.path);
            if path.chars().any(char::is_control) {
                continue; // would break the line
            }
            let expiry = match &c.expires {
                CookieExpiration::AtUtc(t) => t.unix_timestamp().max(1),
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
                "{prefix}{domain}\t{sub}\t{path}\t{secure}\t{expiry}\t{}\t{}",
                c.name(),
                c.value()
            )?;
        }
        Ok(())
    }

    /// Load curl's Netscape cookie-file format (what `curl -b FILE`
    /// reads): blank lines and `#` comments are skipped, but `#HttpOnly_`
    /// lines are cookies; every other line is seven tab-separated fields
    /// as [`save_netscape`](Self::save_netscape) writes them (six, with an
    /// empty value, as curl accepts too). Expiry `0` is a session cookie;
    /// expired cookies, ones the cookie rules refuse, and ones past the
    /// jar's bounds are dropped.
    ///
    /// # Errors
    /// [`CookieJarError::Io`] when reading fails; [`CookieJarError::NotAJar`]
    /// with the first line (from 1) that is not a cookie line: the wrong
    /// number of fields, an expiry that is not a number, a domain that is
    /// not a host, or not UTF-8.
    pub fn load_netscape(mut r: impl BufRead) -> Result<CookieJar, CookieJarError> {
        let mut bytes = Vec::new();
        r.read_to_end(&mut bytes).map_err(CookieJarError::Io)?;
        CookieJar::from_netscape(&bytes)
    }

    fn from_netscape(bytes: &[u8]) -> Result<CookieJar, CookieJarError> {
        let mut jar = CookieJar::new();
        for (i, line) in bytes.split(|&b| b == b'\n').enumerate() {
            let bad = CookieJarError::NotAJar { line: i + 1 };
            let line = std::str::from_utf8(line).map_err(|_| bad)?;
            let line = line.strip_suffix('\r').unwrap_or(line);
            jar.netscape_line(line)
                .ok_or(CookieJarError::NotAJar { line: i + 1 })?;
        }
        Ok(jar)
    }

    /// Store one Netscape line's cookie; `None` when it is not a cookie
    /// line (blank lines and comments are `Some`).
    fn netscape_line(&mut self, line: &str) -> Option<()> {
        let (line, http_only) = match line.strip_prefix("#HttpOnly_") {
            Some(rest) => (rest, true),
            None if line.trim().is_empty() || line.starts_with('#') => return Some(()),
            None => (line, false),
        };
        let fields: Vec<&str> = line.split('\t').collect();
        let (domain, sub, path, secure, expiry, name, value) = match fields[..] {
            [d, s, p, sec, e, n, v] => (d, s, p, sec, e, n, v),
            [d, s, p, sec, e, n] => (d, s, p, sec, e, n, ""),
            _ => return None,
        };
        let expiry: i64 = expiry.trim().parse().ok()?;
        let host = domain.trim_start_matches('.');
        let secure = secure.eq_ignore_ascii_case("TRUE");
        let mut url = Url::parse(&format!(
            "{}://{host}/",
            if secure { "https" } else { "http" }
        ))
        .ok()?;
        url.host_str()?;
        url.set_path(path);
        let mut c = RawCookie::build((name.to_string(), value.to_string()))
            .path(path.to_string())
            .secure(secure)
            .http_only(http_only);
        if sub.eq_ignore_ascii_case("TRUE") || domain.starts_with('.') {
            c = c.domain(host.to_string());
        }
        if expiry > 0 {
            c = c.expires(cookie::time::OffsetDateTime::from_unix_timestamp(expiry).ok()?);
        }
        self.insert(&c.build(), &url);
        Some(())
    }

    /// Load either format, told apart by the first line that is not
    /// blank: one starting with `[` or `{` is JSON ([`load`](Self::load)),
    /// anything else Netscape ([`load_netscape`](Self::load_netscape):
    /// `#` comments or seven tab-separated fields). What `fetch -b FILE`
    /// needs.
    ///
    /// # Errors
    /// As [`load`](Self::load) and [`load_netscape`](Self::load_netscape).
    pub fn load_any(mut r: impl BufRead) -> Result<CookieJar, CookieJarError> {
        let mut bytes = Vec::new();
        r.read_to_end(&mut bytes).map_err(CookieJarError::Io)?;
        let first = bytes
            .split(|&b| b == b'\n')
            .map(<[u8]>::trim_ascii)
            .find(|l| !l.is_empty());
        if first.is_some_and(|l| l.starts_with(b"[") || l.starts_with(b"{")) {
            CookieJar::from_json(&bytes)
        } else {
            CookieJar::from_netscape(&bytes)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(set_cookies: &[&str]) -> Fields {
        let pairs: Vec<(&str, &str)> = set_cookies.iter().map(|v| ("Set-Cookie", *v)).collect();
        crate::web::test_fields(&pairs)
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
        assert_eq!(parse_set_cookie("=nameless"), None);
        let c = parse_set_cookie("a=b; SameSite=strict; Expires=Thu, 01 Jan 1970 00:00:00 GMT")
            .unwrap();
        assert_eq!(c.same_site, Some(SameSite::Strict));
        assert_eq!(c.expires, Some(SystemTime::UNIX_EPOCH));
        assert_eq!((c.domain, c.path, c.max_age), (None, None, None));
        let c = parse_set_cookie("a=b; SameSite=None; Secure; Max-Age=60").unwrap();
        assert_eq!(c.same_site, Some(SameSite::None));
        assert_eq!(c.max_age, Some(Duration::from_secs(60)));
    }

    #[test]
    fn response_cookies_are_bounded_and_skip_garbage() {
        let mut set: Vec<String> = vec!["garbage".into()];
        set.extend((0..60).map(|i| format!("c{i}={i}")));
        let refs: Vec<&str> = set.iter().map(String::as_str).collect();
        let mut c = Completed::failed(
            crate::RequestResult::Success,
            crate::RequestFailure::WorkerGone,
        );
        c.headers = fields(&refs);
        let cookies = c.cookies();
        assert_eq!(cookies.len(), MAX_COOKIES_PER_RESPONSE - 1);
        assert_eq!(
            (cookies[0].name.as_str(), cookies[0].value.as_str()),
            ("c0", "0")
        );
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
        let ab = jar.cookie_header(&url("http://a.example.com/ab")).unwrap();
        assert!(ab.contains("host=1") && !ab.contains("p=3"), "{ab}");
        assert_eq!(jar.cookie_header(&url("http://example.org/a")), None);
        let (name, _, domain, path) = jar.cookies().into_iter().find(|c| c.0 == "p").unwrap();
        assert_eq!(
            (name, domain, path),
            ("p".into(), "a.example.com".into(), "/a".into())
        );
    }

    #[test]
    fn longer_paths_come_first() {
        let mut jar = CookieJar::new();
        jar.store_response(
            &url("http://o.test/"),
            &fields(&["z=1; Path=/", "y=2; Path=/a/b", "x=3; Path=/a"]),
        );
        assert_eq!(
            jar.cookie_header(&url("http://o.test/a/b/c")).as_deref(),
            Some("y=2; x=3; z=1")
        );
    }

    #[test]
    fn a_full_jar_drops_new_cookies_but_takes_updates() {
        let mut jar = CookieJar::new();
        for batch in 0..MAX_COOKIES / MAX_COOKIES_PER_RESPONSE {
            let set: Vec<String> = (0..MAX_COOKIES_PER_RESPONSE)
                .map(|i| format!("c{batch}_{i}=v"))
                .collect();
            let refs: Vec<&str> = set.iter().map(String::as_str).collect();
            jar.store_response(&url("http://f.test/"), &fields(&refs));
        }
        assert_eq!(jar.len(), MAX_COOKIES);
        let u = url("http://f.test/");
        jar.store_response(&u, &fields(&["new=1", "c0_0=updated"]));
        assert_eq!(jar.len(), MAX_COOKIES);
        let has =
            |jar: &CookieJar, n: &str, v: &str| jar.cookies().iter().any(|c| c.0 == n && c.1 == v);
        assert!(!has(&jar, "new", "1") && has(&jar, "c0_0", "updated"));
        // An expired cookie frees its place for a new one.
        jar.store_response(&u, &fields(&["c0_1=x; Max-Age=0"]));
        assert_eq!(jar.len(), MAX_COOKIES - 1);
        jar.store_response(&u, &fields(&["new=1"]));
        assert_eq!(jar.len(), MAX_COOKIES);
        assert!(has(&jar, "new", "1"));
        assert!(jar.cookie_header(&u).unwrap().len() <= MAX_COOKIE_HEADER);
        jar.clear();
        assert!(jar.is_empty());
    }

    #[test]
    fn control_characters_are_refused() {
        let mut jar = CookieJar::new();
        jar.store_response(&url("http://t.test/"), &fields(&["a=b\tc", "ok=1"]));
        assert_eq!(
            jar.cookie_header(&url("http://t.test/")).as_deref(),
            Some("ok=1")
        );
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
    fn netscape_details() {
        let file = b"# Netscape HTTP Cookie File\r\n\
            \r\n\
            #HttpOnly_h.test\tFALSE\t/p\tTRUE\t0\tsec\t1\r\n\
            h.test\tFALSE\t/\tFALSE\t0\tempty\r\n\
            h.test\tFALSE\t/\tFALSE\t1\told\tgone\r\n\
            h.test\tFALSE\t/\tFALSE\t4102444800\tlate\tv;x\r\n";
        let jar = CookieJar::load_netscape(&file[..]).unwrap();
        assert_eq!(jar.len(), 3, "{:?}", jar.cookies());
        assert_eq!(
            jar.cookie_header(&url("http://h.test/p")).as_deref(),
            Some("empty=; late=v;x"),
            "the Secure cookie stays off http; the expired one is dropped"
        );
        let header = jar.cookie_header(&url("https://h.test/p")).unwrap();
        assert!(header.starts_with("sec=1"), "{header}");
        let mut out = Vec::new();
        jar.save_netscape(&mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(
            text.contains("#HttpOnly_h.test\tFALSE\t/p\tTRUE\t0\tsec\t1\n"),
            "{text}"
        );
        assert!(text.contains("\t4102444800\tlate\tv;x\n"), "{text}");
        assert!(text.contains("\t0\tempty\t\n"), "{text}");
    }

    #[test]
    fn not_a_jar() {
        let e = CookieJar::load(&b"[\n  {\"raw_cookie\": 5}\n]"[..]).unwrap_err();
        assert!(matches!(e, CookieJarError::NotAJar { line: 2 }), "{e:?}");
        let e = CookieJar::load(&b"[1, 2,\n oops"[..]).unwrap_err();
        assert!(matches!(e, CookieJarError::NotAJar { line: 1 }), "{e:?}");
        let e = CookieJar::load(&b"{\"a\": 1}"[..]).unwrap_err();
        assert!(matches!(e, CookieJarError::NotAJar { line: 1 }), "{e:?}");
        let e = CookieJar::load(&b""[..]).unwrap_err();
        assert!(matches!(e, CookieJarError::NotAJar { line: 1 }), "{e:?}");
        let e = CookieJar::load_any(&b"# comment\n\nthis is not\ta cookie\n"[..]).unwrap_err();
        assert!(matches!(e, CookieJarError::NotAJar { line: 3 }), "{e:?}");
        let e = CookieJar::load_any(&b"h\tFALSE\t/\tFALSE\tsoon\tn\tv\n"[..]).unwrap_err();
        assert!(matches!(e, CookieJarError::NotAJar { line: 1 }), "{e:?}");
        let e = CookieJar::load_netscape(&b"\n\xff\xfe\tFALSE\n"[..]).unwrap_err();
        assert!(matches!(e, CookieJarError::NotAJar { line: 2 }), "{e:?}");
        assert!(e.to_string().contains("line 2"), "{e}");
        assert!(CookieJar::load_any(&b"\n\n"[..]).unwrap().is_empty());
        let io = CookieJarError::Io(io::Error::other("disk"));
        assert!(std::error::Error::source(&io).is_some());
    }
}
