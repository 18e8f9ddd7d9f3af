//! Field sections (header and trailer fields) in wire order, zero-copy.

use bytes::{Bytes, BytesMut};
use std::fmt;

/// Bytes per field entry in the index: name start, name end, value start,
/// value end, as little-endian `u32` offsets into the section's bytes.
const ENTRY: usize = 16;

/// A field section as received: every field line in wire order, duplicates
/// kept, names as sent (compare them case-insensitively, RFC 9110 §5.1).
///
/// The bytes are shared with the receive buffer they arrived in (no copy);
/// cloning is cheap (two reference-count increments).
#[derive(Clone, Default)]
pub struct Fields {
    buf: Bytes,
    index: Bytes,
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
        std::str::from_utf8(self.value).ok()
    }
}

impl Fields {
    pub(crate) fn from_parts(buf: Bytes, index: Bytes) -> Fields {
        Fields { buf, index }
    }

    pub(crate) fn raw(&self) -> &Bytes {
        &self.buf
    }

    /// Number of field lines.
    pub fn len(&self) -> usize {
        self.index.len() / ENTRY
    }

    /// Whether there are no field lines.
    pub fn is_empty(&self) -> bool {
        self.index.is_empty()
    }

    /// The field line at `i` in wire order.
    ///
    /// # Panics
    /// If `i >= self.len()`.
    pub fn at(&self, i: usize) -> Field<'_> {
        let e = &self.index[i * ENTRY..(i + 1) * ENTRY];
        let n0 = rd(e, 0);
        let n1 = rd(e, 4);
        let v0 = rd(e, 8);
        let v1 = rd(e, 12);
        Field {
            // Names were validated as tokens (ASCII) by the parser.
            name: std::str::from_utf8(&self.buf[n0..n1]).unwrap_or(""),
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
        self.iter()
            .find(|f| f.name.eq_ignore_ascii_case(name))
            .map(|f| f.value)
    }

    /// The value of the first field named `name` as UTF-8.
    pub fn get_str(&self, name: &str) -> Option<&str> {
        self.get(name).and_then(|v| std::str::from_utf8(v).ok())
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

fn rd(e: &[u8], at: usize) -> usize {
    u32::from_le_bytes([e[at], e[at + 1], e[at + 2], e[at + 3]]) as usize
}

/// Whether a comma-separated list value contains `token` (ASCII
/// case-insensitive, OWS trimmed).
pub(crate) fn list_has_token(value: &[u8], token: &str) -> bool {
    value
        .split(|&b| b == b',')
        .any(|el| trim_ows(el).eq_ignore_ascii_case(token.as_bytes()))
}

pub(crate) fn trim_ows(mut s: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = s {
        s = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = s {
        s = rest;
    }
    s
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

/// A reusable arena for field indexes: index bytes are split off a shared
/// buffer, so a warmed-up connection allocates nothing per head.
#[derive(Default)]
pub(crate) struct IndexArena {
    buf: BytesMut,
}

impl IndexArena {
    pub(crate) fn start(&mut self, entries: usize) {
        let need = entries * ENTRY;
        if self.buf.capacity() - self.buf.len() < need {
            self.buf.reserve(need.max(4096));
        }
    }
    pub(crate) fn push(&mut self, n0: usize, n1: usize, v0: usize, v1: usize) {
        let mut e = [0u8; ENTRY];
        for (i, x) in [n0, n1, v0, v1].into_iter().enumerate() {
            e[i * 4..i * 4 + 4].copy_from_slice(&(x as u32).to_le_bytes());
        }
        self.buf.extend_from_slice(&e);
    }
    pub(crate) fn finish(&mut self) -> Bytes {
        if self.buf.is_empty() {
            return Bytes::new();
        }
        self.buf.split().freeze()
    }
    pub(crate) fn discard(&mut self) {
        self.buf.clear();
    }
}
