//! Cookies: the `Set-Cookie` fields of a response parsed (the `cookie`
//! crate; Parse's `cookies`), and an opt-in jar across requests
//! (`cookie_store`: RFC 6265 domain and path matching, host-only cookies,
//! Secure only over https, expiry; the Public Suffix List from `psl`) with
//! curl's bounds, saved and loaded in
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
/// [`SystemTime`] by §5.1.1's cookie-date algorithm (every form it takes:
/// `Wed, 21 Oct 2015 07:28:00 GMT`, `Monday, 13-Jun-88 03:04:55 GMT`,
/// `Fri Feb 13 11:56:27 GMT 2132`..., an `Expires` it refuses is ignored,
/// the last one it takes counts), a negative `Max-Age` is zero (§5.2.2),
/// unknown attributes are ignored. Nothing is checked against a request
/// URL here: that is [`CookieJar::store_response`]'s job.
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
    let c = parse_raw(value)?;
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

/// A `Set-Cookie` value parsed by the `cookie` crate, its expiry-time
/// taken from the `Expires` attributes by RFC 6265 §5.1.1 instead of the
/// crate's three HTTP-date forms: the last `Expires` whose value is a
/// cookie-date counts, one that is not is ignored (§5.2.1).
fn parse_raw(value: &str) -> Option<RawCookie<'_>> {
    let mut c = RawCookie::parse(value).ok()?;
    let expires = value
        .split(';')
        .skip(1)
        .filter_map(|av| {
            let (name, v) = av.split_once('=')?;
            let wsp = |c: char| c == ' ' || c == '\t';
            name.trim_matches(wsp)
                .eq_ignore_ascii_case("expires")
                .then(|| cookie_date(v.trim_matches(wsp)))?
        })
        .last();
    match expires {
        Some(t) => c.set_expires(t),
        None => c.unset_expires(),
    }
    Some(c)
}

/// RFC 6265 §5.1.1's cookie-date algorithm: the date tokens (runs of
/// non-delimiters) are read in order, each taken as the first of time
/// (`hh:mm:ss`, 1-2 digits each), day of month (1-2 digits), month (its
/// first three letters, any case) and year (2-4 digits) it matches and
/// that is not found yet; anything after the digits of a token (or after a
/// month's three letters) is ignored, and so are other tokens (weekdays,
/// `GMT`). A year of 70-99 is 19xx, 0-69 20xx. `None` when a part is
/// missing or out of range (day 1-31, year from 1601, hour to 23, minute
/// and second to 59) or the date does not exist (30 February).
fn cookie_date(s: &str) -> Option<cookie::time::OffsetDateTime> {
    use cookie::time::{Date, Month, PrimitiveDateTime, Time};
    fn is_delimiter(b: u8) -> bool {
        matches!(b, 0x09 | 0x20..=0x2F | 0x3B..=0x40 | 0x5B..=0x60 | 0x7B..=0x7E)
    }
    /// The value of `token`'s leading digits when there are `min` to `max`
    /// of them (the grammar's `n*mDIGIT [ non-digit *OCTET ]`), and the rest.
    fn digits(token: &[u8], min: usize, max: usize) -> Option<(u32, &[u8])> {
        let n = token.iter().take_while(|b| b.is_ascii_digit()).count();
        if !(min..=max).contains(&n) {
            return None;
        }
        let value = token[..n]
            .iter()
            .fold(0, |v, d| v * 10 + u32::from(d - b'0'));
        Some((value, &token[n..]))
    }
    fn time(token: &[u8]) -> Option<(u32, u32, u32)> {
        let (h, rest) = digits(token, 1, 2)?;
        let (m, rest) = digits(rest.strip_prefix(b":")?, 1, 2)?;
        let (s, _) = digits(rest.strip_prefix(b":")?, 1, 2)?;
        Some((h, m, s))
    }
    const MONTHS: [&[u8; 3]; 12] = [
        b"jan", b"feb", b"mar", b"apr", b"may", b"jun", b"jul", b"aug", b"sep", b"oct", b"nov",
        b"dec",
    ];
    let (mut hms, mut day, mut month, mut year) = (None, None, None, None);
    for token in s.as_bytes().split(|&b| is_delimiter(b)) {
        if token.is_empty() {
            continue;
        }
        if hms.is_none() {
            if let Some(t) = time(token) {
                hms = Some(t);
                continue;
            }
        }
        if day.is_none() {
            if let Some((d, _)) = digits(token, 1, 2) {
                day = Some(d);
                continue;
            }
        }
        if month.is_none() {
            if let Some(m) = token
                .get(..3)
                .and_then(|p| MONTHS.iter().position(|m| p.eq_ignore_ascii_case(&m[..])))
            {
                month = Some(m);
                continue;
            }
        }
        if year.is_none() {
            if let Some((y, _)) = digits(token, 2, 4) {
                year = Some(y);
            }
        }
    }
    let ((hour, minute, second), day, month, year) = (hms?, day?, month?, year?);
    let year = match year {
        70..=99 => year + 1900,
        0..=69 => year + 2000,
        y => y,
    };
    if !(1..=31).contains(&day) || year < 1601 || hour > 23 || minute > 59 || second > 59 {
        return None;
    }
    let month = Month::try_from(u8::try_from(month + 1).ok()?).ok()?;
    let date =
        Date::from_calendar_date(i32::try_from(year).ok()?, month, u8::try_from(day).ok()?).ok()?;
    let time = Time::from_hms(
        u8::try_from(hour).ok()?,
        u8::try_from(minute).ok()?,
        u8::try_from(second).ok()?,
    )
    .ok()?;
    Some(PrimitiveDateTime::new(date, time).assume_utc())
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
        set_cookie_values(self.headers())
            .filter_map(parse_set_cookie)
            .collect()
    }
}

