//! Flow control as a gate with one permit (the App Services
//! `setFlowControl`/`messageComplete` contract). While enabled, delivering a
//! message takes the permit and the worker stops reading the socket, so TCP
//! backpressure reaches the server; `message_complete` gives it back.
//! Completing with no message outstanding banks nothing.

#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Gate {
    enabled: bool,
    outstanding: bool,
}

impl Gate {
    pub(crate) fn new(enabled: bool) -> Gate {
        Gate { enabled, outstanding: false }
    }

    /// May the next message be read and delivered?
    pub(crate) fn is_open(&self) -> bool {
        !(self.enabled && self.outstanding)
    }

    /// A message is about to be delivered.
    pub(crate) fn take(&mut self) {
        self.outstanding = self.enabled;
    }

    /// The application finished the outstanding message (if any).
    pub(crate) fn complete(&mut self) {
        self.outstanding = false;
    }

    /// Turning flow control off releases the gate.
    pub(crate) fn set_enabled(&mut self, enabled: bool) {
        self.enabled = enabled;
        if !enabled {
            self.outstanding = false;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Gate;

    #[test]
    fn one_permit_no_banked_credit() {
        let mut g = Gate::new(true);
        g.complete(); // nothing outstanding: banks nothing
        assert!(g.is_open());
        g.take();
        assert!(!g.is_open());
        g.complete();
        assert!(g.is_open());
        g.take();
        g.set_enabled(false);
        assert!(g.is_open());
        g.take();
        assert!(g.is_open(), "disabled gate never shuts");
    }
}
