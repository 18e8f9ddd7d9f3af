//! The request logic every front end shares: [`Settings`], [`prepare`] (a
//! request checked before anything starts), [`job::Job`] (one request's
//! logic over a connection), [`redirect`] (the redirect policy as a pure
//! function), [`retry`], [`auth`] and [`proxy`] (pure policies), [`sink`]
//! (the decoders and the body sink) and [`outcome`] (the result types).

use std::borrow::Cow;
use std::sync::atomic::{AtomicU64, AtomicU8};

use url::Url;

use crate::body::RequestBody;
use crate::error::RequestError;
use crate::status::Status;
use crate::tls_options::check_server_name;

pub(crate) mod auth;
pub(crate) mod cached;
pub(crate) mod coding;
pub(crate) mod cookie_store;
pub(crate) mod digest;
pub(crate) mod download;
pub(crate) mod job;
pub(crate) mod next;
pub(crate) mod outcome;
pub(crate) mod proxy;
pub(crate) mod rate;
pub(crate) mod redirect;
pub(crate) mod retry;
pub(crate) mod settings;
pub(crate) mod sink;

pub use coding::ContentCoding;
pub use cookie_store::CookieStore;
pub use digest::{sha256_from_hex, DigestAlgorithm, DigestCheck};
pub use outcome::{Completed, RequestFailure, RequestResult};
pub use redirect::Refusal;
pub use settings::{BodySettings, ProxySettings, Redirects, Settings, Timeouts};

/// The request as it goes out at each hop: what a redirect rewrites
/// ([`redirect::Follow::apply`]), a challenge's answer and the cookie jar
/// add to.
pub(crate) struct Call {
    pub(crate) method: String,
    pub(crate) url: Url,
    /// The field lines given (with what `prepare` added).
    pub(crate) headers: Vec<(String, String)>,
    /// The body to send (again); `None` once a reader body was sent.
    pub(crate) body: Option<RequestBody>,
    /// The caller's own `Cookie` field when a jar is in use: merged with
    /// the jar's at each hop, dropped when a redirect leaves the origin.
    pub(crate) user_cookie: Option<String>,
}

impl Call {
    /// The request as given. With a cookie jar (`jar`), the caller's own
    /// `Cookie` fields are taken out (joined into one) to be merged with
    /// the jar's at each hop.
    pub(crate) fn new(
        method: String,
        url: Url,
        mut headers: Vec<(String, String)>,
        body: RequestBody,
        jar: bool,
    ) -> Call {
        let mut user_cookie: Option<String> = None;
        if jar {
            headers.retain(|(k, v)| {
                if !k.eq_ignore_ascii_case("cookie") {
                    return true;
                }
                match &mut user_cookie {
                    Some(c) => {
                        c.push_str("; ");
                        c.push_str(v);
                    }
                    None => user_cookie = Some(v.clone()),
                }
                false
            });
        }
        Call {
            method,
            url,
            headers,
            body: Some(body),
            user_cookie,
        }
    }

    /// The origin-form request-target of this hop (RFC 9112 §3.2.1): the
    /// path (`/` when empty) and the query.
    pub(crate) fn target(&self) -> Cow<'_, str> {
        request_target(&self.url)
    }

    /// The `Cookie` field of this hop: the caller's own, then the jar's
    /// cookies for the URL (RFC 6265 §5.4).
    /// Whether the request asks for `100 Continue` before its body
    /// (`Expect: 100-continue`, any case; RFC 9110 §10.1.1).
    pub(crate) fn expects_continue(&self) -> bool {
        self.headers.iter().any(|(k, v)| {
            k.eq_ignore_ascii_case("expect") && v.trim().eq_ignore_ascii_case("100-continue")
        })
    }

    pub(crate) fn set_cookie_field(&mut self, jar: &dyn CookieStore) {
        let from_jar = jar.cookie_header(&self.url);
        self.headers
            .retain(|(k, _)| !k.eq_ignore_ascii_case("cookie"));
        let value = match (self.user_cookie.as_deref(), from_jar) {
            (Some(u), Some(j)) => format!("{u}; {j}"),
            (Some(u), None) => u.to_string(),
            (None, Some(j)) => j,
            (None, None) => return,
        };
        self.headers.push(("Cookie".into(), value));
    }
}

/// The origin-form request-target of `url` (RFC 9112 §3.2.1): its path
/// (`/` when empty) and query; borrowed from `url` when it has no query
/// (no allocation per request for the common case).
pub(crate) fn request_target(url: &Url) -> Cow<'_, str> {
    let path = url.path();
    let path = if path.is_empty() { "/" } else { path };
    match url.query() {
        Some(q) => Cow::Owned(format!("{path}?{q}")),
        None => Cow::Borrowed(path),
    }
}

/// Progress shared with a worker thread.
#[derive(Debug, Default)]
pub(crate) struct Progress {
    /// Content-Length of the current response, `u64::MAX` when unknown.
    pub(crate) body_size: AtomicU64,
    pub(crate) downloaded: AtomicU64,
    pub(crate) uploaded: AtomicU64,
    pub(crate) status: AtomicU8,
}

