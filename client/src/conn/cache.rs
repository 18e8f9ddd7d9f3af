//! The connection cache (per-origin keep-alive, limits, idle age): which
//! connection belongs to whom, the connections kept idle for
//! reuse, the counts the limits are checked against, and the idle
//! connections' upkeep (closed by the server, past their age, buffers given
//! back). It does no I/O of its own beyond a kept connection's probe and
//! reads no clock: the time comes in as an argument, the registry too.
//!
//! A front end that runs many jobs on one reactor (the pool) asks it for
//! tokens and kept connections on a job's behalf, naming the job as the
//! [`Owner`], and routes each readiness event by the token's owner.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use mio::{Registry, Token};

use super::{Conn, ConnKey, Target};

/// The cache's limits (curl's multi options where curl has one).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct CacheLimits {
    /// Most connections open per [`ConnKey`] (per origin; per proxy for
    /// plain `http` through one), active and idle together
    /// (`CURLMOPT_MAX_HOST_CONNECTIONS`); 0 counts as 1.
    pub(crate) per_origin: usize,
    /// Most connections open in all (`CURLMOPT_MAX_TOTAL_CONNECTIONS`); 0
    /// counts as 1.
    pub(crate) total: usize,
    /// Most idle connections kept per [`ConnKey`].
    pub(crate) idle_per_origin: usize,
    /// Most idle connections kept in all (`CURLMOPT_MAXCONNECTS`).
    pub(crate) idle: usize,
    /// An idle connection older than this is closed (`CURLOPT_MAXAGE_CONN`).
    pub(crate) idle_age: Duration,
}

/// Who a connection's token belongs to: the job it serves (by the front
/// end's index), the idle cache, or nobody (free for the next connection).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Owner {
    Free,
    Job(u32),
    Idle,
}

struct IdleConn {
    conn: Box<Conn>,
    since: Instant,
    /// It still holds its buffers: it went idle since the last sweep
    /// ([`ConnCache::release_idle_buffers`]).
    warm: bool,
}

/// Connections by owner, the idle ones kept for reuse (oldest first), and
/// the counts the limits are checked against.
pub(crate) struct ConnCache {
    limits: CacheLimits,
    /// Oldest first (the order they went idle).
    idle: Vec<IdleConn>,
    /// Idle connections that had a readiness event since the last look.
    idle_events: Vec<Token>,
    /// Connections open per key (active and idle).
    open: HashMap<ConnKey, usize>,
    total: usize,
    owners: Vec<Owner>,
    free_tokens: Vec<usize>,
    /// A connection closed or went idle since the last
    /// [`take_capacity_freed`](Self::take_capacity_freed).
    capacity_freed: bool,
    /// Connections opened so far.
    opened: u64,
    /// Idle connections still holding their buffers.
    warm: usize,
}

impl ConnCache {
    pub(crate) fn new(limits: CacheLimits) -> ConnCache {
        ConnCache {
            limits,
            idle: Vec::new(),
            idle_events: Vec::new(),
            open: HashMap::new(),
            total: 0,
            owners: Vec::new(),
            free_tokens: Vec::new(),
            capacity_freed: false,
            opened: 0,
            warm: 0,
        }
    }

    /// Change the limits (they apply from the next call).
    pub(crate) fn set_limits(&mut self, limits: CacheLimits) {
        self.limits = limits;
    }

    /// Connections open (active and idle).
    pub(crate) fn open(&self) -> usize {
        self.total
    }

    /// Idle connections kept for reuse.
    pub(crate) fn idle(&self) -> usize {
        self.idle.len()
    }

    /// Connections opened over the cache's life.
    pub(crate) fn opened(&self) -> u64 {
        self.opened
    }

    /// Whether a connection closed or went idle since the last
    /// [`take_capacity_freed`](Self::take_capacity_freed): a request waiting
    /// for one may get it now.
    pub(crate) fn capacity_freed(&self) -> bool {
        self.capacity_freed
    }

    /// [`capacity_freed`](Self::capacity_freed), cleared.
    pub(crate) fn take_capacity_freed(&mut self) -> bool {
        std::mem::take(&mut self.capacity_freed)
    }

    /// Who `token` belongs to (`None`: a token the cache never gave).
    pub(crate) fn owner(&self, token: Token) -> Option<Owner> {
        self.owners.get(token.0).copied()
    }

    /// A readiness event for an idle connection (rare: a server closing a
    /// kept connection): looked at in the next
    /// [`maintain_idle`](Self::maintain_idle).
    pub(crate) fn on_idle_event(&mut self, token: Token, ev: &mio::event::Event) {
        if let Some(e) = self.idle.iter_mut().find(|e| e.conn.token() == token) {
            e.conn.on_event(ev);
            self.idle_events.push(token);
        }
    }

    /// A kept connection that may carry a request for `target` (its
    /// [`ConnKey`] admits it: [`Conn::reuse_for`]), now `owner`'s: the most recently
    /// used first (warm, least likely to be closed). Its readiness is up to
    /// date; the caller probes it before use.
    pub(crate) fn take_idle(&mut self, target: &Target, owner: u32) -> Option<Box<Conn>> {
        let i = self
            .idle
            .iter_mut()
            .rposition(|e| e.conn.reuse_for(target))?;
        let conn = self.remove_idle(i);
        if let Some(o) = self.owners.get_mut(conn.token().0) {
            *o = Owner::Job(owner);
        }
        Some(conn)
    }

