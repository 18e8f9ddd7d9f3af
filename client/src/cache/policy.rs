//! The rules of a private cache (RFC 9111, as a browser's; RFC 5861's
//! `stale-while-revalidate` and `stale-if-error`), as pure functions over a
//! stored response's metadata ([`Stored`]), the request, and the time.
//!
//! Time here is wall-clock ([`SystemTime`], passed in): HTTP dates (`Date`,
//! `Expires`, `Last-Modified`) are wall-clock, and a disk cache outlives the
//! process, so a monotonic clock cannot carry freshness across runs.
//!
//! Why not the `http-cache-semantics` crate (evaluated): its Cache-Control
//! parser splits on every comma and takes quoted values by trimming quotes
//! (its own TODOs say so), it has no RFC 5861, it is passively maintained,
//! and it would bring the `http` and `time` crates into the core for types
//! this crate already has. These rules are a few hundred lines over the
//! fields proto already parsed, each tested below against the RFC's text.

use std::time::{Duration, SystemTime};

use url::Url;

/// A field line as a cache keeps it: name as received, value bytes.
pub(crate) type FieldLine = (String, Vec<u8>);

/// The first value of field `name` (case-insensitive).
pub(crate) fn field<'a>(fields: &'a [FieldLine], name: &str) -> Option<&'a [u8]> {
    fields
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_slice())
}

/// Every value of field `name`, in order.
fn fields_named<'a>(fields: &'a [FieldLine], name: &'a str) -> impl Iterator<Item = &'a [u8]> + 'a {
    fields
        .iter()
        .filter(move |(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_slice())
}

/// A request's field as text (request fields are UTF-8 strings here).
fn request_field<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

/// The directives of a `Cache-Control` field (RFC 9111 §5.2), split on
/// commas outside quoted strings, names case-insensitive, a quoted
/// argument unquoted (§5.2: both forms are accepted).
fn directives(values: impl Iterator<Item = impl AsRef<[u8]>>) -> Vec<(String, Option<String>)> {
    let mut out = Vec::new();
    for value in values {
        let value = String::from_utf8_lossy(value.as_ref()).into_owned();
        let mut rest = value.as_str();
        while !rest.is_empty() {
            // One element: up to a comma outside quotes.
            let mut in_quotes = false;
            let mut escaped = false;
            let mut end = rest.len();
            for (i, c) in rest.char_indices() {
                match c {
                    _ if escaped => escaped = false,
                    '\\' if in_quotes => escaped = true,
                    '"' => in_quotes = !in_quotes,
                    ',' if !in_quotes => {
                        end = i;
                        break;
                    }
                    _ => {}
                }
            }
            let element = rest[..end].trim();
            rest = rest.get(end + 1..).unwrap_or("");
            if element.is_empty() {
                continue;
            }
            let (name, arg) = match element.split_once('=') {
                Some((n, a)) => (n.trim(), Some(unquote(a.trim()))),
                None => (element, None),
            };
            out.push((name.to_ascii_lowercase(), arg));
        }
    }
    out
}

