//! [`Request`]: a request builder in the style users know (ureq, reqwest,
//! axios, Parse's `httpRequest` options), ending in the same
//! [`HttpRequest`] / [`RequestPool`] machinery: `start` on an
//! `HttpRequest`, `submit` to a pool, or `send` and wait.

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use url::Url;

use super::{
    append_query_pairs, append_raw_query, form_body, parse_field_lines, query_string_from_dict,
    Auth, QueryValue, RetryPolicy,
};
use crate::{
    Completed, HttpRequest, RequestBody, RequestError, RequestId, RequestPool, RequestResult,
    Settings,
};

/// Which complete responses count as a success.
///
/// Godot's rule is the default: every response that arrived whole is a
/// success, 404 and 500 included (the status is in the result). Parse's
/// `httpRequest` and axios reject a status outside 2xx; axios's
/// `validateStatus` is a predicate.
#[derive(Clone, Default)]
pub enum StatusPolicy {
    /// Any status (Godot). The default.
    #[default]
    Any,
    /// 2xx only (Parse, axios).
    Success,
    /// The predicate says (axios's `validateStatus`).
    Custom(Arc<dyn Fn(u16) -> bool + Send + Sync>),
}

impl fmt::Debug for StatusPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            StatusPolicy::Any => "Any",
            StatusPolicy::Success => "Success",
            StatusPolicy::Custom(_) => "Custom",
        })
    }
}

impl StatusPolicy {
    /// Whether `status` is accepted.
    pub fn accepts(&self, status: u16) -> bool {
        match self {
            StatusPolicy::Any => true,
            StatusPolicy::Success => (200..300).contains(&status),
            StatusPolicy::Custom(f) => f(status),
        }
    }

    /// A completion as a `Result`: [`WebError::Failed`] when it did not
    /// complete ([`Completed::result`] is not `Success`),
    /// [`WebError::Status`] when its status is not accepted.
    ///
    /// # Errors
    /// As said.
    pub fn check(&self, completed: Completed) -> Result<Completed, WebError> {
        if completed.result != RequestResult::Success {
            return Err(WebError::Failed(Box::new(completed)));
        }
        if !self.accepts(completed.response_code) {
            return Err(WebError::Status(Box::new(completed)));
        }
        Ok(completed)
    }
}

/// Why a request of the builder did not give a response it accepts.
#[derive(Debug)]
#[non_exhaustive]
pub enum WebError {
    /// Refused at once, nothing was sent (a bad URL, field, body...).
    Refused(RequestError),
    /// The request did not complete: [`Completed::result`] says how,
    /// [`Completed::failure`] why.
    Failed(Box<Completed>),
    /// The response arrived but its status is not accepted by the
    /// [`StatusPolicy`] (the whole response is here, body included).
    Status(Box<Completed>),
}

impl fmt::Display for WebError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WebError::Refused(e) => e.fmt(f),
            WebError::Failed(c) => write!(f, "{}: {}", c.result, c.reason),
            WebError::Status(c) => write!(
                f,
                "status {} from {} is not accepted",
                c.response_code, c.final_url
            ),
        }
    }
}

impl std::error::Error for WebError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            WebError::Refused(e) => Some(e),
            WebError::Failed(c) => c
                .failure
                .as_ref()
                .map(|f| f as &(dyn std::error::Error + 'static)),
            WebError::Status(_) => None,
        }
    }
}

impl From<RequestError> for WebError {
    fn from(e: RequestError) -> WebError {
        WebError::Refused(e)
    }
}

impl WebError {
    /// The completion, when there is one (not for [`WebError::Refused`]).
    pub fn completed(&self) -> Option<&Completed> {
        match self {
            WebError::Refused(_) => None,
            WebError::Failed(c) | WebError::Status(c) => Some(c),
        }
    }
}

