//! One request's use of the cache ([`crate::cache`]): the lookup before it
//! starts, what a final response head means for the store (revalidated,
//! stored, invalidated), writing the body as it arrives, and reading a
//! stored body out. The job calls these at its hook points; the rules are
//! the cache's policy.

use std::time::SystemTime;

use bytes::Bytes;
use pollhttp_proto::{Config, Connection, Event, ResponseHead};

use super::Call;
use crate::cache::policy::{self, FieldLine, Freshness, Stored};
use crate::cache::store::{BodyReader, BodyWriter, Entry, StoreError};
use crate::cache::{key_of, Cache, CacheMode, CacheSettings, CacheStatus};

/// What the request does after the lookup.
pub(crate) enum Lookup {
    /// Answer from the store now (no connection).
    Serve,
    /// Go to the network (with conditional fields when revalidating).
    Network,
    /// [`CacheMode::OnlyIfCached`] and nothing stored.
    NotCached,
}

/// One request's cache state.
pub(crate) struct CacheUse {
    cache: Cache,
    mode: CacheMode,
    /// The URL the entry is stored under (the request's first hop).
    key: String,
    /// May the store be read and written for this request (a GET, no
    /// Range, not bypassed)? Unsafe methods still invalidate.
    reads: bool,
    /// When the request (this hop) was sent, on the cache's wall clock.
    request_time: SystemTime,
    /// The stored entry a conditional request revalidates.
    revalidating: Option<Entry>,
    /// A stale stored entry that may answer if the origin fails (RFC 5861
    /// `stale-if-error`).
    fallback: Option<Entry>,
    /// A stored body to answer with: read by [`read_piece`](Self::read_piece).
    serving: Option<(Entry, BodyReader)>,
    /// A 304 selected the stored entry: answer with it once the 304 ends.
    serve_after_end: bool,
    /// A stale answer within `stale-while-revalidate` was given: the
    /// driver revalidates in the background.
    revalidate_later: bool,
    /// The final response being stored: its entry and its body so far.
    writing: Option<(Entry, BodyWriter)>,
    /// The request continues a download file (a Range request).
    resume: bool,
    /// The lookup's `background` (see [`lookup`](Self::lookup)), for the
    /// lookups of later hops.
    background: bool,
    /// The lookup added `If-None-Match` / `If-Modified-Since` (the caller
    /// sent no conditional of their own).
    added_conditionals: bool,
    pub(crate) status: CacheStatus,
}

fn has(headers: &[(String, String)], name: &str) -> bool {
    headers.iter().any(|(k, _)| k.eq_ignore_ascii_case(name))
}

impl CacheUse {
    /// The cache state of a request, `None` without a cache. `resume`: the
    /// request continues a download file (a Range request: not cached).
    pub(crate) fn new(settings: &CacheSettings, call: &Call, resume: bool) -> Option<CacheUse> {
        let cache = settings.cache.clone()?;
        let reads = call.method == "GET"
            && settings.mode != CacheMode::Bypass
            && !resume
            && !has(&call.headers, "range");
        Some(CacheUse {
            request_time: (cache.wall)(),
            cache,
            mode: settings.mode,
            key: key_of(&call.url),
            reads,
            revalidating: None,
            fallback: None,
            serving: None,
            serve_after_end: false,
            revalidate_later: false,
            writing: None,
            resume,
            background: false,
            added_conditionals: false,
            status: CacheStatus::NotUsed,
        })
    }

    /// The request follows a redirect; `call` is the next hop's (its URL,
    /// its method after a 303). What the cache did for the previous hop
    /// ends: the conditional fields it added go (they name another URL's
    /// stored response), the entry it revalidated or could fall back to is
    /// dropped. Then the new URL is looked up under its own key, as a
    /// request for it would be: a fresh stored answer serves the rest of
    /// the request (RFC 9111 §4: a cache answers a request whatever led
    /// to it), a stale one is revalidated, and what the hop brings is
    /// stored under the new URL.
    pub(crate) fn redirected(&mut self, call: &mut Call) -> Lookup {
        if std::mem::take(&mut self.added_conditionals) {
            call.headers.retain(|(k, _)| {
                !k.eq_ignore_ascii_case("if-none-match")
                    && !k.eq_ignore_ascii_case("if-modified-since")
            });
        }
        self.revalidating = None;
        self.fallback = None;
        self.writing = None;
        self.key = key_of(&call.url);
        self.reads = call.method == "GET"
            && self.mode != CacheMode::Bypass
            && !self.resume
            && !has(&call.headers, "range");
        self.lookup(call, self.background)
    }

