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
    Auth, FieldLineError, QueryValue, RetryPolicy,
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
        if !self.accepts(completed.response_code()) {
            return Err(WebError::Status(Box::new(completed)));
        }
        Ok(completed)
    }
}

/// Why a request of the builder did not give a response it accepts.
#[derive(Debug)]
#[non_exhaustive]
pub enum WebError {
    /// Refused at once by the front end, nothing was sent (a bad URL,
    /// field, body file...).
    Refused(RequestError),
    /// A `"Name: value"` field line the builder was given is refused
    /// ([`Request::header_line`]); nothing was sent.
    FieldLine(FieldLineError),
    /// The JSON body could not be serialized; nothing was sent.
    #[cfg(feature = "json")]
    Serialize(serde_json::Error),
    /// The data of [`Request::object`] cannot be sent by r.http's rules;
    /// nothing was sent.
    #[cfg(feature = "json")]
    Data(DataError),
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
            WebError::FieldLine(e) => write!(f, "invalid request: {e}"),
            #[cfg(feature = "json")]
            WebError::Serialize(e) => write!(f, "cannot serialize the JSON body: {e}"),
            #[cfg(feature = "json")]
            WebError::Data(e) => write!(f, "invalid data: {e}"),
            WebError::Failed(c) => write!(f, "{}: {}", c.result, c.reason),
            WebError::Status(c) => write!(
                f,
                "status {} from {} is not accepted",
                c.response_code(),
                c.final_url
            ),
        }
    }
}

