//! When to run a section parser (head or trailers) over a buffer that grows
//! a little at a time, so that any split of the input costs O(its length)
//! and gives the same outcome.
//!
//! Re-parsing the whole buffer on every arrival is quadratic: a 64 KiB head
//! that arrives one byte per read would be scanned 32 768 times over (about
//! 2 GiB of parsing). Instead only the new bytes are searched for the empty
//! line that ends the section, and the parser runs once the section is
//! decided: its end is buffered, the buffer passed the limit, or the input
//! ended (h11's model). Each byte is searched once, and the parser runs about
//! once per section.
//!
//! The outcome does not depend on the splits: whether the section is decided
//! is a function of the bytes buffered, and the parser rejects a prefix only
//! at the offending byte and completes only at the empty line, so a parse of
//! the buffered bytes then gives what a parse of the whole input would. The
//! price is latency, not correctness: an error inside a section is reported
//! when the section's end, the limit or the end of input arrives, not at the
//! offending byte (a peer that sends a broken head and stalls meets the
//! driver's timeout, as with h11).
//!
//! One part of a head is decided sooner: its first line. A status line is
//! complete at its LF and its verdict does not depend on what follows, so
//! the new bytes are also searched for that first LF (each byte once, until
//! it is found), and the line is checked once, as soon as it is complete
//! (within the head limit) and before the head is parsed: an invalid status
//! line is reported when its line arrives, and the same error comes first
//! however the head is split (before an error in the field lines). The cost
//! stays linear: one more search of the status line's bytes and one more
//! parse of the line.
//!
//! Should the parser ever call a section incomplete although its empty line
//! is buffered, the section falls back to a parse on every arrival (the
//! quadratic but always split-independent rule) until it ends.

/// The scan state of one head or trailer section.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct SectionScan {
    /// Bytes examined and found not to complete the section (see
    /// `Connection::starved`).
    pub scanned: usize,
    /// The parser called the section incomplete with an empty line in it:
    /// parse on every arrival from now on.
    eager: bool,
    /// Bytes searched for the LF that ends the first line (a head's status
    /// line), while it was not found.
    line_searched: usize,
    /// The first line's LF was found (and the line handed to its check).
    line_found: bool,
    /// Bytes searched plus bytes handed to the parser, for the tests that
    /// bound the work per split.
    #[cfg(test)]
    pub work: usize,
}

impl SectionScan {
    /// Whether nothing of this section was examined yet. The first look may
    /// parse at once (a section that arrived whole is then done without a
    /// search), but keeps an error only if [`is_decided`](Self::is_decided).
    #[inline]
    pub fn is_first_look(&self) -> bool {
        self.scanned == 0
    }

    /// Whether the section is decided, so the parser's verdict on `buf` (the
    /// buffered bytes of the section, cut at the limit plus one) is final:
    /// its empty line is buffered, the input passed the limit or ended.
    /// Bytes already scanned are not searched again.
    #[inline]
    pub fn is_decided(&mut self, buf: &[u8], over_limit: bool, eof: bool) -> bool {
        if over_limit || eof || self.eager {
            return true;
        }
        #[cfg(test)]
        {
            self.work += buf.len().saturating_sub(self.scanned.saturating_sub(2));
        }
        ends_section(buf, self.scanned)
    }

    /// The parser is about to run over `n` bytes.
    #[inline]
    pub fn parsing(&mut self, n: usize) {
        #[cfg(test)]
        {
            self.work += n;
        }
        let _ = n;
    }

    /// The parser found the section in `buf` incomplete: every buffered byte
    /// (`filled`) was examined, more input is needed.
    #[inline]
    pub fn incomplete_in(&mut self, buf: &[u8], filled: usize) {
        #[cfg(test)]
        {
            self.work += buf.len();
        }
        let ended = ends_section(buf, 0);
        self.incomplete(filled, ended);
    }

    /// The parser found the section incomplete: every buffered byte was
    /// examined, more input is needed. `ended`: an empty line was buffered.
    #[inline]
    pub fn incomplete(&mut self, filled: usize, ended: bool) {
        self.scanned = filled;
        self.eager |= ended;
    }

    /// Nothing to parse yet: every buffered byte was examined.
    #[inline]
    pub fn examined(&mut self, filled: usize) {
        self.scanned = filled;
    }

    /// The first line of the section once it is complete in `buf`: the index
    /// of its LF, returned once (the line is to be checked then), `None`
    /// before and after. Bytes already searched are not searched again.
    #[inline]
    pub fn first_line_end(&mut self, buf: &[u8]) -> Option<usize> {
        if self.line_found || buf.len() <= self.line_searched {
            return None;
        }
        let found = memchr::memchr(b'\n', &buf[self.line_searched..]);
        #[cfg(test)]
        {
            self.work += found.map_or(buf.len() - self.line_searched, |i| i + 1);
        }
        match found {
            Some(i) => {
                self.line_found = true;
                let lf = self.line_searched + i;
                self.parsing(lf + 1);
                Some(lf)
            }
            None => {
                self.line_searched = buf.len();
                None
            }
        }
    }

    /// Start over for the next section.
    #[inline]
    pub fn restart(&mut self) {
        self.scanned = 0;
        self.eager = false;
        self.line_searched = 0;
        self.line_found = false;
    }
}

/// Whether `buf` has an empty line (LF then LF, or LF then CRLF) with its
/// first LF at or after `from - 2` (the bytes before were searched already).
#[inline]
pub(crate) fn ends_section(buf: &[u8], from: usize) -> bool {
    let mut i = from.saturating_sub(2);
    while let Some(p) = buf
        .get(i..)
        .and_then(|rest| rest.iter().position(|&b| b == b'\n'))
    {
        let lf = i + p;
        match buf.get(lf + 1..lf + 3) {
            Some([b'\n', _]) | Some([b'\r', b'\n']) => return true,
            None if buf.get(lf + 1) == Some(&b'\n') => return true,
            _ => {}
        }
        i = lf + 1;
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_end_in_new_bytes_only() {
        assert!(ends_section(b"A: b\r\n\r\n", 0));
        assert!(ends_section(b"A: b\n\n", 0));
        assert!(ends_section(b"A: b\n\r\n", 0));
        assert!(!ends_section(b"A: b\r\n\r", 0));
        assert!(!ends_section(b"A: b\r\nC: d\r\n", 0));
        // The overlap: an LF examined before, its CRLF new.
        assert!(ends_section(b"A: b\r\n\r\n", 7));
        assert!(!ends_section(b"A: b\r\n\r\n\r\n", 11));
    }

    #[test]
    fn decided_only_by_the_end_the_limit_or_eof() {
        let buf = b"HTTP/1.1 200 OK\r\nA: b\r\n\r\n";
        let mut scan = SectionScan::default();
        let mut decided = alloc::vec::Vec::new();
        for n in 1..=buf.len() {
            if scan.is_decided(&buf[..n], false, false) {
                decided.push(n);
            }
            scan.examined(n);
        }
        assert_eq!(decided, [buf.len()]);
        let mut scan = SectionScan::default();
        assert!(scan.is_first_look());
        assert!(scan.is_decided(b"HTTP", true, false));
        assert!(scan.is_decided(b"HTTP", false, true));
        scan.incomplete(4, true);
        assert!(!scan.is_first_look());
        assert!(
            scan.is_decided(b"HTTPX", false, false),
            "eager after a surprise"
        );
    }
}