    /// A token for `owner`'s new connection with key `key`, or `None` when the
    /// limits say wait. At the total limit the oldest idle connection is
    /// closed to make room.
    pub(crate) fn new_token(
        &mut self,
        key: &ConnKey,
        owner: u32,
        registry: &Registry,
    ) -> Option<Token> {
        let per_origin = self.open.get(key).copied().unwrap_or(0);
        if per_origin >= self.limits.per_origin.max(1) {
            return None;
        }
        if self.total >= self.limits.total.max(1) {
            // Make room by closing the oldest idle connection (of another
            // origin: one of this origin would have been reused).
            let oldest = (!self.idle.is_empty()).then_some(0)?;
            let conn = self.remove_idle(oldest);
            self.close(conn, registry);
        }
        let token = match self.free_tokens.pop() {
            Some(t) => t,
            None => {
                self.owners.push(Owner::Free);
                self.owners.len() - 1
            }
        };
        self.owners[token] = Owner::Job(owner);
        // (The key is copied once per key, not per connection.)
        match self.open.get_mut(key) {
            Some(n) => *n += 1,
            None => {
                self.open.insert(key.clone(), 1);
            }
        }
        self.total += 1;
        self.opened += 1;
        Some(Token(token))
    }

    /// A job is done with `conn` at `now`: keep it for reuse (`keep`: it is
    /// idle and reusable, and the idle limits have room) or close it.
    pub(crate) fn release(
        &mut self,
        conn: Box<Conn>,
        keep: bool,
        now: Instant,
        registry: &Registry,
    ) {
        let key = conn.key();
        let per_origin = self.limits.idle_per_origin;
        // Counting this origin's idle connections is needed only when there
        // are enough idle connections in all to reach its limit.
        let room_here = self.idle.len() < per_origin
            || self.idle.iter().filter(|e| e.conn.key() == key).count() < per_origin;
        if keep && room_here && self.idle.len() < self.limits.idle {
            if let Some(o) = self.owners.get_mut(conn.token().0) {
                *o = Owner::Idle;
            }
            // Its buffers go back at the next sweep, unless a waiting
            // request takes it first (then they are used at once: no free,
            // allocation and zeroing per request on a busy connection).
            self.idle.push(IdleConn {
                conn,
                since: now,
                warm: true,
            });
            self.warm += 1;
            // A waiting request for this origin can take it.
            self.capacity_freed = true;
        } else {
            self.close(conn, registry);
        }
    }

    /// Close `conn` and give its token and its place in the limits back.
    pub(crate) fn close(&mut self, mut conn: Box<Conn>, registry: &Registry) {
        let token = conn.token();
        conn.close(registry);
        if let Some(o) = self.owners.get_mut(token.0) {
            *o = Owner::Free;
            self.free_tokens.push(token.0);
        }
        let key = conn.key();
        if let Some(n) = self.open.get_mut(key) {
            *n -= 1;
            if *n == 0 {
                self.open.remove(key);
            }
        }
        self.total = self.total.saturating_sub(1);
        self.capacity_freed = true;
    }

    /// Close every idle connection (the cache's owner is going away).
    pub(crate) fn close_idle(&mut self, registry: &Registry) {
        for IdleConn { conn, .. } in std::mem::take(&mut self.idle) {
            self.close(conn, registry);
        }
        self.warm = 0;
    }

    /// Close the idle connections the server closed (those that had an
    /// event), and those past the idle age at `now` (the oldest are first).
    /// Costs follow events, not the number of idle connections.
    pub(crate) fn maintain_idle(&mut self, now: Instant, registry: &Registry) {
        for token in std::mem::take(&mut self.idle_events) {
            let Some(i) = self.idle.iter().position(|e| e.conn.token() == token) else {
                continue;
            };
            let alive = self.idle[i]
                .conn
                .exchange_mut()
                .is_some_and(|(x, ready)| x.pump(ready, &mut 0).is_ok());
            if !alive {
                let conn = self.remove_idle(i);
                self.close(conn, registry);
            }
        }
        let age = self.limits.idle_age;
        while self
            .idle
            .first()
            .is_some_and(|e| now.saturating_duration_since(e.since) >= age)
        {
            let conn = self.remove_idle(0);
            self.close(conn, registry);
        }
    }

    /// Take the idle connection at `i` out of the cache.
    fn remove_idle(&mut self, i: usize) -> Box<Conn> {
        let IdleConn { conn, warm, .. } = self.idle.remove(i);
        self.warm -= usize::from(warm);
        conn
    }

    /// Give back the buffers of the connections that went idle since the
    /// last sweep and were not taken meanwhile (an idle connection keeps a
    /// few KiB). Free when none did; else one pass over the idle cache.
    pub(crate) fn release_idle_buffers(&mut self) {
        if self.warm == 0 {
            return;
        }
        for e in self.idle.iter_mut().filter(|e| e.warm) {
            e.conn.release_buffers();
            e.warm = false;
        }
        self.warm = 0;
    }

    /// When the oldest idle connection reaches its age.
    pub(crate) fn next_idle_expiry(&self) -> Option<Instant> {
        self.idle.first().map(|e| e.since + self.limits.idle_age)
    }
}