    /// Before the request starts: answer from the store, or go to the
    /// network (adding `If-None-Match` / `If-Modified-Since` to `call` when
    /// a stale stored response can be revalidated and the caller sent no
    /// conditional of their own).
    ///
    /// `background`: the driver can revalidate in the background (a pool),
    /// so a response within its `stale-while-revalidate` answers at once
    /// (RFC 5861 §3); without it, such a response is revalidated first.
    pub(crate) fn lookup(&mut self, call: &mut Call, background: bool) -> Lookup {
        self.background = background;
        if !self.reads {
            return Lookup::Network;
        }
        // A corrupt entry was removed: a miss. An I/O error: a miss too (the
        // network still answers).
        let found = self.cache.store.get(&self.key).unwrap_or_default();
        let Some((entry, reader)) = found.filter(|(e, _)| e.stored.matches(&call.headers)) else {
            return match self.mode {
                CacheMode::OnlyIfCached => Lookup::NotCached,
                _ => {
                    self.status = CacheStatus::Miss { stored: false };
                    Lookup::Network
                }
            };
        };
        let now = (self.cache.wall)();
        let freshness = entry.stored.freshness(&call.headers, now);
        let answer = match (self.mode, freshness) {
            (CacheMode::OnlyIfCached, Freshness::Fresh) => Some(CacheStatus::Hit),
            (CacheMode::OnlyIfCached, _) => Some(CacheStatus::Stale),
            (CacheMode::Refresh, _) => None,
            (_, Freshness::Fresh) => Some(CacheStatus::Hit),
            (_, Freshness::StaleWhileRevalidate) if background => {
                self.revalidate_later = true;
                Some(CacheStatus::Stale)
            }
            _ => None,
        };
        if let Some(status) = answer {
            self.status = status;
            self.serving = Some((entry, reader));
            return Lookup::Serve;
        }
        self.status = CacheStatus::Miss { stored: false };
        if let (Freshness::Stale { on_error: true }, CacheMode::Default) = (freshness, self.mode) {
            self.fallback = Some(entry.clone());
        }
        let own = [
            "if-none-match",
            "if-modified-since",
            "if-match",
            "if-unmodified-since",
        ];
        if !own.iter().any(|n| has(&call.headers, n)) {
            let conditional = entry.stored.conditional_fields();
            if !conditional.is_empty() {
                call.headers.extend(conditional);
                self.revalidating = Some(entry);
                self.added_conditionals = true;
            }
        }
        Lookup::Network
    }

    /// A hop is sent now (its request time, for the stored response's age).
    pub(crate) fn sent(&mut self) {
        self.request_time = (self.cache.wall)();
    }

    /// The final response's head arrived for `call`: revalidation (a `304`
    /// that selects the stored entry: answer with it when the 304 ends),
    /// invalidation (an unsafe method's success, RFC 9111 §4.4), or start
    /// storing it. Returns whether the stored body answers instead.
    pub(crate) fn on_final_head(&mut self, call: &Call, head: &ResponseHead) -> bool {
        let now = (self.cache.wall)();
        let fields: Vec<FieldLine> = head
            .fields()
            .iter()
            .map(|f| (f.name().to_string(), f.value().to_vec()))
            .collect();
        if policy::invalidates(&call.method, head.status()) {
            for url in policy::invalidated_uris(&call.url, &fields) {
                self.cache.store.remove(&key_of(&url));
            }
            return false;
        }
        if !self.reads {
            return false;
        }
        if matches!(head.status(), 500 | 502 | 503 | 504) && self.serve_fallback() {
            // Its body is read and dropped; the stored one answers when it
            // ends.
            self.serve_after_end = true;
            return true;
        }
        if head.status() == 304 {
            // The 304 answers the condition this cache made from the stored
            // response's own validators (RFC 9110 §13.1.2: that
            // representation is current), so it selects it, whatever other
            // ETag it carries (the stored one is kept: it names the body).
            if let Some(mut entry) = self.revalidating.take() {
                let fields = policy::stored_fields(fields);
                entry.stored.freshen(&fields, self.request_time, now);
                // A store that fails to update still answers this once.
                let _ = self.cache.store.update(&entry);
                if let Ok(Some((e, reader))) = self.cache.store.get(&self.key) {
                    self.serving = Some((e, reader));
                    self.serve_after_end = true;
                    self.status = CacheStatus::Revalidated;
                    return true;
                }
            }
            return false;
        }
        if policy::storable(&call.method, &call.headers, head.status(), &fields).is_err() {
            return false;
        }
        let Ok(writer) = self.cache.store.writer() else {
            return false;
        };
        let kept = policy::stored_fields(fields);
        let entry = Entry {
            key: self.key.clone(),
            stored: Stored {
                request_time: self.request_time,
                response_time: now,
                status: head.status(),
                reason: head.reason_str().to_string(),
                vary: policy::selecting_fields(&call.headers, &kept),
                fields: kept,
            },
            body_len: 0,
        };
        self.writing = Some((entry, writer));
        false
    }

    /// Body bytes of the final response as they arrived (content-coded, as
    /// stored). A body the store will not take is not stored.
    pub(crate) fn write(&mut self, data: &[u8]) {
        if let Some((_, w)) = &mut self.writing {
            if !matches!(w.write(data), Ok(true)) {
                self.writing = None;
            }
        }
    }

