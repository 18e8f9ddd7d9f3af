//! Pagination (r.http's `page` and `page_limit`, Pipedream's loops):
//! [`Paginator`] asks for one page after another and hands each out, in
//! order, as a completion.

use std::fmt;
use std::time::Duration;

use url::Url;

use super::{next_link, Request, StatusPolicy, WebError};
use crate::{Completed, HttpRequest};

/// A function of the last page that returns the next page's URL.
pub type NextPageFn = Box<dyn FnMut(&Completed) -> Option<String> + Send>;

/// How the next page is found.
pub enum Pagination {
    /// The `Link` field's `rel="next"` target (RFC 8288; a relative
    /// reference is resolved against the page's URL): r.http's
    /// `'link-next'`, GitHub's API.
    LinkNext,
    /// A function of the last page (its final URL, fields and body) that
    /// returns the next URL (relative to the page's URL) or `None` at the
    /// end: r.http's `page` function.
    Custom(NextPageFn),
}

impl fmt::Debug for Pagination {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Pagination::LinkNext => "LinkNext",
            Pagination::Custom(_) => "Custom",
        })
    }
}

/// Pages asked for one after the other on one [`HttpRequest`] (so on one
/// kept connection when the server allows it), handed out in order.
///
/// `page_limit` (r.http's): `-1` no limit, `0` no request at all, `n` at
/// most `n` pages. The default is `-1`: with a server whose pages link in
/// a loop, set a limit.
///
/// Poll it from a frame loop ([`poll`](Self::poll): never blocks) or
/// iterate it (each `next()` blocks until the next page).
///
/// ```no_run
/// use pollhttp::web::{Pagination, Paginator, Request};
///
/// let pages = Paginator::new(Request::get("https://api.github.com/repos/o/r/issues"), Pagination::LinkNext)
///     .page_limit(10);
/// for page in pages {
///     let page = page.unwrap();
///     println!("{} bytes from {}", page.body.len(), page.final_url);
/// }
/// ```
pub struct Paginator {
    request: HttpRequest,
    /// The request of the first page, the template of the others.
    template: Request,
    /// The next page's request (taken when it starts).
    next: Option<Request>,
    pagination: Pagination,
    page_limit: i64,
    pages: u32,
    status: Option<StatusPolicy>,
    done: bool,
}

impl fmt::Debug for Paginator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Paginator")
            .field("pagination", &self.pagination)
            .field("page_limit", &self.page_limit)
            .field("pages", &self.pages)
            .field("done", &self.done)
            .finish_non_exhaustive()
    }
}

impl Paginator {
    /// Pages starting with `first`, the next found by `pagination`. Later
    /// pages use the first one's method, fields, settings and status policy
    /// (its body again when it can be sent again).
    pub fn new(first: Request, pagination: Pagination) -> Paginator {
        let template = first.next_page(String::new());
        Paginator {
            request: HttpRequest::new(),
            template,
            next: Some(first),
            pagination,
            page_limit: -1,
            pages: 0,
            status: None,
            done: false,
        }
    }

    /// At most `limit` pages: `-1` (or any negative) no limit, `0` none.
    pub fn page_limit(mut self, limit: i64) -> Paginator {
        self.page_limit = limit;
        self
    }

    /// Pages handed out so far.
    pub fn pages(&self) -> u32 {
        self.pages
    }

    /// Whether the last page was handed out (or a page failed).
    pub fn is_done(&self) -> bool {
        self.done
    }

    fn limit_reached(&self) -> bool {
        self.page_limit >= 0 && i64::from(self.pages) >= self.page_limit
    }

    /// Advance: start the next page when none runs, poll the running one,
    /// and hand out a page when it completes. `None` while a page runs and
    /// after the end. A page that fails is handed out as its error and ends
    /// the pagination. Never blocks (the cost of one
    /// [`HttpRequest::poll`]).
    pub fn poll(&mut self) -> Option<Result<Completed, WebError>> {
        if self.done {
            return None;
        }
        if self.status.is_none() {
            if self.limit_reached() {
                self.done = true;
                return None;
            }
            let next = self.next.take()?;
            match next.start(&mut self.request) {
                Ok(status) => self.status = Some(status),
                Err(e) => {
                    self.done = true;
                    return Some(Err(e));
                }
            }
        }
        let done = self.request.poll()?;
        let status = self.status.take().unwrap_or_default();
        self.pages += 1;
        let page = match status.check(done) {
            Ok(page) => page,
            Err(e) => {
                self.done = true;
                return Some(Err(e));
            }
        };
        let next = match &mut self.pagination {
            Pagination::LinkNext => Url::parse(&page.final_url)
                .ok()
                .and_then(|base| next_link(page.headers(), &base))
                .map(String::from),
            Pagination::Custom(f) => f(&page).and_then(|next| {
                let base = Url::parse(&page.final_url).ok()?;
                base.join(&next).ok().map(String::from)
            }),
        };
        match next {
            Some(url) => self.next = Some(self.template.next_page(url)),
            None => self.done = true,
        }
        if self.limit_reached() {
            self.done = true;
        }
        Some(Ok(page))
    }

    /// Sleep until the running page has something for
    /// [`poll`](Self::poll), or `timeout` passes. Returns at once when no
    /// page runs.
    pub fn wait(&mut self, timeout: Option<Duration>) {
        if self.status.is_some() {
            self.request.wait(timeout);
        }
    }
}

impl Iterator for Paginator {
    type Item = Result<Completed, WebError>;

    /// The next page, blocking until it completes.
    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(page) = self.poll() {
                return Some(page);
            }
            if self.done {
                return None;
            }
            self.wait(None);
        }
    }
}
