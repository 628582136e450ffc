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

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::ThreadId;

/// Messages delivered to an event loop's queue and not yet dispatched, with
/// their cap: at the cap the gate shuts (the worker stops reading, so TCP
/// backpressure reaches the server) until the loop dispatches some.
#[derive(Debug)]
pub(crate) struct Pending {
    messages: AtomicUsize,
    bytes: AtomicUsize,
    max_messages: usize,
    max_bytes: usize,
    /// The thread that dispatches the loop (set at each dispatch).
    pub(crate) dispatcher: Arc<parking_lot::Mutex<Option<ThreadId>>>,
}

impl Pending {
    pub(crate) fn new(
        max_messages: usize,
        max_bytes: usize,
        dispatcher: Arc<parking_lot::Mutex<Option<ThreadId>>>,
    ) -> Pending {
        Pending { messages: AtomicUsize::new(0), bytes: AtomicUsize::new(0), max_messages, max_bytes, dispatcher }
    }

    /// Worker: a message of `len` bytes went to the queue.
    pub(crate) fn queued(&self, len: usize) {
        self.messages.fetch_add(1, Ordering::SeqCst);
        self.bytes.fetch_add(len, Ordering::SeqCst);
    }

    /// Loop: a message of `len` bytes was dispatched. True if that brought
    /// the connection below its cap (its worker may need waking).
    pub(crate) fn dispatched(&self, len: usize) -> bool {
        let was_full = !self.below_cap();
        self.messages.fetch_sub(1, Ordering::SeqCst);
        self.bytes.fetch_sub(len, Ordering::SeqCst);
        was_full && self.below_cap()
    }

    fn below_cap(&self) -> bool {
        self.messages.load(Ordering::SeqCst) < self.max_messages && self.bytes.load(Ordering::SeqCst) < self.max_bytes
    }

    /// True when called from the thread that dispatches the loop.
    pub(crate) fn on_dispatcher(&self) -> bool {
        *self.dispatcher.lock() == Some(std::thread::current().id())
    }
}

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
    /// With loop delivery: undispatched messages, capped.
    pending: Option<Arc<Pending>>,
}

impl Gate {
    pub(crate) fn new(enabled: bool, outstanding: Arc<Outstanding>, pending: Option<Arc<Pending>>) -> Gate {
        Gate { enabled, outstanding, pending }
    }

    /// May the next message be read and delivered?
    pub(crate) fn is_open(&self) -> bool {
        !(self.enabled && self.outstanding.0.load(Ordering::SeqCst))
            && self.pending.as_ref().map_or(true, |p| p.below_cap())
    }

    /// A message is about to be delivered.
    pub(crate) fn take(&mut self) {
        if self.enabled {
            // Release is enough: `message_complete` for this message comes
            // after its delivery, which orders it after this store.
            self.outstanding.0.store(true, Ordering::Release);
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
        let mut g = Gate::new(true, handle.clone(), None);
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
