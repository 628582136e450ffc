//! A sent/received counter one thread can wait on while another (a callback,
//! a reader thread) counts. Both sides of every comparison use it, so the
//! hand-off cost is the same for tungstenite and wsc.
//!
//! The counting side touches the lock only when the waiter is asleep and its
//! condition just became true, so streaming pays one atomic add per message.

use parking_lot::{Condvar, Mutex};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::SeqCst};
use std::time::{Duration, Instant};

/// How long any wait in the benchmark may take before it is a failure.
pub const PATIENCE: Duration = Duration::from_secs(60);

#[derive(Default)]
pub struct Flow {
    sent: AtomicU64,
    received: AtomicU64,
    failed: AtomicBool,
    waiting: AtomicBool,
    slack: AtomicU64,
    lock: Mutex<()>,
    changed: Condvar,
}

impl Flow {
    pub fn new() -> Flow {
        Flow::default()
    }

    /// `n` more are on their way.
    pub fn sent(&self, n: u64) {
        self.sent.fetch_add(n, SeqCst);
    }

    pub fn in_flight(&self) -> u64 {
        self.sent.load(SeqCst).saturating_sub(self.received.load(SeqCst))
    }

    /// One arrived.
    pub fn received(&self) {
        let r = self.received.fetch_add(1, SeqCst) + 1;
        if self.waiting.load(SeqCst) && self.sent.load(SeqCst).saturating_sub(r) <= self.slack.load(SeqCst) {
            let _g = self.lock.lock();
            self.changed.notify_one();
        }
    }

    /// Nothing more will arrive (the connection failed): wake the waiter.
    pub fn fail(&self) {
        self.failed.store(true, SeqCst);
        let _g = self.lock.lock();
        self.changed.notify_one();
    }

    /// Blocks until at most `slack` are in flight. Err if the connection
    /// failed or nothing moved for [`PATIENCE`].
    pub fn wait_until_at_most(&self, slack: u64) -> Result<(), String> {
        if self.in_flight() <= slack {
            return Ok(());
        }
        self.slack.store(slack, SeqCst);
        self.waiting.store(true, SeqCst);
        let mut g = self.lock.lock();
        let deadline = Instant::now() + PATIENCE;
        let result = loop {
            if self.in_flight() <= slack {
                break Ok(());
            }
            if self.failed.load(SeqCst) {
                break Err("the connection failed".to_owned());
            }
            if self.changed.wait_until(&mut g, deadline).timed_out() && self.in_flight() > slack {
                break Err(format!(
                    "waited {} s with {} of {} outstanding",
                    PATIENCE.as_secs(),
                    self.in_flight(),
                    self.sent.load(SeqCst)
                ));
            }
        };
        self.waiting.store(false, SeqCst);
        result
    }

    /// Blocks until everything sent has arrived.
    pub fn wait_all(&self) -> Result<(), String> {
        self.wait_until_at_most(0)
    }
}
