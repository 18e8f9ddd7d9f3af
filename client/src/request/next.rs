//! What a request does after a response head and after a failure: one
//! decision table over a small view of the attempt's history
//! ([`Attempt`]). Every way a request goes again is a row here — a redirect,
//! a Digest challenge's answer, the one safe retry of a stale kept
//! connection, and the retry policy's tries after a failure, after the idle
//! timeout and for a status — so the rules read in one place and are tested
//! without sockets. [`Job`](super::job::Job) applies the answer.
//!
//! The table reads time and randomness as arguments. Two rows touch shared
//! state by design: the retry policy's per-origin budget (a retry takes one
//! of its tokens) and a Digest answer's client nonce (drawn from the OS).

use std::time::{Duration, Instant, SystemTime};

use pollhttp_proto::ResponseHead;
use url::Url;

use super::auth::{digest_value, new_cnonce, parse_digest_challenge, Auth};
use super::outcome::{RequestFailure, RequestResult};
use super::redirect::{self, Decision, Follow, Policy};
use super::retry::{backoff, retry_after};
use super::{request_target, Settings};
use crate::error::Failure;

/// What the request does next.
#[derive(Debug)]
pub(crate) enum Next {
    /// This response is the result.
    Final,
    /// Follow a redirect (once the response's body is drained or dropped).
    Redirect(Follow),
    /// Send the request again with this `Authorization` value (a Digest
    /// challenge's answer, RFC 7616 §3.4).
    Challenge(String),
    /// Try again from the start after this delay (the retry policy).
    Retry(Duration),
    /// Try again now on a new connection: the kept connection it went out
    /// on was stale (the one transparent retry).
    RetryNow,
    /// End with this result, for this reason.
    Fail(RequestResult, RequestFailure),
}

/// What went wrong, for [`after_failure`].
#[derive(Debug)]
pub(crate) enum Trouble {
    /// The connection failed.
    Connection(Failure),
    /// No byte arrived for the idle timeout.
    IdleTimeout,
}

/// The attempt's history as the decisions read it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Attempt<'a> {
    /// The URL of this hop.
    pub(crate) url: &'a Url,
    /// The method of this hop.
    pub(crate) method: &'a str,
    /// Tries so far, 1 for the first (retries of the policy + 1).
    pub(crate) attempts: u32,
    /// Redirects followed so far.
    pub(crate) redirects: u32,
    /// Digest challenges answered so far.
    pub(crate) challenges: u8,
    /// This try went out on a kept connection.
    pub(crate) reused: bool,
    /// The one transparent retry was used.
    pub(crate) retried: bool,
    /// No byte of the request reached the connection.
    pub(crate) nothing_sent: bool,
    /// No byte of a response arrived on this try's connection.
    pub(crate) no_response_byte: bool,
    /// A response head of this try arrived.
    pub(crate) answered: bool,
    /// Body bytes of the final response were handed out already.
    pub(crate) delivered: bool,
    /// The request's body can be sent again.
    pub(crate) body_replayable: bool,
    /// The request's deadline (its `timeout`).
    pub(crate) deadline: Option<Instant>,
    /// Whether `url` is the origin `Settings::auth` was given for.
    pub(crate) at_auth_origin: bool,
}

/// Methods a client may send again after a failure (RFC 9110 §9.2.2).
pub(crate) fn is_idempotent(m: &str) -> bool {
    matches!(m, "GET" | "HEAD" | "OPTIONS" | "TRACE" | "PUT" | "DELETE")
}

/// After a response head of `a`'s hop, in this order: a Digest challenge
/// the settings answer, a status the retry policy retries, a redirect to
/// follow (or one that fails the request), else the response is the
/// result. `random` feeds the backoff's jitter.
pub(crate) fn after_head(
    head: &ResponseHead,
    a: &Attempt<'_>,
    settings: &Settings,
    now: Instant,
    random: u64,
) -> Next {
    if let Some(value) = challenge_answer(head, a, settings) {
        return Next::Challenge(value);
    }
    if let Some(delay) = status_retry(head, a, settings, now, random) {
        return Next::Retry(delay);
    }
    if !settings.redirects.follow {
        return Next::Final;
    }
    let policy = Policy {
        max_redirects: settings.redirects.max,
        allow_https_to_http: settings.redirects.https_to_http,
    };
    let location = head.fields().get_str("location");
    match redirect::decide(
        a.url,
        head.status(),
        a.method,
        location,
        a.redirects,
        policy,
    ) {
        Decision::Final => Next::Final,
        Decision::Follow(follow) => Next::Redirect(follow),
        Decision::LimitReached => Next::Fail(
            RequestResult::RedirectLimitReached,
            RequestFailure::RedirectLimit(settings.redirects.max),
        ),
        Decision::Refuse(r) => {
            Next::Fail(RequestResult::RequestFailed, RequestFailure::Redirect(r))
        }
    }
}

