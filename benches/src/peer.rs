//! Support for the side-by-side peer benchmark (`src/bin/peer.rs`, one client
//! run per process, and `src/bin/peer_bench.rs`, the driver): URL parsing,
//! per-process CPU time and memory from `/proc`, a constant-memory latency
//! histogram, and the one-line JSON record a client run prints.
//!
//! Linux only (everything is read from `/proc`).

use std::fs;
use std::time::Duration;

/// A parsed `http://` or `https://` URL (IP literal or name, explicit or
/// default port, origin-form path).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Url {
    /// `https`?
    pub tls: bool,
    /// Host without brackets.
    pub host: String,
    /// Port (explicit, or 80 / 443).
    pub port: u16,
    /// Path and query, starting with `/`.
    pub path: String,
}

impl Url {
    /// Parses `scheme://host[:port][/path]`.
    pub fn parse(s: &str) -> Result<Url, String> {
        let (tls, rest) = if let Some(r) = s.strip_prefix("https://") {
            (true, r)
        } else if let Some(r) = s.strip_prefix("http://") {
            (false, r)
        } else {
            return Err(format!("not an http(s) URL: {s}"));
        };
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/"),
        };
        let (host, port) = if let Some(r) = authority.strip_prefix('[') {
            let end = r.find(']').ok_or("unclosed [")?;
            let port = r[end + 1..].strip_prefix(':');
            (&r[..end], port)
        } else {
            match authority.rsplit_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (authority, None),
            }
        };
        let port = match port {
            Some(p) => p.parse().map_err(|_| format!("bad port in {s}"))?,
            None if tls => 443,
            None => 80,
        };
        if host.is_empty() {
            return Err(format!("no host in {s}"));
        }
        Ok(Url {
            tls,
            host: host.to_string(),
            port,
            path: path.to_string(),
        })
    }

    /// `host:port` as sent in the Host header (IPv6 bracketed).
    pub fn authority(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

/// CPU time (user + system) of one process from `/proc/<pid>/schedstat`
/// (nanosecond precision; the first field is the time the task ran on a
/// CPU). `pid` `None` means this process, summed over its live threads.
///
/// `/proc/<pid>/schedstat` covers the thread-group leader only; a
/// single-threaded process (every client here) is covered completely. Use
/// [`stat_cpu_ticks`] (whole thread group, clock-tick precision) to check.
pub fn schedstat_cpu(pid: Option<u32>) -> Option<Duration> {
    match pid {
        Some(pid) => read_schedstat(&format!("/proc/{pid}/schedstat")),
        None => {
            let mut total = Duration::ZERO;
            for entry in fs::read_dir("/proc/self/task").ok()? {
                let entry = entry.ok()?;
                total += read_schedstat(&format!("{}/schedstat", entry.path().display()))?;
            }
            Some(total)
        }
    }
}

fn read_schedstat(path: &str) -> Option<Duration> {
    let s = fs::read_to_string(path).ok()?;
    let ns: u64 = s.split_whitespace().next()?.parse().ok()?;
    Some(Duration::from_nanos(ns))
}

/// Fields of `/proc/<pid>/stat` after the `(comm)` field, 0-based from the
/// state field (field 3 in `proc(5)` numbering).
fn stat_fields(pid: u32) -> Option<Vec<String>> {
    let s = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = &s[s.rfind(')')? + 1..];
    Some(after.split_whitespace().map(str::to_string).collect())
}

/// The process state letter (`R`, `S`, `Z`, ...) of `pid`.
pub fn stat_state(pid: u32) -> Option<char> {
    stat_fields(pid)?.first()?.chars().next()
}

/// (utime, stime) of the whole thread group of `pid` in clock ticks
/// (`/proc/<pid>/stat` fields 14 and 15); readable for a zombie too.
pub fn stat_cpu_ticks(pid: u32) -> Option<(u64, u64)> {
    let f = stat_fields(pid)?;
    // proc(5) field 14 is index 11 here (field 3, state, is index 0).
    let utime: u64 = f.get(11)?.parse().ok()?;
    let stime: u64 = f.get(12)?.parse().ok()?;
    Some((utime, stime))
}

/// A `kB` line of `/proc/<pid or self>/status` (`VmHWM`, `VmRSS`, ...).
pub fn status_kib(pid: Option<u32>, key: &str) -> Option<u64> {
    let path = match pid {
        Some(p) => format!("/proc/{p}/status"),
        None => "/proc/self/status".to_string(),
    };
    let s = fs::read_to_string(path).ok()?;
    s.lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix(':'))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
}