/// Whether `domain` (a Domain attribute as cookie_store keeps it:
/// lowercase ASCII, punycode for IDNs) is a public suffix: a rule of
/// Mozilla's Public Suffix List (ICANN and private sections, as browsers
/// use it; compiled into the `psl` crate) makes it one, a trailing dot
/// aside. A TLD the list does not name (`test`, `localhost`, `internal`) is
/// not one: only the list's implicit `*` rule would make it so, which
/// cookie_store and libcurl (with libpsl) do not apply either.
fn is_public_suffix(domain: &str) -> bool {
    psl::suffix(domain.as_bytes()).is_some_and(|s| s.is_known() && s == domain.as_bytes())
}

/// A cookie jar ([`crate::Settings::cookie_jar`]): what responses set,
/// sent back to the requests they match (RFC 6265 §5.3 and §5.4, by
/// `cookie_store`), with the Public Suffix List (§5.3 step 5, the `psl`
/// crate's copy): a `Domain` that is a public suffix (`com`, `co.uk`,
/// `github.io`) is ignored, unless it is the request's host, when the
/// cookie is that host's alone (host-only).
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
    /// cookie removes the one it names), and step 5 here: a cookie whose
    /// `Domain` is a public suffix is ignored, or host-only when that
    /// suffix is `url`'s host. curl's bounds apply: only the
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
            if let Some(c) = parse_raw(value) {
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
        let Ok(mut c) = StoredCookie::try_from_raw_cookie(raw, url) else {
            return;
        };
        // RFC 6265 §5.3 step 5: a Domain that is a public suffix is the
        // host's alone when it is the host, else the cookie is ignored.
        if let CookieDomain::Suffix(domain) = &c.domain {
            if is_public_suffix(domain) {
                if url.host_str() != Some(domain.as_str()) {
                    return;
                }
                c.domain = CookieDomain::HostOnly(domain.clone());
            }
        }
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

impl crate::CookieStore for Mutex<CookieJar> {
    fn store_response(&self, url: &Url, fields: &Fields) {
        self.lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .store_response(url, fields);
    }

    fn cookie_header(&self, url: &Url) -> Option<String> {
        self.lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .cookie_header(url)
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
    fn cookie_dates_of_rfc6265_section_5_1_1() {
        let at = |s: &str| cookie_date(s).map(|t| t.unix_timestamp());
        const NOV_6_1994: i64 = 784_111_777; // 1994-11-06 08:49:37 UTC
        const JUN_13_1988: i64 = 582_174_295; // 1988-06-13 03:04:55 UTC
        const OCT_21_2015: i64 = 1_445_412_480; // 2015-10-21 07:28:00 UTC
                                                // The three HTTP-date forms (RFC 9110 §5.6.7).
        assert_eq!(at("Sun, 06 Nov 1994 08:49:37 GMT"), Some(NOV_6_1994));
        assert_eq!(at("Sunday, 06-Nov-94 08:49:37 GMT"), Some(NOV_6_1994));
        assert_eq!(at("Sun Nov  6 08:49:37 1994"), Some(NOV_6_1994));
        // Forms the cookie crate refuses.
        assert_eq!(at("Monday, 13-Jun-1988 03:04:55 GMT"), Some(JUN_13_1988));
        assert_eq!(at("Fri Feb 13 11:56:27 GMT 2132"), Some(5_115_959_787));
        assert_eq!(at("13 jun 1988 3:4:55"), Some(JUN_13_1988));
        assert_eq!(at("1988-JUNE-13 03:04:55GMT"), Some(JUN_13_1988));
        assert_eq!(at("Jun 13th, 1988, 03:04:55 UTC"), Some(JUN_13_1988));
        // Weekdays and zones are ignored: the time is UTC.
        assert_eq!(at("Mon, 21 Oct 2015 07:28:00 GMT"), Some(OCT_21_2015));
        assert_eq!(at("Wed, 21 Oct 2015 07:28:00 +0200"), Some(OCT_21_2015));
        // Two-digit years: 70-99 are 19xx, 00-69 20xx.
        assert_eq!(at("Thu, 10-Sep-69 20:00:00 GMT"), Some(3_146_068_800));
        assert_eq!(at("Thu, 10-Sep-70 20:00:00 GMT"), Some(21_844_800));
        assert_eq!(at("Sat, 01-Jan-00 00:00:00 GMT"), Some(946_684_800));
        // The bounds.
        assert_eq!(at("1 Jan 1601 00:00:00"), Some(-11_644_473_600));
        assert_eq!(at("31 Dec 1600 23:59:59"), None);
        assert_eq!(at("Fri, 31 Dec 9999 23:59:59 GMT"), Some(253_402_300_799));
        assert_eq!(at("29 Feb 2000 23:59:59"), Some(951_868_799));
        for bad in [
            "30 Feb 2000 00:00:00", // no such date
            "0 Jan 2000 00:00:00",
            "32 Jan 2000 00:00:00",
            "1 Jan 2000 24:00:00",
            "1 Jan 2000 23:60:00",
            "1 Jan 2000 23:59:60",
            "Jun 1988 03:04:55",          // no day
            "13 Jun 03:04:55",            // no year
            "13 Jun 1988",                // no time
            "13 1988 03:04:55",           // no month
            "13 Jun 19880 03:04:55",      // a year of five digits
            "13 Jun 1988 003:04:55",      // a time field of three digits
            "Wed, 21 Oct 2015 07:28 GMT", // no seconds
            "",
            "99999999999999999999 Jun 1988 03:04:55",
        ] {
            assert_eq!(at(bad), None, "{bad:?}");
        }
        // A token is taken for the first part it matches: "100" is a year
        // (too early), so the later "1988" is ignored.
        assert_eq!(at("100 Jun 13 1988 03:04:55"), None);
    }

    #[test]
    fn expires_is_read_by_the_cookie_date_algorithm() {
        let expires = |v: &str| parse_set_cookie(v).unwrap().expires;
        assert_eq!(
            expires("a=b; Expires=Monday, 13-Jun-1988 03:04:55 GMT"),
            Some(unix_time(582_174_295))
        );
        assert_eq!(
            expires("a=b; path=/; expires = Fri Feb 13 11:56:27 GMT 2132 ;secure"),
            Some(unix_time(5_115_959_787))
        );
        // The last Expires that is a date counts; one that is not is ignored.
        assert_eq!(
            expires("a=b; Expires=Fri Feb 13 11:56:27 GMT 2132; Expires=soon"),
            Some(unix_time(5_115_959_787))
        );
        assert_eq!(
            expires("a=b; Expires=Wed, 21 Oct 2015 07:28:00 GMT; EXPIRES=13 Jun 88 3:4:55"),
            Some(unix_time(582_174_295))
        );
        // Before 1601 is not a cookie-date (the cookie crate takes it).
        assert_eq!(expires("a=b; Expires=Thu, 01 Jan 1500 00:00:00 GMT"), None);
        assert_eq!(expires("a=b; Expires="), None);
    }

    #[test]
    fn expires_forms_decide_what_the_jar_keeps() {
        let mut jar = CookieJar::new();
        let u = url("http://d.test/");
        jar.store_response(
            &u,
            &fields(&[
                "old=1",
                "late=2; Expires=Fri Feb 13 11:56:27 GMT 2132",
                "gone=3; Expires=Monday, 13-Jun-1988 03:04:55 GMT",
            ]),
        );
        assert_eq!(jar.cookie_header(&u).as_deref(), Some("late=2; old=1"));
        // An expiry in the past removes the cookie it names.
        jar.store_response(&u, &fields(&["old=; Expires=Mon Jun 13 03:04:55 1988 GMT"]));
        assert_eq!(jar.cookie_header(&u).as_deref(), Some("late=2"));
        let mut out = Vec::new();
        jar.save_netscape(&mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(
            text.ends_with("\nd.test\tFALSE\t/\tFALSE\t5115959787\tlate\t2\n"),
            "persistent, not a session cookie: {text}"
        );
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
        let pairs: Vec<(&str, &str)> = refs.iter().map(|v| ("Set-Cookie", *v)).collect();
        c.head = Some(crate::web::test_head(&pairs));
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
    fn a_public_suffix_domain_is_ignored_unless_it_is_the_host() {
        let mut jar = CookieJar::new();
        let from = |jar: &mut CookieJar, u: &str, set: &[&str]| {
            jar.store_response(&url(u), &fields(set));
        };
        // ICANN suffixes, however written; private ones; wildcard rules.
        from(
            &mut jar,
            "http://shop.example.com/",
            &["a=1; Domain=com", "b=2; Domain=.COM", "c=3; Domain=com."],
        );
        from(
            &mut jar,
            "http://www.example.co.uk/",
            &["d=4; Domain=co.uk"],
        );
        from(&mut jar, "http://me.github.io/", &["e=5; Domain=github.io"]);
        from(&mut jar, "http://www.foo.ck/", &["f=6; Domain=foo.ck"]); // *.ck
        from(&mut jar, "http://a.xn--p1ai/", &["g=7; Domain=xn--p1ai"]);
        from(&mut jar, "http://a.рф/", &["h=8; Domain=РФ"]);
        assert!(jar.is_empty(), "{:?}", jar.cookies());
        for u in [
            "http://shop.example.com/",
            "http://other.com/",
            "http://x.co.uk/",
        ] {
            assert_eq!(jar.cookie_header(&url(u)), None, "{u}");
        }
        // Below a suffix is fine: a registrable domain, the `!www.ck`
        // exception, a TLD the list does not name.
        from(
            &mut jar,
            "http://www.example.co.uk/",
            &["site=1; Domain=example.co.uk"],
        );
        from(&mut jar, "http://a.www.ck/", &["ck=2; Domain=www.ck"]);
        from(&mut jar, "http://a.test/", &["t=3; Domain=test"]);
        assert_eq!(
            jar.cookie_header(&url("http://other.example.co.uk/"))
                .as_deref(),
            Some("site=1")
        );
        assert_eq!(
            jar.cookie_header(&url("http://www.ck/")).as_deref(),
            Some("ck=2")
        );
        assert_eq!(
            jar.cookie_header(&url("http://b.test/")).as_deref(),
            Some("t=3")
        );
        // The suffix is the host: the cookie is that host's alone.
        let mut jar = CookieJar::new();
        from(&mut jar, "http://github.io/", &["own=1; Domain=github.io"]);
        from(&mut jar, "http://com/", &["tld=2; Domain=.com"]);
        assert_eq!(
            jar.cookie_header(&url("http://github.io/x")).as_deref(),
            Some("own=1")
        );
        assert_eq!(jar.cookie_header(&url("http://me.github.io/")), None);
        assert_eq!(
            jar.cookie_header(&url("http://com/")).as_deref(),
            Some("tld=2")
        );
        assert_eq!(jar.cookie_header(&url("http://a.com/")), None);
        let mut out = Vec::new();
        jar.save_netscape(&mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(
            text.contains("\ngithub.io\tFALSE\t/\tFALSE\t0\town\t1\n"),
            "{text}"
        );
        // A Netscape line for a public suffix: the suffix host's alone.
        let jar = CookieJar::load_netscape(&b".com\tTRUE\t/\tFALSE\t0\tn\tv\n"[..]).unwrap();
        assert_eq!(jar.cookie_header(&url("http://a.com/")), None);
        assert_eq!(
            jar.cookies(),
            [("n".into(), "v".into(), "com".into(), "/".into())]
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