/// After a failure of `a`'s hop: the transparent retry of a stale kept
/// connection, else the retry policy's next try for a transient failure or
/// the idle timeout, else the failure is the result.
pub(crate) fn after_failure(
    trouble: Trouble,
    a: &Attempt<'_>,
    settings: &Settings,
    now: Instant,
    random: u64,
) -> Next {
    let failure = match trouble {
        Trouble::IdleTimeout => {
            return match failure_retry(a, settings, now, random) {
                Some(delay) => Next::Retry(delay),
                None => Next::Fail(
                    RequestResult::Timeout,
                    RequestFailure::IdleTimeout(settings.timeouts.idle.unwrap_or_default()),
                ),
            };
        }
        Trouble::Connection(f) => f,
    };
    // A kept connection that died under the request before any response
    // byte: once, on a new connection, when sending again is safe (RFC 9110
    // §9.2.2: an idempotent method, or nothing was sent; §9.3.1 of RFC 9112
    // on retrying after a closed persistent connection).
    let stale = a.reused
        && !a.retried
        && !a.answered
        && a.body_replayable
        && a.no_response_byte
        && (is_idempotent(a.method) || a.nothing_sent);
    if stale {
        return Next::RetryNow;
    }
    let result = RequestResult::for_failure(&failure);
    let transient = matches!(
        result,
        RequestResult::CantConnect
            | RequestResult::CantResolve
            | RequestResult::ConnectionError
            | RequestResult::NoResponse
            | RequestResult::ChunkedBodySizeMismatch
    );
    if let Some(delay) = transient
        .then(|| failure_retry(a, settings, now, random))
        .flatten()
    {
        return Next::Retry(delay);
    }
    Next::Fail(result, RequestFailure::Connection(failure))
}

/// A `401` that `settings.auth` (Digest) answers: the `Authorization` value
/// for the same request again (RFC 7616 §3.4). One answer per request, a
/// second only when the server says the first nonce was stale (§3.3); never
/// for another origin than the one given, nor with a body that cannot be
/// sent again (the 401 is then the result).
fn challenge_answer(head: &ResponseHead, a: &Attempt<'_>, settings: &Settings) -> Option<String> {
    if head.status() != 401 || !a.at_auth_origin {
        return None;
    }
    let Some(Auth::Digest { user, password }) = &settings.auth else {
        return None;
    };
    let values = head
        .fields()
        .get_all("www-authenticate")
        .filter_map(|v| std::str::from_utf8(v).ok());
    let challenge = parse_digest_challenge(values)?;
    let again = a.challenges == 1 && challenge.stale;
    if (a.challenges > 0 && !again) || !a.body_replayable {
        return None;
    }
    Some(digest_value(
        &challenge,
        user,
        password,
        a.method,
        &request_target(a.url),
        1,
        &new_cnonce(),
    ))
}

/// A response whose status the retry policy retries: the delay before the
/// next try. The server answered, so the request was sent: only an
/// idempotent method is sent again (RFC 9110 §9.2.2). `Retry-After` (RFC
/// 9110 §10.2.3; a date counts from the response's `Date`, else from the
/// local clock) replaces the backoff; one longer than the policy's
/// `max_delay` or past the request's deadline makes this response the
/// result.
fn status_retry(
    head: &ResponseHead,
    a: &Attempt<'_>,
    settings: &Settings,
    now: Instant,
    random: u64,
) -> Option<Duration> {
    let policy = settings.retry.as_ref()?;
    if !policy.statuses.contains(&head.status()) || !is_idempotent(a.method) {
        return None;
    }
    let fields = head.fields();
    let retry_after = fields.get_str("retry-after").and_then(|v| {
        let base = fields
            .get_str("date")
            .and_then(|d| httpdate::parse_http_date(d).ok())
            .unwrap_or_else(SystemTime::now);
        retry_after(v, base)
    });
    retry_delay(a, settings, retry_after, now, random)
}

