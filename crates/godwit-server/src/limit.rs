//! Rate limits: a token bucket for each token id, refilled at a steady rate, and one for each
//! client address counting its requests with a missing or bad token. Over the limit, a request
//! gets 429 with `Retry-After`.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

use godwit_codes::Code;

use crate::error::ApiError;

/// Buckets beyond this many are pruned of idle ones, so memory stays bounded.
const MAX_BUCKETS: usize = 10_000;

#[derive(Debug)]
pub struct Limiter {
    /// Requests a second, sustained.
    rate: f64,
    /// Requests at once, after a quiet spell.
    burst: f64,
    buckets: Mutex<HashMap<String, (f64, Instant)>>,
}

impl Limiter {
    pub fn new(rate: f64, burst: f64) -> Self {
        Limiter {
            rate: rate.max(0.001),
            burst: burst.max(1.0),
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// `GODWIT_RATE_LIMIT` requests a second per token (default 50), with a burst of twice that.
    pub fn from_env() -> Result<Self, godwit_spec::JobError> {
        let rate = godwit_spec::env::positive("GODWIT_RATE_LIMIT", 50.0)?;
        Ok(Limiter::new(rate, rate * 2.0))
    }

    /// The limit on failed sign-ins: `GODWIT_AUTH_FAILURE_LIMIT` requests with a missing or bad
    /// token a minute from one address (default 30), all of them at once after a quiet spell.
    pub fn failures_from_env() -> Result<Self, godwit_spec::JobError> {
        let per_minute = godwit_spec::env::positive("GODWIT_AUTH_FAILURE_LIMIT", 30.0)?;
        Ok(Limiter::failures(per_minute))
    }

    /// `per_minute` failures a minute, all of them at once after a quiet spell.
    pub fn failures(per_minute: f64) -> Self {
        Limiter::new(per_minute / 60.0, per_minute)
    }

    /// Takes one request from the bucket of token `id`, or says when to come back.
    pub fn check(&self, id: &str) -> Result<(), ApiError> {
        self.bucket(id, true).map_err(|wait| {
            too_many(
                wait,
                format!(
                    "This token is limited to {} requests a second; try again in {wait} s.",
                    self.rate
                ),
            )
        })
    }

    /// For the limit on failed sign-ins: 429 while client `id` has used up its failures.
    pub fn held_off(&self, id: &str) -> Result<(), ApiError> {
        self.bucket(id, false).map_err(|wait| {
            too_many(
                wait,
                format!(
                    "Too many requests from this address had a missing or bad token; \
                     try again in {wait} s."
                ),
            )
        })
    }

    /// Counts one failure of client `id`.
    pub fn take(&self, id: &str) {
        let _ = self.bucket(id, true);
    }

    /// Refills the bucket of `id` and, when `take`, takes one from it; Err: the seconds until
    /// one is there.
    fn bucket(&self, id: &str, take: bool) -> Result<(), u64> {
        let now = Instant::now();
        let mut buckets = self
            .buckets
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if buckets.len() > MAX_BUCKETS {
            let idle = (self.burst / self.rate).max(1.0);
            buckets.retain(|_, (_, last)| now.duration_since(*last).as_secs_f64() < idle);
        }
        let (tokens, last) = buckets.entry(id.to_string()).or_insert((self.burst, now));
        *tokens = (*tokens + now.duration_since(*last).as_secs_f64() * self.rate).min(self.burst);
        *last = now;
        if *tokens >= 1.0 {
            if take {
                *tokens -= 1.0;
            }
            return Ok(());
        }
        Err(((1.0 - *tokens) / self.rate).ceil().max(1.0) as u64)
    }
}

fn too_many(wait: u64, details: String) -> ApiError {
    let mut e = ApiError::new(Code::HTTP_TOO_MANY_REQUESTS, &[]).details(details);
    e.retry_after = Some(wait);
    e
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_then_429_with_retry_after() {
        let l = Limiter::new(1.0, 3.0);
        for _ in 0..3 {
            l.check("t").unwrap();
        }
        let e = l.check("t").unwrap_err();
        assert_eq!(e.code, Code::HTTP_TOO_MANY_REQUESTS);
        assert_eq!(e.retry_after, Some(1));
        // Another token has its own bucket.
        l.check("u").unwrap();
    }

    #[test]
    fn failures_hold_a_client_off_and_others_not() {
        let l = Limiter::failures(2.0);
        l.held_off("a").unwrap();
        l.take("a");
        l.held_off("a").unwrap();
        l.take("a");
        let e = l.held_off("a").unwrap_err();
        assert_eq!(e.code, Code::HTTP_TOO_MANY_REQUESTS);
        assert_eq!(e.retry_after, Some(30));
        l.held_off("b").unwrap();
    }
}
