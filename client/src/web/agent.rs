//! [`Agent`]: a client object that keeps its connections and shared
//! defaults across calls (axios's `axios.create`, reqwest's `Client`, ureq's
//! `Agent`). Fifty calls to one server are fifty requests on one kept
//! connection, where [`Request::send`] makes a new one for each.

use std::io;

use url::Url;

use super::builder::{Request, WebError};
use crate::{Completed, RequestPool, Settings};

/// Connections and defaults shared by the requests made through it: a
/// [`RequestPool`] (per-origin keep-alive and limits, its DNS cache), the
/// [`Settings`] every request starts from, header fields added to every
/// request that does not give its own, and a base URL that relative URLs
/// are resolved against.
///
/// [`send`](Self::send) blocks until its request ends (for tools and
/// threads); a frame loop submits to [`pool`](Self::pool) instead and
/// polls.
///
/// ```no_run
/// use pollhttp::web::Agent;
///
/// let mut agent = Agent::new().unwrap();
/// agent.set_base_url("http://127.0.0.1:8080/api/").unwrap();
/// agent.set_header("Authorization", "Bearer t0k3n");
/// for id in 1..=50 {
///     // One connection for all fifty.
///     let done = agent.send(agent.get(&format!("items/{id}"))).unwrap();
///     println!("{} {}", done.response_code(), done.text_lossy());
/// }
/// ```
#[derive(Debug)]
pub struct Agent {
    pool: RequestPool,
    settings: Settings,
    headers: Vec<(String, String)>,
    base: Option<Url>,
}

impl Agent {
    /// An agent with default settings and pool limits.
    ///
    /// # Errors
    /// When the OS refuses an epoll instance or an eventfd.
    pub fn new() -> io::Result<Agent> {
        Ok(Agent::with_pool(RequestPool::new()?))
    }

    /// An agent over `pool`: its limits, its clock and its name lookup.
    pub fn with_pool(pool: RequestPool) -> Agent {
        Agent {
            pool,
            settings: Settings::default(),
            headers: Vec::new(),
            base: None,
        }
    }

    /// The settings every request made with [`request`](Self::request)
    /// starts from (the builder's own calls change its copy).
    pub fn settings_mut(&mut self) -> &mut Settings {
        &mut self.settings
    }

    /// Add `name: value` to every request sent through the agent that does
    /// not give a field of that name itself.
    pub fn set_header(&mut self, name: &str, value: &str) {
        self.headers.push((name.to_string(), value.to_string()));
    }

    /// Resolve the URLs of [`request`](Self::request) against `base`
    /// (RFC 3986 §5.2, as `Url::join`: `items/1` against
    /// `http://h/api/` is `http://h/api/items/1`; an absolute URL stays).
    ///
    /// # Errors
    /// The [`url::ParseError`] of a `base` that is not a URL.
    pub fn set_base_url(&mut self, base: &str) -> Result<(), url::ParseError> {
        self.base = Some(Url::parse(base)?);
        Ok(())
    }

    /// A request of `method` for `url` (resolved against the base URL),
    /// starting from the agent's settings.
    pub fn request(&self, method: &str, url: &str) -> Request {
        let url = match self.base.as_ref().map(|b| b.join(url)) {
            Some(Ok(joined)) => joined.to_string(),
            _ => url.to_string(),
        };
        Request::new(method, &url).with_settings(self.settings.clone())
    }

    /// A GET: [`request`](Self::request).
    pub fn get(&self, url: &str) -> Request {
        self.request("GET", url)
    }

    /// A POST: [`request`](Self::request).
    pub fn post(&self, url: &str) -> Request {
        self.request("POST", url)
    }

    /// Run `request` to its end on the agent's pool, with the agent's header
    /// fields it does not give itself; its connection stays for the next
    /// request to the same origin. Blocks: it sleeps in the pool's `wait`
    /// between polls (set a timeout: without one a silent server is waited
    /// for). Other requests submitted to [`pool`](Self::pool) make progress
    /// meanwhile and their completions stay for the caller.
    ///
    /// # Errors
    /// As [`Request::send`].
    pub fn send(&mut self, request: Request) -> Result<Completed, WebError> {
        let request = self
            .headers
            .iter()
            .fold(request, |r, (k, v)| r.header_if_missing(k, v));
        let status = request.status_policy().clone();
        let id = request.submit(&mut self.pool)?;
        loop {
            self.pool.poll();
            if let Some(done) = self.pool.take_completed(id) {
                return status.check(done);
            }
            self.pool.wait(None);
        }
    }

    /// The agent's pool: submit requests without blocking
    /// ([`Request::submit`], [`super::all`]) and poll them from a frame loop.
    pub fn pool(&mut self) -> &mut RequestPool {
        &mut self.pool
    }
}
