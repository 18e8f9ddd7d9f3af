//! The receive rate limit (`BodySettings::max_recv_speed`, curl's
//! `CURLOPT_MAX_RECV_SPEED_LARGE`): a token bucket filled at `rate` bytes
//! per second that holds at most a tenth of a second's worth (at least
//! 16 KiB), so a request that read nothing for a while (paused, waiting for
//! its caller to take streamed pieces, or a slow server) gets one burst
//! back, not everything it could have read meanwhile. curl averages over
//! windows of up to three seconds; the bucket is stricter. Pure: time and
//! the bytes read come in as arguments.

use std::time::{Duration, Instant};

/// Fewest bytes worth a read: reading waits until the bucket holds this
/// much (or the whole burst, if smaller), not a few bytes per poll.
const PIECE: f64 = 16.0 * 1024.0;

/// The most a bucket of `rate` bytes per second holds.
fn burst(rate: u64) -> f64 {
    (rate / 10).max(16 * 1024) as f64
}

/// A request's bucket: its level at `at`, after the first `counted` bytes
/// read were taken out of it.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Bucket {
    level: f64,
    at: Instant,
    counted: u64,
}

impl Bucket {
    /// A full bucket at `now`, for a request that has read `read` bytes.
    pub(crate) fn new(rate: u64, read: u64, now: Instant) -> Bucket {
        Bucket {
            level: burst(rate),
            at: now,
            counted: read,
        }
    }

    /// How many bytes a request limited to `rate` bytes per second (> 0)
    /// may read at `now`, having read `read` bytes in all (those past the
    /// last call are taken out of the bucket, then it fills up to `now`,
    /// capped at the burst); or, when it must pause, the time it may read
    /// again.
    ///
    /// # Errors
    /// `Err(until)`: reading pauses until then.
    pub(crate) fn allowance(
        &mut self,
        rate: u64,
        read: u64,
        now: Instant,
    ) -> Result<usize, Instant> {
        let burst = burst(rate);
        let rate = rate as f64;
        let elapsed = now.saturating_duration_since(self.at).as_secs_f64();
        let spent = read.saturating_sub(self.counted) as f64;
        self.level = (self.level - spent + rate * elapsed).min(burst);
        self.at = self.at.max(now);
        self.counted = self.counted.max(read);
        let piece = burst.min(PIECE);
        if self.level >= piece {
            return Ok(self.level as usize);
        }
        let wait = (piece - self.level) / rate;
        Err(self.at + Duration::from_secs_f64(wait))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_then_the_rate() {
        let t0 = Instant::now();
        let ms = Duration::from_millis(1);
        // 1 MB/s: a burst of 100 000 bytes at once.
        let mut b = Bucket::new(1_000_000, 0, t0);
        assert_eq!(b.allowance(1_000_000, 0, t0), Ok(100_000));
        // The burst read: wait until 16 KiB more are due.
        assert_eq!(
            b.allowance(1_000_000, 100_000, t0),
            Err(t0 + Duration::from_secs_f64(16_384.0 / 1e6))
        );
        // 50 ms later the bucket holds 50 ms' worth.
        assert_eq!(b.allowance(1_000_000, 100_000, t0 + 50 * ms), Ok(50_000));
        // A slow rate still reads 16 KiB pieces, spaced out.
        let mut slow = Bucket::new(1_000, 0, t0);
        assert_eq!(slow.allowance(1_000, 0, t0), Ok(16_384));
        assert_eq!(
            slow.allowance(1_000, 16_384, t0),
            Err(t0 + Duration::from_secs_f64(16.384))
        );
    }

    #[test]
    fn a_long_pause_gives_back_one_burst_not_what_it_missed() {
        let t0 = Instant::now();
        let mut b = Bucket::new(1_000_000, 0, t0);
        assert_eq!(b.allowance(1_000_000, 0, t0), Ok(100_000));
        // A minute with nothing read: still one burst (was 60 MB when the
        // rate was averaged since the start).
        let later = t0 + Duration::from_secs(60);
        assert_eq!(b.allowance(1_000_000, 100_000, later), Ok(100_000));
        // And then the rate again.
        assert!(b.allowance(1_000_000, 200_000, later).is_err());
    }

    #[test]
    fn reading_at_the_rate_for_a_second_reads_a_seconds_worth_and_a_burst() {
        let t0 = Instant::now();
        let rate = 1_000_000;
        let mut b = Bucket::new(rate, 0, t0);
        let (mut read, mut now) = (0u64, t0);
        let end = t0 + Duration::from_secs(1);
        // Read whatever is allowed, whenever allowed, for a second.
        for _ in 0..10_000 {
            match b.allowance(rate, read, now) {
                Ok(n) => read += n as u64,
                Err(until) => now = until,
            }
            if now >= end {
                break;
            }
        }
        // 1 s × 1 MB/s + the 100 kB burst, give or take the last piece.
        assert!((1_080_000..=1_100_000).contains(&read), "{read}");
    }

    #[test]
    fn a_clock_that_steps_back_never_adds_bytes() {
        let t0 = Instant::now() + Duration::from_secs(10);
        let mut b = Bucket::new(1_000_000, 0, t0);
        assert_eq!(
            b.allowance(1_000_000, 100_000, t0),
            Err(t0 + Duration::from_secs_f64(16_384.0 / 1e6))
        );
        let earlier = t0 - Duration::from_secs(5);
        assert!(b.allowance(1_000_000, 100_000, earlier).is_err());
    }
}