pub(crate) fn status_code(s: Status) -> u8 {
    s as u8
}

pub(crate) fn status_from(code: u8) -> Status {
    Status::ALL
        .get(code as usize)
        .copied()
        .unwrap_or(Status::Disconnected)
}

/// Check a request before anything starts (URL, method, fields by proto's
/// rules, a body file) and add what the URL and settings imply:
/// `Authorization: Basic` from URL userinfo, `Accept-Encoding` from
/// `body.codings` when decoding is on. Shared by every front end.
pub(crate) fn prepare(
    url: impl IntoUrl,
    headers: &[(&str, &str)],
    method: &str,
    body: &RequestBody,
    settings: &Settings,
) -> Result<(Url, Vec<(String, String)>), RequestError> {
    let url = parse_url(url)?;
    // proto's own rules, checked now so a bad field fails at once.
    if !pollhttp_proto::is_token(method.as_bytes()) {
        return Err(RequestError::Invalid(pollhttp_proto::Error::InvalidMethod));
    }
    for (index, (k, v)) in headers.iter().enumerate() {
        if !pollhttp_proto::is_token(k.as_bytes()) {
            return Err(RequestError::Invalid(
                pollhttp_proto::Error::InvalidRequestFieldName { index },
            ));
        }
        if !pollhttp_proto::is_field_value(v.as_bytes()) {
            return Err(RequestError::Invalid(
                pollhttp_proto::Error::InvalidRequestFieldValue { index },
            ));
        }
    }
    if settings.body.stream && settings.body.download_file.is_some() {
        return Err(RequestError::ConflictingSettings(
            "body.stream",
            "body.download_file",
        ));
    }
    body.check_files().map_err(RequestError::Body)?;
    if url.scheme() == "https" {
        let (_, host, _) = job::url_origin(&url);
        check_server_name(settings.tls.as_ref(), host).map_err(RequestError::Tls)?;
    }
    let mut headers: Vec<(String, String)> = headers
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    // Credentials: the caller's Authorization field, else `settings.auth`
    // (Basic now, Digest in answer to a challenge), else the URL's userinfo
    // as Basic.
    if !has_header(&headers, "authorization") {
        let value = match &settings.auth {
            Some(auth::Auth::Basic { user, password }) => Some(auth::basic_value(user, password)),
            Some(_) => None,
            None => auth::basic_from_url(&url),
        };
        if let Some(value) = value {
            headers.push(("Authorization".into(), value));
        }
    }
    if settings.body.accept_gzip && !has_header(&headers, "accept-encoding") {
        if let Some(value) = coding::accept_encoding(&settings.body.codings) {
            headers.push(("Accept-Encoding".into(), value));
        }
    }
    Ok((url, headers))
}

fn has_header(headers: &[(String, String)], name: &str) -> bool {
    headers.iter().any(|(k, _)| k.eq_ignore_ascii_case(name))
}

/// What a request's URL may be given as: a string (parsed here), or a
/// [`Url`] parsed before (no second parse: a program sending many requests
/// builds them from one base with [`Url::join`] or by cloning).
pub trait IntoUrl {
    /// The parsed URL.
    ///
    /// # Errors
    /// The [`url::ParseError`] of a string that is not a URL.
    fn into_url(self) -> Result<Url, url::ParseError>;
}

impl IntoUrl for Url {
    fn into_url(self) -> Result<Url, url::ParseError> {
        Ok(self)
    }
}

impl IntoUrl for &Url {
    fn into_url(self) -> Result<Url, url::ParseError> {
        Ok(self.clone())
    }
}

impl IntoUrl for &str {
    fn into_url(self) -> Result<Url, url::ParseError> {
        Url::parse(self)
    }
}

impl IntoUrl for &String {
    fn into_url(self) -> Result<Url, url::ParseError> {
        Url::parse(self)
    }
}

impl IntoUrl for String {
    fn into_url(self) -> Result<Url, url::ParseError> {
        Url::parse(&self)
    }
}

fn parse_url(url: impl IntoUrl) -> Result<Url, RequestError> {
    let mut url = url.into_url().map_err(RequestError::InvalidUrl)?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(RequestError::UnsupportedScheme(url.scheme().to_string()));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(RequestError::InvalidHost);
    }
    url.set_fragment(None);
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_parsed_url_is_checked_as_a_string_is() {
        let parsed = Url::parse("http://example.com/a?b#frag").unwrap();
        let from_url = parse_url(&parsed).unwrap();
        let from_str = parse_url("http://example.com/a?b#frag").unwrap();
        assert_eq!(from_url, from_str);
        assert_eq!(
            from_url.as_str(),
            "http://example.com/a?b",
            "fragment dropped"
        );
        assert!(matches!(
            parse_url(Url::parse("ftp://example.com/").unwrap()),
            Err(RequestError::UnsupportedScheme(s)) if s == "ftp"
        ));
        assert!(matches!(
            parse_url(String::from("not a url")),
            Err(RequestError::InvalidUrl(
                url::ParseError::RelativeUrlWithoutBase
            ))
        ));
    }
}