/// A request being built. Every method takes and returns the builder; an
/// invalid piece (a field line without a colon, a body that fails to
/// serialize) is kept and returned by the call that ends the builder
/// ([`start`](Self::start), [`submit`](Self::submit), [`send`](Self::send)),
/// so nothing is sent.
///
/// ```no_run
/// use pollhttp::web::Request;
///
/// let done = Request::get("httpbin.org/get")
///     .query("q", "two words")
///     .header("X-Trace", "1")
///     .error_for_status()
///     .send()
///     .unwrap();
/// println!("{}", done.text_lossy());
/// ```
///
/// Defaults as r.http has them: `Accept-Encoding: gzip, deflate` (and the
/// body decoded) and `User-Agent: pollhttp/<version>`, both overridden by a
/// field of the same name. A URL without `://` is taken as `http://` (the
/// builder only: `HttpRequest` refuses it).
pub struct Request {
    method: String,
    url: String,
    query: Vec<QueryPiece>,
    headers: Vec<(String, String)>,
    body: RequestBody,
    /// The body's media type, sent unless a Content-Type field is given.
    content_type: Option<String>,
    settings: Settings,
    status: StatusPolicy,
    /// The first invalid piece, returned when the builder ends.
    error: Option<RequestError>,
}

enum QueryPiece {
    Pairs(Vec<(String, String)>),
    Raw(String),
}

impl fmt::Debug for Request {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Request")
            .field("method", &self.method)
            .field("url", &self.url)
            .field("body", &self.body)
            .finish_non_exhaustive()
    }
}

impl Request {
    /// A request of `method` (any token, e.g. `"GET"`) for `url`.
    pub fn new(method: &str, url: &str) -> Request {
        Request {
            method: method.to_string(),
            url: url.to_string(),
            query: Vec::new(),
            headers: Vec::new(),
            body: RequestBody::Empty,
            content_type: None,
            settings: Settings::default(),
            status: StatusPolicy::Any,
            error: None,
        }
    }

    /// A GET.
    pub fn get(url: &str) -> Request {
        Request::new("GET", url)
    }

    /// A HEAD.
    pub fn head(url: &str) -> Request {
        Request::new("HEAD", url)
    }

    /// A POST.
    pub fn post(url: &str) -> Request {
        Request::new("POST", url)
    }

    /// A PUT.
    pub fn put(url: &str) -> Request {
        Request::new("PUT", url)
    }

    /// A PATCH.
    pub fn patch(url: &str) -> Request {
        Request::new("PATCH", url)
    }

    /// A DELETE.
    pub fn delete(url: &str) -> Request {
        Request::new("DELETE", url)
    }

    fn fail(mut self, e: RequestError) -> Request {
        self.error.get_or_insert(e);
        self
    }

    /// The method.
    pub fn method(&self) -> &str {
        &self.method
    }

    // ---- query ----

    /// Append `key=value` to the query (percent-encoded as Godot's
    /// `uri_encode`: `A–Za–z0–9-_.~` kept, space as `%20`), after any query
    /// the URL already has.
    pub fn query(mut self, key: &str, value: &str) -> Request {
        self.query.push(QueryPiece::Pairs(vec![(
            key.to_string(),
            value.to_string(),
        )]));
        self
    }

    /// Append pairs to the query (Parse's, r.http's and axios's `params`
    /// as an object), in order.
    pub fn query_pairs<K: AsRef<str>, V: AsRef<str>>(
        mut self,
        pairs: impl IntoIterator<Item = (K, V)>,
    ) -> Request {
        let pairs = pairs
            .into_iter()
            .map(|(k, v)| (k.as_ref().to_string(), v.as_ref().to_string()))
            .collect();
        self.query.push(QueryPiece::Pairs(pairs));
        self
    }

    /// Append a query string as it is (Parse's `params` as a string; a
    /// leading `?` or `&` is dropped).
    pub fn query_raw(mut self, raw: &str) -> Request {
        self.query.push(QueryPiece::Raw(raw.to_string()));
        self
    }

    /// Append Godot's `query_string_from_dict` of `dict` (lists repeat the
    /// key, a null gives the bare key).
    pub fn query_dict(mut self, dict: &[(&str, QueryValue)]) -> Request {
        self.query
            .push(QueryPiece::Raw(query_string_from_dict(dict)));
        self
    }

    // ---- fields ----

    /// Add a header field (checked by proto's rules when the builder ends).
    pub fn header(mut self, name: &str, value: &str) -> Request {
        self.headers.push((name.to_string(), value.to_string()));
        self
    }

