//! Where in the input things are: the header arrays httparse fills, the
//! offset of a parsed slice in its buffer, and the byte at which httparse
//! rejects a section. One copy of each, used by the head parser, the trailer
//! parser and the field index.

use alloc::vec;
use core::mem::MaybeUninit;

use httparse::Header;

/// Header slots kept on the stack; larger limits go to the heap.
const STACK_HEADERS: usize = 128;

/// Run `f` with `n` uninitialised header slots (stack for small `n`).
#[inline]
pub(crate) fn with_uninit_headers<'b, R>(
    n: usize,
    f: impl FnOnce(&mut [MaybeUninit<Header<'b>>]) -> R,
) -> R {
    if n <= STACK_HEADERS {
        let mut stack: [MaybeUninit<Header<'b>>; STACK_HEADERS] =
            [const { MaybeUninit::uninit() }; STACK_HEADERS];
        f(&mut stack[..n])
    } else {
        let mut heap = vec![MaybeUninit::uninit(); n];
        f(&mut heap)
    }
}

/// Run `f` with `n` empty header slots (stack for small `n`).
#[inline]
pub(crate) fn with_headers<'b, R>(n: usize, f: impl FnOnce(&mut [Header<'b>]) -> R) -> R {
    const SMALL: usize = 32;
    if n <= SMALL {
        let mut stack = [httparse::EMPTY_HEADER; SMALL];
        f(&mut stack[..n])
    } else {
        let mut heap = vec![httparse::EMPTY_HEADER; n];
        f(&mut heap)
    }
}

/// Offset of `part` inside `whole`, when `part` is a subslice of it.
pub(crate) fn offset_in(whole: &[u8], part: &[u8]) -> Option<usize> {
    let start = (part.as_ptr() as usize).wrapping_sub(whole.as_ptr() as usize);
    (start <= whole.len() && part.len() <= whole.len() - start).then_some(start)
}

/// The index of the byte at which a parser rejects `len` bytes of input,
/// given `fails(k)`: whether it rejects the first `k` bytes. The parsers here
/// never reject a prefix of valid input (partial input is not an error), so
/// the shortest rejected prefix ends at the offending byte.
pub(crate) fn first_rejected_byte(len: usize, mut fails: impl FnMut(usize) -> bool) -> usize {
    let (mut lo, mut hi) = (1, len);
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        if fails(mid) {
            hi = mid;
        } else {
            lo = mid + 1;
        }
    }
    lo.saturating_sub(1).min(len.saturating_sub(1))
}

/// The byte at which httparse rejects a response head `buf` (parsed with
/// `parser` and at most `max_fields` fields).
pub(crate) fn head_error_at(
    parser: &httparse::ParserConfig,
    buf: &[u8],
    max_fields: usize,
) -> usize {
    // Enough slots to reach the offending byte without TooManyHeaders.
    let slots = max_fields.min(STACK_HEADERS * 8);
    with_uninit_headers(slots, |headers| {
        first_rejected_byte(buf.len(), |len| {
            let mut resp = httparse::Response::new(&mut []);
            parser
                .parse_response_with_uninit_headers(&mut resp, &buf[..len], headers)
                .is_err()
        })
    })
}

/// The byte at which httparse rejects a field section `buf` (a trailer
/// section).
pub(crate) fn fields_error_at(buf: &[u8], max_fields: usize) -> usize {
    with_headers(max_fields.min(1024), |headers| {
        first_rejected_byte(buf.len(), |len| {
            httparse::parse_headers(&buf[..len], headers).is_err()
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bisection_finds_the_first_rejected_byte() {
        let bad = 7;
        assert_eq!(first_rejected_byte(20, |k| k > bad), bad);
        assert_eq!(first_rejected_byte(20, |_| true), 0);
        assert_eq!(first_rejected_byte(1, |_| true), 0);
        let buf = [1u8, 2, 3, 4];
        assert_eq!(offset_in(&buf, &buf[2..]), Some(2));
        assert_eq!(offset_in(&buf, &[9u8][..]), None);
    }
}
