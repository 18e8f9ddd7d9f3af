//! [`ReadSize`]: how much to read next, adapting to what reads return.

/// An adaptive read size (hyper's `ReadStrategy::Adaptive`, our numbers):
/// it starts at its least size, doubles after each read that filled the room
/// it was given, up to its greatest, and halves (not below the least) after
/// two reads in a row that returned less than half of it.
///
/// A bulk body is then read in a few large reads (the kernel's cost per
/// `recv` call dominates small back-to-back reads), while a connection that
/// carries small responses, or a slow one, reads (and allocates) little.
///
/// [`Connection::recv_buf`](crate::Connection::recv_buf) sizes its room with
/// one; a driver can size its own socket reads with another (pollhttp's TLS
/// transport reads ciphertext with one). Pure arithmetic: no I/O, no clock,
/// no allocation.
///
/// ```
/// use pollhttp_proto::ReadSize;
/// let mut size = ReadSize::new(8 * 1024, 64 * 1024);
/// assert_eq!(size.next(), 8 * 1024);
/// size.record(8 * 1024, 8 * 1024); // filled: grow
/// assert_eq!(size.next(), 16 * 1024);
/// // A room the caller cut to 1 000 bytes (its budget), filled: no news.
/// size.record(1_000, 1_000);
/// assert_eq!(size.next(), 16 * 1024);
/// size.record(16 * 1024, 100); // short once: keep
/// assert_eq!(size.next(), 16 * 1024);
/// size.record(16 * 1024, 100); // short twice: halve
/// assert_eq!(size.next(), 8 * 1024);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReadSize {
    next: usize,
    least: usize,
    most: usize,
    /// The last read returned less than half of `next`.
    short_once: bool,
}

impl ReadSize {
    /// Starts at `least` bytes and adapts between `least` and `most` (both
    /// at least 1; `most` at least `least`).
    pub const fn new(least: usize, most: usize) -> ReadSize {
        let least = if least == 0 { 1 } else { least };
        let most = if most < least { least } else { most };
        ReadSize {
            next: least,
            least,
            most,
            short_once: false,
        }
    }

    /// How many bytes the next read should ask for.
    pub const fn next(&self) -> usize {
        self.next
    }

    /// The greatest size it grows to.
    pub const fn most(&self) -> usize {
        self.most
    }

    /// A read was given `room` bytes (at most [`next`](Self::next): the
    /// caller may cut it, e.g. to the budget it has left) and returned `n`.
    /// A read that filled a room of the whole size doubles the size; one
    /// that filled a room cut shorter says nothing about larger reads and
    /// changes nothing; two reads in a row that returned less than half the
    /// size halve it. An empty room is no read.
    pub fn record(&mut self, room: usize, n: usize) {
        if room == 0 {
            return;
        }
        if n >= room {
            self.short_once = false;
            if room >= self.next {
                self.next = self.next.saturating_mul(2).min(self.most);
            }
        } else if n < self.next / 2 {
            if self.short_once {
                self.next = (self.next / 2).max(self.least);
                self.short_once = false;
            } else {
                self.short_once = true;
            }
        } else {
            self.short_once = false;
        }
    }

    /// Back to the least size (a new response, an idle connection).
    pub fn reset(&mut self) {
        self.next = self.least;
        self.short_once = false;
    }
}

#[cfg(test)]
mod tests {
    use super::ReadSize;

    const K: usize = 1024;

    #[test]
    fn grows_on_full_reads_up_to_the_most_and_stays() {
        let mut s = ReadSize::new(8 * K, 512 * K);
        let mut sizes = alloc::vec::Vec::new();
        for _ in 0..10 {
            let room = s.next();
            sizes.push(room / K);
            s.record(room, room);
        }
        assert_eq!(sizes, [8, 16, 32, 64, 128, 256, 512, 512, 512, 512]);
    }

    #[test]
    fn shrinks_after_two_short_reads_in_a_row_down_to_the_least() {
        let mut s = ReadSize::new(8 * K, 512 * K);
        while s.next() < 512 * K {
            s.record(s.next(), s.next());
        }
        // One short read alone, then a full one: no change.
        s.record(512 * K, 10);
        s.record(512 * K, 512 * K);
        assert_eq!(s.next(), 512 * K);
        // Short, then half or more (not short): no change.
        s.record(512 * K, 10);
        s.record(512 * K, 256 * K);
        s.record(512 * K, 10);
        assert_eq!(s.next(), 512 * K);
        // Two in a row: halve; each further pair halves again.
        s.record(512 * K, 10);
        assert_eq!(s.next(), 256 * K);
        let mut reads = 0;
        while s.next() > 8 * K {
            s.record(s.next(), 1);
            reads += 1;
            assert!(reads <= 10, "2 short reads per halving");
        }
        assert_eq!(reads, 10);
        s.record(8 * K, 1);
        s.record(8 * K, 1);
        assert_eq!(s.next(), 8 * K, "never below the least");
    }

    #[test]
    fn a_room_cut_by_the_caller_grows_nothing_when_filled() {
        let mut s = ReadSize::new(8 * K, 512 * K);
        for _ in 0..20 {
            s.record(4 * K, 4 * K);
        }
        assert_eq!(s.next(), 8 * K);
        // Short of a cut room and of half the size: short.
        s.record(4 * K, 100);
        s.record(4 * K, 100);
        assert_eq!(s.next(), 8 * K, "not below the least");
        s.record(0, 0);
        assert_eq!(s.next(), 8 * K, "an empty room is no read");
    }

    #[test]
    fn degenerate_bounds_and_reset() {
        let mut s = ReadSize::new(0, 0);
        assert_eq!((s.next(), s.most()), (1, 1));
        s.record(1, 1);
        assert_eq!(s.next(), 1);
        let mut s = ReadSize::new(100, 10);
        assert_eq!((s.next(), s.most()), (100, 100));
        let mut s2 = ReadSize::new(1, usize::MAX);
        for _ in 0..80 {
            s2.record(s2.next(), s2.next());
        }
        assert_eq!(s2.next(), usize::MAX, "saturates");
        s2.reset();
        assert_eq!(s2.next(), 1);
        s.reset();
        assert_eq!(s.next(), 100);
    }
}
