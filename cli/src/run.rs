//! The runners: one transfer after another on one `HttpRequest`, all at
//! once through one `RequestPool` (`-Z`), and the pages of `--paginate`.
//! Each loop is the one a tool writes: `poll()`, and when nothing finished,
//! `wait(Some(100 ms))`, which sleeps on the sockets.

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, Write};
use std::path::Path;
use std::time::{Duration, Instant};

use pollhttp::web::{Auth, Pagination, Paginator, SharedCookieJar, WebError};
use pollhttp::{Completed, HttpRequest, PoolSettings, RequestId, RequestPool};
use sha2::{Digest, Sha256};

use crate::exit::Error;
use crate::output::{finish, head_text, hex, write_stdout, Summary};
use crate::plan::{Plan, Transfer};
use crate::progress::{Bars, Meter, Sizes};

/// What the exit status is made of: sequential transfers exit with the
/// last one's code, as curl; parallel ones with the code of the first
/// transfer, in command-line order, that failed (curl's is the first to
/// fail in time, which a test cannot pin down).
#[derive(Default)]
pub(crate) struct Tally {
    /// The code so far.
    pub(crate) code: u8,
    /// `-Z`: the URL index of the failure `code` came from.
    pub(crate) first: Option<usize>,
    /// `-Z`: keep the first failure's code.
    pub(crate) keep_first: bool,
}

impl Tally {
    /// A transfer (the `index`-th URL) ended with `code`.
    pub(crate) fn record(&mut self, index: usize, code: u8) {
        if !self.keep_first {
            self.code = code;
        } else if code != 0 && self.first.is_none_or(|f| index < f) {
            self.code = code;
            self.first = Some(index);
        }
    }

    /// A transfer could not run: `e` said (unless `-s`), its code kept.
    fn refused(&mut self, plan: &Plan, index: usize, e: Error) {
        if plan.errors {
            eprintln!("fetch: {e}");
        }
        self.record(index, e.code);
    }
}

/// Runs every transfer; the exit code.
pub(crate) fn run(plan: &Plan) -> u8 {
    let mut tally = Tally {
        keep_first: plan.parallel.is_some(),
        ..Tally::default()
    };
    let ran = match (plan.parallel, plan.paginate) {
        (Some(_), Some(limit)) => run_pages_parallel(plan, limit, &mut tally),
        (Some(n), None) => run_parallel(plan, n, &mut tally),
        (None, _) => run_sequential(plan, &mut tally),
    };
    if let Err(e) = ran {
        tally.refused(plan, usize::MAX, e);
    }
    if let (Some(jar), Some(path)) = (&plan.jar, &plan.jar_out) {
        if let Err(e) = save_jar(jar, path) {
            tally.refused(
                plan,
                usize::MAX,
                Error::write(format!("-c {}: {e}", path.display())),
            );
        }
    }
    tally.code
}

/// `-c FILE`: the jar in Netscape's format, written beside and renamed.
pub(crate) fn save_jar(jar: &SharedCookieJar, path: &Path) -> io::Result<()> {
    let jar = jar.lock().unwrap_or_else(|e| e.into_inner());
    let mut text = Vec::new();
    jar.save_netscape(&mut text)?;
    std::fs::write(path, text)
}

/// One transfer after another, on one `HttpRequest` (a kept connection
/// carries the next request to the same origin).
pub(crate) fn run_sequential(plan: &Plan, tally: &mut Tally) -> Result<(), Error> {
    let mut req = HttpRequest::new();
    if let Some(lookup) = &plan.lookup {
        req.set_lookup(lookup.clone());
    }
    // A tool has no frame to protect: bytes only, 8 MiB per poll.
    req.set_poll_budget(pollhttp::PollBudget::new(8 << 20, None));
    for t in &plan.transfers {
        if let Some(limit) = plan.paginate {
            run_pages(plan, t, limit, tally)?;
            continue;
        }
        let start = Instant::now();
        let Some(mut done) = run_one(plan, t, &mut req, tally) else {
            continue;
        };
        // --anyauth: the credentials went as Digest; a server that asks
        // for Basic gets them once more, as Basic.
        if let Some(basic) = plan
            .anyauth
            .then(|| basic_fallback(plan, t, &done))
            .flatten()
        {
            if plan.verbose {
                eprintln!("* the server asks for Basic: sending the credentials as Basic");
            }
            match run_one(plan, &basic, &mut req, tally) {
                Some(mut again) => {
                    // The 401 round's heads come first, as curl prints them.
                    let mut heads = std::mem::take(&mut done.earlier_heads);
                    heads.extend(done.head.take());
                    heads.append(&mut again.earlier_heads);
                    again.earlier_heads = heads;
                    done = again;
                }
                None => continue,
            }
        }
        let summary = Summary::of(&done, start.elapsed().as_secs_f64());
        finish(plan, t, &done, summary, None, tally)?;
    }
    Ok(())
}