/// A quoted-string's content (RFC 9110 §5.6.4), or a token as it is.
fn unquote(s: &str) -> String {
    let Some(inner) = s.strip_prefix('"').and_then(|s| s.strip_suffix('"')) else {
        return s.to_string();
    };
    let mut out = String::with_capacity(inner.len());
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            if let Some(next) = chars.next() {
                out.push(next);
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// A delta-seconds argument (RFC 9111 §1.2.2): digits only; a value too
/// large for the type is the largest (2^31 is the RFC's floor for "too
/// large"). `None` for anything else.
fn delta_seconds(arg: Option<&str>) -> Option<u64> {
    let arg = arg?;
    if arg.is_empty() || !arg.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(arg.parse::<u64>().unwrap_or(u64::MAX).min(1 << 31))
}

/// A response's `Cache-Control` directives (RFC 9111 §5.2.2) and RFC
/// 5861's two extensions.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct ResponseDirectives {
    pub(crate) max_age: Option<u64>,
    pub(crate) no_store: bool,
    /// `no-cache` in either form (a field-list form is treated as the
    /// unqualified one, which §5.2.2.4 allows).
    pub(crate) no_cache: bool,
    pub(crate) must_revalidate: bool,
    pub(crate) public: bool,
    pub(crate) private: bool,
    pub(crate) immutable: bool,
    pub(crate) stale_while_revalidate: Option<u64>,
    pub(crate) stale_if_error: Option<u64>,
    /// A freshness directive appeared twice with different values, or
    /// with an invalid argument: the response is treated as stale
    /// (§4.2.1, §5.2: "SHOULD consider ... stale").
    pub(crate) conflicting: bool,
}

impl ResponseDirectives {
    pub(crate) fn of(fields: &[FieldLine]) -> ResponseDirectives {
        let mut d = ResponseDirectives::default();
        for (name, arg) in directives(fields_named(fields, "cache-control")) {
            let arg = arg.as_deref();
            match name.as_str() {
                "max-age" => match (delta_seconds(arg), d.max_age) {
                    (Some(v), None) => d.max_age = Some(v),
                    (Some(v), Some(old)) if v == old => {}
                    _ => d.conflicting = true,
                },
                "no-store" => d.no_store = true,
                "no-cache" => d.no_cache = true,
                "must-revalidate" | "proxy-revalidate" => d.must_revalidate = true,
                "public" => d.public = true,
                "private" => d.private = true,
                "immutable" => d.immutable = true,
                "stale-while-revalidate" => d.stale_while_revalidate = delta_seconds(arg),
                "stale-if-error" => d.stale_if_error = delta_seconds(arg),
                _ => {} // s-maxage and others: a shared cache's, or unknown (§5.2.3)
            }
        }
        d
    }
}

/// A request's `Cache-Control` directives (RFC 9111 §5.2.1), with
/// `Pragma: no-cache` when there is no `Cache-Control` (§5.4).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct RequestDirectives {
    pub(crate) max_age: Option<u64>,
    /// `max-stale` without an argument: any staleness is accepted.
    pub(crate) max_stale: Option<u64>,
    pub(crate) min_fresh: Option<u64>,
    pub(crate) no_cache: bool,
    pub(crate) no_store: bool,
    pub(crate) only_if_cached: bool,
}

impl RequestDirectives {
    pub(crate) fn of(headers: &[(String, String)]) -> RequestDirectives {
        let mut d = RequestDirectives::default();
        let values = headers
            .iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case("cache-control"))
            .map(|(_, v)| v.as_bytes());
        let mut any = false;
        for (name, arg) in directives(values) {
            any = true;
            let arg = arg.as_deref();
            match name.as_str() {
                "max-age" => d.max_age = delta_seconds(arg),
                "max-stale" => d.max_stale = Some(delta_seconds(arg).unwrap_or(u64::MAX)),
                "min-fresh" => d.min_fresh = delta_seconds(arg),
                "no-cache" => d.no_cache = true,
                "no-store" => d.no_store = true,
                "only-if-cached" => d.only_if_cached = true,
                _ => {}
            }
        }
        if !any {
            let pragma = request_field(headers, "pragma").unwrap_or("");
            d.no_cache = pragma
                .split(',')
                .any(|p| p.trim().eq_ignore_ascii_case("no-cache"));
        }
        d
    }
}

/// Status codes "heuristically cacheable" (RFC 9110 §15.1): storable and
/// given a heuristic lifetime without explicit freshness.
fn heuristically_cacheable(status: u16) -> bool {
    matches!(
        status,
        200 | 203 | 204 | 206 | 300 | 301 | 308 | 404 | 405 | 410 | 414 | 501
    )
}

/// Status codes this cache understands well enough to store (RFC 9111
/// §3: "the response status code is final ... understood"); a partial
/// 206 is never stored (a cache that does not combine ranges; §3.3 allows
/// that).
fn understood(status: u16) -> bool {
    heuristically_cacheable(status) && status != 206
        || matches!(status, 302 | 303 | 307 | 403 | 500 | 502 | 503 | 504)
}

/// Why a response was not stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum NotStored {
    /// Only GET responses are stored.
    Method,
    /// A status the cache does not store (partial, interim, unknown).
    Status,
    /// `Cache-Control: no-store` on the request or the response.
    NoStore,
    /// A request with `Authorization` and a response that does not allow
    /// storing it (§3.5).
    Authorization,
    /// `Vary: *`: no later request can match (§4.1).
    VaryStar,
    /// No explicit freshness, no validator, and a status that is not
    /// heuristically cacheable: nothing could ever use it.
    Useless,
}

