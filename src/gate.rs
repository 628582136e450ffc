//! Flow control as a gate with one permit (the App Services
//! `setFlowControl`/`messageComplete` contract). While enabled, delivering a
//! message takes the permit and the worker stops reading the socket, so TCP
//! backpressure reaches the server; `message_complete` gives it back.
//! Completing with no message outstanding banks nothing.
//!
//! The "outstanding" flag is an atomic shared with the connection's handles:
//! `message_complete` is called once per message, often from inside
//! `on_message`, so it costs one atomic swap rather than a queued command.
//! Enabling and disabling stay with the worker (they are rare).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// The handle side: whether a delivered message awaits `message_complete`.
#[derive(Debug, Default)]
pub(crate) struct Outstanding(AtomicBool);

impl Outstanding {
    /// Gives the permit back; true if a message was outstanding (the worker
    /// may then need waking).
    pub(crate) fn complete(&self) -> bool {
        self.0.swap(false, Ordering::SeqCst)
    }
}

/// The worker side.
#[derive(Debug)]
pub(crate) struct Gate {
    enabled: bool,
    outstanding: Arc<Outstanding>,
}

impl Gate {
    pub(crate) fn new(enabled: bool, outstanding: Arc<Outstanding>) -> Gate {
        Gate { enabled, outstanding }
    }

    /// May the next message be read and delivered?
    pub(crate) fn is_open(&self) -> bool {
        !(self.enabled && self.outstanding.0.load(Ordering::SeqCst))
    }

    /// A message is about to be delivered.
    pub(crate) fn take(&mut self) {
        if self.enabled {
            self.outstanding.0.store(true, Ordering::SeqCst);
        }
    }

    /// Turning flow control off releases the gate.
    pub(crate) fn set_enabled(&mut self, enabled: bool) {
        self.enabled = enabled;
        if !enabled {
            self.outstanding.complete();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{Gate, Outstanding};
    use std::sync::Arc;

    #[test]
    fn one_permit_no_banked_credit() {
        let handle = Arc::new(Outstanding::default());
        let mut g = Gate::new(true, handle.clone());
        assert!(!handle.complete(), "nothing outstanding: banks nothing");
        assert!(g.is_open());
        g.take();
        assert!(!g.is_open());
        assert!(handle.complete());
        assert!(g.is_open());
        g.take();
        g.set_enabled(false);
        assert!(g.is_open());
        g.take();
        assert!(g.is_open(), "a disabled gate never shuts");
    }
}
