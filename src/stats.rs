//! Per-connection statistics, cheap enough to be always on.
//!
//! The worker is the only writer: it bumps these with `Relaxed` loads and
//! stores (no lock, no locked instruction, no allocation), and any thread
//! reads a snapshot with [`Stats::snapshot`]. The counters of one snapshot
//! are each exact but not taken at one instant (a message may be counted in
//! `messages_sent` and not yet in `bytes_sent`); once the connection has
//! finished they are final.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering::Relaxed};
use std::time::Duration;

/// The counters of one connection (see the module docs).
#[derive(Debug, Default)]
pub(crate) struct Stats {
    pub(crate) bytes_sent: AtomicU64,
    pub(crate) bytes_received: AtomicU64,
    pub(crate) messages_sent: AtomicU64,
    pub(crate) messages_received: AtomicU64,
    pub(crate) frames_sent: AtomicU64,
    pub(crate) frames_received: AtomicU64,
    pub(crate) pings_sent: AtomicU64,
    pub(crate) pongs_received: AtomicU64,
    /// Microseconds; 0 until a pong answered a ping.
    pub(crate) last_rtt_us: AtomicU32,
    pub(crate) reconnects: AtomicU32,
    pub(crate) dns_us: AtomicU32,
    pub(crate) tcp_us: AtomicU32,
    pub(crate) tls_us: AtomicU32,
    pub(crate) upgrade_us: AtomicU32,
    pub(crate) proxy_us: AtomicU32,
}

impl Stats {
    /// One more reconnect (the worker is the only writer).
    pub(crate) fn reconnected(&self) {
        self.reconnects.store(self.reconnects.load(Relaxed).saturating_add(1), Relaxed);
    }
}

/// Adds `n` to a counter. Every counter has one writer, the connection's
/// own thread (its worker, which owns the stream; for a server-side
/// connection the same thread did the handshake), so a plain load and
/// store suffice: no locked read-modify-write instruction on the hot path.
#[inline]
pub(crate) fn add(counter: &AtomicU64, n: u64) {
    counter.store(counter.load(Relaxed).wrapping_add(n), Relaxed);
}

/// Microseconds, saturating at `u32::MAX` (71 minutes).
pub(crate) fn micros(d: Duration) -> u32 {
    u32::try_from(d.as_micros()).unwrap_or(u32::MAX)
}

impl Stats {
    /// Records the phases of a successful connect (replacing any earlier one).
    pub(crate) fn set_phases(&self, p: &ConnectPhases) {
        self.dns_us.store(micros(p.dns), Relaxed);
        self.tcp_us.store(micros(p.tcp), Relaxed);
        self.tls_us.store(micros(p.tls), Relaxed);
        self.upgrade_us.store(micros(p.upgrade), Relaxed);
        self.proxy_us.store(micros(p.proxy), Relaxed);
    }

    /// A copy of every counter.
    pub(crate) fn snapshot(&self) -> ConnectionStats {
        let us = |a: &AtomicU32| Duration::from_micros(u64::from(a.load(Relaxed)));
        let rtt = self.last_rtt_us.load(Relaxed);
        ConnectionStats {
            bytes_sent: self.bytes_sent.load(Relaxed),
            bytes_received: self.bytes_received.load(Relaxed),
            messages_sent: self.messages_sent.load(Relaxed),
            messages_received: self.messages_received.load(Relaxed),
            frames_sent: self.frames_sent.load(Relaxed),
            frames_received: self.frames_received.load(Relaxed),
            pings_sent: self.pings_sent.load(Relaxed),
            pongs_received: self.pongs_received.load(Relaxed),
            last_rtt: (rtt != 0).then(|| Duration::from_micros(u64::from(rtt))),
            reconnects: self.reconnects.load(Relaxed),
            connect: ConnectPhases {
                dns: us(&self.dns_us),
                tcp: us(&self.tcp_us),
                tls: us(&self.tls_us),
                upgrade: us(&self.upgrade_us),
                proxy: us(&self.proxy_us),
            },
        }
    }
}

/// A snapshot of a connection's counters: [`crate::Connection::stats`].
///
/// Payload bytes and messages count whole text and binary messages (not
/// control frames, not framing overhead); frames count every frame on the
/// wire, control frames and each fragment included. Fields may be added in a
/// minor release.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ConnectionStats {
    /// Payload bytes of the messages handed to the socket.
    pub bytes_sent: u64,
    /// Payload bytes of the messages received (delivered or, while closing, dropped).
    pub bytes_received: u64,
    /// Text and binary messages handed to the socket.
    pub messages_sent: u64,
    /// Text and binary messages received.
    pub messages_received: u64,
    /// Frames written, of every kind (data, ping, pong, close).
    pub frames_sent: u64,
    /// Frames read, of every kind, each fragment counted.
    pub frames_received: u64,
    /// Pings sent: keepalive and [`crate::Connection::ping`].
    pub pings_sent: u64,
    /// Pongs received, answering a ping or not.
    pub pongs_received: u64,
    /// The round-trip time measured by the last pong that answered one of
    /// our pings; `None` until one has.
    pub last_rtt: Option<Duration>,
    /// Times this connection was re-established. wsc does not reconnect by
    /// itself in this version, so this is 0.
    pub reconnects: u32,
    /// How long each phase of the connect took.
    pub connect: ConnectPhases,
}

/// The duration of each phase of the last successful connect; zero where a
/// phase did not happen (DNS for an IP literal, TLS for `ws://`, proxy
/// without one) and, for a connection a [`crate::Server`] accepted, all zero.
///
/// Through a proxy, `dns` and `tcp` are those of reaching the proxy (plus,
/// for `socks5://`, resolving the target here) and `proxy` is the tunnel's
/// own exchange (`CONNECT` or SOCKS).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ConnectPhases {
    /// Name resolution (c-ares): until the first connection attempt started.
    pub dns: Duration,
    /// TCP connect: from the first attempt to the one that won (attempts
    /// race as RFC 8305 describes).
    pub tcp: Duration,
    /// The TLS handshake.
    pub tls: Duration,
    /// The HTTP upgrade: request sent to response read.
    pub upgrade: Duration,
    /// The proxy's tunnel exchange.
    pub proxy: Duration,
}
