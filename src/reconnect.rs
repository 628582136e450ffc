//! Opt-in reconnect: what is worth another try, and when.
//!
//! The rules are the ones applications get wrong when they write the loop
//! themselves: a failure that may heal (network, DNS, timeouts, a server
//! restarting or overloaded) is retried, one that will not (a 4xx, a TLS
//! verification failure, a protocol violation, a deliberate close 1000) is
//! not, and nothing is retried after the application closed. Delays grow
//! exponentially with full jitter, so a fleet of clients does not reconnect
//! in step after an outage.
//!
//! Invariant: the cap of each delay is positive and grows (doubling up to
//! `max_delay`), whatever the settings: a zero `min_delay` starts from
//! [`ZERO_MIN_BASE`] (capped by `max_delay`, which `Options::reconnect`
//! never lets be zero), so no setting gives a retry loop without delay.

use crate::error::{ConnectionError, ErrorKind};
use std::time::Duration;

/// Reconnect settings ([`crate::Options::reconnect`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reconnect {
    /// The first delay's cap; each retry doubles the cap up to `max_delay`.
    /// Zero means 100 ms (capped by `max_delay`): the delays always grow,
    /// so a zero minimum never makes a retry loop without delay.
    pub min_delay: Duration,
    /// The largest delay (a server's `Retry-After` is capped at it too).
    pub max_delay: Duration,
    /// Retries before giving up; 0 = unlimited.
    pub max_attempts: u32,
}

/// Why a connection may be tried again: the reason, and a server's
/// `Retry-After` when it gave one.
pub(crate) struct Retry {
    pub(crate) reason: ConnectionError,
    pub(crate) retry_after: Option<Duration>,
}

/// Close codes from the peer that ask for a later try: going away, internal
/// error, service restart, try again later, bad gateway.
const RETRIED_CLOSE_CODES: [u16; 5] = [1001, 1011, 1012, 1013, 1014];

/// A failure that may heal by itself, or `None`.
pub(crate) fn retried_failure(e: &ConnectionError) -> Option<Retry> {
    let heals = match e.kind() {
        ErrorKind::Resolve | ErrorKind::Connect | ErrorKind::Timeout | ErrorKind::ConnectionLost => true,
        ErrorKind::Handshake { status: Some(s) } => s >= 500 || s == 429,
        ErrorKind::Proxy { status } => status.map_or(true, |s| s >= 500),
        _ => false,
    };
    heals.then(|| Retry { reason: e.clone(), retry_after: e.retry_after() })
}

/// True for a peer's close code that asks for a later try.
pub(crate) fn retries_close(code: u16) -> bool {
    RETRIED_CLOSE_CODES.contains(&code)
}

/// A close from the peer that asks for a later try, as the error reported
/// if no later try succeeds.
pub(crate) fn retried_close(code: u16, reason: &str) -> Option<Retry> {
    retries_close(code).then(|| {
        let why = if reason.is_empty() { String::new() } else { format!(" ({reason})") };
        let message = format!("connection lost: the server closed with code {code}{why}");
        Retry { reason: ConnectionError::new(ErrorKind::ConnectionLost, message), retry_after: None }
    })
}

/// The first cap when `min_delay` is zero: a zero cap would double to zero
/// for ever (a retry loop with no delay at all against a server that drops
/// every connection after the upgrade).
pub(crate) const ZERO_MIN_BASE: Duration = Duration::from_millis(100);

/// Exponential backoff with full jitter.
pub(crate) struct Backoff {
    settings: Reconnect,
    /// Retries announced since the last reset.
    attempt: u32,
    rng: u64,
}

