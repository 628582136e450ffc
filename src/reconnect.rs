//! Opt-in reconnect: what is worth another try, and when.
//!
//! The rules are the ones applications get wrong when they write the loop
//! themselves: a failure that may heal (network, DNS, timeouts, a server
//! restarting or overloaded) is retried, one that will not (a 4xx, a TLS
//! verification failure, a protocol violation, a deliberate close 1000) is
//! not, and nothing is retried after the application closed. Delays grow
//! exponentially with full jitter, so a fleet of clients does not reconnect
//! in step after an outage.

use crate::error::{ConnectionError, ErrorKind};
use std::time::Duration;

/// Reconnect settings ([`crate::Options::reconnect`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reconnect {
    /// The first delay's cap; each retry doubles the cap up to `max_delay`.
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
        let Reconnect { min_delay, max_delay, max_attempts } = self.settings;
        if max_attempts != 0 && self.attempt >= max_attempts {
            return None;
        }
        self.attempt += 1;
        let doubling = 1u32.checked_shl(self.attempt - 1).unwrap_or(u32::MAX);
        let cap = min_delay.checked_mul(doubling).unwrap_or(max_delay).min(max_delay);
        let mut delay = cap.mul_f64(self.uniform());
        if let Some(asked) = retry_after {
            delay = delay.max(asked.min(max_delay));
        }
        Some((self.attempt, delay))
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
