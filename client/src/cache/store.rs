//! Where cached responses live: in memory ([`MemoryStore`], bounded) or on
//! disk ([`DiskStore`], bounded in bytes and entries, least recently used
//! first out), behind one interface ([`Store`]). Bodies go in and come out
//! in pieces, so a 1 GiB asset never sits in memory.
//!
//! **The disk format is crash-safe by construction.** An entry is two
//! files: its body, `bodies/<name>-<id>.body` (the bytes as they came), and
//! its metadata, `entries/<name>.meta` (the stored head, then a fixed
//! trailer: the lengths, the body's checksum, the body file's `id`, the
//! metadata's checksum, a magic number), where `<name>` is from the
//! SHA-256 of the key and `<id>` is random per body. Each is written under
//! `tmp/` and renamed into place only when complete, the body first, so a
//! process killed at any point leaves the old entry, the new one, a stray
//! temporary file, or a body no metadata names (stray files are removed by
//! a later open or eviction), never a torn entry under the key. Readers
//! check the metadata's checksum before using an entry and the body's
//! length and checksum as they read it; an entry that fails is removed and
//! reported, never served.
//!
//! **A 304 rewrites only the metadata** (RFC 9111 §4.3.4 freshening): a
//! new `.meta` naming the same body file, renamed over the old one, a few
//! hundred bytes whatever the body's size. A new body gets a new `<id>`;
//! the committer removes the body the old metadata named.
//!
//! **Checksums are XXH3-128**, not a cryptographic hash: they detect a
//! torn, truncated or damaged file (a power loss, a disk error, an edit by
//! hand), not an attacker (who could write a consistent entry anyway), and
//! at about 20 GB/s they cost a served body far less than reading it
//! (SHA-256 with the CPU's SHA extensions, which this store used before,
//! took a quarter of a warm launch's CPU). A request's own integrity check
//! (`BodySettings::expected_sha256`, RFC 9530 digests) is separate.
//!
//! **Sharing a directory needs no lock.** Every change is one `rename` or
//! one `unlink`, each atomic: two writers of one key both write whole
//! entries and the last rename wins; a reader that opened an entry keeps
//! reading that file (POSIX keeps an unlinked or replaced file's data for
//! open descriptors). `cacache` was evaluated: its content-addressed
//! layout with append-only index buckets is also safe to share, but it has
//! no bound in bytes or entries (eviction would be ours anyway), it keeps
//! an index to parse per lookup, and it brings a dozen crates; two files
//! per key with a trailer are smaller and as safe.
//!
//! No `fsync`: a killed process loses nothing the kernel has (the page
//! cache outlives it); after a power loss an entry can be short or zeroed,
//! and then its checksums fail and it is fetched again.

use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use sha2::{Digest, Sha256};
use twox_hash::XxHash3_128;

use super::policy::Stored;

/// The last bytes of every metadata file.
const MAGIC: &[u8; 8] = b"PHCACHE2";

/// Trailer: metadata length, body length (u64 LE each), body checksum,
/// body id, metadata checksum (16 bytes each), magic.
const TRAILER: usize = 8 + 8 + 16 + 16 + 16 + 8;

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
    /// An entry's bytes do not check out (a trailer, a checksum, a
    /// length): it was removed.
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
    /// body whose checksum fails at its end is an error (and the entry is
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
            BodyReader::Disk(d) => {
                let mut buf = Vec::new();
                Ok(d.read_into(&mut buf, max)?.map(|_| Bytes::from(buf)))
            }
        }
    }

    /// Append at most `max` more bytes of the body to `out`, read straight
    /// into its spare room (no zeroed buffer, no second copy): how many
    /// (`None` at the end). Errors as [`read_piece`](Self::read_piece);
    /// on an error `out` may hold bytes of the failed piece.
    pub(crate) fn read_into(
        &mut self,
        out: &mut Vec<u8>,
        max: usize,
    ) -> Result<Option<usize>, StoreError> {
        match self {
            BodyReader::Memory { body } => {
                if body.is_empty() {
                    return Ok(None);
                }
                let piece = body.split_to(max.max(1).min(body.len()));
                out.extend_from_slice(&piece);
                Ok(Some(piece.len()))
            }
            BodyReader::Disk(d) => d.read_into(out, max),
        }
    }
}