/// One request of a transfer on `req`, to its completion; `None` when it
/// was refused at once (said, and its code kept).
fn run_one(
    plan: &Plan,
    t: &Transfer,
    req: &mut HttpRequest,
    tally: &mut Tally,
) -> Option<Completed> {
    plan.tell_request(t);
    let started = plan
        .request(t)
        .and_then(|r| r.start(req).map_err(|e| Error::refused(&t.url, &e)));
    if let Err(e) = started {
        tally.refused(plan, t.index, e);
        return None;
    }
    let upload = plan.upload_len();
    let mut meter = plan.meter_for(t).map(Meter::start);
    let done = loop {
        if let Some(done) = req.poll() {
            break done;
        }
        if let Some(m) = &mut meter {
            m.update(Sizes {
                dl_total: req.body_size(),
                dl: req.downloaded_bytes(),
                ul_total: upload,
                ul: req.uploaded_bytes(),
            });
        }
        req.wait(Some(Duration::from_millis(100)));
    };
    if let Some(m) = meter {
        m.finish(Sizes {
            dl_total: done
                .head
                .as_ref()
                .and_then(|_| done.headers().get_str("content-length"))
                .and_then(|v| v.trim().parse().ok()),
            dl: done.body_bytes,
            ul_total: upload,
            ul: req.uploaded_bytes(),
        });
    }
    Some(done)
}

/// `--anyauth`: the transfer again with Basic credentials, when `done` is a
/// 401 that offers Basic and not Digest.
fn basic_fallback(plan: &Plan, t: &Transfer, done: &Completed) -> Option<Transfer> {
    if done.response_code() != 401 {
        return None;
    }
    let offers = |scheme: &str| {
        done.headers().get_all("www-authenticate").any(|v| {
            v.len() >= scheme.len() && v[..scheme.len()].eq_ignore_ascii_case(scheme.as_bytes())
        })
    };
    if !offers("basic") || offers("digest") {
        return None;
    }
    let Some(Auth::Digest { user, password }) = t.auth.as_ref().or(plan.settings.auth.as_ref())
    else {
        return None;
    };
    Some(Transfer {
        auth: Some(Auth::basic(user, password)),
        ..t.clone()
    })
}

/// `--paginate`: the pages of one URL, each body written in turn (to stdout
/// or the file), then one report for all.
pub(crate) fn run_pages(
    plan: &Plan,
    t: &Transfer,
    limit: i64,
    tally: &mut Tally,
) -> Result<(), Error> {
    let mut pages = Pages::new(plan, t, limit, false)?;
    while !pages.step(plan)? {
        pages.paginator.wait(Some(Duration::from_millis(100)));
    }
    pages.finish(plan, tally)
}

/// `--paginate -Z`: the page sequences of every URL at once, each with
/// its own connection; a sequence's stdout output is held until it ends,
/// so sequences do not interleave.
pub(crate) fn run_pages_parallel(plan: &Plan, limit: i64, tally: &mut Tally) -> Result<(), Error> {
    let mut running = Vec::new();
    for t in &plan.transfers {
        match Pages::new(plan, t, limit, true) {
            Ok(p) => running.push(p),
            Err(e) => tally.refused(plan, t.index, e),
        }
    }
    while !running.is_empty() {
        let mut i = 0;
        while i < running.len() {
            if running[i].step(plan)? {
                running.remove(i).finish(plan, tally)?;
            } else {
                i += 1;
            }
        }
        // Sleep on one sequence's sockets, briefly: the others are polled
        // again within 10 ms.
        if let Some(p) = running.first_mut() {
            p.paginator.wait(Some(Duration::from_millis(10)));
        }
    }
    Ok(())
}

/// One URL's pages as they arrive.
struct Pages<'a> {
    t: &'a Transfer,
    paginator: Paginator,
    start: Instant,
    out: Option<File>,
    /// `-Z`: stdout output held until the sequence ends.
    held: Option<Vec<u8>>,
    hasher: Sha256,
    total: Summary,
    last: Option<Completed>,
}