impl std::error::Error for WebError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            WebError::Refused(e) => Some(e),
            WebError::FieldLine(e) => Some(e),
            #[cfg(feature = "json")]
            WebError::Serialize(e) => Some(e),
            #[cfg(feature = "json")]
            WebError::Data(e) => Some(e),
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
    /// The completion, when there is one (not for a refusal).
    pub fn completed(&self) -> Option<&Completed> {
        match self {
            WebError::Failed(c) | WebError::Status(c) => Some(c),
            _ => None,
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
    /// An [`object`](Self::object) body, encoded when the builder ends
    /// (its encoding depends on the Content-Type field, which may come
    /// later).
    #[cfg(feature = "json")]
    data: Option<serde_json::Value>,
    settings: Settings,
    status: StatusPolicy,
    /// The first invalid piece, returned when the builder ends.
    error: Option<WebError>,
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
            #[cfg(feature = "json")]
            data: None,
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

    fn fail(mut self, e: WebError) -> Request {
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

    /// Add `name: value` unless a field of that name is there already (an
    /// agent's default field).
    pub(crate) fn header_if_missing(mut self, name: &str, value: &str) -> Request {
        if !self.has_header(name) {
            self.headers.push((name.to_string(), value.to_string()));
        }
        self
    }

    /// Start from `settings` instead of the defaults (an agent's).
    pub(crate) fn with_settings(mut self, settings: Settings) -> Request {
        self.settings = settings;
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
    /// builder with [`WebError::FieldLine`].
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
            Err(e) => self.fail(WebError::FieldLine(e)),
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
        #[cfg(feature = "json")]
        {
            self.data = None;
        }
        self
    }

    fn typed_body(self, body: RequestBody, media_type: &str) -> Request {
        let mut r = self.body(body);
        r.content_type = Some(media_type.to_string());
        r
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
    /// serialize ends the builder with [`WebError::Serialize`].
    #[cfg(feature = "json")]
    pub fn json<T: serde::Serialize + ?Sized>(self, value: &T) -> Request {
        match serde_json::to_vec(value) {
            Ok(v) => self.typed_body(RequestBody::Bytes(Bytes::from(v)), "application/json"),
            Err(e) => self.fail(WebError::Serialize(e)),
        }
    }

    /// A body given as a JSON value: RethinkDB `r.http`'s `data` and
    /// Parse's `body`, encoded by their rules when the builder ends (so a
    /// Content-Type field given before or after counts):
    ///
    /// - Only on POST, PUT, PATCH and DELETE; any other method ends the
    ///   builder with [`DataError::Method`] (r.http: "If you want URL
    ///   parameters, use `params` instead": [`query`](Self::query)).
    /// - A string is the body as it is, whatever the Content-Type (r.http's
    ///   `data: r.expr(value).coerce_to('string')` with a JSON
    ///   Content-Type). POST sends it under `Content-Type:
    ///   application/x-www-form-urlencoded` unless one is given (what
    ///   r.http's POST sends, taking the string as encoded form data);
    ///   PUT, PATCH and DELETE send no Content-Type of their own.
    /// - POST data that is not a string must be an object
    ///   ([`DataError::NotStringOrObject`] otherwise).
    /// - A Content-Type field naming JSON (`application/json` or a `+json`
    ///   type, parameters such as `;charset=utf-8` aside) makes the value
    ///   JSON, for any of the four methods: Parse's "If you want the body
    ///   to be JSON encoded" recipe.
    /// - A Content-Type field naming `application/x-www-form-urlencoded`
    ///   makes the object a form, for any of the four methods.
    /// - Otherwise POST sends the object as a form
    ///   (`application/x-www-form-urlencoded`: Parse's default and r.http's
    ///   POST rule), and PUT, PATCH and DELETE send the value as JSON under
    ///   `Content-Type: application/json` unless one is given (r.http).
    ///
    /// A form has one pair per member, in the object's key order (sorted,
    /// as r.http's are): a string as it is, a number in its JSON text, a
    /// null as an empty value (`key=`). Any other member (a boolean, an
    /// array, an object) ends the builder with [`DataError::FormMember`]
    /// (r.http: "values must be numbers, strings, or null").
    ///
    /// # Errors
    /// A [`DataError`] ends the builder with [`WebError::Data`]: nothing is
    /// sent.
    ///
    /// ```
    /// use pollhttp::web::{DataError, Request, ValueKind, WebError};
    /// use serde_json::json;
    ///
    /// let refused = Request::post("http://127.0.0.1:9/")
    ///     .object(&json!({"a": {"b": 1}}))
    ///     .start(&mut pollhttp::HttpRequest::new())
    ///     .unwrap_err();
    /// assert!(matches!(
    ///     refused,
    ///     WebError::Data(DataError::FormMember { key, kind: ValueKind::Object }) if key == "a"
    /// ));
    /// ```
    #[cfg(feature = "json")]
    pub fn object(self, value: &serde_json::Value) -> Request {
        let mut r = self.body(RequestBody::Empty);
        r.data = Some(value.clone());
        r
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
    /// ([`Timeouts::total`](crate::Timeouts::total)).
    pub fn timeout(self, timeout: Duration) -> Request {
        self.configure(|s| s.timeouts.total = Some(timeout))
    }

    /// Fail when no byte arrives for this long ([`Timeouts::idle`](crate::Timeouts::idle)).
    pub fn idle_timeout(self, timeout: Duration) -> Request {
        self.configure(|s| s.timeouts.idle = Some(timeout))
    }

    /// Whether redirects are followed (Parse's `followRedirects`).
    pub fn follow_redirects(self, follow: bool) -> Request {
        self.configure(|s| s.redirects.follow = follow)
    }

    /// Most redirects followed.
    pub fn max_redirects(self, n: u32) -> Request {
        self.configure(|s| s.redirects.max = n)
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
        self.configure(|s| s.body.accept_gzip = on)
    }

    /// The `User-Agent` field (default `pollhttp/<version>`).
    pub fn user_agent(self, agent: &str) -> Request {
        self.header("User-Agent", agent)
    }

    /// Save the body into this file ([`BodySettings::download_file`](crate::BodySettings::download_file)).
    pub fn download_file(self, path: impl Into<PathBuf>) -> Request {
        let path = path.into();
        self.configure(|s| s.body.download_file = Some(path))
    }

    /// The largest body in bytes ([`BodySettings::size_limit`](crate::BodySettings::size_limit)).
    pub fn body_size_limit(self, limit: u64) -> Request {
        self.configure(|s| s.body.size_limit = Some(limit))
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
    fn finish(mut self) -> Result<Prepared, WebError> {
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
        #[cfg(feature = "json")]
        if let Some(data) = self.data.take() {
            let given = self
                .headers
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case("content-type"))
                .map(|(_, v)| v.as_str());
            let (body, media_type) =
                encode_data(&self.method, given, &data).map_err(WebError::Data)?;
            self.body = RequestBody::Bytes(body);
            self.content_type = media_type.map(str::to_string);
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
    /// A piece the builder kept ([`WebError::FieldLine`],
    /// [`WebError::Serialize`], [`WebError::Data`]), or what
    /// [`HttpRequest::request_body`] refuses. Nothing is sent then.
    pub fn start(self, request: &mut HttpRequest) -> Result<StatusPolicy, WebError> {
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
    pub fn submit(self, pool: &mut RequestPool) -> Result<RequestId, WebError> {
        let p = self.finish()?;
        let fields: Vec<(&str, &str)> = p
            .headers
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        Ok(pool.request(p.url, &fields, &p.method, p.body, &p.settings)?)
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
            #[cfg(feature = "json")]
            data: self.data.clone(),
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

/// The kind of a JSON value, as a [`DataError`] names it.
#[cfg(feature = "json")]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValueKind {
    /// `null`.
    Null,
    /// `true` or `false`.
    Bool,
    /// A number.
    Number,
    /// A string.
    String,
    /// An array.
    Array,
    /// An object.
    Object,
}

#[cfg(feature = "json")]
impl ValueKind {
    /// The kind of `value`.
    pub fn of(value: &serde_json::Value) -> ValueKind {
        use serde_json::Value;
        match value {
            Value::Null => ValueKind::Null,
            Value::Bool(_) => ValueKind::Bool,
            Value::Number(_) => ValueKind::Number,
            Value::String(_) => ValueKind::String,
            Value::Array(_) => ValueKind::Array,
            Value::Object(_) => ValueKind::Object,
        }
    }
}

#[cfg(feature = "json")]
impl fmt::Display for ValueKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ValueKind::Null => "null",
            ValueKind::Bool => "a boolean",
            ValueKind::Number => "a number",
            ValueKind::String => "a string",
            ValueKind::Array => "an array",
            ValueKind::Object => "an object",
        })
    }
}

/// Why an [`object`](Request::object) body (r.http's `data`, Parse's
/// `body`) cannot be sent: r.http's rules for `data`, each an error
/// there too.
#[cfg(feature = "json")]
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum DataError {
    /// The method is not POST, PUT, PATCH or DELETE, the only ones r.http
    /// sends data with (the method is given).
    Method(String),
    /// POST data (or a form's) that is neither a string nor an object.
    NotStringOrObject(ValueKind),
    /// A member of an object sent as a form is not a number, a string or
    /// null.
    FormMember {
        /// The member's key.
        key: String,
        /// What it is.
        kind: ValueKind,
    },
}

#[cfg(feature = "json")]
impl fmt::Display for DataError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DataError::Method(m) => write!(
                f,
                "a {m} request takes no data (only POST, PUT, PATCH and DELETE do; \
                 URL parameters go in the query)"
            ),
            DataError::NotStringOrObject(kind) => {
                write!(f, "the data is {kind}, not a string or an object")
            }
            DataError::FormMember { key, kind } => write!(
                f,
                "form member {key:?} is {kind}, not a number, a string or null"
            ),
        }
    }
}

#[cfg(feature = "json")]
impl std::error::Error for DataError {}

/// Whether a Content-Type value names JSON: `application/json` or a
/// `+json` structured syntax suffix (RFC 6839 §3.1), case-insensitive,
/// parameters ignored.
#[cfg(feature = "json")]
fn is_json_media_type(media_type: &str) -> bool {
    media_type == "application/json" || media_type.ends_with("+json")
}

/// The media type of a Content-Type value: before any `;`, trimmed,
/// lowercased (RFC 9110 §8.3.1).
#[cfg(feature = "json")]
fn media_type(content_type: &str) -> String {
    let end = content_type.find(';').unwrap_or(content_type.len());
    content_type[..end].trim().to_ascii_lowercase()
}

#[cfg(feature = "json")]
const FORM: &str = "application/x-www-form-urlencoded";

/// [`Request::object`]'s rules: the body of `data` for `method`, given the
/// caller's Content-Type (if any), and the media type to send unless one
/// is given.
#[cfg(feature = "json")]
fn encode_data(
    method: &str,
    given: Option<&str>,
    data: &serde_json::Value,
) -> Result<(Bytes, Option<&'static str>), DataError> {
    use serde_json::Value;
    let post = method == "POST";
    if !post && !matches!(method, "PUT" | "PATCH" | "DELETE") {
        return Err(DataError::Method(method.to_string()));
    }
    if let Value::String(s) = data {
        return Ok((Bytes::from(s.clone()), post.then_some(FORM)));
    }
    if post && !data.is_object() {
        return Err(DataError::NotStringOrObject(ValueKind::of(data)));
    }
    let given = given.map(media_type);
    let json = match given.as_deref() {
        Some(m) if is_json_media_type(m) => true,
        Some(FORM) => false,
        _ => !post,
    };
    if json {
        return Ok((Bytes::from(data.to_string()), Some("application/json")));
    }
    let Value::Object(map) = data else {
        return Err(DataError::NotStringOrObject(ValueKind::of(data)));
    };
    let mut pairs: Vec<(&str, String)> = Vec::with_capacity(map.len());
    for (key, value) in map {
        let text = match value {
            Value::String(s) => s.clone(),
            Value::Number(n) => n.to_string(),
            Value::Null => String::new(),
            other => {
                return Err(DataError::FormMember {
                    key: key.clone(),
                    kind: ValueKind::of(other),
                })
            }
        };
        pairs.push((key, text));
    }
    let refs: Vec<(&str, &str)> = pairs.iter().map(|(k, v)| (*k, v.as_str())).collect();
    Ok((form_body(&refs), Some(FORM)))
}

#[cfg(all(test, feature = "json"))]
mod tests {
    use super::*;
    use serde_json::json;

    fn enc(
        method: &str,
        given: Option<&str>,
        data: serde_json::Value,
    ) -> Result<(String, Option<&'static str>), DataError> {
        encode_data(method, given, &data).map(|(b, t)| (String::from_utf8(b.to_vec()).unwrap(), t))
    }

    const JSON: Option<&str> = Some("application/json");

    #[test]
    fn object_bodies_by_method_and_content_type() {
        let obj = json!({"title": "Vote for Pedro", "n": 5, "x": null});
        let form = Ok(("n=5&title=Vote+for+Pedro&x=".to_string(), Some(FORM)));
        let as_json = Ok((
            r#"{"n":5,"title":"Vote for Pedro","x":null}"#.to_string(),
            JSON,
        ));
        // r.http: a form for POST, JSON for PUT, PATCH and DELETE.
        assert_eq!(enc("POST", None, obj.clone()), form);
        for m in ["PUT", "PATCH", "DELETE"] {
            assert_eq!(enc(m, None, obj.clone()), as_json, "{m}");
        }
        // Parse: a JSON Content-Type makes the object JSON (parameters and
        // case aside), a form Content-Type a form, whatever the method.
        for given in [
            "application/json;charset=utf-8",
            "Application/JSON",
            " application/vnd.api+json ; x=1",
        ] {
            assert_eq!(enc("POST", Some(given), obj.clone()), as_json, "{given}");
        }
        for m in ["PUT", "PATCH", "DELETE"] {
            let given = Some("application/x-www-form-urlencoded; charset=utf-8");
            assert_eq!(enc(m, given, obj.clone()), form, "{m}");
        }
        // Another Content-Type leaves the method's rule.
        assert_eq!(enc("POST", Some("text/plain"), obj.clone()), form);
        assert_eq!(enc("PUT", Some("text/plain"), obj.clone()), as_json);
        // PUT, PATCH and DELETE take any value as JSON.
        assert_eq!(
            enc("PUT", None, json!([1, true])),
            Ok(("[1,true]".to_string(), JSON))
        );
        assert_eq!(
            enc("DELETE", None, json!(null)),
            Ok(("null".to_string(), JSON))
        );
        // Nested members are fine in JSON.
        assert_eq!(
            enc("POST", JSON, json!({"a": {"b": [1]}})),
            Ok((r#"{"a":{"b":[1]}}"#.to_string(), JSON))
        );
    }

    #[test]
    fn strings_go_as_they_are() {
        for given in [None, JSON] {
            assert_eq!(
                enc("POST", given, json!("raw \"text\" & more")),
                Ok((r#"raw "text" & more"#.to_string(), Some(FORM)))
            );
            for m in ["PUT", "PATCH", "DELETE"] {
                assert_eq!(
                    enc(m, given, json!("{\"k\":1}")),
                    Ok((r#"{"k":1}"#.to_string(), None)),
                    "{m}"
                );
            }
        }
    }

    #[test]
    fn invalid_data_is_refused() {
        for m in ["GET", "HEAD", "OPTIONS", "post"] {
            assert_eq!(
                enc(m, None, json!({"a": 1})),
                Err(DataError::Method(m.to_string()))
            );
        }
        for (v, kind) in [
            (json!(5), ValueKind::Number),
            (json!(null), ValueKind::Null),
            (json!(false), ValueKind::Bool),
            (json!(["a"]), ValueKind::Array),
        ] {
            assert_eq!(
                enc("POST", None, v.clone()),
                Err(DataError::NotStringOrObject(kind))
            );
            assert_eq!(
                enc("POST", JSON, v),
                Err(DataError::NotStringOrObject(kind)),
                "POST data is a string or an object whatever the Content-Type"
            );
        }
        let given = Some("application/x-www-form-urlencoded");
        assert_eq!(
            enc("PUT", given, json!([1])),
            Err(DataError::NotStringOrObject(ValueKind::Array))
        );
        for (v, kind) in [
            (json!(true), ValueKind::Bool),
            (json!([1]), ValueKind::Array),
            (json!({"b": 1}), ValueKind::Object),
        ] {
            assert_eq!(
                enc("POST", None, json!({"a": 1, "m": v})),
                Err(DataError::FormMember {
                    key: "m".into(),
                    kind
                })
            );
        }
    }

    #[test]
    fn a_data_error_ends_the_builder_as_its_own_error() {
        let e = Request::get("http://h/")
            .object(&json!({"a": 1}))
            .finish()
            .err()
            .unwrap();
        assert!(
            matches!(&e, WebError::Data(DataError::Method(m)) if m == "GET"),
            "{e:?}"
        );
        // The Content-Type may come after the body; a later body replaces it.
        let p = Request::post("http://h/")
            .object(&json!({"a": 1}))
            .header("Content-Type", "application/json")
            .finish()
            .unwrap();
        assert!(matches!(&p.body, RequestBody::Bytes(b) if &b[..] == br#"{"a":1}"#));
        let p = Request::post("http://h/")
            .object(&json!(5))
            .text("t")
            .finish()
            .unwrap();
        assert!(matches!(&p.body, RequestBody::Bytes(b) if &b[..] == b"t"));
        assert_eq!(
            p.headers,
            [(
                "Content-Type".to_string(),
                "text/plain; charset=utf-8".to_string()
            )]
        );
    }
}