/// A disk entry's body being read.
pub(crate) struct DiskBody {
    file: File,
    /// The body file and the metadata naming it (both removed when the
    /// body fails its checks).
    paths: [PathBuf; 2],
    left: u64,
    hasher: Box<XxHash3_128>,
    expected: u128,
}

impl DiskBody {
    fn corrupt(&self, why: &'static str) -> StoreError {
        for p in &self.paths {
            let _ = fs::remove_file(p);
        }
        StoreError::Corrupt(why)
    }

    fn read_into(&mut self, out: &mut Vec<u8>, max: usize) -> Result<Option<usize>, StoreError> {
        if self.left == 0 {
            return Ok(None);
        }
        let n = (max.max(1) as u64).min(self.left) as usize;
        let start = out.len();
        out.reserve(n);
        while out.len() - start < n {
            let want = (n - (out.len() - start)) as u64;
            match (&mut self.file).take(want).read_to_end(out) {
                Ok(0) => return Err(self.corrupt("body shorter than its metadata says")),
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(StoreError::Io(e)),
            }
        }
        self.hasher.write(&out[start..]);
        self.left -= n as u64;
        if self.left == 0 {
            if self.hasher.finish_128() != self.expected {
                return Err(self.corrupt("body checksum mismatch"));
            }
            // A longer file is not this entry's body.
            let mut probe = [0u8; 1];
            if matches!(self.file.read(&mut probe), Ok(1)) {
                return Err(self.corrupt("body longer than its metadata says"));
            }
        }
        Ok(Some(n))
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

/// A disk entry's body being written under `tmp/<id>`.
pub(crate) struct DiskWriter {
    file: File,
    id: [u8; 16],
    tmp: PathBuf,
    len: u64,
    limit: u64,
    hasher: Box<XxHash3_128>,
}

impl DiskWriter {
    fn write(&mut self, data: &[u8]) -> io::Result<bool> {
        if self.len + data.len() as u64 > self.limit {
            return Ok(false);
        }
        self.file.write_all(data)?;
        self.hasher.write(data);
        self.len += data.len() as u64;
        Ok(true)
    }
}

impl Drop for DiskWriter {
    fn drop(&mut self) {
        // Renamed away when committed; otherwise a partial body goes.
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
    /// Bytes and entries this process believes the directory holds: a
    /// hint for when to scan and evict (other processes write too, and a
    /// replaced entry counts twice until the next scan).
    approx: Mutex<(u64, usize)>,
}

/// A temporary file (or a body no metadata names) older than this was left
/// by a killed writer.
const STALE_TMP: Duration = Duration::from_secs(3600);

/// A metadata file's trailer, parsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Trailer {
    meta_len: u64,
    body_len: u64,
    body_sum: u128,
    body_id: [u8; 16],
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn random_id() -> io::Result<[u8; 16]> {
    let mut id = [0u8; 16];
    getrandom::fill(&mut id).map_err(|e| io::Error::other(e.to_string()))?;
    Ok(id)
}

impl DiskStore {
    fn open(dir: &Path, limits: StoreLimits) -> io::Result<DiskStore> {
        fs::create_dir_all(dir.join("entries"))?;
        fs::create_dir_all(dir.join("bodies"))?;
        fs::create_dir_all(dir.join("tmp"))?;
        let now = SystemTime::now();
        for e in fs::read_dir(dir.join("tmp"))?.flatten() {
            if is_old(&e, now) {
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

    /// `<name>`: the first 128 bits of the key's SHA-256, in hex.
    fn name_of(key: &str) -> String {
        hex(&Sha256::digest(key.as_bytes())[..16])
    }

    fn meta_path(&self, name: &str) -> PathBuf {
        self.dir.join("entries").join(format!("{name}.meta"))
    }

    fn body_path(&self, name: &str, id: &[u8; 16]) -> PathBuf {
        self.dir
            .join("bodies")
            .join(format!("{name}-{}.body", hex(id)))
    }

    fn get(&self, key: &str) -> Result<Option<(Entry, BodyReader)>, StoreError> {
        let name = Self::name_of(key);
        let meta_path = self.meta_path(&name);
        let (entry, trailer) = match read_meta(&meta_path, key) {
            Ok(Some(x)) => x,
            Ok(None) => return Ok(None),
            Err(e) => {
                if matches!(e, StoreError::Corrupt(_)) {
                    let _ = fs::remove_file(&meta_path);
                }
                return Err(e);
            }
        };
        let body_path = self.body_path(&name, &trailer.body_id);
        let file = match File::open(&body_path) {
            Ok(f) => f,
            // Its body was removed (by hand, or by an eviction in another
            // process): the entry is gone.
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                let _ = fs::remove_file(&meta_path);
                return Ok(None);
            }
            Err(e) => return Err(e.into()),
        };
        // Used now: least recently used goes first.
        if let Ok(m) = File::options().write(true).open(&meta_path) {
            let _ = m.set_modified(SystemTime::now());
        }
        let body = DiskBody {
            file,
            paths: [body_path, meta_path],
            left: entry.body_len,
            hasher: Box::new(XxHash3_128::new()),
            expected: trailer.body_sum,
        };
        Ok(Some((entry, BodyReader::Disk(body))))
    }

    fn writer(&self) -> io::Result<DiskWriter> {
        let id = random_id()?;
        let tmp = self.dir.join("tmp").join(hex(&id));
        let file = OpenOptions::new().write(true).create_new(true).open(&tmp)?;
        Ok(DiskWriter {
            file,
            id,
            tmp,
            len: 0,
            limit: self.limits.max_entry_bytes,
            hasher: Box::new(XxHash3_128::new()),
        })
    }

    /// Write `entry`'s metadata naming the body `trailer` describes, and
    /// rename it over the key's metadata.
    fn put_meta(&self, entry: &Entry, trailer: Trailer) -> io::Result<()> {
        let name = Self::name_of(&entry.key);
        let meta = encode_meta(entry);
        let trailer = Trailer {
            meta_len: meta.len() as u64,
            ..trailer
        };
        let mut bytes = meta;
        bytes.extend_from_slice(&encode_trailer(&bytes, &trailer));
        let tmp = self
            .dir
            .join("tmp")
            .join(format!("{}.meta", hex(&random_id()?)));
        let written = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&tmp)
            .and_then(|mut f| f.write_all(&bytes));
        if let Err(e) = written {
            let _ = fs::remove_file(&tmp);
            return Err(e);
        }
        if let Err(e) = fs::rename(&tmp, self.meta_path(&name)) {
            let _ = fs::remove_file(&tmp);
            return Err(e);
        }
        Ok(())
    }

    fn commit(&self, mut entry: Entry, mut w: DiskWriter) -> io::Result<()> {
        entry.body_len = w.len;
        w.file.flush()?;
        let name = Self::name_of(&entry.key);
        let body_path = self.body_path(&name, &w.id);
        fs::rename(&w.tmp, &body_path)?;
        let trailer = Trailer {
            meta_len: 0,
            body_len: w.len,
            body_sum: w.hasher.finish_128(),
            body_id: w.id,
        };
        // What the key had before: its body goes once the new one is in.
        let before = read_trailer(&self.meta_path(&name)).ok().flatten();
        if let Err(e) = self.put_meta(&entry, trailer) {
            let _ = fs::remove_file(&body_path);
            return Err(e);
        }
        // The body the old metadata named is no one's now.
        if let Some(old) = before.filter(|old| old.body_id != w.id) {
            let _ = fs::remove_file(self.body_path(&name, &old.body_id));
        }
        let over = {
            let mut approx = lock(&self.approx);
            approx.0 += w.len;
            approx.1 += 1;
            approx.0 > self.limits.max_bytes || approx.1 > self.limits.max_entries
        };
        if over {
            self.evict()?;
        }
        Ok(())
    }

    fn update(&self, entry: &Entry) -> Result<(), StoreError> {
        // New metadata naming the same body file: the body is not copied.
        let name = Self::name_of(&entry.key);
        let Some((old, trailer)) = read_meta(&self.meta_path(&name), &entry.key)? else {
            return Ok(());
        };
        let new = Entry {
            stored: entry.stored.clone(),
            ..old
        };
        self.put_meta(&new, trailer)?;
        Ok(())
    }

    fn remove(&self, key: &str) {
        let name = Self::name_of(key);
        let path = self.meta_path(&name);
        if let Ok(Some(t)) = read_trailer(&path) {
            let _ = fs::remove_file(self.body_path(&name, &t.body_id));
        }
        let _ = fs::remove_file(path);
    }

    /// Remove the least recently used entries until the directory is
    /// within the limits, and bodies no metadata names (left by a killed
    /// writer) once they are old.
    fn evict(&self) -> io::Result<()> {
        let now = SystemTime::now();
        // Bodies by name: (id, length, old).
        let mut bodies: HashMap<String, Vec<([u8; 16], u64, bool)>> = HashMap::new();
        for e in fs::read_dir(self.dir.join("bodies"))?.flatten() {
            let file = e.file_name();
            let parsed = file
                .to_str()
                .and_then(|f| f.strip_suffix(".body"))
                .and_then(|f| f.split_once('-'))
                .and_then(|(name, id)| Some((name.to_string(), parse_id(id)?)));
            let Some((name, id)) = parsed else {
                let _ = fs::remove_file(e.path());
                continue;
            };
            let len = e.metadata().map(|m| m.len()).unwrap_or(0);
            bodies
                .entry(name)
                .or_default()
                .push((id, len, is_old(&e, now)));
        }
        // Metadata: (name, path, length, last use).
        let mut metas = Vec::new();
        for e in fs::read_dir(self.dir.join("entries"))?.flatten() {
            let Some(name) = e
                .file_name()
                .to_str()
                .and_then(|f| f.strip_suffix(".meta"))
                .map(str::to_string)
            else {
                let _ = fs::remove_file(e.path());
                continue;
            };
            if let Ok(m) = e.metadata() {
                let used = m.modified().unwrap_or(SystemTime::UNIX_EPOCH);
                metas.push((name, e.path(), m.len(), used));
            }
        }
        // Bodies no metadata names: old ones go (a young one may be a
        // writer's between its two renames).
        let with_meta: std::collections::HashSet<&str> =
            metas.iter().map(|(n, ..)| n.as_str()).collect();
        for (name, list) in &mut bodies {
            let named = if with_meta.contains(name.as_str()) {
                if list.len() == 1 {
                    continue;
                }
                read_trailer(&self.meta_path(name))
                    .ok()
                    .flatten()
                    .map(|t| t.body_id)
            } else {
                None
            };
            list.retain(|(id, _, old)| {
                let orphan = Some(*id) != named && *old;
                if orphan {
                    let _ = fs::remove_file(self.body_path(name, id));
                }
                !orphan
            });
        }
        let body_bytes = |name: &str| -> u64 {
            bodies
                .get(name)
                .map_or(0, |l| l.iter().map(|(_, len, _)| len).sum())
        };
        let mut total: u64 = metas
            .iter()
            .map(|(name, _, len, _)| len + body_bytes(name))
            .sum();
        let mut count = metas.len();
        if total > self.limits.max_bytes || count > self.limits.max_entries {
            metas.sort_by_key(|(.., used)| *used);
            for (name, path, len, _) in &metas {
                if total <= self.limits.max_bytes && count <= self.limits.max_entries {
                    break;
                }
                if fs::remove_file(path).is_ok() {
                    for (id, _, _) in bodies.get(name).into_iter().flatten() {
                        let _ = fs::remove_file(self.body_path(name, id));
                    }
                    total = total.saturating_sub(len + body_bytes(name));
                    count -= 1;
                }
            }
        }
        *lock(&self.approx) = (total, count);
        Ok(())
    }
}

fn is_old(e: &fs::DirEntry, now: SystemTime) -> bool {
    e.metadata()
        .and_then(|m| m.modified())
        .is_ok_and(|t| now.duration_since(t).unwrap_or_default() > STALE_TMP)
}

fn parse_id(hex: &str) -> Option<[u8; 16]> {
    if hex.len() != 32 || !hex.is_ascii() {
        return None;
    }
    let mut id = [0u8; 16];
    for (i, b) in id.iter_mut().enumerate() {
        *b = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).ok()?;
    }
    Some(id)
}

/// The metadata checksum: over the metadata and the trailer's fields that
/// name and describe the body.
fn meta_sum(meta: &[u8], t: &Trailer) -> u128 {
    let mut h = XxHash3_128::new();
    h.write(meta);
    h.write(&t.body_len.to_le_bytes());
    h.write(&t.body_sum.to_le_bytes());
    h.write(&t.body_id);
    h.finish_128()
}

fn encode_trailer(meta: &[u8], t: &Trailer) -> Vec<u8> {
    let mut out = Vec::with_capacity(TRAILER);
    out.extend_from_slice(&t.meta_len.to_le_bytes());
    out.extend_from_slice(&t.body_len.to_le_bytes());
    out.extend_from_slice(&t.body_sum.to_le_bytes());
    out.extend_from_slice(&t.body_id);
    out.extend_from_slice(&meta_sum(meta, t).to_le_bytes());
    out.extend_from_slice(MAGIC);
    out
}

/// Split a metadata file's bytes into the metadata and its trailer,
/// checked (lengths, magic, checksum).
fn parse_meta_file(bytes: &[u8]) -> Result<(&[u8], Trailer), StoreError> {
    if bytes.len() < TRAILER {
        return Err(StoreError::Corrupt("shorter than a trailer"));
    }
    let (meta, t) = bytes.split_at(bytes.len() - TRAILER);
    if &t[TRAILER - 8..] != MAGIC {
        return Err(StoreError::Corrupt("no magic"));
    }
    let u64_at = |at: usize| u64::from_le_bytes(t[at..at + 8].try_into().unwrap_or_default());
    let u128_at = |at: usize| u128::from_le_bytes(t[at..at + 16].try_into().unwrap_or_default());
    let mut body_id = [0u8; 16];
    body_id.copy_from_slice(&t[32..48]);
    let trailer = Trailer {
        meta_len: u64_at(0),
        body_len: u64_at(8),
        body_sum: u128_at(16),
        body_id,
    };
    if trailer.meta_len != meta.len() as u64 {
        return Err(StoreError::Corrupt("lengths do not add up"));
    }
    if meta_sum(meta, &trailer) != u128_at(48) {
        return Err(StoreError::Corrupt("metadata checksum mismatch"));
    }
    Ok((meta, trailer))
}

/// A metadata file's bytes (`None`: there is none), at most `MAX_META`
/// and a trailer.
fn read_meta_file(path: &Path) -> Result<Option<Vec<u8>>, StoreError> {
    let file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    let mut bytes = Vec::new();
    file.take(MAX_META + TRAILER as u64 + 1)
        .read_to_end(&mut bytes)?;
    if bytes.len() as u64 > MAX_META + TRAILER as u64 {
        return Err(StoreError::Corrupt("metadata too long"));
    }
    Ok(Some(bytes))
}

/// Read and check the metadata file at `path` for `key`.
fn read_meta(path: &Path, key: &str) -> Result<Option<(Entry, Trailer)>, StoreError> {
    let Some(bytes) = read_meta_file(path)? else {
        return Ok(None);
    };
    let (meta, trailer) = parse_meta_file(&bytes)?;
    let mut entry = decode_meta(meta).ok_or(StoreError::Corrupt("metadata does not parse"))?;
    if entry.key != key {
        // Another key with the same file name (a 128-bit prefix collision).
        return Err(StoreError::Corrupt("another key"));
    }
    entry.body_len = trailer.body_len;
    Ok(Some((entry, trailer)))
}

/// The checked trailer of the metadata file at `path`, if there is one.
fn read_trailer(path: &Path) -> Result<Option<Trailer>, StoreError> {
    let Some(bytes) = read_meta_file(path)? else {
        return Ok(None);
    };
    Ok(Some(parse_meta_file(&bytes)?.1))
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

    /// The metadata file and the body file of `key`.
    fn files_of(disk: &DiskStore, key: &str) -> (PathBuf, PathBuf) {
        let name = DiskStore::name_of(key);
        let meta = disk.meta_path(&name);
        let t = read_trailer(&meta).unwrap().unwrap();
        (meta.clone(), disk.body_path(&name, &t.body_id))
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
        let (meta_path, _) = files_of(disk, "k");
        let meta = fs::read(&meta_path).unwrap();
        // Every truncation of each file, a byte more, and a flipped byte in
        // each region (body; metadata, each trailer field, magic).
        let mut cases: Vec<(usize, Vec<u8>)> = Vec::new();
        for (which, whole) in [(0, &meta), (1, &body)] {
            cases.extend(
                (0..whole.len())
                    .step_by(13)
                    .map(|n| (which, whole[..n].to_vec())),
            );
            let mut longer = whole.clone();
            longer.push(0);
            cases.push((which, longer));
        }
        for at in [0, 150, 299] {
            let mut bad = body.clone();
            bad[at] ^= 1;
            cases.push((1, bad));
        }
        let t = meta.len() - TRAILER;
        for at in [0, t - 1, t, t + 8, t + 16, t + 32, t + 48, meta.len() - 1] {
            let mut bad = meta.clone();
            bad[at] ^= 1;
            cases.push((0, bad));
        }
        for (i, (which, case)) in cases.iter().enumerate() {
            put(&store, "k", &body);
            let (meta_path, body_path) = files_of(disk, "k");
            let path = if *which == 0 { &meta_path } else { &body_path };
            fs::write(path, case).unwrap();
            match read_all(&store, "k") {
                Err(StoreError::Corrupt(_)) => {}
                other => panic!(
                    "case {i}: {:?}",
                    other.map(|o| o.map(|(e, b)| (e.body_len, b.len())))
                ),
            }
            assert!(!meta_path.exists(), "case {i}: removed");
            assert!(read_all(&store, "k").unwrap().is_none(), "case {i}: a miss");
        }
        // A body deleted by hand: the entry is a miss, its metadata goes.
        put(&store, "k", &body);
        let (meta_path, body_path) = files_of(disk, "k");
        fs::remove_file(&body_path).unwrap();
        assert!(read_all(&store, "k").unwrap().is_none());
        assert!(!meta_path.exists());
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_freshened_entry_keeps_its_body_file_and_a_new_body_replaces_the_old() {
        let dir = temp_dir("freshen");
        let store = Store::disk(&dir, StoreLimits::default()).unwrap();
        let Store::Disk(disk) = &store else {
            unreachable!()
        };
        put(&store, "k", b"first body");
        let (_, body_path) = files_of(disk, "k");
        let (mut e, _) = read_all(&store, "k").unwrap().unwrap();
        e.stored.status = 203;
        store.update(&e).unwrap();
        assert_eq!(
            files_of(disk, "k").1,
            body_path,
            "the body is not rewritten"
        );
        let (e, body) = read_all(&store, "k").unwrap().unwrap();
        assert_eq!((e.stored.status, &body[..]), (203, &b"first body"[..]));
        // A new body: a new file, and the old one goes.
        put(&store, "k", b"second");
        let (_, second) = files_of(disk, "k");
        assert!(second != body_path && !body_path.exists());
        assert_eq!(fs::read_dir(dir.join("bodies")).unwrap().count(), 1);
        // Removal takes both files.
        store.remove("k");
        assert_eq!(fs::read_dir(dir.join("bodies")).unwrap().count(), 0);
        assert_eq!(fs::read_dir(dir.join("entries")).unwrap().count(), 0);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_body_no_metadata_names_is_removed_when_old() {
        let dir = temp_dir("orphan");
        let store = Store::disk(&dir, StoreLimits::default()).unwrap();
        put(&store, "k", b"kept");
        let name = DiskStore::name_of("k");
        let stray = |n: &str, id: u8| {
            dir.join("bodies")
                .join(format!("{n}-{}.body", hex(&[id; 16])))
        };
        // A writer killed between its two renames (no metadata, or metadata
        // naming another body), old and young.
        let (old_a, old_b) = (stray(&"ab".repeat(16), 1), stray(&name, 2));
        let (young_a, young_b) = (stray(&"cd".repeat(16), 3), stray(&name, 4));
        for p in [&old_a, &old_b, &young_a, &young_b] {
            fs::write(p, b"partial").unwrap();
        }
        for p in [&old_a, &old_b] {
            File::options()
                .write(true)
                .open(p)
                .unwrap()
                .set_modified(SystemTime::now() - 2 * STALE_TMP)
                .unwrap();
        }
        drop(store);
        let store = Store::disk(&dir, StoreLimits::default()).unwrap();
        assert!(!old_a.exists() && !old_b.exists());
        assert!(young_a.exists() && young_b.exists());
        assert_eq!(read_all(&store, "k").unwrap().unwrap().1, b"kept");
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
