//! Field sections (header and trailer fields) in wire order, zero-copy.

use alloc::boxed::Box;
use alloc::string::String;
use core::fmt;

use bytes::Bytes;

use crate::locate::{offset_in, with_headers};
use crate::syntax::list_has_token;

/// Offsets of one field line in the section's bytes: name start, name end,
/// value start, value end.
pub(crate) type Entry = [u32; 4];

/// The lazily built index: thread-safe with `std`, a plain cell without.
#[cfg(feature = "std")]
type IndexCell = std::sync::OnceLock<Box<[Entry]>>;
#[cfg(not(feature = "std"))]
type IndexCell = core::cell::OnceCell<Box<[Entry]>>;

/// A field section as received: every field line in wire order, duplicates
/// kept, names as sent (compare them case-insensitively, RFC 9110 §5.1).
///
/// The bytes are shared with the receive buffer they arrived in (no copy).
/// A response head's index of field lines (one allocation) is built while
/// the head is parsed, so reading a field never parses the section again;
/// a trailer section's is built on first access.
#[derive(Default)]
pub struct Fields {
    buf: Bytes,
    /// Where the field lines start in `buf` (after the status line of a head).
    start: u32,
    count: u32,
    index: IndexCell,
}

impl Clone for Fields {
    fn clone(&self) -> Fields {
        Fields {
            buf: self.buf.clone(),
            start: self.start,
            count: self.count,
            index: self.index.clone(),
        }
    }
}

/// One field line: a name and its value with surrounding whitespace removed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Field<'a> {
    name: &'a str,
    value: &'a [u8],
}

impl<'a> Field<'a> {
    /// The field name as received (a token; compare case-insensitively).
    pub fn name(&self) -> &'a str {
        self.name
    }
    /// The field value as received (may hold obs-text bytes ≥ 0x80).
    pub fn value(&self) -> &'a [u8] {
        self.value
    }
    /// The field value as UTF-8, or `None` when it is not valid UTF-8.
    pub fn value_str(&self) -> Option<&'a str> {
        core::str::from_utf8(self.value).ok()
    }
}

impl Fields {
    /// `count` field lines starting at `buf[start..]`, already validated by
    /// the parser.
    pub(crate) fn new(buf: Bytes, start: usize, count: usize) -> Fields {
        Fields {
            buf,
            start: start as u32,
            count: count as u32,
            index: IndexCell::new(),
        }
    }

    /// [`new`](Self::new) with the index the parser built as it went (one
    /// parse of the section instead of two).
    pub(crate) fn with_index(buf: Bytes, start: usize, index: Box<[Entry]>) -> Fields {
        let fields = Fields::new(buf, start, index.len());
        let _ = fields.index.set(index);
        fields
    }

    pub(crate) fn raw(&self) -> &Bytes {
        &self.buf
    }

    fn index(&self) -> &[Entry] {
        self.index
            .get_or_init(|| build_index(&self.buf, self.start as usize, self.count as usize))
    }

    /// Number of field lines.
    pub fn len(&self) -> usize {
        self.count as usize
    }

    /// Whether there are no field lines.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// The field line at `i` in wire order.
    ///
    /// # Panics
    /// If `i >= self.len()`.
    pub fn at(&self, i: usize) -> Field<'_> {
        assert!(i < self.len(), "field index {i} out of range");
        // The index re-parses bytes the parser accepted; should it ever come
        // out short, an empty field is returned rather than a panic.
        let [n0, n1, v0, v1] = self
            .index()
            .get(i)
            .copied()
            .unwrap_or_default()
            .map(|x| x as usize);
        Field {
            // Names were validated as tokens (ASCII) by the parser.
            name: core::str::from_utf8(&self.buf[n0..n1]).unwrap_or(""),
            value: &self.buf[v0..v1],
        }
    }

    /// All field lines in wire order.
    pub fn iter(&self) -> FieldsIter<'_> {
        FieldsIter {
            fields: self,
            next: 0,
        }
    }

    /// The value of the first field named `name` (case-insensitive).
    pub fn get(&self, name: &str) -> Option<&[u8]> {
        // The name's bytes are compared (no UTF-8 check per field line).
        let buf = &self.buf[..];
        self.index().iter().find_map(|&[n0, n1, v0, v1]| {
            buf.get(n0 as usize..n1 as usize)
                .filter(|n| n.eq_ignore_ascii_case(name.as_bytes()))
                .map(|_| buf.get(v0 as usize..v1 as usize).unwrap_or_default())
        })
    }

    /// The value of the first field named `name` as UTF-8.
    pub fn get_str(&self, name: &str) -> Option<&str> {
        self.get(name).and_then(|v| core::str::from_utf8(v).ok())
    }

    /// The values of every field named `name`, in wire order.
    pub fn get_all<'s>(&'s self, name: &'s str) -> impl Iterator<Item = &'s [u8]> + 's {
        self.iter()
            .filter(move |f| f.name.eq_ignore_ascii_case(name))
            .map(|f| f.value)
    }

    /// Whether any field list element of `name` equals `token`
    /// (case-insensitive, comma-separated lists per RFC 9110 §5.6.1).
    pub fn has_token(&self, name: &str, token: &str) -> bool {
        self.get_all(name).any(|v| list_has_token(v, token))
    }
}

/// Re-run httparse over field lines it accepted before, recording offsets.
fn build_index(buf: &[u8], start: usize, count: usize) -> Box<[Entry]> {
    if count == 0 {
        return Box::new([]);
    }
    let section = &buf[start..];
    with_headers(count, |headers| -> Box<[Entry]> {
        let Ok(httparse::Status::Complete((_, parsed))) = httparse::parse_headers(section, headers)
        else {
            // Unreachable: these bytes were parsed with the same rules before.
            return Box::new([]);
        };
        parsed
            .iter()
            .map(|h| {
                let n0 = offset_in(section, h.name.as_bytes()).unwrap_or(0) + start;
                let n1 = n0 + h.name.len();
                // An empty value may point anywhere: then it sits after the name.
                let v0 = offset_in(section, h.value).map_or(n1, |v| v + start);
                [n0, n1, v0, v0 + h.value.len()].map(|x| x as u32)
            })
            .collect()
    })
}

/// Iterator over a [`Fields`] in wire order.
pub struct FieldsIter<'a> {
    fields: &'a Fields,
    next: usize,
}

impl<'a> Iterator for FieldsIter<'a> {
    type Item = Field<'a>;
    fn next(&mut self) -> Option<Field<'a>> {
        if self.next < self.fields.len() {
            self.next += 1;
            Some(self.fields.at(self.next - 1))
        } else {
            None
        }
    }
    fn size_hint(&self) -> (usize, Option<usize>) {
        let n = self.fields.len() - self.next;
        (n, Some(n))
    }
}

impl ExactSizeIterator for FieldsIter<'_> {}

impl<'a> IntoIterator for &'a Fields {
    type Item = Field<'a>;
    type IntoIter = FieldsIter<'a>;
    fn into_iter(self) -> FieldsIter<'a> {
        self.iter()
    }
}

impl fmt::Debug for Fields {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(
                self.iter()
                    .map(|x| (x.name, String::from_utf8_lossy(x.value))),
            )
            .finish()
    }
}

impl PartialEq for Fields {
    fn eq(&self, other: &Fields) -> bool {
        self.len() == other.len() && self.iter().zip(other.iter()).all(|(a, b)| a == b)
    }
}
impl Eq for Fields {}
