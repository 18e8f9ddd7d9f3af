//! The reactor: one mio `Poll` for any number of connections, each with the
//! `Token` it was given, plus a `Waker` for the resolver and other threads.

use std::fmt;
use std::io;
use std::sync::Arc;
use std::time::Duration;

use mio::{Events, Poll, Registry, Token, Waker};

/// The waker's token; connections get any other.
pub(crate) const WAKER: Token = Token(usize::MAX);

/// What the poller reported for one socket since it was last acted on
/// (edge-triggered: a flag stays set until a read or write would block).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Readiness {
    pub(crate) readable: bool,
    pub(crate) writable: bool,
    /// The peer closed its write side (read on to EOF).
    pub(crate) read_closed: bool,
}

impl Readiness {
    /// Both directions may make progress (a fresh socket, or after a state
    /// change that needs a first look).
    pub(crate) const ALL: Readiness = Readiness {
        readable: true,
        writable: true,
        read_closed: false,
    };

    /// Add what a poller event reports.
    pub(crate) fn merge(&mut self, ev: &mio::event::Event) {
        if ev.is_readable() || ev.is_read_closed() || ev.is_error() {
            self.readable = true;
        }
        if ev.is_read_closed() || ev.is_error() {
            self.read_closed = true;
        }
        if ev.is_writable() || ev.is_write_closed() || ev.is_error() {
            self.writable = true;
        }
    }
}

/// One `Poll` and its `Waker`.
pub(crate) struct Reactor {
    poll: Poll,
    events: Events,
    waker: Arc<Waker>,
    woken: bool,
}

impl fmt::Debug for Reactor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Reactor")
            .field("woken", &self.woken)
            .finish()
    }
}

impl Reactor {
    /// A poller and its waker.
    ///
    /// # Errors
    /// When the OS refuses an epoll instance or an eventfd.
    pub(crate) fn new(capacity: usize) -> io::Result<Reactor> {
        let poll = Poll::new()?;
        let waker = Arc::new(Waker::new(poll.registry(), WAKER)?);
        Ok(Reactor {
            poll,
            events: Events::with_capacity(capacity.max(4)),
            waker,
            woken: false,
        })
    }

    pub(crate) fn registry(&self) -> &Registry {
        self.poll.registry()
    }

    pub(crate) fn waker(&self) -> &Arc<Waker> {
        &self.waker
    }

    /// Collect readiness, sleeping up to `timeout` (`Some(ZERO)`: never
    /// sleeps), and hand each socket event to `on_event`. Returns whether
    /// anything was reported. An interrupted or failed `epoll_wait` reports
    /// nothing.
    pub(crate) fn poll(
        &mut self,
        timeout: Option<Duration>,
        mut on_event: impl FnMut(Token, &mio::event::Event),
    ) -> bool {
        if self.poll.poll(&mut self.events, timeout).is_err() {
            return false;
        }
        let mut any = false;
        for ev in self.events.iter() {
            any = true;
            if ev.token() == WAKER {
                self.woken = true;
            } else {
                on_event(ev.token(), ev);
            }
        }
        any
    }

    /// Whether the waker fired since the last call.
    pub(crate) fn take_woken(&mut self) -> bool {
        std::mem::take(&mut self.woken)
    }

    /// The epoll file descriptor.
    #[cfg(unix)]
    pub(crate) fn as_raw_fd(&self) -> std::os::fd::RawFd {
        use std::os::fd::AsRawFd;
        self.poll.as_raw_fd()
    }

    /// Whether the waker fired (without clearing it).
    pub(crate) fn is_woken(&self) -> bool {
        self.woken
    }
}
