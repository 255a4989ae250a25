//! Keyed token buckets: per key, at most `capacity` operations in a burst,
//! one more every `interval` after that.
//!
//! Each bucket is kept as its *theoretical arrival time* (the GCRA form of
//! a token bucket): the instant at which it will be full again. Taking `n`
//! tokens moves it `n × interval` later; a request is refused when that
//! would put it more than `capacity × interval` ahead of now. This is the
//! same decision as counting tokens, in exact integer time.
//!
//! Invariants:
//! - memory is bounded: at most `max_keys` buckets are kept;
//! - a bucket whose arrival time has passed is full, i.e. says nothing a
//!   new one would not, so dropping it never changes a decision. Such idle
//!   buckets go first when room is needed, and on [`RateLimiter::prune`];
//! - if every bucket is busy when a new key needs room, the fullest eighth
//!   goes (those keys lose the least by starting over full);
//! - a refused request takes nothing; a clock reading earlier than a
//!   previous one refills nothing.
//!
//! The clock is an argument (`*_at`), so tests drive time themselves; the
//! plain methods read [`Instant::now`].
#![deny(missing_docs)]
#![forbid(unsafe_code)]

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// Longest refill interval; keeps instant arithmetic far from overflow.
const MAX_INTERVAL: Duration = Duration::from_secs(365 * 24 * 3600);

/// How fast a key may act: a burst of `capacity`, then one token per
/// `interval`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    capacity: u32,
    interval: Duration,
}

impl Rate {
    /// A burst of `capacity` (at least 1), refilled by one token every
    /// `interval` (between 1 ns and a year).
    pub fn new(capacity: u32, interval: Duration) -> Self {
        Self {
            capacity: capacity.max(1),
            interval: interval.clamp(Duration::from_nanos(1), MAX_INTERVAL),
        }
    }

    /// `n` per second, in bursts of up to `n`.
    pub fn per_second(n: u32) -> Self {
        Self::new(n, Duration::from_secs(1) / n.max(1))
    }

    /// `n` per hour, in bursts of up to `n`.
    pub fn per_hour(n: u32) -> Self {
        Self::new(n, Duration::from_secs(3600) / n.max(1))
    }

    /// The burst size.
    pub fn capacity(&self) -> u32 {
        self.capacity
    }

    /// Time to earn one token.
    pub fn interval(&self) -> Duration {
        self.interval
    }

    /// Tokens earned per second.
    pub fn per_second_refill(&self) -> f64 {
        1.0 / self.interval.as_secs_f64()
    }
}

/// Refused: the key has not enough tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("rate limited: retry in {} ms", retry_after.as_millis())]
pub struct Limited {
    /// When enough tokens will be there ([`Duration::MAX`]: never, the
    /// request is larger than the burst size).
    pub retry_after: Duration,
}

const NEVER: Limited = Limited {
    retry_after: Duration::MAX,
};

/// Token buckets by key; see the module docs.
#[derive(Debug)]
pub struct RateLimiter<K> {
    rate: Rate,
    max_keys: usize,
    /// Per key, when its bucket is full again.
    buckets: Mutex<HashMap<K, Instant>>,
}

