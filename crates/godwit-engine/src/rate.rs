//! `--bwlimit`: one byte budget per second shared by every transfer of a run.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use godwit_codes::Code;

use crate::error::JobError;

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

/// Parses a rate such as `10M`, `512K`, `1.5G` or `800000` (bytes a second; K, M, G, T are
/// powers of 1024, an optional `B`, `/s` or `i` is accepted: `10MiB/s`).
pub fn parse_rate(text: &str) -> Result<u64, JobError> {
    let invalid = |reason: &str| {
        JobError::new(
            Code::INCORRECT_MIGRATION_CONFIG,
            &[("reason", &format!("--bwlimit {text}: {reason}"))],
        )
    };
    let t = text
        .trim()
        .trim_end_matches("/s")
        .trim_end_matches(['B', 'b'])
        .trim_end_matches('i');
    let (number, unit) = match t.find(|c: char| c.is_ascii_alphabetic()) {
        Some(i) => t.split_at(i),
        None => (t, ""),
    };
    let value: f64 = number.trim().parse().map_err(|_| invalid("not a number"))?;
    let scale = match unit.to_ascii_uppercase().as_str() {
        "" => 1u64,
        "K" => 1 << 10,
        "M" => 1 << 20,
        "G" => 1 << 30,
        "T" => 1 << 40,
        _ => return Err(invalid("the unit is one of K, M, G, T")),
    };
    let bytes = value * scale as f64;
    if !(bytes >= 1.0 && bytes.is_finite()) {
        return Err(invalid("it must be at least 1 byte a second"));
    }
    Ok(bytes as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates() {
        assert_eq!(parse_rate("800000").unwrap(), 800_000);
        assert_eq!(parse_rate("10M").unwrap(), 10 << 20);
        assert_eq!(parse_rate("10MiB/s").unwrap(), 10 << 20);
        assert_eq!(parse_rate("1.5G").unwrap(), 3 << 29);
        assert_eq!(parse_rate("512k").unwrap(), 512 << 10);
        for bad in ["", "x", "10Q", "0", "-5M"] {
            assert!(parse_rate(bad).is_err(), "{bad}");
        }
    }

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
