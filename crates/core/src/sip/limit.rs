//! Per-source rate limits for the SIP socket, sans-IO: a token bucket per source address, as
//! Kamailio's pike module keeps one per IP.
//!
//! An outside test flooded hotdesk with about 20,000 OPTIONS a second from one address: every
//! datagram was parsed, answered and kept as a transaction for 32 s, the socket's queue
//! overflowed and a login beside the flood lost its ACK. The endpoint now asks a [`Limiter`]
//! before it parses anything but the Call-ID, so excess datagrams cost a hash lookup, and keeps
//! requests of calls that exist out of the count (the reserve for ACK, BYE and INFO).
//!
//! Sources are counted as the per-source login limits count them: IPv4 by address, IPv6 by
//! /64. The table is bounded: when full, buckets idle for a whole refill are dropped first,
//! then the stalest; a source that loses its bucket only starts again with a full one.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

/// Sources followed at once.
const MAX_SOURCES: usize = 16_384;

/// The key a source is counted under (IPv4 address, or the top 64 bits of an IPv6 one).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Key {
    V4(u32),
    V6(u64),
}

impl Key {
    fn of(ip: IpAddr) -> Key {
        match ip.to_canonical() {
            IpAddr::V4(v4) => Key::V4(v4.to_bits()),
            IpAddr::V6(v6) => Key::V6((v6.to_bits() >> 64) as u64),
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    last: Instant,
}

/// A token bucket per source: `rate` a second on average, bursts up to one second's worth.
#[derive(Debug)]
pub struct Limiter {
    rate: f64,
    buckets: HashMap<Key, Bucket>,
}

impl Limiter {
    /// `per_second` datagrams a second per source (at least 1).
    pub fn new(per_second: u32) -> Limiter {
        Limiter {
            rate: f64::from(per_second.max(1)),
            buckets: HashMap::new(),
        }
    }

    /// Whether one more datagram from `ip` at `now` is within its rate (and counts it).
    pub fn allow(&mut self, now: Instant, ip: IpAddr) -> bool {
        let key = Key::of(ip);
        if !self.buckets.contains_key(&key) && self.buckets.len() >= MAX_SOURCES {
            self.evict(now);
        }
        let rate = self.rate;
        let bucket = self.buckets.entry(key).or_insert(Bucket {
            tokens: rate,
            last: now,
        });
        let elapsed = now.saturating_duration_since(bucket.last).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * rate).min(rate);
        bucket.last = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            true
        } else {
            false
        }
    }

    /// Sources followed now.
    pub fn sources(&self) -> usize {
        self.buckets.len()
    }

    fn evict(&mut self, now: Instant) {
        let refill = Duration::from_secs(1);
        self.buckets
            .retain(|_, b| now.saturating_duration_since(b.last) < refill);
        if self.buckets.len() >= MAX_SOURCES
            && let Some(stalest) = self
                .buckets
                .iter()
                .min_by_key(|(_, b)| b.last)
                .map(|(k, _)| *k)
        {
            self.buckets.remove(&stalest);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn a_source_gets_its_rate_and_no_more() {
        let t0 = Instant::now();
        let mut l = Limiter::new(10);
        let taken = (0..100).filter(|_| l.allow(t0, ip("192.0.2.1"))).count();
        assert_eq!(taken, 10, "a burst of one second's worth");
        // Half a second later, half a second's worth more.
        let later = t0 + Duration::from_millis(500);
        let taken = (0..100).filter(|_| l.allow(later, ip("192.0.2.1"))).count();
        assert_eq!(taken, 5);
        // Another source is not held back by the first, however it spells itself.
        assert!(l.allow(later, ip("192.0.2.2")));
        assert!(!l.allow(later, ip("::ffff:192.0.2.1")));
    }

    #[test]
    fn an_ipv6_64_is_one_source() {
        let t0 = Instant::now();
        let mut l = Limiter::new(3);
        for i in 1..=3 {
            assert!(l.allow(t0, ip(&format!("2001:db8:1:2::{i}"))));
        }
        assert!(!l.allow(t0, ip("2001:db8:1:2:ffff::9")));
        assert!(l.allow(t0, ip("2001:db8:1:3::1")));
    }

    #[test]
    fn the_table_stays_bounded() {
        let t0 = Instant::now();
        let mut l = Limiter::new(1);
        for i in 0..(MAX_SOURCES as u32 + 100) {
            l.allow(t0, IpAddr::V4(i.into()));
        }
        assert!(l.sources() <= MAX_SOURCES);
    }
}
