//! Per-key rate limiting of ingestion (`POST /v1/events` and the Sensors intake share one
//! budget per key): a key that leaked out of an app cannot flood the log. A request over the
//! budget gets `429` with `Retry-After`, before its body is read. The limiter is governor's
//! GCRA, keyed by the key's id (never the key itself).

use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::{Quota, RateLimiter};

/// How many requests a key may make, on average and in a burst.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    /// Requests per second, sustained.
    pub per_second: NonZeroU32,
    /// Requests a quiet key may send at once.
    pub burst: NonZeroU32,
}

impl RateLimit {
    /// The default: 50 requests per second per key, bursts of 100. One request carries up to
    /// 1000 events, so a busy backend stays far below it; a leaked key cannot go far above.
    pub const DEFAULT: RateLimit = RateLimit {
        per_second: NonZeroU32::new(50).unwrap(),
        burst: NonZeroU32::new(100).unwrap(),
    };

    /// Reads `N/s` (burst `2N`) or `N/s,burst=B`, e.g. `50/s` or `10/s,burst=40`.
    pub fn parse(s: &str) -> Result<RateLimit, String> {
        let expected = || {
            format!("expected requests per second per key such as 50/s or 10/s,burst=40, got {s:?}")
        };
        let (rate, burst) = match s.split_once(',') {
            Some((r, b)) => (r.trim(), Some(b.trim())),
            None => (s.trim(), None),
        };
        let per_second = rate
            .strip_suffix("/s")
            .and_then(|n| n.trim().parse::<u32>().ok())
            .and_then(NonZeroU32::new)
            .ok_or_else(expected)?;
        let burst = match burst {
            None => per_second.saturating_mul(NonZeroU32::new(2).expect("2 is not zero")),
            Some(b) => b
                .strip_prefix("burst=")
                .and_then(|n| n.trim().parse::<u32>().ok())
                .and_then(NonZeroU32::new)
                .ok_or_else(expected)?,
        };
        Ok(RateLimit { per_second, burst })
    }
}

type Keyed =
    RateLimiter<String, governor::state::keyed::DefaultKeyedStateStore<String>, DefaultClock>;

/// The limiter shared by all clones of an ingestion state.
#[derive(Clone)]
pub(crate) struct Limiter {
    limit: RateLimit,
    inner: Arc<Keyed>,
}

impl Limiter {
    pub(crate) fn new(limit: RateLimit) -> Limiter {
        let quota = Quota::per_second(limit.per_second).allow_burst(limit.burst);
        Limiter {
            limit,
            inner: Arc::new(RateLimiter::hashmap(quota)),
        }
    }

    pub(crate) fn limit(&self) -> RateLimit {
        self.limit
    }

    /// `Ok` when `key_id` may make one more request now, else how long until it may.
    pub(crate) fn check(&self, key_id: &str) -> Result<(), Duration> {
        // The map holds one small entry per key id; keys are few (configured and stored ones),
        // so it needs no pruning.
        match self.inner.check_key(&key_id.to_owned()) {
            Ok(()) => Ok(()),
            Err(not_until) => Err(not_until.wait_time_from(DefaultClock::default().now())),
        }
    }
}

impl std::fmt::Debug for Limiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Limiter")
            .field("limit", &self.limit)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_parse_and_name_what_was_expected() {
        assert_eq!(
            RateLimit::parse("10/s").unwrap(),
            RateLimit {
                per_second: NonZeroU32::new(10).unwrap(),
                burst: NonZeroU32::new(20).unwrap()
            }
        );
        assert_eq!(RateLimit::parse(" 5/s , burst=7").unwrap().burst.get(), 7);
        for bad in ["10", "0/s", "x/s", "10/s,7", "10/s,burst=0", "-1/s"] {
            let e = RateLimit::parse(bad).unwrap_err();
            assert!(e.contains("requests per second per key"), "{bad}: {e}");
        }
    }

    #[test]
    fn each_key_has_its_own_budget() {
        let limiter = Limiter::new(RateLimit::parse("1/s,burst=2").unwrap());
        assert!(limiter.check("a").is_ok());
        assert!(limiter.check("a").is_ok());
        let wait = limiter.check("a").expect_err("the burst is spent");
        assert!(
            wait > Duration::ZERO && wait <= Duration::from_secs(1),
            "{wait:?}"
        );
        assert!(limiter.check("b").is_ok(), "another key is not affected");
    }
}