/// Whether a response may be stored by a private cache (RFC 9111 §3).
pub(crate) fn storable(
    method: &str,
    request: &[(String, String)],
    status: u16,
    fields: &[FieldLine],
) -> Result<(), NotStored> {
    if method != "GET" {
        return Err(NotStored::Method);
    }
    if !understood(status) {
        return Err(NotStored::Status);
    }
    let d = ResponseDirectives::of(fields);
    if d.no_store || RequestDirectives::of(request).no_store {
        return Err(NotStored::NoStore);
    }
    if request_field(request, "authorization").is_some() && !(d.public || d.must_revalidate) {
        return Err(NotStored::Authorization);
    }
    if vary_names(fields).any(|n| n == "*") {
        return Err(NotStored::VaryStar);
    }
    let explicit =
        d.max_age.is_some() || field(fields, "expires").is_some() || d.public || d.private;
    let validator = field(fields, "etag").is_some() || field(fields, "last-modified").is_some();
    if !(explicit || heuristically_cacheable(status) || validator) {
        return Err(NotStored::Useless);
    }
    Ok(())
}

/// The field names listed in `Vary`, lowercase.
fn vary_names(fields: &[FieldLine]) -> impl Iterator<Item = String> + '_ {
    fields_named(fields, "vary").flat_map(|v| {
        String::from_utf8_lossy(v)
            .split(',')
            .map(|n| n.trim().to_ascii_lowercase())
            .filter(|n| !n.is_empty())
            .collect::<Vec<_>>()
    })
}

/// The value of a selecting field in a request, normalised for comparison
/// (RFC 9111 §4.1: values combined in order, whitespace around commas
/// removed); `None` when absent.
fn selecting_value(request: &[(String, String)], name: &str) -> Option<String> {
    let mut values = request
        .iter()
        .filter(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
        .peekable();
    values.peek()?;
    let joined: Vec<&str> = values.flat_map(|v| v.split(',')).map(str::trim).collect();
    Some(joined.join(","))
}

/// The request's values of the response's `Vary` fields, to keep with the
/// stored response.
pub(crate) fn selecting_fields(
    request: &[(String, String)],
    response: &[FieldLine],
) -> Vec<(String, Option<String>)> {
    vary_names(response)
        .map(|n| {
            let v = selecting_value(request, &n);
            (n, v)
        })
        .collect()
}

/// What a cache keeps about one stored response besides its body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Stored {
    /// When the request that got it was sent (§4.2.3 `request_time`).
    pub(crate) request_time: SystemTime,
    /// When its head arrived (§4.2.3 `response_time`).
    pub(crate) response_time: SystemTime,
    pub(crate) status: u16,
    /// Its reason phrase.
    pub(crate) reason: String,
    /// The response's field lines (framing fields excepted: the body is
    /// stored whole, its length known).
    pub(crate) fields: Vec<FieldLine>,
    /// The selecting fields of the request that stored it (§4.1).
    pub(crate) vary: Vec<(String, Option<String>)>,
}

fn http_date(fields: &[FieldLine], name: &str) -> Option<SystemTime> {
    let v = std::str::from_utf8(field(fields, name)?).ok()?;
    httpdate::parse_http_date(v.trim()).ok()
}

impl Stored {
    fn directives(&self) -> ResponseDirectives {
        ResponseDirectives::of(&self.fields)
    }

    /// The freshness lifetime (RFC 9111 §4.2.1): `max-age`, else
    /// `Expires` minus `Date` (an invalid `Expires` is in the past), else
    /// a heuristic of 10% of the time since `Last-Modified` (§4.2.2) for
    /// a heuristically cacheable status or an explicit `public`, else
    /// zero. Conflicting directives make it zero.
    pub(crate) fn freshness_lifetime(&self) -> Duration {
        let d = self.directives();
        if d.conflicting {
            return Duration::ZERO;
        }
        if let Some(s) = d.max_age {
            return Duration::from_secs(s);
        }
        let date = http_date(&self.fields, "date").unwrap_or(self.response_time);
        if field(&self.fields, "expires").is_some() {
            return http_date(&self.fields, "expires")
                .and_then(|e| e.duration_since(date).ok())
                .unwrap_or(Duration::ZERO);
        }
        if heuristically_cacheable(self.status) || d.public {
            if let Some(lm) = http_date(&self.fields, "last-modified") {
                if let Ok(since) = date.duration_since(lm) {
                    return since / 10;
                }
            }
        }
        Duration::ZERO
    }