    /// Add header fields given as pairs.
    pub fn headers<K: AsRef<str>, V: AsRef<str>>(
        mut self,
        fields: impl IntoIterator<Item = (K, V)>,
    ) -> Request {
        for (k, v) in fields {
            self.headers
                .push((k.as_ref().to_string(), v.as_ref().to_string()));
        }
        self
    }

    /// Add a field given as a `"Name: value"` string (Godot's
    /// `custom_headers`, r.http's array form).
    ///
    /// A line without a colon, or with a name that is not a token, ends the
    /// builder with [`RequestError::FieldLine`].
    pub fn header_line(self, line: &str) -> Request {
        self.header_lines(&[line])
    }

    /// Add fields given as `"Name: value"` strings; see
    /// [`header_line`](Self::header_line). The error's index is the line's
    /// in `lines`.
    pub fn header_lines(mut self, lines: &[&str]) -> Request {
        match parse_field_lines(lines) {
            Ok(pairs) => {
                for (k, v) in pairs {
                    self.headers.push((k.to_string(), v.to_string()));
                }
                self
            }
            Err(e) => self.fail(RequestError::FieldLine(e)),
        }
    }

    fn has_header(&self, name: &str) -> bool {
        self.headers
            .iter()
            .any(|(k, _)| k.eq_ignore_ascii_case(name))
    }

    // ---- bodies ----

    /// The body, as it is (see [`RequestBody`]), without a media type.
    pub fn body(mut self, body: impl Into<RequestBody>) -> Request {
        self.body = body.into();
        self.content_type = None;
        self
    }

    fn typed_body(mut self, body: RequestBody, media_type: &str) -> Request {
        self.body = body;
        self.content_type = Some(media_type.to_string());
        self
    }

    /// A text body, `Content-Type: text/plain; charset=utf-8` unless one is
    /// given.
    pub fn text(self, text: impl Into<String>) -> Request {
        let body = RequestBody::Bytes(Bytes::from(text.into()));
        self.typed_body(body, "text/plain; charset=utf-8")
    }

    /// A body of bytes, `Content-Type: application/octet-stream` unless one
    /// is given.
    pub fn bytes(self, bytes: impl Into<Bytes>) -> Request {
        let body = RequestBody::Bytes(bytes.into());
        self.typed_body(body, "application/octet-stream")
    }

    /// A file streamed from disk as the body (its size is the
    /// Content-Length), without a media type.
    pub fn file(self, path: impl Into<PathBuf>) -> Request {
        self.body(RequestBody::File(path.into()))
    }

    /// A form body from pairs, `Content-Type:
    /// application/x-www-form-urlencoded` unless one is given.
    pub fn form<K: AsRef<str>, V: AsRef<str>>(
        self,
        pairs: impl IntoIterator<Item = (K, V)>,
    ) -> Request {
        let owned: Vec<(K, V)> = pairs.into_iter().collect();
        let refs: Vec<(&str, &str)> = owned
            .iter()
            .map(|(k, v)| (k.as_ref(), v.as_ref()))
            .collect();
        let body = RequestBody::Bytes(form_body(&refs));
        self.typed_body(body, "application/x-www-form-urlencoded")
    }

    /// A JSON body from any `Serialize` value, `Content-Type:
    /// application/json` unless one is given. A value that fails to
    /// serialize ends the builder with [`RequestError::Serialize`].
    #[cfg(feature = "json")]
    pub fn json<T: serde::Serialize + ?Sized>(self, value: &T) -> Request {
        match serde_json::to_vec(value) {
            Ok(v) => self.typed_body(RequestBody::Bytes(Bytes::from(v)), "application/json"),
            Err(e) => self.fail(RequestError::Serialize(e)),
        }
    }

    /// r.http's rule for an object body: JSON for PUT, PATCH and DELETE; a
    /// form for POST (and any other method), each member a pair (strings
    /// as they are, other values in their JSON text). A value that is not
    /// an object is sent as JSON.
    #[cfg(feature = "json")]
    pub fn object(self, value: &serde_json::Value) -> Request {
        let form = !matches!(self.method.as_str(), "PUT" | "PATCH" | "DELETE");
        match (form, value.as_object()) {
            (true, Some(map)) => {
                let pairs: Vec<(String, String)> = map
                    .iter()
                    .map(|(k, v)| {
                        let v = match v {
                            serde_json::Value::String(s) => s.clone(),
                            other => other.to_string(),
                        };
                        (k.clone(), v)
                    })
                    .collect();
                self.form(pairs)
            }
            _ => self.json(value),
        }
    }