/// A failure the retry policy retries (no connection, no response, a
/// reset, a cut body, the idle timeout): the delay before the next try.
/// Only for an idempotent method, or when nothing was sent.
fn failure_retry(
    a: &Attempt<'_>,
    settings: &Settings,
    now: Instant,
    random: u64,
) -> Option<Duration> {
    settings.retry.as_ref()?;
    if !(is_idempotent(a.method) || a.nothing_sent) {
        return None;
    }
    retry_delay(a, settings, None, now, random)
}

/// The delay before another try, if the retry policy allows one now: tries
/// left, a body that can be sent again, no body byte handed out yet, within
/// the deadline and the origin's retry budget (which this takes a token
/// from).
fn retry_delay(
    a: &Attempt<'_>,
    settings: &Settings,
    retry_after: Option<Duration>,
    now: Instant,
    random: u64,
) -> Option<Duration> {
    let policy = settings.retry.as_ref()?;
    if a.attempts > policy.retries || !a.body_replayable || a.delivered {
        return None;
    }
    let delay = match retry_after {
        Some(d) if d > policy.max_delay => return None,
        Some(d) => d,
        None => backoff(policy, a.attempts, random),
    };
    if a.deadline.is_some_and(|t| now + delay >= t) {
        return None;
    }
    let origin = a.url.origin().ascii_serialization();
    policy.budget.try_take(&origin, now).then_some(delay)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::request::retry::{RetryBudget, RetryPolicy};
    use std::io;

    fn head(raw: &str) -> ResponseHead {
        crate::parsed_head(raw)
    }

    fn attempt(url: &Url) -> Attempt<'_> {
        Attempt {
            url,
            method: "GET",
            attempts: 1,
            redirects: 0,
            challenges: 0,
            reused: false,
            retried: false,
            nothing_sent: false,
            no_response_byte: true,
            answered: false,
            delivered: false,
            body_replayable: true,
            deadline: None,
            at_auth_origin: true,
        }
    }

    fn retrying(n: u32) -> Settings {
        Settings {
            retry: Some(
                RetryPolicy::new(n)
                    .with_base_delay(Duration::from_millis(100))
                    .with_budget(RetryBudget::unlimited()),
            ),
            ..Settings::default()
        }
    }

    fn reset() -> Trouble {
        Trouble::Connection(Failure::Io(io::Error::from(io::ErrorKind::ConnectionReset)))
    }

    #[test]
    fn idempotent_methods_are_rfc_9110s() {
        for m in ["GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE"] {
            assert!(is_idempotent(m), "{m}");
        }
        for m in ["POST", "PATCH", "CONNECT", "get", "PROPFIND"] {
            assert!(!is_idempotent(m), "{m}");
        }
    }

    #[test]
    fn a_plain_response_is_the_result() {
        let url = Url::parse("http://h/").unwrap();
        let h = head("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
        let now = Instant::now();
        let next = after_head(&h, &attempt(&url), &Settings::default(), now, 0);
        assert!(matches!(next, Next::Final), "{next:?}");
    }

    #[test]
    fn redirects_follow_fail_at_the_limit_or_are_the_result_when_off() {
        let url = Url::parse("http://h/a").unwrap();
        let h = head("HTTP/1.1 302 Found\r\nLocation: /b\r\nContent-Length: 0\r\n\r\n");
        let now = Instant::now();
        let s = Settings::default();
        match after_head(&h, &attempt(&url), &s, now, 0) {
            Next::Redirect(f) => assert_eq!(f.url.as_str(), "http://h/b"),
            other => panic!("{other:?}"),
        }
        let at_limit = Attempt {
            redirects: s.redirects.max,
            ..attempt(&url)
        };
        assert!(matches!(
            after_head(&h, &at_limit, &s, now, 0),
            Next::Fail(
                RequestResult::RedirectLimitReached,
                RequestFailure::RedirectLimit(8)
            )
        ));
        let off = Settings {
            redirects: crate::Redirects {
                follow: false,
                ..Default::default()
            },
            ..Settings::default()
        };
        assert!(matches!(
            after_head(&h, &attempt(&url), &off, now, 0),
            Next::Final
        ));
    }

    #[test]
    fn a_status_of_the_policy_is_retried_for_idempotent_methods_only() {
        let url = Url::parse("http://h/").unwrap();
        let h = head("HTTP/1.1 503 Busy\r\nRetry-After: 2\r\nContent-Length: 0\r\n\r\n");
        let now = Instant::now();
        let s = retrying(2);
        assert!(matches!(
            after_head(&h, &attempt(&url), &s, now, 0),
            Next::Retry(d) if d == Duration::from_secs(2)
        ));
        let post = Attempt {
            method: "POST",
            ..attempt(&url)
        };
        assert!(matches!(after_head(&h, &post, &s, now, 0), Next::Final));
        // Past the deadline, or out of tries: the 503 is the result.
        let short = Attempt {
            deadline: Some(now + Duration::from_secs(1)),
            ..attempt(&url)
        };
        assert!(matches!(after_head(&h, &short, &s, now, 0), Next::Final));
        let spent = Attempt {
            attempts: 3,
            ..attempt(&url)
        };
        assert!(matches!(after_head(&h, &spent, &s, now, 0), Next::Final));
    }

    /// The four ways of going again, and when each does not apply.
    #[test]
    fn the_retry_table() {
        let url = Url::parse("http://h/").unwrap();
        let now = Instant::now();
        let none = Settings::default();
        let policy = retrying(2);
        let stale = Attempt {
            reused: true,
            ..attempt(&url)
        };
        // 1. A stale kept connection: once, now, even without a policy.
        assert!(matches!(
            after_failure(reset(), &stale, &none, now, 0),
            Next::RetryNow
        ));
        let again = Attempt {
            retried: true,
            ..stale
        };
        assert!(matches!(
            after_failure(reset(), &again, &none, now, 0),
            Next::Fail(
                RequestResult::ConnectionError,
                RequestFailure::Connection(Failure::Io(_))
            )
        ));
        // Not for a POST that was sent, nor once a response byte came.
        let post = Attempt {
            method: "POST",
            ..stale
        };
        assert!(matches!(
            after_failure(reset(), &post, &none, now, 0),
            Next::Fail(..)
        ));
        let post_unsent = Attempt {
            nothing_sent: true,
            ..post
        };
        assert!(matches!(
            after_failure(reset(), &post_unsent, &none, now, 0),
            Next::RetryNow
        ));
        let answered = Attempt {
            no_response_byte: false,
            ..stale
        };
        assert!(matches!(
            after_failure(reset(), &answered, &none, now, 0),
            Next::Fail(..)
        ));
        // 2. A transient failure under the policy: after its backoff.
        assert!(matches!(
            after_failure(reset(), &attempt(&url), &policy, now, 0),
            Next::Retry(d) if d >= Duration::from_millis(50)
        ));
        // Not a failure that trying again cannot mend (a TLS setting).
        let config = Trouble::Connection(Failure::TlsConfig(
            crate::TlsConfigError::InvalidServerName("x y".into()),
        ));
        assert!(matches!(
            after_failure(config, &attempt(&url), &policy, now, 0),
            Next::Fail(
                RequestResult::RequestFailed,
                RequestFailure::Connection(Failure::TlsConfig(_))
            )
        ));
        // 3. The idle timeout: under the policy a retry, else the result.
        assert!(matches!(
            after_failure(Trouble::IdleTimeout, &attempt(&url), &policy, now, 0),
            Next::Retry(_)
        ));
        assert!(matches!(
            after_failure(Trouble::IdleTimeout, &attempt(&url), &none, now, 0),
            Next::Fail(RequestResult::Timeout, RequestFailure::IdleTimeout(_))
        ));
        // Once body bytes were handed out, nothing is tried again.
        let delivered = Attempt {
            delivered: true,
            ..attempt(&url)
        };
        assert!(matches!(
            after_failure(Trouble::IdleTimeout, &delivered, &policy, now, 0),
            Next::Fail(RequestResult::Timeout, _)
        ));
        // 4. A status: a_status_of_the_policy_is_retried_for_idempotent_methods_only.
    }

    #[test]
    fn a_digest_challenge_is_answered_once_at_its_origin() {
        let url = Url::parse("http://h/p").unwrap();
        let h = head(
            "HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Digest realm=\"r\", nonce=\"n\", \
             qop=\"auth\"\r\nContent-Length: 0\r\n\r\n",
        );
        let now = Instant::now();
        let s = Settings {
            auth: Some(Auth::digest("u", "p")),
            ..Settings::default()
        };
        match after_head(&h, &attempt(&url), &s, now, 0) {
            Next::Challenge(v) => assert!(v.starts_with("Digest username=\"u\""), "{v}"),
            other => panic!("{other:?}"),
        }
        let answered = Attempt {
            challenges: 1,
            ..attempt(&url)
        };
        assert!(matches!(after_head(&h, &answered, &s, now, 0), Next::Final));
        let elsewhere = Attempt {
            at_auth_origin: false,
            ..attempt(&url)
        };
        assert!(matches!(
            after_head(&h, &elsewhere, &s, now, 0),
            Next::Final
        ));
    }
}