    /// The current age (RFC 9111 §4.2.3) at `now`.
    pub(crate) fn current_age(&self, now: SystemTime) -> Duration {
        let date = http_date(&self.fields, "date").unwrap_or(self.response_time);
        let apparent_age = self
            .response_time
            .duration_since(date)
            .unwrap_or(Duration::ZERO);
        // One Age of delta-seconds, or none; anything else (a list, two
        // lines, a sign, a fraction, a parameter) is invalid, and a response
        // with an invalid Age is taken as stale (§5.1): as old as an age
        // gets (2^31 s, §1.2.2).
        let ages: Vec<&[u8]> = fields_named(&self.fields, "age").collect();
        let age_value = match ages.as_slice() {
            [] => Some(0),
            [one] => std::str::from_utf8(one)
                .ok()
                .and_then(|v| delta_seconds(Some(v.trim()))),
            _ => None,
        }
        .map_or(Duration::from_secs(1 << 31), Duration::from_secs);
        let response_delay = self
            .response_time
            .duration_since(self.request_time)
            .unwrap_or(Duration::ZERO);
        let corrected_age_value = age_value + response_delay;
        let corrected_initial_age = apparent_age.max(corrected_age_value);
        let resident_time = now
            .duration_since(self.response_time)
            .unwrap_or(Duration::ZERO);
        corrected_initial_age + resident_time
    }

    /// Whether the request's selecting fields match the stored ones (§4.1).
    pub(crate) fn matches(&self, request: &[(String, String)]) -> bool {
        self.vary
            .iter()
            .all(|(name, value)| selecting_value(request, name) == *value)
    }

    /// The conditional fields that revalidate it (§4.3.1): `If-None-Match`
    /// with its entity tag, `If-Modified-Since` with its `Last-Modified`.
    pub(crate) fn conditional_fields(&self) -> Vec<(String, String)> {
        let mut out = Vec::new();
        if let Some(etag) = field(&self.fields, "etag").and_then(|v| std::str::from_utf8(v).ok()) {
            out.push(("If-None-Match".to_string(), etag.trim().to_string()));
        }
        if let Some(lm) =
            field(&self.fields, "last-modified").and_then(|v| std::str::from_utf8(v).ok())
        {
            out.push(("If-Modified-Since".to_string(), lm.trim().to_string()));
        }
        out
    }

    /// The `Age` to send with it at `now`, in whole seconds (§5.1).
    pub(crate) fn age_seconds(&self, now: SystemTime) -> u64 {
        self.current_age(now).as_secs()
    }

    /// Freshen it with a `304 Not Modified`'s fields (§4.3.4): each field
    /// the 304 carries replaces the stored ones of that name, except
    /// `Content-Length` (§3.2) and the fields that describe the stored
    /// body (`Content-Encoding`, `Content-Range`, `Content-MD5`,
    /// `Transfer-Encoding`, and its `ETag`: the 304 answered a condition on
    /// the stored entity tag, so that tag still names the stored body; the
    /// cache-tests suite requires it kept); the times become the
    /// revalidation's.
    pub(crate) fn freshen(
        &mut self,
        not_modified: &[FieldLine],
        request_time: SystemTime,
        response_time: SystemTime,
    ) {
        const KEEP: [&str; 6] = [
            "content-length",
            "content-encoding",
            "content-range",
            "content-md5",
            "transfer-encoding",
            "etag",
        ];
        let updates: Vec<&FieldLine> = not_modified
            .iter()
            .filter(|(k, _)| !KEEP.iter().any(|n| k.eq_ignore_ascii_case(n)))
            .collect();
        self.fields
            .retain(|(k, _)| !updates.iter().any(|(u, _)| u.eq_ignore_ascii_case(k)));
        self.fields.extend(updates.into_iter().cloned());
        self.request_time = request_time;
        self.response_time = response_time;
    }
}

/// How a stored response may answer a request at a time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Freshness {
    /// Answer from the store, no request.
    Fresh,
    /// Stale, but within `stale-while-revalidate`: answer from the store
    /// and revalidate in the background (RFC 5861 §3).
    StaleWhileRevalidate,
    /// Revalidate (or fetch) first; `on_error`: an error or a 5xx may be
    /// answered from the store (RFC 5861 §4, `stale-if-error`).
    Stale { on_error: bool },
}

