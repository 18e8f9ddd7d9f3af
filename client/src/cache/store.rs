//! Where cached responses live: in memory ([`MemoryStore`], bounded) or on
//! disk ([`DiskStore`], bounded in bytes and entries, least recently used
//! first out), behind one interface ([`Store`]). Bodies go in and come out
//! in pieces, so a 1 GiB asset never sits in memory.
//!
//! **The disk format is crash-safe by construction.** An entry is one file,
//! `entries/<sha-256 of the key>.entry`: the body, then its metadata, then
//! a fixed trailer (lengths, the SHA-256 of the body and of the metadata,
//! a magic number). It is written under `tmp/` and renamed into place only
//! when complete, so a process killed at any point leaves either the old
//! entry, the new one, or a stray temporary file (removed by a later
//! open), never a torn entry under the key. Readers check the trailer and
//! the metadata's hash before using an entry and the body's hash as they
//! read it; an entry that fails is removed and reported, never served.
//!
//! **Sharing a directory needs no lock.** Every change is one `rename` or
//! one `unlink`, each atomic: two writers of one key both write whole
//! entries and the last rename wins; a reader that opened an entry keeps
//! reading that file (POSIX keeps an unlinked or replaced file's data for
//! open descriptors). `cacache` was evaluated: its content-addressed
//! layout with append-only index buckets is also safe to share, but it has
//! no bound in bytes or entries (eviction would be ours anyway), it keeps
//! two files per entry and an index to parse per lookup, and it brings a
//! dozen crates; one file per key with a trailer is smaller and as safe.
//!
//! No `fsync`: a killed process loses nothing the kernel has (the page
//! cache outlives it); after a power loss an entry can be short or zeroed,
//! and then its hashes fail and it is fetched again.

use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use sha2::{Digest, Sha256};

use super::policy::Stored;

/// The last bytes of every entry file.
const MAGIC: &[u8; 8] = b"PHCACHE1";

/// Trailer: metadata length, body length (u64 LE each), body SHA-256,
/// metadata SHA-256, magic.
const TRAILER: usize = 8 + 8 + 32 + 32 + 8;

/// Most bytes of metadata an entry may have (a head is at most 64 KiB in
/// proto; room for the key and the selecting fields).
const MAX_META: u64 = 256 * 1024;

/// A stored entry: its metadata, and its body's length.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Entry {
    pub(crate) key: String,
    pub(crate) stored: Stored,
    pub(crate) body_len: u64,
}

