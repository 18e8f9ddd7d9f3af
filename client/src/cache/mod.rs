//! An HTTP cache for a game's assets and a tool's downloads: a private
//! cache as a browser's (RFC 9111; RFC 5861's `stale-if-error` and
//! `stale-while-revalidate` in its rules), shared by every request given
//! the same [`Cache`] in [`CacheSettings`]. The rules are [`policy`]'s;
//! where entries live is [`store`]'s.
//!
//! What a request does with it ([`CacheMode::Default`]): a GET whose stored
//! response is fresh is answered from the store (no socket, no name
//! lookup); a stale one with a validator is revalidated (`If-None-Match`,
//! `If-Modified-Since`), and a `304` answers with the stored body under the
//! freshened head; a response that may be stored is written to the store as
//! its body arrives and kept when it completes. An unsafe method's
//! successful response removes what is stored for its target (RFC 9111
//! §4.4). [`Completed::cache`](crate::Completed::cache) says which
//! happened.
//!
//! Costs in a `poll`: a hit reads the stored body in pieces within the
//! poll's byte budget (a disk read per piece, from the page cache once warm),
//! never all at once; a store writes each piece as it arrives (no `fsync`)
//! and renames the entry into place at the end.

use std::fmt;
use std::io;
use std::path::Path;
use std::sync::Arc;
use std::time::SystemTime;

use url::Url;

pub(crate) mod policy;
pub(crate) mod store;

pub use store::StoreLimits;

/// Where the cache's wall-clock time comes from (HTTP dates are wall-clock).
pub type WallClock = Arc<dyn Fn() -> SystemTime + Send + Sync>;

/// A cache store shared by the requests given it (cheap to clone: a
/// handle). In memory ([`Cache::memory`]) or in a directory
/// ([`Cache::disk`]), which processes and pools may share.
#[derive(Clone)]
pub struct Cache {
    pub(crate) store: store::Store,
    pub(crate) wall: WallClock,
}

impl fmt::Debug for Cache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match &self.store {
            store::Store::Memory(_) => "memory",
            store::Store::Disk(_) => "disk",
        };
        f.debug_struct("Cache").field("store", &kind).finish()
    }
}

impl Cache {
    /// A cache in memory, bounded by `limits` (least recently used entries
    /// go first).
    pub fn memory(limits: StoreLimits) -> Cache {
        Cache {
            store: store::Store::memory(limits),
            wall: Arc::new(SystemTime::now),
        }
    }

    /// A cache in directory `dir` (created if missing), bounded by `limits`.
    /// Crash-safe: an entry is written beside and renamed into place, and
    /// checked by its hashes when read; one that fails is dropped and
    /// fetched again. Other processes and pools may use the same directory
    /// at once. Opening scans the directory once (and removes temporary
    /// files a killed writer left an hour or more ago).
    ///
    /// # Errors
    /// The directory cannot be created or read.
    pub fn disk(dir: impl AsRef<Path>, limits: StoreLimits) -> io::Result<Cache> {
        Ok(Cache {
            store: store::Store::disk(dir.as_ref(), limits)?,
            wall: Arc::new(SystemTime::now),
        })
    }

    /// The same cache read with another wall clock (tests: a stored
    /// response ages as the clock says).
    pub fn with_wall_clock(mut self, wall: WallClock) -> Cache {
        self.wall = wall;
        self
    }

    /// Remove what is stored for `url`. Never blocks on the network; one
    /// file removal for a disk cache.
    pub fn remove(&self, url: &Url) {
        self.store.remove(&key_of(url));
    }

    /// Whether two handles are the same cache.
    pub(crate) fn same(&self, other: &Cache) -> bool {
        let same_store = match (&self.store, &other.store) {
            (store::Store::Memory(a), store::Store::Memory(b)) => Arc::ptr_eq(a, b),
            (store::Store::Disk(a), store::Store::Disk(b)) => Arc::ptr_eq(a, b),
            _ => false,
        };
        same_store && std::ptr::addr_eq(Arc::as_ptr(&self.wall), Arc::as_ptr(&other.wall))
    }
}

/// The key a response is stored under: its URL without the fragment.
pub(crate) fn key_of(url: &Url) -> String {
    let mut u = url.clone();
    u.set_fragment(None);
    u.into()
}

/// How one request uses the cache (as `fetch()`'s `cache` option).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum CacheMode {
    /// RFC 9111: fresh answers from the store, stale ones revalidated,
    /// storable responses stored.
    #[default]
    Default,
    /// Always ask the server (a stored response is revalidated when it has
    /// a validator) and store the answer (`fetch`'s `no-cache`).
    Refresh,
    /// Never go to the network: the stored response, fresh or stale, is
    /// the answer (offline play); none is
    /// [`RequestFailure::NotCached`](crate::RequestFailure::NotCached).
    OnlyIfCached,
    /// Neither read nor write the store (`fetch`'s `no-store`); an unsafe
    /// method still invalidates.
    Bypass,
}

/// The cache a request uses, and how.
#[derive(Debug, Clone, Default)]
pub struct CacheSettings {
    /// The cache; `None` (default): none.
    pub cache: Option<Cache>,
    /// How this request uses it. Default [`CacheMode::Default`].
    pub mode: CacheMode,
}

impl PartialEq for CacheSettings {
    fn eq(&self, other: &CacheSettings) -> bool {
        self.mode == other.mode
            && match (&self.cache, &other.cache) {
                (None, None) => true,
                (Some(a), Some(b)) => a.same(b),
                _ => false,
            }
    }
}

/// What the cache did for a request ([`Completed::cache`](crate::Completed::cache)).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum CacheStatus {
    /// No cache was used (none set, bypassed, or not a GET).
    #[default]
    NotUsed,
    /// Answered from the store without a request.
    Hit,
    /// A stored response was revalidated: the server said `304`, the
    /// stored body is the answer.
    Revalidated,
    /// The network answered (nothing usable was stored); `stored`: the
    /// answer was stored.
    Miss {
        /// The response was written to the store.
        stored: bool,
    },
}