    /// The request completed: a body being stored is committed only when
    /// `success` (a partial body is dropped).
    pub(crate) fn finish(&mut self, success: bool) {
        if let (true, Some((entry, writer))) = (success, self.writing.take()) {
            let stored = self.cache.store.commit(entry, writer).is_ok();
            self.status = CacheStatus::Miss { stored };
        }
        self.writing = None;
    }

    /// The origin could not be reached or failed (`result`), before any of
    /// a final body was handed out: answer with the stale stored entry
    /// when its `stale-if-error` allows (RFC 5861 §4). Returns whether it
    /// answers.
    pub(crate) fn serve_on_failure(&mut self, result: crate::RequestResult) -> bool {
        use crate::RequestResult as R;
        matches!(
            result,
            R::CantResolve
                | R::CantConnect
                | R::ConnectionError
                | R::TlsHandshakeError
                | R::NoResponse
                | R::Timeout
        ) && self.serve_fallback()
    }

    /// Open the fallback entry to answer with, if there is one.
    fn serve_fallback(&mut self) -> bool {
        let Some(entry) = self.fallback.take() else {
            return false;
        };
        match self.cache.store.get(&entry.key) {
            Ok(Some((e, reader))) if e.stored == entry.stored => {
                self.serving = Some((e, reader));
                self.status = CacheStatus::Stale;
                true
            }
            _ => false,
        }
    }

    /// Whether the answer was a stale one to revalidate in the background.
    pub(crate) fn take_revalidate_later(&mut self) -> bool {
        std::mem::take(&mut self.revalidate_later)
    }

    /// The 304 ended: answer with the stored entry now.
    pub(crate) fn take_serve_after_end(&mut self) -> bool {
        std::mem::take(&mut self.serve_after_end)
    }

    /// The head to answer with from the store, with its `Age` (RFC 9111
    /// §5.1) and the stored body's length.
    pub(crate) fn served_head(&self) -> Option<ResponseHead> {
        let (entry, _) = self.serving.as_ref()?;
        let age = entry.stored.age_seconds((self.cache.wall)());
        stored_head(entry, age)
    }

    /// At most `max` more bytes of the stored body being served; `None`
    /// at its end.
    pub(crate) fn read_piece(&mut self, max: usize) -> Result<Option<Bytes>, StoreError> {
        match &mut self.serving {
            Some((_, reader)) => reader.read_piece(max),
            None => Ok(None),
        }
    }

    /// Append at most `max` more bytes of the stored body to `out`, read
    /// straight into its spare room; how many, `None` at its end.
    pub(crate) fn read_into(
        &mut self,
        out: &mut Vec<u8>,
        max: usize,
    ) -> Result<Option<usize>, StoreError> {
        match &mut self.serving {
            Some((_, reader)) => reader.read_into(out, max),
            None => Ok(None),
        }
    }
}

/// A stored entry's head as an HTTP/1.1 response head, parsed by proto (so
/// a cached answer is a [`ResponseHead`] as a network one is): its fields
/// without framing and without the stored `Age`, then `Content-Length` and
/// the current `Age`.
fn stored_head(entry: &Entry, age: u64) -> Option<ResponseHead> {
    let s = &entry.stored;
    let mut raw = format!("HTTP/1.1 {} {}\r\n", s.status, s.reason).into_bytes();
    for (k, v) in s
        .fields
        .iter()
        .filter(|(k, _)| !k.eq_ignore_ascii_case("age"))
    {
        raw.extend_from_slice(k.as_bytes());
        raw.extend_from_slice(b": ");
        raw.extend_from_slice(v);
        raw.extend_from_slice(b"\r\n");
    }
    raw.extend_from_slice(
        format!("Content-Length: {}\r\nAge: {age}\r\n\r\n", entry.body_len).as_bytes(),
    );
    let mut c = Connection::new(Config::default());
    c.send_request("GET", "/", [("Host", "cache")]).ok()?;
    c.receive(&raw);
    loop {
        match c.poll_event().ok()? {
            Some(Event::Head(h)) => return Some(h),
            Some(_) => {}
            None => return None,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, SystemTime};

    use super::*;

    fn entry(fields: &[(&str, &str)]) -> Entry {
        let t = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        Entry {
            key: "http://example.com/".into(),
            stored: Stored {
                request_time: t,
                response_time: t,
                status: 200,
                reason: "OK".into(),
                fields: fields
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.as_bytes().to_vec()))
                    .collect(),
                vary: Vec::new(),
            },
            body_len: 5,
        }
    }

    #[test]
    fn the_served_head_carries_the_current_age_not_the_stored_one() {
        // The origin's Age: 30 stays in the store (it is the age_value of
        // §4.2.3), and the stored response counts it.
        let e = entry(&[("Cache-Control", "max-age=60"), ("Age", "30")]);
        let now = e.stored.response_time + Duration::from_secs(5);
        assert_eq!(e.stored.age_seconds(now), 35);
        let head = stored_head(&e, 35).unwrap();
        let ages: Vec<&[u8]> = head
            .fields()
            .iter()
            .filter(|f| f.name().eq_ignore_ascii_case("age"))
            .map(|f| f.value())
            .collect();
        assert_eq!(ages, [&b"35"[..]]);
    }
}