/// Why an entry could not be used.
#[derive(Debug)]
pub(crate) enum StoreError {
    /// The file system said no.
    Io(io::Error),
    /// An entry's bytes do not check out (a trailer, a hash, a length):
    /// it was removed.
    Corrupt(&'static str),
}

impl From<io::Error> for StoreError {
    fn from(e: io::Error) -> StoreError {
        StoreError::Io(e)
    }
}

/// A body being read out of a store, piece by piece, checked as it goes.
pub(crate) enum BodyReader {
    Memory { body: Bytes },
    Disk(DiskBody),
}

impl BodyReader {
    /// At most `max` more bytes of the body (`None` at its end). A disk
    /// body whose hash fails at its end is an error (and the entry is
    /// removed); what was read before is not a complete body.
    pub(crate) fn read_piece(&mut self, max: usize) -> Result<Option<Bytes>, StoreError> {
        match self {
            BodyReader::Memory { body } => {
                if body.is_empty() {
                    return Ok(None);
                }
                let n = max.max(1).min(body.len());
                Ok(Some(body.split_to(n)))
            }
            BodyReader::Disk(d) => d.read_piece(max),
        }
    }
}

/// A disk entry's body being read.
pub(crate) struct DiskBody {
    file: File,
    path: PathBuf,
    left: u64,
    hasher: Sha256,
    expected: [u8; 32],
}

impl DiskBody {
    fn read_piece(&mut self, max: usize) -> Result<Option<Bytes>, StoreError> {
        if self.left == 0 {
            return Ok(None);
        }
        let n = (max.max(1) as u64).min(self.left) as usize;
        let mut buf = vec![0u8; n];
        let mut got = 0;
        while got < n {
            match self.file.read(&mut buf[got..]) {
                Ok(0) => {
                    let _ = fs::remove_file(&self.path);
                    return Err(StoreError::Corrupt("body shorter than its trailer says"));
                }
                Ok(k) => got += k,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(StoreError::Io(e)),
            }
        }
        self.hasher.update(&buf);
        self.left -= n as u64;
        if self.left == 0 {
            let actual: [u8; 32] = self.hasher.clone().finalize().into();
            if actual != self.expected {
                let _ = fs::remove_file(&self.path);
                return Err(StoreError::Corrupt("body hash mismatch"));
            }
        }
        Ok(Some(Bytes::from(buf)))
    }
}

/// A body being written into a store; committed with its metadata by
/// [`Store::commit`], dropped (nothing stored) otherwise.
pub(crate) enum BodyWriter {
    Memory { body: Vec<u8>, limit: u64 },
    Disk(DiskWriter),
}

impl BodyWriter {
    /// Append body bytes. `Ok(false)`: the body went past the store's
    /// limit for one entry; the writer should be dropped.
    pub(crate) fn write(&mut self, data: &[u8]) -> io::Result<bool> {
        match self {
            BodyWriter::Memory { body, limit } => {
                if body.len() as u64 + data.len() as u64 > *limit {
                    return Ok(false);
                }
                body.extend_from_slice(data);
                Ok(true)
            }
            BodyWriter::Disk(w) => w.write(data),
        }
    }
}

/// A disk entry being written under `tmp/`.
pub(crate) struct DiskWriter {
    file: File,
    tmp: PathBuf,
    len: u64,
    limit: u64,
    hasher: Sha256,
}

impl DiskWriter {
    fn write(&mut self, data: &[u8]) -> io::Result<bool> {
        if self.len + data.len() as u64 > self.limit {
            return Ok(false);
        }
        self.file.write_all(data)?;
        self.hasher.update(data);
        self.len += data.len() as u64;
        Ok(true)
    }
}

impl Drop for DiskWriter {
    fn drop(&mut self) {
        // Renamed away when committed; otherwise a partial entry goes.
        let _ = fs::remove_file(&self.tmp);
    }
}

/// Limits of a store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoreLimits {
    /// Most bytes of bodies kept in all. Least recently used entries go
    /// first when a new one would pass it.
    pub max_bytes: u64,
    /// Most entries kept.
    pub max_entries: usize,
    /// Largest body stored; a larger response is passed on, not stored.
    pub max_entry_bytes: u64,
}

impl Default for StoreLimits {
    fn default() -> StoreLimits {
        StoreLimits {
            max_bytes: 256 << 20,
            max_entries: 10_000,
            max_entry_bytes: 64 << 20,
        }
    }
}

/// A cache store: memory or disk, shared by every request and thread that
/// holds a clone.
#[derive(Clone)]
pub(crate) enum Store {
    Memory(Arc<Mutex<MemoryStore>>),
    Disk(Arc<DiskStore>),
}

impl Store {
    pub(crate) fn memory(limits: StoreLimits) -> Store {
        Store::Memory(Arc::new(Mutex::new(MemoryStore {
            limits,
            entries: HashMap::new(),
            bytes: 0,
            tick: 0,
        })))
    }

    pub(crate) fn disk(dir: &Path, limits: StoreLimits) -> io::Result<Store> {
        Ok(Store::Disk(Arc::new(DiskStore::open(dir, limits)?)))
    }

    /// The entry stored under `key`, with a reader of its body.
    pub(crate) fn get(&self, key: &str) -> Result<Option<(Entry, BodyReader)>, StoreError> {
        match self {
            Store::Memory(m) => Ok(lock(m).get(key)),
            Store::Disk(d) => d.get(key),
        }
    }

    /// Start storing a body.
    pub(crate) fn writer(&self) -> io::Result<BodyWriter> {
        match self {
            Store::Memory(m) => Ok(BodyWriter::Memory {
                body: Vec::new(),
                limit: lock(m).limits.max_entry_bytes,
            }),
            Store::Disk(d) => d.writer().map(BodyWriter::Disk),
        }
    }