impl Stored {
    /// How this stored response may answer `request` at `now` (RFC 9111
    /// §4.2, §5.2.1; RFC 5861). The caller has matched the key and Vary.
    pub(crate) fn freshness(&self, request: &[(String, String)], now: SystemTime) -> Freshness {
        let d = self.directives();
        let r = RequestDirectives::of(request);
        let lifetime = self.freshness_lifetime();
        let age = self.current_age(now);
        let staleness = age.saturating_sub(lifetime);
        let on_error = !d.must_revalidate
            && d.stale_if_error
                .is_some_and(|s| staleness <= Duration::from_secs(s));
        let stale = Freshness::Stale { on_error };
        if d.no_cache || r.no_cache {
            return stale;
        }
        // The request's own limits (§5.2.1): max-age bounds the age,
        // min-fresh asks for that much freshness left.
        if r.max_age.is_some_and(|m| age > Duration::from_secs(m)) {
            return stale;
        }
        let min_fresh = Duration::from_secs(r.min_fresh.unwrap_or(0));
        if age + min_fresh < lifetime || (d.immutable && age < lifetime) {
            return Freshness::Fresh;
        }
        if d.must_revalidate {
            return stale;
        }
        // max-stale: the client accepts this much staleness.
        if r.max_stale
            .is_some_and(|m| staleness <= Duration::from_secs(m))
        {
            return Freshness::Fresh;
        }
        if d.stale_while_revalidate
            .is_some_and(|s| staleness <= Duration::from_secs(s))
        {
            return Freshness::StaleWhileRevalidate;
        }
        stale
    }
}

/// The fields of a response a cache keeps (RFC 9111 §3.1): all but the
/// connection's own (`Connection`, the fields it names, and the other
/// hop-by-hop fields of RFC 9110 §7.6.1), a proxy's (`Proxy-Authenticate`,
/// `Proxy-Authentication-Info`) and the message framing (`Content-Length`,
/// set again when served). `Age` is kept: it is the
/// stored response's age_value (§4.2.3).
pub(crate) fn stored_fields(fields: Vec<FieldLine>) -> Vec<FieldLine> {
    const HOP: [&str; 10] = [
        "connection",
        "keep-alive",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "proxy-authenticate",
        "proxy-authentication-info",
        "content-length",
    ];
    let named: Vec<String> = fields_named(&fields, "connection")
        .flat_map(|v| v.split(|&b| b == b','))
        .map(|n| String::from_utf8_lossy(n).trim().to_ascii_lowercase())
        .filter(|n| !n.is_empty())
        .collect();
    fields
        .into_iter()
        .filter(|(k, _)| {
            !HOP.iter().any(|h| k.eq_ignore_ascii_case(h))
                && !named.iter().any(|n| k.eq_ignore_ascii_case(n))
        })
        .collect()
}

/// Whether a response to `method` invalidates what is stored for its
/// target (RFC 9111 §4.4): an unsafe method with a non-error status.
pub(crate) fn invalidates(method: &str, status: u16) -> bool {
    !matches!(method, "GET" | "HEAD" | "OPTIONS" | "TRACE") && (200..400).contains(&status)
}