    /// A `multipart/form-data` body (RFC 7578), its `Content-Type` with the
    /// boundary unless one is given; files are streamed from disk and the
    /// Content-Length is their sum with the other parts.
    #[cfg(feature = "multipart")]
    pub fn multipart(self, form: super::Multipart) -> Request {
        let media_type = form.content_type();
        self.typed_body(form.into_body(), &media_type)
    }

    // ---- settings ----

    /// Every setting at once (replacing those set so far).
    pub fn settings(mut self, settings: Settings) -> Request {
        self.settings = settings;
        self
    }

    /// Change settings in place.
    pub fn configure(mut self, f: impl FnOnce(&mut Settings)) -> Request {
        f(&mut self.settings);
        self
    }

    /// One deadline for the whole request, retries included
    /// ([`Settings::timeout`]).
    pub fn timeout(self, timeout: Duration) -> Request {
        self.configure(|s| s.timeout = Some(timeout))
    }

    /// Fail when no byte arrives for this long ([`Settings::idle_timeout`]).
    pub fn idle_timeout(self, timeout: Duration) -> Request {
        self.configure(|s| s.idle_timeout = Some(timeout))
    }

    /// Whether redirects are followed (Parse's `followRedirects`).
    pub fn follow_redirects(self, follow: bool) -> Request {
        self.configure(|s| s.follow_redirects = follow)
    }

    /// Most redirects followed.
    pub fn max_redirects(self, n: u32) -> Request {
        self.configure(|s| s.max_redirects = n)
    }

    /// Retries ([`Settings::retry`]).
    pub fn retry(self, policy: RetryPolicy) -> Request {
        self.configure(|s| s.retry = Some(policy))
    }

    /// Credentials ([`Settings::auth`]).
    pub fn auth(self, auth: Auth) -> Request {
        self.configure(|s| s.auth = Some(auth))
    }

    /// Basic credentials, sent with the first request (RFC 7617).
    pub fn basic_auth(self, user: &str, password: &str) -> Request {
        self.auth(Auth::basic(user, password))
    }

    /// Digest credentials, sent in answer to the server's challenge
    /// (RFC 7616).
    pub fn digest_auth(self, user: &str, password: &str) -> Request {
        self.auth(Auth::digest(user, password))
    }

    /// A cookie jar read and filled by the request ([`Settings::cookie_jar`]).
    #[cfg(feature = "cookies")]
    pub fn cookie_jar(self, jar: super::SharedCookieJar) -> Request {
        self.configure(|s| s.cookie_jar = Some(jar))
    }

    /// Whether gzip and deflate are asked for and decoded (default true).
    pub fn accept_gzip(self, on: bool) -> Request {
        self.configure(|s| s.accept_gzip = on)
    }

    /// The `User-Agent` field (default `pollhttp/<version>`).
    pub fn user_agent(self, agent: &str) -> Request {
        self.header("User-Agent", agent)
    }

    /// Save the body into this file ([`Settings::download_file`]).
    pub fn download_file(self, path: impl Into<PathBuf>) -> Request {
        let path = path.into();
        self.configure(|s| s.download_file = Some(path))
    }

    /// The largest body in bytes ([`Settings::body_size_limit`]).
    pub fn body_size_limit(self, limit: u64) -> Request {
        self.configure(|s| s.body_size_limit = Some(limit))
    }

    // ---- status ----

    /// Only a 2xx status is a success (Parse, axios); others end as
    /// [`WebError::Status`].
    pub fn error_for_status(mut self) -> Request {
        self.status = StatusPolicy::Success;
        self
    }

    /// Which status is a success (axios's `validateStatus`).
    pub fn validate_status(mut self, f: impl Fn(u16) -> bool + Send + Sync + 'static) -> Request {
        self.status = StatusPolicy::Custom(Arc::new(f));
        self
    }