    /// Store `entry` (its `body_len` is set from what was written) with
    /// the body `writer` holds, replacing what `key` had; then evict down
    /// to the limits.
    pub(crate) fn commit(&self, mut entry: Entry, writer: BodyWriter) -> io::Result<()> {
        match (self, writer) {
            (Store::Memory(m), BodyWriter::Memory { body, .. }) => {
                entry.body_len = body.len() as u64;
                lock(m).put(entry, Bytes::from(body));
                Ok(())
            }
            (Store::Disk(d), BodyWriter::Disk(w)) => d.commit(entry, w),
            _ => Err(io::Error::other("a writer of another store")),
        }
    }

    /// Replace only the metadata of `key`'s entry (a 304's freshening),
    /// keeping its body. Nothing happens when the entry is gone.
    pub(crate) fn update(&self, entry: &Entry) -> Result<(), StoreError> {
        match self {
            Store::Memory(m) => {
                lock(m).update(entry);
                Ok(())
            }
            Store::Disk(d) => d.update(entry),
        }
    }

    /// Remove `key`'s entry (an invalidation, §4.4).
    pub(crate) fn remove(&self, key: &str) {
        match self {
            Store::Memory(m) => lock(m).remove(key),
            Store::Disk(d) => d.remove(key),
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Entries in memory, least recently used first out.
pub(crate) struct MemoryStore {
    limits: StoreLimits,
    entries: HashMap<String, (Entry, Bytes, u64)>,
    bytes: u64,
    tick: u64,
}

impl MemoryStore {
    fn get(&mut self, key: &str) -> Option<(Entry, BodyReader)> {
        self.tick += 1;
        let tick = self.tick;
        let (entry, body, used) = self.entries.get_mut(key)?;
        *used = tick;
        Some((entry.clone(), BodyReader::Memory { body: body.clone() }))
    }

    fn put(&mut self, entry: Entry, body: Bytes) {
        self.remove(&entry.key);
        if body.len() as u64 > self.limits.max_entry_bytes.min(self.limits.max_bytes) {
            return;
        }
        self.tick += 1;
        self.bytes += body.len() as u64;
        self.entries
            .insert(entry.key.clone(), (entry, body, self.tick));
        while self.bytes > self.limits.max_bytes || self.entries.len() > self.limits.max_entries {
            let Some(oldest) = self
                .entries
                .iter()
                .min_by_key(|(_, (_, _, used))| *used)
                .map(|(k, _)| k.clone())
            else {
                break;
            };
            self.remove(&oldest);
        }
    }

    fn update(&mut self, entry: &Entry) {
        if let Some((e, _, _)) = self.entries.get_mut(&entry.key) {
            e.stored = entry.stored.clone();
        }
    }

    fn remove(&mut self, key: &str) {
        if let Some((_, body, _)) = self.entries.remove(key) {
            self.bytes -= body.len() as u64;
        }
    }
}

/// Entries on disk under one directory (see the module's documentation).
pub(crate) struct DiskStore {
    dir: PathBuf,
    limits: StoreLimits,
    /// Bytes and entry files this process believes the directory holds:
    /// a hint for when to scan and evict (other processes write too, and a
    /// replaced entry counts twice until the next scan).
    approx: Mutex<(u64, usize)>,
}

/// A temporary file older than this was left by a killed writer.
const STALE_TMP: Duration = Duration::from_secs(3600);

impl DiskStore {
    fn open(dir: &Path, limits: StoreLimits) -> io::Result<DiskStore> {
        fs::create_dir_all(dir.join("entries"))?;
        fs::create_dir_all(dir.join("tmp"))?;
        let now = SystemTime::now();
        for e in fs::read_dir(dir.join("tmp"))?.flatten() {
            let old = e
                .metadata()
                .and_then(|m| m.modified())
                .is_ok_and(|t| now.duration_since(t).unwrap_or_default() > STALE_TMP);
            if old {
                let _ = fs::remove_file(e.path());
            }
        }
        let store = DiskStore {
            dir: dir.to_path_buf(),
            limits,
            approx: Mutex::new((0, 0)),
        };
        store.evict()?;
        Ok(store)
    }

    fn path_of(&self, key: &str) -> PathBuf {
        let hash = Sha256::digest(key.as_bytes());
        let name: String = hash[..16].iter().map(|b| format!("{b:02x}")).collect();
        self.dir.join("entries").join(format!("{name}.entry"))
    }

    /// Every entry file: path, length, last use.
    fn scan(&self) -> io::Result<Vec<(PathBuf, u64, SystemTime)>> {
        let mut out = Vec::new();
        for e in fs::read_dir(self.dir.join("entries"))?.flatten() {
            if let Ok(m) = e.metadata() {
                let used = m.modified().unwrap_or(SystemTime::UNIX_EPOCH);
                out.push((e.path(), m.len(), used));
            }
        }
        Ok(out)
    }

    fn get(&self, key: &str) -> Result<Option<(Entry, BodyReader)>, StoreError> {
        let path = self.path_of(key);
        let mut file = match File::open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        let read = read_entry(&mut file, key);
        let (entry, expected) = match read {
            Ok(x) => x,
            Err(e) => {
                if matches!(e, StoreError::Corrupt(_)) {
                    let _ = fs::remove_file(&path);
                }
                return Err(e);
            }
        };
        // Used now: least recently used goes first.
        let _ = file.set_modified(SystemTime::now());
        file.seek(SeekFrom::Start(0))?;
        let body = DiskBody {
            file,
            path,
            left: entry.body_len,
            hasher: Sha256::new(),
            expected,
        };
        Ok(Some((entry, BodyReader::Disk(body))))
    }

    fn writer(&self) -> io::Result<DiskWriter> {
        let mut id = [0u8; 16];
        getrandom::fill(&mut id).map_err(|e| io::Error::other(e.to_string()))?;
        let name: String = id.iter().map(|b| format!("{b:02x}")).collect();
        let tmp = self.dir.join("tmp").join(name);
        let file = OpenOptions::new().write(true).create_new(true).open(&tmp)?;
        Ok(DiskWriter {
            file,
            tmp,
            len: 0,
            limit: self.limits.max_entry_bytes,
            hasher: Sha256::new(),
        })
    }

    fn commit(&self, mut entry: Entry, mut w: DiskWriter) -> io::Result<()> {
        entry.body_len = w.len;
        let meta = encode_meta(&entry);
        let body_hash: [u8; 32] = w.hasher.clone().finalize().into();
        let meta_hash: [u8; 32] = Sha256::digest(&meta).into();
        w.file.write_all(&meta)?;
        let mut trailer = Vec::with_capacity(TRAILER);
        trailer.extend_from_slice(&(meta.len() as u64).to_le_bytes());
        trailer.extend_from_slice(&w.len.to_le_bytes());
        trailer.extend_from_slice(&body_hash);
        trailer.extend_from_slice(&meta_hash);
        trailer.extend_from_slice(MAGIC);
        w.file.write_all(&trailer)?;
        w.file.flush()?;
        let size = w.len + meta.len() as u64 + TRAILER as u64;
        fs::rename(&w.tmp, self.path_of(&entry.key))?;
        let over = {
            let mut approx = lock(&self.approx);
            approx.0 += size;
            approx.1 += 1;
            approx.0 > self.limits.max_bytes || approx.1 > self.limits.max_entries
        };
        if over {
            self.evict()?;
        }
        Ok(())
    }

    fn update(&self, entry: &Entry) -> Result<(), StoreError> {
        // Copy the body into a new entry with the new metadata: the old
        // file stays whole until the rename replaces it.
        let Some((old, mut body)) = self.get(&entry.key)? else {
            return Ok(());
        };
        let mut w = self.writer()?;
        while let Some(piece) = body.read_piece(256 * 1024)? {
            w.write(&piece)?;
        }
        let new = Entry {
            stored: entry.stored.clone(),
            ..old
        };
        self.commit(new, w)?;
        Ok(())
    }

    fn remove(&self, key: &str) {
        let _ = fs::remove_file(self.path_of(key));
    }

    /// Remove the least recently used entries until the directory is
    /// within the limits.
    fn evict(&self) -> io::Result<()> {
        let mut entries = self.scan()?;
        let mut total: u64 = entries.iter().map(|(_, len, _)| len).sum();
        if total <= self.limits.max_bytes && entries.len() <= self.limits.max_entries {
            *lock(&self.approx) = (total, entries.len());
            return Ok(());
        }
        entries.sort_by_key(|(_, _, used)| *used);
        let mut count = entries.len();
        for (path, len, _) in entries {
            if total <= self.limits.max_bytes && count <= self.limits.max_entries {
                break;
            }
            if fs::remove_file(&path).is_ok() {
                total -= len;
                count -= 1;
            }
        }
        *lock(&self.approx) = (total, count);
        Ok(())
    }
}

/// Read and check an entry file's trailer and metadata.
fn read_entry(file: &mut File, key: &str) -> Result<(Entry, [u8; 32]), StoreError> {
    let len = file.metadata()?.len();
    if len < TRAILER as u64 {
        return Err(StoreError::Corrupt("shorter than a trailer"));
    }
    let mut trailer = [0u8; TRAILER];
    file.seek(SeekFrom::Start(len - TRAILER as u64))?;
    file.read_exact(&mut trailer)?;
    if &trailer[TRAILER - 8..] != MAGIC {
        return Err(StoreError::Corrupt("no magic"));
    }
    let meta_len = u64::from_le_bytes(trailer[0..8].try_into().unwrap_or_default());
    let body_len = u64::from_le_bytes(trailer[8..16].try_into().unwrap_or_default());
    let mut body_hash = [0u8; 32];
    body_hash.copy_from_slice(&trailer[16..48]);
    let meta_hash = &trailer[48..80];
    if meta_len > MAX_META
        || body_len
            .checked_add(meta_len)
            .and_then(|n| n.checked_add(TRAILER as u64))
            != Some(len)
    {
        return Err(StoreError::Corrupt("lengths do not add up"));
    }
    let mut meta = vec![0u8; meta_len as usize];
    file.seek(SeekFrom::Start(body_len))?;
    file.read_exact(&mut meta)?;
    if Sha256::digest(&meta).as_slice() != meta_hash {
        return Err(StoreError::Corrupt("metadata hash mismatch"));
    }
    let mut entry = decode_meta(&meta).ok_or(StoreError::Corrupt("metadata does not parse"))?;
    if entry.key != key {
        // Another key with the same file name (a 128-bit prefix collision):
        // a miss, not a corrupt entry.
        return Err(StoreError::Corrupt("another key"));
    }
    entry.body_len = body_len;
    Ok((entry, body_hash))
}

fn put_bytes(out: &mut Vec<u8>, b: &[u8]) {
    out.extend_from_slice(&(b.len() as u32).to_le_bytes());
    out.extend_from_slice(b);
}

fn put_time(out: &mut Vec<u8>, t: SystemTime) {
    let d = t.duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default();
    out.extend_from_slice(&d.as_secs().to_le_bytes());
    out.extend_from_slice(&d.subsec_nanos().to_le_bytes());
}

/// The metadata's bytes: key, times, status, fields, selecting fields,
/// each length-prefixed.
fn encode_meta(e: &Entry) -> Vec<u8> {
    let mut out = Vec::new();
    put_bytes(&mut out, e.key.as_bytes());
    put_time(&mut out, e.stored.request_time);
    put_time(&mut out, e.stored.response_time);
    out.extend_from_slice(&e.stored.status.to_le_bytes());
    put_bytes(&mut out, e.stored.reason.as_bytes());
    out.extend_from_slice(&(e.stored.fields.len() as u32).to_le_bytes());
    for (k, v) in &e.stored.fields {
        put_bytes(&mut out, k.as_bytes());
        put_bytes(&mut out, v);
    }
    out.extend_from_slice(&(e.stored.vary.len() as u32).to_le_bytes());
    for (k, v) in &e.stored.vary {
        put_bytes(&mut out, k.as_bytes());
        match v {
            Some(v) => {
                out.push(1);
                put_bytes(&mut out, v.as_bytes());
            }
            None => out.push(0),
        }
    }
    out
}

/// A cursor over metadata bytes; every read is bounds-checked.
struct Cursor<'a>(&'a [u8]);

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.0.len() < n {
            return None;
        }
        let (a, b) = self.0.split_at(n);
        self.0 = b;
        Some(a)
    }
    fn u32(&mut self) -> Option<u32> {
        Some(u32::from_le_bytes(self.take(4)?.try_into().ok()?))
    }
    fn u64(&mut self) -> Option<u64> {
        Some(u64::from_le_bytes(self.take(8)?.try_into().ok()?))
    }
    fn bytes(&mut self) -> Option<&'a [u8]> {
        let n = self.u32()? as usize;
        self.take(n)
    }
    fn string(&mut self) -> Option<String> {
        String::from_utf8(self.bytes()?.to_vec()).ok()
    }
    fn time(&mut self) -> Option<SystemTime> {
        let secs = self.u64()?;
        let nanos = self.u32()?;
        SystemTime::UNIX_EPOCH.checked_add(Duration::new(secs, nanos.min(999_999_999)))
    }
}