/// The URIs a response to an unsafe request invalidates (RFC 9111 §4.4):
/// the target, and `Location` / `Content-Location` when they are of the
/// same origin.
pub(crate) fn invalidated_uris(target: &Url, fields: &[FieldLine]) -> Vec<Url> {
    let mut out = vec![target.clone()];
    for name in ["location", "content-location"] {
        let Some(v) = field(fields, name).and_then(|v| std::str::from_utf8(v).ok()) else {
            continue;
        };
        if let Ok(u) = target.join(v.trim()) {
            if u.origin() == target.origin() && !out.contains(&u) {
                out.push(u);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(pairs: &[(&str, &str)]) -> Vec<FieldLine> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.as_bytes().to_vec()))
            .collect()
    }

    fn req(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn t(secs: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000 + secs)
    }

    fn date(secs: u64) -> String {
        httpdate::fmt_http_date(t(secs))
    }

    fn stored(fields: &[(&str, &str)]) -> Stored {
        Stored {
            request_time: t(0),
            response_time: t(0),
            status: 200,
            reason: "OK".into(),
            fields: f(fields),
            vary: Vec::new(),
        }
    }

    #[test]
    fn cache_control_is_split_outside_quotes_and_unquoted() {
        let d = directives(
            [
                &b"max-age=\"60\", private=\"a, b\", no-cache"[..],
                b"MUST-REVALIDATE ,, stale-if-error=5",
            ]
            .into_iter(),
        );
        assert_eq!(
            d,
            [
                ("max-age".into(), Some("60".into())),
                ("private".into(), Some("a, b".into())),
                ("no-cache".into(), None),
                ("must-revalidate".into(), None),
                ("stale-if-error".into(), Some("5".into())),
            ]
        );
        let r =
            ResponseDirectives::of(&f(&[("Cache-Control", "max-age=\"60\", private=\"a, b\"")]));
        assert_eq!((r.max_age, r.private, r.no_cache), (Some(60), true, false));
    }

    #[test]
    fn conflicting_or_invalid_max_age_is_stale() {
        for cc in ["max-age=60, max-age=120", "max-age=abc", "max-age=-1"] {
            let s = stored(&[("Cache-Control", cc), ("Date", &date(0))]);
            assert_eq!(s.freshness_lifetime(), Duration::ZERO, "{cc}");
        }
        // The same value twice is not a conflict.
        let s = stored(&[("Cache-Control", "max-age=60, max-age=60")]);
        assert_eq!(s.freshness_lifetime(), Duration::from_secs(60));
        // Too large: the RFC's 2^31.
        let s = stored(&[("Cache-Control", "max-age=99999999999999999999")]);
        assert_eq!(s.freshness_lifetime(), Duration::from_secs(1 << 31));
    }

    #[test]
    fn lifetime_from_max_age_then_expires_then_heuristic() {
        let s = stored(&[
            ("Cache-Control", "max-age=10"),
            ("Expires", &date(100)),
            ("Date", &date(0)),
        ]);
        assert_eq!(
            s.freshness_lifetime(),
            Duration::from_secs(10),
            "max-age wins"
        );
        let s = stored(&[("Expires", &date(100)), ("Date", &date(0))]);
        assert_eq!(s.freshness_lifetime(), Duration::from_secs(100));
        let s = stored(&[("Expires", "0"), ("Date", &date(0))]);
        assert_eq!(
            s.freshness_lifetime(),
            Duration::ZERO,
            "invalid Expires: past"
        );
        let s = stored(&[("Date", &date(1000)), ("Last-Modified", &date(0))]);
        assert_eq!(
            s.freshness_lifetime(),
            Duration::from_secs(100),
            "10% heuristic"
        );
        let mut s = stored(&[("Date", &date(1000)), ("Last-Modified", &date(0))]);
        s.status = 302;
        assert_eq!(s.freshness_lifetime(), Duration::ZERO, "302: no heuristic");
    }

    #[test]
    fn age_follows_rfc_9111_section_4_2_3() {
        // Sent at 0, answered at 2, Date 1 (apparent age 1), Age: 10 from
        // an upstream cache: corrected initial age = max(1, 10 + 2) = 12.
        let s = Stored {
            request_time: t(0),
            response_time: t(2),
            status: 200,
            reason: String::new(),
            fields: f(&[("Date", &date(1)), ("Age", "10")]),
            vary: Vec::new(),
        };
        assert_eq!(s.current_age(t(2)), Duration::from_secs(12));
        assert_eq!(
            s.current_age(t(32)),
            Duration::from_secs(42),
            "plus resident time"
        );
        assert_eq!(s.age_seconds(t(32)), 42);
        // A Date in the future: apparent age 0, never negative.
        let s = Stored {
            request_time: t(0),
            response_time: t(0),
            status: 200,
            reason: String::new(),
            fields: f(&[("Date", &date(3600))]),
            vary: Vec::new(),
        };
        assert_eq!(s.current_age(t(5)), Duration::from_secs(5));
    }

    #[test]
    fn fresh_stale_and_the_requests_limits() {
        let s = stored(&[("Cache-Control", "max-age=60"), ("Date", &date(0))]);
        assert_eq!(s.freshness(&[], t(59)), Freshness::Fresh);
        assert_eq!(
            s.freshness(&[], t(60)),
            Freshness::Stale { on_error: false }
        );
        let no_cache = req(&[("Cache-Control", "no-cache")]);
        assert_eq!(
            s.freshness(&no_cache, t(1)),
            Freshness::Stale { on_error: false }
        );
        let pragma = req(&[("Pragma", "no-cache")]);
        assert_eq!(
            s.freshness(&pragma, t(1)),
            Freshness::Stale { on_error: false }
        );
        let max_age = req(&[("Cache-Control", "max-age=10")]);
        assert_eq!(
            s.freshness(&max_age, t(11)),
            Freshness::Stale { on_error: false }
        );
        let min_fresh = req(&[("Cache-Control", "min-fresh=30")]);
        assert_eq!(s.freshness(&min_fresh, t(29)), Freshness::Fresh);
        assert_eq!(
            s.freshness(&min_fresh, t(31)),
            Freshness::Stale { on_error: false }
        );
        let max_stale = req(&[("Cache-Control", "max-stale=10")]);
        assert_eq!(s.freshness(&max_stale, t(65)), Freshness::Fresh);
        assert_eq!(
            s.freshness(&max_stale, t(75)),
            Freshness::Stale { on_error: false }
        );
        let any_stale = req(&[("Cache-Control", "max-stale")]);
        assert_eq!(s.freshness(&any_stale, t(100_000)), Freshness::Fresh);
        // The response's no-cache: always revalidate.
        let s = stored(&[("Cache-Control", "max-age=60, no-cache")]);
        assert_eq!(s.freshness(&[], t(1)), Freshness::Stale { on_error: false });
        // must-revalidate: max-stale does not apply.
        let s = stored(&[("Cache-Control", "max-age=60, must-revalidate")]);
        assert_eq!(
            s.freshness(&max_stale, t(65)),
            Freshness::Stale { on_error: false }
        );
    }

    #[test]
    fn rfc_5861_stale_while_revalidate_and_stale_if_error() {
        let s = stored(&[(
            "Cache-Control",
            "max-age=60, stale-while-revalidate=30, stale-if-error=600",
        )]);
        assert_eq!(s.freshness(&[], t(80)), Freshness::StaleWhileRevalidate);
        assert_eq!(
            s.freshness(&[], t(100)),
            Freshness::Stale { on_error: true }
        );
        assert_eq!(
            s.freshness(&[], t(700)),
            Freshness::Stale { on_error: false }
        );
        // must-revalidate forbids serving stale on error (RFC 5861 §4).
        let s = stored(&[(
            "Cache-Control",
            "max-age=60, stale-if-error=600, must-revalidate",
        )]);
        assert_eq!(
            s.freshness(&[], t(100)),
            Freshness::Stale { on_error: false }
        );
    }

    #[test]
    fn what_a_private_cache_may_store() {
        let ok = f(&[("Cache-Control", "max-age=60")]);
        assert_eq!(storable("GET", &[], 200, &ok), Ok(()));
        assert_eq!(storable("POST", &[], 200, &ok), Err(NotStored::Method));
        assert_eq!(storable("GET", &[], 206, &ok), Err(NotStored::Status));
        assert_eq!(storable("GET", &[], 299, &ok), Err(NotStored::Status));
        let private = f(&[("Cache-Control", "private, max-age=60")]);
        assert_eq!(
            storable("GET", &[], 200, &private),
            Ok(()),
            "a private cache"
        );
        let no_store = f(&[("Cache-Control", "no-store, max-age=60")]);
        assert_eq!(
            storable("GET", &[], 200, &no_store),
            Err(NotStored::NoStore)
        );
        let asks = req(&[("Cache-Control", "no-store")]);
        assert_eq!(storable("GET", &asks, 200, &ok), Err(NotStored::NoStore));
        let auth = req(&[("Authorization", "Basic eA==")]);
        assert_eq!(
            storable("GET", &auth, 200, &ok),
            Err(NotStored::Authorization)
        );
        let public = f(&[("Cache-Control", "public, max-age=60")]);
        assert_eq!(storable("GET", &auth, 200, &public), Ok(()));
        let star = f(&[("Cache-Control", "max-age=60"), ("Vary", "Accept, *")]);
        assert_eq!(storable("GET", &[], 200, &star), Err(NotStored::VaryStar));
        // A 302 with no freshness and no validator is useless; with
        // max-age it may be stored.
        assert_eq!(storable("GET", &[], 302, &[]), Err(NotStored::Useless));
        assert_eq!(storable("GET", &[], 302, &ok), Ok(()));
        assert_eq!(
            storable("GET", &[], 404, &[]),
            Ok(()),
            "heuristically cacheable"
        );
    }

    #[test]
    fn vary_selects_by_the_requests_fields() {
        let response = f(&[("Vary", "Accept-Encoding, X-Lang")]);
        let first = req(&[("accept-encoding", "gzip,  br"), ("X-Other", "1")]);
        let s = Stored {
            vary: selecting_fields(&first, &response),
            ..stored(&[])
        };
        assert_eq!(
            s.vary,
            [
                ("accept-encoding".to_string(), Some("gzip,br".to_string())),
                ("x-lang".to_string(), None),
            ]
        );
        assert!(s.matches(&req(&[("Accept-Encoding", "gzip, br")])));
        assert!(!s.matches(&req(&[("Accept-Encoding", "gzip")])));
        assert!(!s.matches(&req(&[("Accept-Encoding", "gzip, br"), ("X-Lang", "fi")])));
    }

    #[test]
    fn a_304_freshens_the_stored_head_but_not_its_body_fields() {
        let mut s = stored(&[
            ("ETag", "\"v1\""),
            ("Content-Length", "5"),
            ("Content-Encoding", "gzip"),
            ("Cache-Control", "max-age=1"),
            ("X-Kept", "a"),
        ]);
        let nm = f(&[
            ("ETag", "\"v1\""),
            ("Cache-Control", "max-age=100"),
            ("Content-Length", "0"),
            ("Content-Encoding", "identity"),
        ]);
        s.freshen(&nm, t(50), t(51));
        assert_eq!(field(&s.fields, "cache-control"), Some(&b"max-age=100"[..]));
        assert_eq!(field(&s.fields, "content-length"), Some(&b"5"[..]));
        assert_eq!(field(&s.fields, "content-encoding"), Some(&b"gzip"[..]));
        assert_eq!(field(&s.fields, "x-kept"), Some(&b"a"[..]));
        assert_eq!((s.request_time, s.response_time), (t(50), t(51)));
        // A 304 with another ETag: the stored one still names the body.
        s.freshen(&f(&[("ETag", "\"v2\"")]), t(50), t(51));
        assert_eq!(field(&s.fields, "etag"), Some(&b"\"v1\""[..]));
        assert_eq!(s.freshness(&[], t(100)), Freshness::Fresh);
        assert_eq!(
            s.conditional_fields(),
            [("If-None-Match".to_string(), "\"v1\"".to_string())]
        );
    }

    #[test]
    fn unsafe_methods_invalidate_the_target_and_same_origin_locations() {
        assert!(invalidates("POST", 201) && invalidates("DELETE", 204));
        assert!(!invalidates("POST", 500) && !invalidates("GET", 200));
        let target = Url::parse("http://a.test/items/1").unwrap();
        let got = invalidated_uris(
            &target,
            &f(&[
                ("Location", "/items/2"),
                ("Content-Location", "http://b.test/x"),
            ]),
        );
        assert_eq!(
            got.iter().map(Url::as_str).collect::<Vec<_>>(),
            ["http://a.test/items/1", "http://a.test/items/2"]
        );
    }

    #[test]
    fn a_304_does_not_replace_the_stored_bodys_checksum() {
        let mut s = stored(&[
            ("Content-MD5", "rL0Y20zC+Fzt72VPzMSk2A=="),
            ("Cache-Control", "max-age=2"),
        ]);
        s.freshen(
            &f(&[
                ("Content-MD5", "N7UdGUp1E+RbVvZSTy1R8g=="),
                ("Cache-Control", "max-age=60"),
            ]),
            t(10),
            t(10),
        );
        assert_eq!(
            field(&s.fields, "content-md5"),
            Some(&b"rL0Y20zC+Fzt72VPzMSk2A=="[..])
        );
        assert_eq!(field(&s.fields, "cache-control"), Some(&b"max-age=60"[..]));
    }

    #[test]
    fn fields_named_in_connection_are_not_stored() {
        let kept = stored_fields(f(&[
            ("Connection", "a, B"),
            ("Connection", "keep-alive"),
            ("a", "1"),
            ("b", "2"),
            ("Keep-Alive", "timeout=5"),
            ("Transfer-Encoding", "chunked"),
            ("Content-Length", "5"),
            ("Age", "30"),
            ("ETag", "\"x\""),
        ]));
        assert_eq!(kept, f(&[("Age", "30"), ("ETag", "\"x\"")]));
    }

    #[test]
    fn an_invalid_age_makes_the_response_stale() {
        for ages in [
            &["abc"][..],
            &["-7200"],
            &["7200.0"],
            &["7200,0"],
            &["0, 0"],
            &["0", "0"],
            &["7200;foo=bar"],
        ] {
            let mut fields = vec![("Cache-Control", "max-age=3600"), ("Date", "")];
            let d = date(0);
            fields[1].1 = &d;
            fields.extend(ages.iter().map(|a| ("Age", *a)));
            let s = stored(&fields);
            assert!(
                s.current_age(t(1)) >= Duration::from_secs(1 << 31),
                "{ages:?}"
            );
        }
        let s = stored(&[("Cache-Control", "max-age=3600"), ("Age", "7")]);
        assert_eq!(s.current_age(t(1)), Duration::from_secs(8));
    }
}