impl Backoff {
    pub(crate) fn new(settings: Reconnect, seed: u64) -> Backoff {
        let time =
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64);
        Backoff { settings, attempt: 0, rng: (seed ^ time ^ 0x9E37_79B9_7F4A_7C15) | 1 }
    }

    /// A connection that stayed open longer than the maximum delay (at least
    /// 10 s) starts the next series from the minimum again.
    pub(crate) fn opened_for(&mut self, open: Duration) {
        if open > self.settings.max_delay.max(Duration::from_secs(10)) {
            self.attempt = 0;
        }
    }

    /// The next retry's number (from 1) and delay; `None` once
    /// `max_attempts` retries have been made.
    pub(crate) fn next(&mut self, retry_after: Option<Duration>) -> Option<(u32, Duration)> {
        let Reconnect { max_delay, max_attempts, .. } = self.settings;
        if max_attempts != 0 && self.attempt >= max_attempts {
            return None;
        }
        self.attempt += 1;
        let cap = self.cap(self.attempt);
        // `mul_f64` panics past `Duration::MAX`; rounding can get there for a huge cap.
        let mut delay = Duration::try_from_secs_f64(cap.as_secs_f64() * self.uniform()).map_or(cap, |d| d.min(cap));
        if let Some(asked) = retry_after {
            delay = delay.max(asked.min(max_delay));
        }
        Some((self.attempt, delay))
    }

    /// The largest delay of retry `attempt` (from 1): the base doubled
    /// `attempt - 1` times, at most `max_delay`. Positive, and growing until
    /// it reaches `max_delay`.
    fn cap(&self, attempt: u32) -> Duration {
        let Reconnect { min_delay, max_delay, .. } = self.settings;
        let base = if min_delay.is_zero() { ZERO_MIN_BASE } else { min_delay };
        // Past 31 doublings (or an overflow) the cap is the maximum: it never stalls below it.
        1u32.checked_shl(attempt.saturating_sub(1))
            .and_then(|doubling| base.checked_mul(doubling))
            .map_or(max_delay, |cap| cap.min(max_delay))
    }

    /// Uniform in [0, 1] (xorshift64*; no cryptographic needs here).
    fn uniform(&mut self) -> f64 {
        self.rng ^= self.rng >> 12;
        self.rng ^= self.rng << 25;
        self.rng ^= self.rng >> 27;
        let x = self.rng.wrapping_mul(0x2545_F491_4F6C_DD1D);
        (x >> 11) as f64 / ((1u64 << 53) - 1) as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_grow_to_the_cap_with_jitter_and_stop_at_max_attempts() {
        let settings =
            Reconnect { min_delay: Duration::from_millis(1), max_delay: Duration::from_millis(20), max_attempts: 200 };
        let mut b = Backoff::new(settings, 7);
        let mut delays = Vec::new();
        while let Some((n, d)) = b.next(None) {
            let cap = Duration::from_millis(1u64 << (n - 1).min(5)).min(settings.max_delay);
            assert!(d <= cap, "attempt {n}: {d:?} over {cap:?}");
            delays.push(d);
        }
        assert_eq!(delays.len(), 200);
        let distinct: std::collections::HashSet<_> = delays.iter().collect();
        assert!(distinct.len() > 150, "jitter: only {} distinct delays", distinct.len());
        assert!(delays.iter().any(|d| *d > Duration::from_millis(15)), "the cap is reached");
        // Retry-After raises a delay, capped at the maximum.
        let mut b = Backoff::new(settings, 1);
        assert_eq!(b.next(Some(Duration::from_secs(60))).unwrap().1, settings.max_delay);
        // A long-lived connection starts over.
        let mut b = Backoff::new(settings, 3);
        for _ in 0..5 {
            b.next(None);
        }
        b.opened_for(Duration::from_secs(11));
        assert_eq!(b.next(None).unwrap().0, 1);
    }

    /// The caps of retries 1 to `n`.
    fn caps(settings: Reconnect, n: u32) -> Vec<Duration> {
        let b = Backoff::new(settings, 1);
        (1..=n).map(|a| b.cap(a)).collect()
    }

    #[test]
    fn a_zero_minimum_starts_from_100_ms_and_the_caps_grow() {
        let ms = Duration::from_millis;
        let zero = |max, attempts| Reconnect { min_delay: Duration::ZERO, max_delay: max, max_attempts: attempts };
        // Against a server that drops every connection: 40 retries wait
        // (on average) half the sum of the caps; with the bug every delay was 0.
        let settings = zero(ms(30_000), 40);
        let mut b = Backoff::new(settings, 11);
        let mut total = Duration::ZERO;
        let mut caps_seen = Vec::new();
        while let Some((n, d)) = b.next(None) {
            let cap = (ms(100) * (1u32 << (n - 1).min(20))).min(settings.max_delay);
            assert!(d <= cap, "attempt {n}: {d:?} over {cap:?}");
            caps_seen.push(cap);
            total += d;
        }
        assert_eq!(caps_seen.len(), 40);
        assert!(caps_seen.windows(2).all(|w| w[0] < w[1] || w[1] == settings.max_delay), "{caps_seen:?}");
        assert!(total > ms(100_000), "40 retries waited only {total:?} in all");
        // The first delays are drawn in [0, 100 ms], [0, 200 ms], ...: not all zero.
        let mut b = Backoff::new(settings, 5);
        let first: Vec<_> = (0..8).map(|_| b.next(None).unwrap().1).collect();
        assert!(first.iter().filter(|d| !d.is_zero()).count() >= 7, "{first:?}");
        // A maximum below 100 ms caps the base: the cap is the maximum from the first retry.
        assert_eq!(caps(zero(ms(1), 0), 3), vec![ms(1); 3]);
        assert_eq!(caps(zero(ms(250), 0), 4), vec![ms(100), ms(200), ms(250), ms(250)]);
        // A positive minimum is kept as it is.
        let one = Reconnect { min_delay: ms(1), max_delay: ms(5), max_attempts: 0 };
        assert_eq!(caps(one, 4), vec![ms(1), ms(2), ms(4), ms(5)]);
        // Extreme values: no overflow, the cap stays at the maximum.
        let huge = Reconnect { min_delay: Duration::ZERO, max_delay: Duration::MAX, max_attempts: 0 };
        let mut b = Backoff::new(huge, 3);
        for _ in 0..100 {
            b.next(None).unwrap();
        }
        let tiny = Reconnect { min_delay: Duration::from_nanos(1), max_delay: Duration::MAX, max_attempts: 0 };
        let tiny_caps = caps(tiny, 40);
        assert!(tiny_caps.windows(2).all(|w| w[0] < w[1] || w[1] == Duration::MAX), "{tiny_caps:?}");
        assert_eq!(tiny_caps[39], Duration::MAX, "no plateau below the maximum");
    }

    #[test]
    fn what_is_retried() {
        let e = |k| ConnectionError::new(k, "x");
        assert!(retried_failure(&e(ErrorKind::Connect)).is_some());
        assert!(retried_failure(&e(ErrorKind::Timeout)).is_some());
        assert!(retried_failure(&e(ErrorKind::Handshake { status: Some(503) })).is_some());
        assert!(retried_failure(&e(ErrorKind::Handshake { status: Some(429) })).is_some());
        assert!(retried_failure(&e(ErrorKind::Handshake { status: Some(403) })).is_none());
        assert!(retried_failure(&e(ErrorKind::Tls)).is_none());
        assert!(retried_failure(&e(ErrorKind::Protocol)).is_none());
        assert!(retried_close(1012, "").is_some());
        assert!(retried_close(1000, "").is_none());
        assert!(retried_close(1005, "").is_none());
    }
}