/// A log-linear histogram of durations in nanoseconds: 32 sub-buckets per
/// power of two (≤ 3.2 % relative error), constant memory (about 16 KiB), so
/// recording every call of a 1 GiB download does not move the peak RSS.
#[derive(Debug, Clone)]
pub struct Histogram {
    counts: Vec<u64>,
    max: u64,
    total: u64,
}

const SUB_BITS: u32 = 5;
const SUB: u64 = 1 << SUB_BITS;

impl Default for Histogram {
    fn default() -> Self {
        Self::new()
    }
}

impl Histogram {
    /// Empty.
    pub fn new() -> Histogram {
        Histogram {
            counts: vec![0; (64 * SUB) as usize],
            max: 0,
            total: 0,
        }
    }

    fn index(ns: u64) -> usize {
        if ns < SUB {
            return ns as usize;
        }
        let top = 63 - ns.leading_zeros(); // ≥ SUB_BITS
        let shift = top - SUB_BITS;
        let sub = (ns >> shift) & (SUB - 1);
        ((u64::from(shift) + 1) * SUB + sub) as usize
    }

    /// Upper bound (ns) of bucket `i`.
    fn upper(i: usize) -> u64 {
        let i = i as u64;
        if i < SUB {
            return i;
        }
        let shift = i / SUB - 1;
        let sub = i % SUB;
        ((SUB + sub + 1) << shift) - 1
    }

    /// Records one duration.
    pub fn record(&mut self, d: Duration) {
        let ns = d.as_nanos().min(u128::from(u64::MAX)) as u64;
        self.counts[Self::index(ns)] += 1;
        self.max = self.max.max(ns);
        self.total += 1;
    }

    /// Number of recorded durations.
    pub fn count(&self) -> u64 {
        self.total
    }

    /// The largest recorded duration (exact).
    pub fn max(&self) -> Duration {
        Duration::from_nanos(self.max)
    }

    /// The `q`-quantile (0..=1), as the upper bound of its bucket (never
    /// above the exact maximum).
    pub fn quantile(&self, q: f64) -> Duration {
        if self.total == 0 {
            return Duration::ZERO;
        }
        let rank = ((q * self.total as f64).ceil() as u64).clamp(1, self.total);
        let mut seen = 0;
        for (i, c) in self.counts.iter().enumerate() {
            seen += c;
            if seen >= rank {
                return Duration::from_nanos(Self::upper(i).min(self.max));
            }
        }
        self.max()
    }
}

/// Median of `v` (mean of the two middle values for an even count); `None`
/// when empty. NaNs are dropped.
pub fn median(v: &[f64]) -> Option<f64> {
    let mut v: Vec<f64> = v.iter().copied().filter(|x| !x.is_nan()).collect();
    if v.is_empty() {
        return None;
    }
    v.sort_by(|a, b| a.total_cmp(b));
    let n = v.len();
    Some(if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_parse() {
        let u = Url::parse("https://127.0.0.1:8443/big.bin").unwrap();
        assert_eq!(
            (u.tls, u.host.as_str(), u.port, u.path.as_str()),
            (true, "127.0.0.1", 8443, "/big.bin")
        );
        let u = Url::parse("http://[::1]/").unwrap();
        assert_eq!((u.host.as_str(), u.port), ("::1", 80));
        assert_eq!(u.authority(), "[::1]:80");
        assert!(Url::parse("ftp://x").is_err());
    }

    #[test]
    fn histogram_buckets_are_monotone_and_tight() {
        let mut last = 0;
        for ns in [0u64, 1, 31, 32, 33, 63, 64, 100, 1000, 12_345, 1 << 40] {
            let i = Histogram::index(ns);
            assert!(i >= last);
            last = i;
            let up = Histogram::upper(i);
            assert!(up >= ns, "{ns} -> {i} -> {up}");
            assert!((up - ns) as f64 <= ns as f64 * 0.035 + 1.0, "{ns} {up}");
        }
        let mut h = Histogram::new();
        for us in 1..=100 {
            h.record(Duration::from_micros(us));
        }
        let p99 = h.quantile(0.99).as_secs_f64() * 1e6;
        assert!((96.0..=103.0).contains(&p99), "{p99}");
        assert_eq!(h.max(), Duration::from_micros(100));
    }

    #[test]
    fn median_even_odd() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), Some(2.5));
        assert_eq!(median(&[]), None);
    }
}
