//! Set-Cookie parsing and a cookie jar. STUB: helper-B implements.

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use pollhttp_proto::Fields;
use url::Url;

/// A cookie jar shared by requests (and threads).
pub type SharedCookieJar = Arc<Mutex<CookieJar>>;

/// SameSite.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SameSite {
    /// Strict.
    Strict,
    /// Lax.
    Lax,
    /// None.
    None,
}

/// One parsed Set-Cookie field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetCookie {
    /// Name.
    pub name: String,
    /// Value.
    pub value: String,
    /// Domain.
    pub domain: Option<String>,
    /// Path.
    pub path: Option<String>,
    /// Expires.
    pub expires: Option<SystemTime>,
    /// Max-Age.
    pub max_age: Option<Duration>,
    /// Secure.
    pub secure: bool,
    /// HttpOnly.
    pub http_only: bool,
    /// SameSite.
    pub same_site: Option<SameSite>,
}

/// Parse one Set-Cookie value.
pub fn parse_set_cookie(_value: &str) -> Option<SetCookie> {
    todo!()
}

/// A cookie jar.
#[derive(Debug, Default)]
pub struct CookieJar {}

/// A jar that cannot be loaded.
#[derive(Debug)]
#[non_exhaustive]
pub enum CookieJarError {
    /// Reading failed.
    Io(std::io::Error),
}

impl std::fmt::Display for CookieJarError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{self:?}")
    }
}

impl std::error::Error for CookieJarError {}

impl CookieJar {
    /// An empty jar.
    pub fn new() -> CookieJar {
        CookieJar::default()
    }

    /// Store the cookies of a response to `url`.
    pub fn store_response(&mut self, _url: &Url, _fields: &Fields) {
        todo!()
    }

    /// The `Cookie` field value for a request to `url`.
    pub fn cookie_header(&self, _url: &Url) -> Option<String> {
        todo!()
    }
}
