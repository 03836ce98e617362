//! `--bwlimit`: one byte budget shared by every transfer of a run, at a rate or by a timetable.
//!
//! A token bucket of bytes that starts empty and holds at most a twentieth of a second's worth,
//! so neither the start of a run nor a pause turns into a burst. Transfers take their bytes in
//! steps of that size (see [`RateLimit::step`]), so over any window of a second or more a run
//! moves what the limit allows, within a step.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use godwit_spec::Bandwidth;

/// How far ahead a bucket may fill: a twentieth of a second.
const BURST: f64 = 0.05;
/// The smallest step, so that a very low limit does not mean a system call a byte.
const MIN_STEP: usize = 4096;

/// The environment variable that sets the local time a run's timetable starts from
/// (`Mon-07:59:50`, or `07:59:50` for today), after which time passes as usual: for trying a
/// timetable out, and for tests, without waiting for the hour.
pub const CLOCK_VAR: &str = "GODWIT_TIMETABLE_CLOCK";

#[derive(Debug)]
pub struct RateLimit {
    bandwidth: Bandwidth,
    clock: Clock,
    state: Mutex<Bucket>,
}

#[derive(Debug)]
struct Bucket {
    at: Instant,
    tokens: f64,
    /// The rate in force (bytes a second; None: no limit) and when it was last looked up.
    rate: Option<f64>,
    looked_up: Option<Instant>,
}

/// The local time of week the timetable is read at.
#[derive(Debug, Clone, Copy)]
struct Clock {
    started: Instant,
    /// Seconds since Monday 00:00 local time when the run started.
    week_second: u32,
}

const WEEK: u32 = 7 * 86_400;

impl Clock {
    fn new() -> Clock {
        let from_env = std::env::var(CLOCK_VAR).ok().and_then(|t| parse_clock(&t));
        let week_second = from_env.unwrap_or_else(|| {
            let now = jiff::Zoned::now();
            let day = u32::from(now.weekday().to_monday_zero_offset().unsigned_abs());
            let t = now.time();
            day * 86_400
                + u32::from(t.hour().unsigned_abs()) * 3600
                + u32::from(t.minute().unsigned_abs()) * 60
                + u32::from(t.second().unsigned_abs())
        });
        Clock {
            started: Instant::now(),
            week_second,
        }
    }

    /// (weekday, minute of the day) now.
    fn now(&self) -> (u8, u16) {
        let elapsed =
            u32::try_from(self.started.elapsed().as_secs() % u64::from(WEEK)).unwrap_or(0);
        let s = (self.week_second + elapsed) % WEEK;
        ((s / 86_400) as u8, ((s % 86_400) / 60) as u16)
    }
}

/// `Mon-07:59:50` or `07:59:50` (today): seconds since Monday 00:00.
fn parse_clock(text: &str) -> Option<u32> {
    let (day, time) = match text.split_once('-') {
        Some((d, t)) => {
            let d = d.to_ascii_lowercase();
            let days = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];
            (days.iter().position(|n| d.starts_with(n))? as u32, t)
        }
        None => {
            let today = jiff::Zoned::now().weekday().to_monday_zero_offset();
            (u32::from(today.unsigned_abs()), text)
        }
    };
    let mut parts = time.split(':').map(|p| p.parse::<u32>().ok());
    let (h, m, s) = (
        parts.next()??,
        parts.next()??,
        parts.next().unwrap_or(Some(0))?,
    );
    (h < 24 && m < 60 && s < 60).then_some(day * 86_400 + h * 3600 + m * 60 + s)
}

impl RateLimit {
    pub fn new(bandwidth: Bandwidth) -> Self {
        RateLimit {
            bandwidth,
            clock: Clock::new(),
            state: Mutex::new(Bucket {
                at: Instant::now(),
                tokens: 0.0,
                rate: None,
                looked_up: None,
            }),
        }
    }

    /// How many bytes a transfer should take at once: a twentieth of a second's worth at the
    /// rate in force (a timetable's highest), at least 4 KiB.
    pub fn step(&self) -> usize {
        let top = match &self.bandwidth {
            Bandwidth::Rate(r) => Some(*r),
            Bandwidth::Timetable(slots) => slots.iter().filter_map(|s| s.rate).max(),
        };
        top.map_or(usize::MAX, |r| {
            usize::try_from((r as f64 * BURST) as u64)
                .unwrap_or(usize::MAX)
                .max(MIN_STEP)
        })
    }

    /// Waits until `n` bytes may be sent.
    pub fn take(&self, n: usize) {
        let wait = {
            let mut b = self.state.lock().unwrap_or_else(|p| p.into_inner());
            let now = Instant::now();
            // A timetable is read again every second: a boundary is met within a second.
            if b.looked_up
                .is_none_or(|t| now.duration_since(t) >= Duration::from_secs(1))
            {
                let (day, minute) = self.clock.now();
                let rate = self.bandwidth.rate_at(day, minute).map(|r| r.max(1) as f64);
                if rate != b.rate {
                    tracing::info!(
                        rate = rate.map_or("off".to_string(), |r| format!("{r:.0} B/s")),
                        "bandwidth limit changes"
                    );
                    // A new rate starts from an empty bucket: no burst from the old one.
                    b.tokens = 0.0;
                    b.at = now;
                }
                b.rate = rate;
                b.looked_up = Some(now);
            }
            let Some(rate) = b.rate else {
                return;
            };
            let refill = now.duration_since(b.at).as_secs_f64() * rate;
            b.tokens = (b.tokens + refill).min(rate * BURST);
            b.at = now;
            b.tokens -= n as f64;
            (b.tokens < 0.0).then(|| Duration::from_secs_f64(-b.tokens / rate))
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
    fn the_bucket_holds_the_rate_from_the_first_byte() {
        let limit = RateLimit::new(Bandwidth::Rate(4 << 20));
        assert_eq!(limit.step(), (4 << 20) / 20);
        let start = Instant::now();
        // The bucket starts empty: 2 MiB at 4 MiB/s take about half a second.
        for _ in 0..(2 << 20) / limit.step() {
            limit.take(limit.step());
        }
        let took = start.elapsed();
        assert!(took >= Duration::from_millis(450), "{took:?}");
    }

    #[test]
    fn a_clock_is_read_from_its_text() {
        assert_eq!(parse_clock("Mon-00:00:00"), Some(0));
        assert_eq!(
            parse_clock("tue-07:59:50"),
            Some(86_400 + 7 * 3600 + 59 * 60 + 50)
        );
        assert_eq!(
            parse_clock("Sun-23:59"),
            Some(6 * 86_400 + 23 * 3600 + 59 * 60)
        );
        assert!(parse_clock("07:59:50").is_some());
        assert_eq!(parse_clock("Mon-24:00"), None);
        assert_eq!(parse_clock("nope"), None);
    }
}