impl<K: Eq + Hash + Clone> RateLimiter<K> {
    /// A limiter allowing `rate` per key, keeping at most `max_keys` (at
    /// least 1) buckets.
    pub fn new(rate: Rate, max_keys: usize) -> Self {
        Self {
            rate,
            max_keys: max_keys.max(1),
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// The rate per key.
    pub fn rate(&self) -> Rate {
        self.rate
    }

    fn buckets(&self) -> MutexGuard<'_, HashMap<K, Instant>> {
        // Every update is a single insert or remove.
        self.buckets.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Takes one token for `key` now.
    pub fn check(&self, key: &K) -> Result<(), Limited> {
        self.check_at(key, Instant::now())
    }

    /// Takes one token for `key` at `now`, or says when one will be there.
    pub fn check_at(&self, key: &K, now: Instant) -> Result<(), Limited> {
        self.check_n_at(key, 1, now)
    }

    /// Takes `n` tokens for `key` at `now`, all or none. More than the
    /// burst size is never allowed.
    pub fn check_n_at(&self, key: &K, n: u32, now: Instant) -> Result<(), Limited> {
        if n > self.rate.capacity {
            return Err(NEVER);
        }
        let cost = self.rate.interval.checked_mul(n).ok_or(NEVER)?;
        let burst = self
            .rate
            .interval
            .checked_mul(self.rate.capacity)
            .ok_or(NEVER)?;
        let mut buckets = self.buckets();
        let full_at = match buckets.get(key) {
            Some(full_at) => (*full_at).max(now),
            None => {
                if buckets.len() >= self.max_keys {
                    self.make_room(&mut buckets, now);
                }
                now
            }
        };
        let after = full_at.checked_add(cost).ok_or(NEVER)?;
        let limit = now.checked_add(burst).ok_or(NEVER)?;
        if after > limit {
            return Err(Limited {
                retry_after: after.duration_since(limit),
            });
        }
        buckets.insert(key.clone(), after);
        Ok(())
    }

    /// Forgets `key` (e.g. its connection closed).
    pub fn forget(&self, key: &K) {
        self.buckets().remove(key);
    }

    /// Drops every bucket that is full by now.
    pub fn prune(&self) {
        self.prune_at(Instant::now());
    }

    /// Drops every bucket that is full at `now`.
    pub fn prune_at(&self, now: Instant) {
        self.buckets().retain(|_, full_at| *full_at > now);
    }

    /// Buckets held.
    pub fn len(&self) -> usize {
        self.buckets().len()
    }

    /// Whether no bucket is held.
    pub fn is_empty(&self) -> bool {
        self.buckets().is_empty()
    }

    /// Frees at least one slot: full buckets first, else the fullest eighth
    /// (those that will be full soonest).
    fn make_room(&self, buckets: &mut HashMap<K, Instant>, now: Instant) {
        buckets.retain(|_, full_at| *full_at > now);
        if buckets.len() < self.max_keys {
            return;
        }
        let mut soonest: Vec<(K, Instant)> =
            buckets.iter().map(|(k, at)| (k.clone(), *at)).collect();
        soonest.sort_by_key(|(_, at)| *at);
        let evict = (self.max_keys / 8).max(1);
        for (key, _) in soonest.into_iter().take(evict) {
            buckets.remove(&key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(start: Instant, ms: u64) -> Instant {
        start + Duration::from_millis(ms)
    }

    #[test]
    fn allows_a_burst_then_refills_at_the_rate() {
        let limiter = RateLimiter::new(Rate::per_second(5), 100);
        let t0 = Instant::now();
        for _ in 0..5 {
            assert!(limiter.check_at(&1u64, t0).is_ok());
        }
        let refused = limiter.check_at(&1, t0).unwrap_err();
        assert_eq!(refused.retry_after, Duration::from_millis(200));
        // Other keys are independent.
        assert!(limiter.check_at(&2, t0).is_ok());
        // 200 ms later exactly one token is back.
        assert!(limiter.check_at(&1, at(t0, 199)).is_err());
        assert!(limiter.check_at(&1, at(t0, 200)).is_ok());
        assert!(limiter.check_at(&1, at(t0, 200)).is_err());
        // Refilling never exceeds the burst size.
        let later = at(t0, 60_000);
        for _ in 0..5 {
            assert!(limiter.check_at(&1, later).is_ok());
        }
        assert!(limiter.check_at(&1, later).is_err());
    }

    #[test]
    fn hourly_rates_refill_slowly() {
        let limiter = RateLimiter::new(Rate::per_hour(2), 100);
        let t0 = Instant::now();
        assert!(limiter.check_at(&"alice", t0).is_ok());
        assert!(limiter.check_at(&"alice", t0).is_ok());
        let refused = limiter.check_at(&"alice", t0).unwrap_err();
        assert_eq!(refused.retry_after, Duration::from_secs(1800));
        assert!(limiter.check_at(&"alice", at(t0, 1_799_999)).is_err());
        assert!(limiter.check_at(&"alice", at(t0, 1_800_000)).is_ok());
        assert!(limiter.check_at(&"bob", t0).is_ok());
    }

    #[test]
    fn takes_several_tokens_all_or_none() {
        let limiter = RateLimiter::new(Rate::new(10, Duration::from_secs(1)), 100);
        let t0 = Instant::now();
        assert!(limiter.check_n_at(&1u8, 7, t0).is_ok());
        let refused = limiter.check_n_at(&1, 4, t0).unwrap_err();
        assert_eq!(refused.retry_after, Duration::from_secs(1));
        assert!(limiter.check_n_at(&1, 3, t0).is_ok());
        assert!(limiter.check_at(&1, t0).is_err());
        // More than the burst size can never pass.
        let never = limiter.check_n_at(&2, 11, t0).unwrap_err();
        assert_eq!(never.retry_after, Duration::MAX);
    }

    #[test]
    fn a_clock_going_backwards_refills_nothing() {
        let limiter = RateLimiter::new(Rate::per_second(1), 100);
        let t0 = Instant::now();
        let t1 = at(t0, 5000);
        assert!(limiter.check_at(&1u8, t1).is_ok());
        assert!(limiter.check_at(&1, t0).is_err());
        assert!(limiter.check_at(&1, at(t0, 5999)).is_err());
        assert!(limiter.check_at(&1, at(t0, 6000)).is_ok());
    }

    #[test]
    fn memory_is_bounded_and_idle_keys_go_first() {
        let limiter = RateLimiter::new(Rate::per_second(2), 16);
        let t0 = Instant::now();
        // Key 0 is busy (empty bucket); keys 1..16 took one token each.
        assert!(limiter.check_n_at(&0u32, 2, t0).is_ok());
        for k in 1..16 {
            assert!(limiter.check_at(&k, t0).is_ok());
        }
        assert_eq!(limiter.len(), 16);
        // Full: a new key evicts the fullest eighth (two keys here), never
        // the emptiest one.
        assert!(limiter.check_at(&100, t0).is_ok());
        assert_eq!(limiter.len(), 15);
        assert!(limiter.check_at(&0, t0).is_err(), "the busy key was kept");

        // Once every bucket has refilled, all can go.
        limiter.prune_at(at(t0, 1000));
        assert!(limiter.is_empty());

        // Under pressure, full buckets are dropped before any busy one.
        let limiter = RateLimiter::new(Rate::per_second(1), 4);
        for k in 0..4u32 {
            assert!(limiter.check_at(&k, t0).is_ok());
        }
        let t1 = at(t0, 1500);
        assert!(limiter.check_at(&3, t1).is_ok());
        assert!(limiter.check_at(&9, t1).is_ok());
        assert_eq!(limiter.len(), 2, "keys 0..3 were full again and dropped");
        assert!(limiter.check_at(&3, t1).is_err(), "key 3 kept its state");
    }

    #[test]
    fn forgetting_a_key_resets_it() {
        let limiter = RateLimiter::new(Rate::per_second(1), 4);
        let t0 = Instant::now();
        assert!(limiter.check_at(&7u64, t0).is_ok());
        assert!(limiter.check_at(&7, t0).is_err());
        limiter.forget(&7);
        assert!(limiter.check_at(&7, t0).is_ok());
    }

    #[test]
    fn rates_are_sane_whatever_they_are_given() {
        let rate = Rate::new(0, Duration::ZERO);
        assert_eq!(rate.capacity(), 1);
        assert_eq!(rate.interval(), Duration::from_nanos(1));
        let slow = Rate::new(1, Duration::MAX);
        assert_eq!(slow.interval(), MAX_INTERVAL);
        let limiter = RateLimiter::new(slow, 0);
        let t0 = Instant::now();
        assert!(limiter.check_at(&1u8, t0).is_ok());
        assert!(limiter.check_at(&1, at(t0, 3_600_000)).is_err());
        assert_eq!(Rate::per_second(0), Rate::per_second(1));
        assert!((Rate::per_second(4).per_second_refill() - 4.0).abs() < 1e-9);
    }
}
