//! The receive rate limit (`BodySettings::max_recv_speed`, curl's
//! `CURLOPT_MAX_RECV_SPEED_LARGE`): a token bucket of `rate` bytes per
//! second since the first read, with a burst of a tenth of a second (at
//! least 16 KiB). Pure: time and the bytes read come in as arguments.

use std::time::{Duration, Instant};

/// Fewest bytes worth a read: reading waits until the bucket holds this
/// much (or the whole burst, if smaller), not a few bytes per poll.
const PIECE: f64 = 16.0 * 1024.0;

/// How many bytes a request limited to `rate` bytes per second (> 0) may
/// read at `now`, having read `read` bytes since `start`; or, when it must
/// pause, the time it may read again.
///
/// # Errors
/// `Err(until)`: reading pauses until then.
pub(crate) fn allowance(
    rate: u64,
    start: Instant,
    read: u64,
    now: Instant,
) -> Result<usize, Instant> {
    let elapsed = now.saturating_duration_since(start).as_secs_f64();
    let burst = (rate / 10).max(16 * 1024) as f64;
    let allowed = rate as f64 * elapsed + burst - read as f64;
    let piece = burst.min(PIECE);
    if allowed >= piece {
        return Ok(allowed as usize);
    }
    let wait = (read as f64 + piece - burst) / rate as f64;
    Err(start + Duration::from_secs_f64(wait.max(0.0)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_then_the_rate() {
        let t0 = Instant::now();
        let s = Duration::from_secs(1);
        // 1 MB/s: a burst of 100 000 bytes at once.
        assert_eq!(allowance(1_000_000, t0, 0, t0), Ok(100_000));
        // The burst read: wait until 16 KiB more are due.
        assert_eq!(
            allowance(1_000_000, t0, 100_000, t0),
            Err(t0 + Duration::from_secs_f64(16_384.0 / 1e6))
        );
        // A second later the bucket holds a second's worth.
        assert_eq!(allowance(1_000_000, t0, 100_000, t0 + s), Ok(1_000_000));
        // A slow rate still reads 16 KiB pieces, spaced out.
        assert_eq!(allowance(1_000, t0, 0, t0), Ok(16_384));
        assert_eq!(
            allowance(1_000, t0, 16_384, t0),
            Err(t0 + Duration::from_secs_f64(16.384))
        );
    }
}
