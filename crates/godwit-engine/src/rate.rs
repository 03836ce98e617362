//! `--bwlimit`: one byte budget per second shared by every transfer of a run.

use std::sync::Mutex;
use std::time::{Duration, Instant};

/// A token bucket of bytes, refilled at `rate` bytes a second, holding at most one second's
/// worth so a pause does not turn into a burst.
#[derive(Debug)]
pub struct RateLimit {
    rate: f64,
    state: Mutex<(Instant, f64)>,
}

impl RateLimit {
    pub fn new(bytes_per_second: u64) -> Self {
        RateLimit {
            rate: bytes_per_second.max(1) as f64,
            state: Mutex::new((Instant::now(), bytes_per_second as f64)),
        }
    }

    /// Waits until `n` bytes may be sent.
    pub fn take(&self, n: usize) {
        let wait = {
            let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
            let now = Instant::now();
            let refill = now.duration_since(s.0).as_secs_f64() * self.rate;
            s.1 = (s.1 + refill).min(self.rate);
            s.0 = now;
            s.1 -= n as f64;
            (s.1 < 0.0).then(|| Duration::from_secs_f64(-s.1 / self.rate))
        };
        if let Some(d) = wait {
            std::thread::sleep(d);
        }
    }
}

pub use godwit_spec::options::parse_rate;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bucket_holds_the_rate() {
        let limit = RateLimit::new(4 << 20);
        let start = Instant::now();
        // One second's worth is in the bucket at the start; the next 2 MiB wait about 0.5 s.
        for _ in 0..6 {
            limit.take(1 << 20);
        }
        let took = start.elapsed();
        assert!(took >= Duration::from_millis(400), "{took:?}");
    }
}