    /// The status policy (given to [`StatusPolicy::check`] by `send`).
    pub fn status_policy(&self) -> &StatusPolicy {
        &self.status
    }

    // ---- the end ----

    /// The URL with its query, the fields and the body, ready for the
    /// machinery.
    fn finish(mut self) -> Result<Prepared, RequestError> {
        if let Some(e) = self.error.take() {
            return Err(e);
        }
        let raw = if self.url.contains("://") {
            self.url.clone()
        } else {
            format!("http://{}", self.url)
        };
        let mut url = Url::parse(&raw).map_err(RequestError::InvalidUrl)?;
        for piece in &self.query {
            match piece {
                QueryPiece::Pairs(pairs) => {
                    let refs: Vec<(&str, &str)> = pairs
                        .iter()
                        .map(|(k, v)| (k.as_str(), v.as_str()))
                        .collect();
                    append_query_pairs(&mut url, &refs);
                }
                QueryPiece::Raw(raw) => append_raw_query(&mut url, raw),
            }
        }
        if let Some(media_type) = self.content_type.take() {
            if !self.has_header("content-type") {
                self.headers.push(("Content-Type".into(), media_type));
            }
        }
        Ok(Prepared {
            url,
            method: self.method,
            headers: self.headers,
            body: self.body,
            settings: self.settings,
            status: self.status,
        })
    }

    /// Start the request on `request` (its own settings are left as they
    /// are: the builder's apply to this request). Returns at once;
    /// `request.poll()` gives the [`Completed`]; check it with
    /// [`StatusPolicy::check`].
    ///
    /// # Errors
    /// A piece the builder kept ([`RequestError::FieldLine`],
    /// [`RequestError::Serialize`]...), or what
    /// [`HttpRequest::request_body`] refuses. Nothing is sent then.
    pub fn start(self, request: &mut HttpRequest) -> Result<StatusPolicy, RequestError> {
        let p = self.finish()?;
        let fields: Vec<(&str, &str)> = p
            .headers
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        request.request_with(p.url, &fields, &p.method, p.body, p.settings)?;
        Ok(p.status)
    }

    /// Submit the request to `pool`; returns its id at once.
    ///
    /// # Errors
    /// As [`start`](Self::start), and what [`RequestPool::request`] refuses.
    pub fn submit(self, pool: &mut RequestPool) -> Result<RequestId, RequestError> {
        let p = self.finish()?;
        let fields: Vec<(&str, &str)> = p
            .headers
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        pool.request(p.url, &fields, &p.method, p.body, &p.settings)
    }

    /// Run the request to its end on `request` (which keeps its connection
    /// for the next one to the same origin), sleeping in `wait` between
    /// polls. Blocks: for tools and threads, not a frame loop (set a
    /// [`timeout`](Self::timeout): without one a silent server is waited
    /// for).
    ///
    /// # Errors
    /// [`WebError::Refused`] (nothing was sent), [`WebError::Failed`],
    /// [`WebError::Status`] (the status policy).
    pub fn send_with(self, request: &mut HttpRequest) -> Result<Completed, WebError> {
        let status = self.start(request)?;
        let done = loop {
            if let Some(done) = request.poll() {
                break done;
            }
            request.wait(None);
        };
        status.check(done)
    }

    /// [`send_with`](Self::send_with) on a new [`HttpRequest`].
    ///
    /// # Errors
    /// As [`send_with`](Self::send_with).
    pub fn send(self) -> Result<Completed, WebError> {
        self.send_with(&mut HttpRequest::new())
    }

    /// A copy for the next page of a [`super::Paginator`]: the same method,
    /// fields, settings and status policy, at `url`, with the body again
    /// when it can be sent again.
    pub(crate) fn next_page(&self, url: String) -> Request {
        Request {
            method: self.method.clone(),
            url,
            query: Vec::new(),
            headers: self.headers.clone(),
            body: self.body.replay().unwrap_or(RequestBody::Empty),
            content_type: self.content_type.clone(),
            settings: self.settings.clone(),
            status: self.status.clone(),
            error: None,
        }
    }
}

struct Prepared {
    url: Url,
    method: String,
    headers: Vec<(String, String)>,
    body: RequestBody,
    settings: Settings,
    status: StatusPolicy,
}
