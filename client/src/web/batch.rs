//! Many requests at once on one [`RequestPool`], with every result
//! (Promise.allSettled) or the first failure (Promise.all): [`Batch`].

use std::time::Duration;

use super::{Request, StatusPolicy, WebError};
use crate::{Completed, PoolSettings, RequestError, RequestId, RequestPool};

/// Requests submitted together to a [`RequestPool`], whose results come
/// back in the order they were given.
///
/// The pool may carry other requests too: hand each completion the pool
/// gives to [`offer`](Self::offer), which keeps the batch's own and gives
/// back the others. [`run`](Self::run) drives the pool until the batch is
/// done (blocking, for tools).
///
/// With [`Batch::all`] the first failure (a request that did not complete,
/// or whose status its [`StatusPolicy`] rejects) cancels the requests still
/// running (Promise.all); with [`Batch::all_settled`] every request runs to
/// its end (Promise.allSettled).
#[derive(Debug)]
pub struct Batch {
    entries: Vec<Entry>,
    fail_fast: bool,
    /// The index of the first failure (`all`).
    failed: Option<usize>,
    running: usize,
}

#[derive(Debug)]
struct Entry {
    id: Option<RequestId>,
    status: StatusPolicy,
    result: Option<Result<Completed, WebError>>,
}

impl Batch {
    /// Submit `requests` to `pool`: the first failure stops the others.
    ///
    /// # Errors
    /// The first request refused at once: the ones submitted before it are
    /// cancelled, nothing of the batch runs.
    pub fn all(
        pool: &mut RequestPool,
        requests: impl IntoIterator<Item = Request>,
    ) -> Result<Batch, WebError> {
        Batch::submit(pool, requests, true)
    }

    /// Submit `requests` to `pool`: each runs to its end; one refused at
    /// once gets its [`WebError::Refused`] in its place.
    pub fn all_settled(
        pool: &mut RequestPool,
        requests: impl IntoIterator<Item = Request>,
    ) -> Batch {
        match Batch::submit(pool, requests, false) {
            Ok(batch) => batch,
            Err(_) => unreachable!("all_settled keeps refusals in their places"),
        }
    }

    /// Submit every request; a refusal ends `all` (the others cancelled)
    /// and takes its place in `all_settled`.
    fn submit(
        pool: &mut RequestPool,
        requests: impl IntoIterator<Item = Request>,
        fail_fast: bool,
    ) -> Result<Batch, WebError> {
        let mut batch = Batch {
            entries: Vec::new(),
            fail_fast,
            failed: None,
            running: 0,
        };
        for request in requests {
            let status = request.status_policy().clone();
            match request.submit(pool) {
                Ok(id) => batch.push(Some(id), status, None),
                Err(e) if fail_fast => {
                    batch.cancel(pool);
                    return Err(e);
                }
                Err(e) => batch.push(None, status, Some(Err(e))),
            }
        }
        Ok(batch)
    }

    fn push(
        &mut self,
        id: Option<RequestId>,
        status: StatusPolicy,
        result: Option<Result<Completed, WebError>>,
    ) {
        if result.is_none() {
            self.running += 1;
        }
        self.entries.push(Entry { id, status, result });
    }

    /// The ids of the batch's requests, in order (`None` for one refused).
    pub fn ids(&self) -> impl Iterator<Item = Option<RequestId>> + '_ {
        self.entries.iter().map(|e| e.id)
    }

    /// Requests of the batch still running.
    pub fn running(&self) -> usize {
        self.running
    }

    /// Whether every result is in (or, for `all`, one failed).
    pub fn is_done(&self) -> bool {
        self.running == 0
    }

    /// Take a completion the pool gave: the batch's own is kept (`None`
    /// returned); another request's is given back. With `all`, the first
    /// failure cancels the batch's other requests in `pool`.
    pub fn offer(
        &mut self,
        pool: &mut RequestPool,
        id: RequestId,
        completed: Completed,
    ) -> Option<(RequestId, Completed)> {
        let Some(index) = self
            .entries
            .iter()
            .position(|e| e.id == Some(id) && e.result.is_none())
        else {
            return Some((id, completed));
        };
        let entry = &mut self.entries[index];
        let result = entry.status.check(completed);
        let failed = result.is_err();
        entry.result = Some(result);
        self.running -= 1;
        if failed && self.fail_fast && self.failed.is_none() {
            self.failed = Some(index);
            self.cancel(pool);
        }
        None
    }

    /// Cancel the batch's requests still running.
    pub fn cancel(&mut self, pool: &mut RequestPool) {
        for e in &mut self.entries {
            if let (Some(id), None) = (e.id, &e.result) {
                pool.cancel(id);
                e.id = None;
            }
        }
        self.running = 0;
    }

    /// Drive `pool` (poll, then wait at most `step` when nothing is ready)
    /// until the batch is done. Completions of other requests are returned,
    /// in the order they came. Blocks: for tools and threads.
    pub fn run(&mut self, pool: &mut RequestPool, step: Duration) -> Vec<(RequestId, Completed)> {
        let mut others = Vec::new();
        while !self.is_done() {
            pool.poll();
            while let Some((id, done)) = pool.poll_completed() {
                others.extend(self.offer(pool, id, done));
            }
            if !self.is_done() {
                pool.wait(Some(step));
            }
        }
        others
    }

    /// Promise.all's result: every completion in order, or the first
    /// failure.
    ///
    /// # Errors
    /// The first failure (in completion order).
    ///
    /// # Panics
    /// Never; a batch not done gives the results it has and drops the rest.
    pub fn into_all(mut self) -> Result<Vec<Completed>, WebError> {
        if let Some(i) = self.failed {
            if let Some(Err(e)) = self.entries[i].result.take() {
                return Err(e);
            }
        }
        let mut out = Vec::with_capacity(self.entries.len());
        for e in self.entries {
            match e.result {
                Some(Ok(c)) => out.push(c),
                Some(Err(err)) => return Err(err),
                None => {}
            }
        }
        Ok(out)
    }

    /// Promise.allSettled's result: every result in order (a request that
    /// was cancelled or is still running is left out).
    pub fn into_settled(self) -> Vec<Result<Completed, WebError>> {
        self.entries.into_iter().filter_map(|e| e.result).collect()
    }
}

/// Run `requests` at once on a new pool with `settings` and return every
/// completion in order, or the first failure (the others are cancelled).
/// Blocks.
///
/// # Errors
/// A request refused at once, or the first failure.
pub fn all(
    requests: impl IntoIterator<Item = Request>,
    settings: PoolSettings,
) -> Result<Vec<Completed>, WebError> {
    let mut pool = RequestPool::with_settings(settings).map_err(RequestError::System)?;
    let mut batch = Batch::all(&mut pool, requests)?;
    batch.run(&mut pool, Duration::from_secs(1));
    batch.into_all()
}

/// Run `requests` at once on a new pool with `settings` and return every
/// result in order. Blocks.
///
/// # Errors
/// [`RequestError::System`] when the pool cannot be made.
pub fn all_settled(
    requests: impl IntoIterator<Item = Request>,
    settings: PoolSettings,
) -> Result<Vec<Result<Completed, WebError>>, RequestError> {
    let mut pool = RequestPool::with_settings(settings).map_err(RequestError::System)?;
    let mut batch = Batch::all_settled(&mut pool, requests);
    batch.run(&mut pool, Duration::from_secs(1));
    Ok(batch.into_settled())
}