fn decode_meta(b: &[u8]) -> Option<Entry> {
    let mut c = Cursor(b);
    let key = c.string()?;
    let request_time = c.time()?;
    let response_time = c.time()?;
    let status = u16::from_le_bytes(c.take(2)?.try_into().ok()?);
    let reason = c.string()?;
    let n = c.u32()? as usize;
    let mut fields = Vec::with_capacity(n.min(1024));
    for _ in 0..n {
        let k = c.string()?;
        let v = c.bytes()?.to_vec();
        fields.push((k, v));
    }
    let n = c.u32()? as usize;
    let mut vary = Vec::with_capacity(n.min(1024));
    for _ in 0..n {
        let k = c.string()?;
        let v = match c.take(1)?[0] {
            0 => None,
            1 => Some(c.string()?),
            _ => return None,
        };
        vary.push((k, v));
    }
    if !c.0.is_empty() {
        return None;
    }
    Some(Entry {
        key,
        stored: Stored {
            request_time,
            response_time,
            status,
            reason,
            fields,
            vary,
        },
        body_len: 0,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(key: &str) -> Entry {
        Entry {
            key: key.to_string(),
            stored: Stored {
                request_time: SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000),
                response_time: SystemTime::UNIX_EPOCH + Duration::new(1_700_000_001, 5),
                status: 200,
                reason: "OK".into(),
                fields: vec![
                    ("ETag".into(), b"\"v1\"".to_vec()),
                    ("X-Bytes".into(), vec![0xff, b'a']),
                ],
                vary: vec![("accept".into(), Some("*/*".into())), ("x".into(), None)],
            },
            body_len: 0,
        }
    }

    fn temp_dir(name: &str) -> PathBuf {
        let mut id = [0u8; 8];
        getrandom::fill(&mut id).unwrap();
        let d = std::env::temp_dir().join(format!(
            "pollhttp-store-{name}-{}",
            id.iter().map(|b| format!("{b:02x}")).collect::<String>()
        ));
        fs::create_dir_all(&d).unwrap();
        d
    }

    fn put(store: &Store, key: &str, body: &[u8]) {
        let mut w = store.writer().unwrap();
        for piece in body.chunks(7) {
            assert!(w.write(piece).unwrap());
        }
        store.commit(entry(key), w).unwrap();
    }

    fn read_all(store: &Store, key: &str) -> Result<Option<(Entry, Vec<u8>)>, StoreError> {
        let Some((e, mut r)) = store.get(key)? else {
            return Ok(None);
        };
        let mut body = Vec::new();
        let mut pieces = 0;
        while let Some(p) = r.read_piece(5)? {
            assert!(p.len() <= 5);
            pieces += 1;
            assert!(pieces < 10_000);
            body.extend_from_slice(&p);
        }
        Ok(Some((e, body)))
    }

    #[test]
    fn metadata_round_trips_and_garbage_never_parses_or_panics() {
        let e = entry("http://a.test/x");
        let bytes = encode_meta(&e);
        assert_eq!(decode_meta(&bytes), Some(e));
        for cut in 0..bytes.len() {
            assert_eq!(decode_meta(&bytes[..cut]), None, "cut at {cut}");
        }
        let mut longer = bytes.clone();
        longer.push(0);
        assert_eq!(decode_meta(&longer), None);
        let mut huge = bytes;
        huge[0..4].copy_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(decode_meta(&huge), None);
    }

    #[test]
    fn both_stores_keep_and_hand_back_entries_in_pieces() {
        let dir = temp_dir("roundtrip");
        for store in [
            Store::memory(StoreLimits::default()),
            Store::disk(&dir, StoreLimits::default()).unwrap(),
        ] {
            let body: Vec<u8> = (0..1000u32).map(|i| (i % 251) as u8).collect();
            put(&store, "k1", &body);
            let (e, got) = read_all(&store, "k1").unwrap().unwrap();
            assert_eq!((e.body_len, got), (1000, body.clone()));
            assert_eq!(e.stored, entry("k1").stored);
            assert!(read_all(&store, "k2").unwrap().is_none());
            // Freshening keeps the body.
            let mut fresher = e.clone();
            fresher.stored.status = 203;
            store.update(&fresher).unwrap();
            let (e, got) = read_all(&store, "k1").unwrap().unwrap();
            assert_eq!((e.stored.status, got.len()), (203, 1000));
            store.remove("k1");
            assert!(read_all(&store, "k1").unwrap().is_none());
            // An empty body is an entry too.
            put(&store, "empty", b"");
            assert_eq!(read_all(&store, "empty").unwrap().unwrap().1, b"");
        }
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_body_over_the_entry_limit_is_refused_by_the_writer() {
        let dir = temp_dir("limit");
        let limits = StoreLimits {
            max_entry_bytes: 10,
            ..StoreLimits::default()
        };
        for store in [Store::memory(limits), Store::disk(&dir, limits).unwrap()] {
            let mut w = store.writer().unwrap();
            assert!(w.write(b"0123456789").unwrap());
            assert!(!w.write(b"x").unwrap());
            drop(w);
        }
        assert_eq!(
            fs::read_dir(dir.join("tmp")).unwrap().count(),
            0,
            "dropped writer cleaned up"
        );
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn least_recently_used_entries_go_first() {
        let dir = temp_dir("lru");
        let limits = StoreLimits {
            max_entries: 2,
            ..StoreLimits::default()
        };
        for store in [Store::memory(limits), Store::disk(&dir, limits).unwrap()] {
            put(&store, "a", b"1");
            // Distinct modification times on a coarse file system.
            std::thread::sleep(Duration::from_millis(20));
            put(&store, "b", b"2");
            std::thread::sleep(Duration::from_millis(20));
            assert!(read_all(&store, "a").unwrap().is_some()); // a is now newer than b
            std::thread::sleep(Duration::from_millis(20));
            put(&store, "c", b"3");
            assert!(
                read_all(&store, "b").unwrap().is_none(),
                "b was least recent"
            );
            assert!(read_all(&store, "a").unwrap().is_some());
            assert!(read_all(&store, "c").unwrap().is_some());
        }
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_torn_or_altered_entry_is_never_served_and_is_removed() {
        let dir = temp_dir("torn");
        let store = Store::disk(&dir, StoreLimits::default()).unwrap();
        let Store::Disk(disk) = &store else {
            unreachable!()
        };
        let body = vec![7u8; 300];
        put(&store, "k", &body);
        let path = disk.path_of("k");
        let whole = fs::read(&path).unwrap();
        // Every truncation, and a flipped byte in each region.
        let mut cases: Vec<Vec<u8>> = (0..whole.len())
            .step_by(13)
            .map(|n| whole[..n].to_vec())
            .collect();
        for at in [
            0,
            150,
            299,
            300,
            whole.len() - TRAILER - 1,
            whole.len() - 40,
            whole.len() - 1,
        ] {
            let mut bad = whole.clone();
            bad[at] ^= 1;
            cases.push(bad);
        }
        for (i, case) in cases.iter().enumerate() {
            fs::write(&path, case).unwrap();
            match read_all(&store, "k") {
                Err(StoreError::Corrupt(_)) => {}
                other => panic!(
                    "case {i}: {:?}",
                    other.map(|o| o.map(|(e, b)| (e.body_len, b.len())))
                ),
            }
            assert!(!path.exists(), "case {i}: removed");
        }
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn stray_temporary_files_are_removed_when_old() {
        let dir = temp_dir("stray");
        Store::disk(&dir, StoreLimits::default()).unwrap();
        let old = dir.join("tmp").join("left-by-a-killed-writer");
        fs::write(&old, b"partial").unwrap();
        File::options()
            .write(true)
            .open(&old)
            .unwrap()
            .set_modified(SystemTime::now() - 2 * STALE_TMP)
            .unwrap();
        let young = dir.join("tmp").join("being-written");
        fs::write(&young, b"partial").unwrap();
        Store::disk(&dir, StoreLimits::default()).unwrap();
        assert!(!old.exists() && young.exists());
        fs::remove_dir_all(&dir).unwrap();
    }
}