impl<'a> Pages<'a> {
    fn new(plan: &Plan, t: &'a Transfer, limit: i64, hold: bool) -> Result<Pages<'a>, Error> {
        plan.tell_request(t);
        Ok(Pages {
            t,
            paginator: Paginator::new(plan.request(t)?, Pagination::LinkNext).page_limit(limit),
            start: Instant::now(),
            out: None,
            held: hold.then(Vec::new),
            hasher: Sha256::new(),
            total: Summary::default(),
            last: None,
        })
    }

    fn stdout(&mut self, bytes: &[u8]) -> Result<(), Error> {
        match &mut self.held {
            Some(held) => {
                held.extend_from_slice(bytes);
                Ok(())
            }
            None => write_stdout(bytes, None),
        }
    }

    /// Takes what arrived (never waits); whether the sequence ended.
    fn step(&mut self, plan: &Plan) -> Result<bool, Error> {
        let t = self.t;
        let page = match self.paginator.poll() {
            Some(page) => page,
            None => return Ok(self.paginator.is_done()),
        };
        let page = match page {
            Ok(page) => page,
            Err(WebError::Failed(c)) | Err(WebError::Status(c)) => {
                self.total.add(&c);
                self.last = Some(*c);
                return Ok(true);
            }
            Err(e) => return Err(Error::refused(&t.url, &e)),
        };
        self.total.add(&page);
        if plan.fail && page.response_code() >= 400 {
            self.last = Some(page);
            return Ok(true);
        }
        self.hasher.update(&page.body);
        self.total.body_bytes += page.body.len() as u64;
        if plan.verbose {
            eprint!("{}", head_text(&page, "< "));
        }
        // The file gets every page (with --report too); stdout only
        // without --report.
        if let Some(path) = &t.file {
            let f =
                match &mut self.out {
                    Some(f) => f,
                    None => self.out.insert(File::create(path).map_err(|e| {
                        Error::write(format!("cannot create {}: {e}", path.display()))
                    })?),
                };
            // With -i each page's heads go before its body, where it goes.
            let head = if plan.show_head {
                head_text(&page, "")
            } else {
                String::new()
            };
            f.write_all(head.as_bytes())
                .and_then(|()| f.write_all(&page.body))
                .map_err(|e| Error::write(format!("cannot write {}: {e}", path.display())))?;
        }
        if !plan.report {
            if plan.show_head && t.file.is_none() {
                self.stdout(head_text(&page, "").as_bytes())?;
            }
            if t.file.is_none() {
                self.stdout(&page.body)?;
            }
        }
        self.last = Some(page);
        Ok(self.paginator.is_done())
    }

    /// The held output, then the report of the whole sequence.
    fn finish(mut self, plan: &Plan, tally: &mut Tally) -> Result<(), Error> {
        if let Some(held) = self.held.take() {
            write_stdout(&held, None)?;
        }
        let Some(done) = self.last.take() else {
            return Ok(());
        };
        self.total.seconds = self.start.elapsed().as_secs_f64();
        self.total.pages = self.paginator.pages();
        self.total.body_sha256 = Some(hex(&self.hasher.finalize()));
        self.total.body_written = true;
        finish(plan, self.t, &done, self.total, None, tally)
    }
}

/// Every transfer at once through one `RequestPool`.
pub(crate) fn run_parallel(plan: &Plan, n: usize, tally: &mut Tally) -> Result<(), Error> {
    let mut pool = RequestPool::with_settings(PoolSettings {
        max_connections: n,
        max_connections_per_origin: n,
        max_idle: n,
        max_idle_per_origin: n,
        // A tool has no frame to protect.
        poll_budget: pollhttp::PollBudget::new(64 << 20, Some(Duration::from_millis(50))),
        ..PoolSettings::default()
    })
    .map_err(|e| Error::usage(format!("cannot start a pool: {e}")))?;
    if let Some(lookup) = &plan.lookup {
        pool.set_lookup(lookup.clone());
    }
    let start = Instant::now();
    let mut running: HashMap<RequestId, usize> = HashMap::new();
    for (i, t) in plan.transfers.iter().enumerate() {
        plan.tell_request(t);
        let submitted = plan
            .request(t)
            .and_then(|r| r.submit(&mut pool).map_err(|e| Error::refused(&t.url, &e)));
        match submitted {
            Ok(id) => {
                running.insert(id, i);
            }
            Err(e) => tally.refused(plan, i, e),
        }
    }
    let mut bars = Bars::new(plan.progress);
    while !running.is_empty() {
        pool.poll();
        while let Some((id, done)) = pool.poll_completed() {
            let Some(i) = running.remove(&id) else {
                continue;
            };
            let t = &plan.transfers[i];
            bars.end(id, t, &done);
            let summary = Summary::of(&done, start.elapsed().as_secs_f64());
            finish(plan, t, &done, summary, bars.multi.as_ref(), tally)?;
        }
        for (&id, &i) in &running {
            if let Some(p) = pool.progress(id) {
                bars.update(id, &plan.transfers[i], p);
            }
        }
        if !running.is_empty() {
            pool.wait(Some(Duration::from_millis(100)));
        }
    }
    Ok(())
}
