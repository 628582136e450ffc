//! The socket's write side, lent to the application's threads while the
//! worker sleeps.
//!
//! A send from another thread used to go through the queue and wake the
//! worker (eventfd write, poll return, eventfd read) before its bytes
//! reached the socket: in a ping-pong that is most of the cost of a round
//! trip beyond the network's. IXWebSocket writes from the caller's thread
//! when nothing is queued; so does wsc now, without giving up what the
//! worker guarantees:
//!
//! - **One writer at a time.** The socket (tungstenite and, with TLS, the
//!   OpenSSL stream, which cannot be used from two threads at once) sits in a
//!   mutex. The worker holds it whenever it is awake — callbacks included —
//!   and lets go only around `poll(2)`. An application thread only ever
//!   `try_lock`s it, so nothing blocks on it and nothing can deadlock: when
//!   the worker holds it, the message waits in the outbox (see `outbox`) and
//!   the worker, awake anyway, writes it before it sleeps.
//! - **Order.** Every message is framed into the outbox first, in send
//!   order; whoever holds the wire takes the outbox whole, so a caller
//!   writing in the worker's place writes exactly what the worker would have.
//! - **Never blocking the caller.** The socket is non-blocking: what the
//!   kernel does not take waits in the stream's buffer, the wire is marked
//!   blocked (later sends wait in the outbox) and the worker is woken to
//!   wait for `POLLOUT`. A peer that stops reading cannot stall the caller,
//!   and the worker keeps reading meanwhile.
//! - **Batching.** Flushing is a system call. A caller writes and flushes
//!   itself once per worker sleep (the ping-pong case: the worker has nothing
//!   else to do, so the caller saves its wake-up); a second message before
//!   the worker has woken only joins the outbox, and the worker, woken once,
//!   writes everything that collected (the streaming case: one `send(2)` for
//!   many messages).
//! - **Failures.** A write error cannot end the connection from the
//!   caller's thread; it is left here for the worker, which ends the
//!   connection exactly as if it had failed the write itself.
//! - **Closing.** Once a Close has been sent or received the wire stops
//!   accepting, so nothing is ever written after a Close.

use crate::outbox::Outbox;
use crate::stats::{add, Stats};
use crate::stream::Stream;
use parking_lot::{lock_api::ArcMutexGuard, Mutex, RawMutex};
use std::io::Write;
use std::sync::Arc;
use tungstenite::WebSocket;

/// A message larger than this makes the worker plan to give tungstenite's
/// buffers back after a pause (see `frames`).
pub(crate) const LARGE: usize = 64 << 10;

/// The open connection's socket and what its writers share.
pub(crate) struct Wire {
    pub(crate) ws: WebSocket<Stream>,
    /// Payload bytes taken from the outbox but not yet flushed to the socket.
    pub(crate) in_flight: usize,
    /// The last write or flush hit `WouldBlock`: the worker waits for POLLOUT.
    pub(crate) write_blocked: bool,
    /// Something (messages, a pong, a Close reply) waits to be flushed.
    pub(crate) needs_flush: bool,
    /// Application threads may write: open, and no Close sent or received.
    pub(crate) accepting: bool,
    /// The worker is asleep: the next caller may flush its message itself.
    pub(crate) flush_lent: bool,
    /// A caller's write failed; the worker ends the connection with it.
    pub(crate) failed: Option<tungstenite::Error>,
    /// A message larger than [`LARGE`] went into the stream (the worker
    /// then plans to give buffers back after a pause).
    pub(crate) large: bool,
    /// The buffer the last batch was written from, emptied, for the next.
    pub(crate) spare: Vec<u8>,
}

impl Wire {
    /// Moves what the outbox holds into the stream, behind what waits
    /// there, counting it as in flight and sent. False if it held nothing.
    pub(crate) fn take_outbox(&mut self, outbox: &Outbox, stats: &Stats) -> bool {
        let batch = outbox.take(std::mem::take(&mut self.spare));
        if batch.is_empty() {
            self.spare = batch.bytes;
            return false;
        }
        self.spare = self.ws.get_mut().append(batch.bytes);
        self.large |= batch.large;
        self.in_flight += batch.payload;
        self.needs_flush = true;
        add(&stats.messages_sent, batch.messages);
        add(&stats.bytes_sent, batch.payload as u64);
        true
    }

    pub(crate) fn new(ws: WebSocket<Stream>) -> Wire {
        Wire {
            ws,
            in_flight: 0,
            write_blocked: false,
            needs_flush: false,
            accepting: true,
            flush_lent: false,
            failed: None,
            large: false,
            spare: Vec::new(),
        }
    }
}

/// Where the wire lives: empty while connecting, between reconnects and
/// after the end.
pub(crate) type Slot = Arc<Mutex<Option<Wire>>>;

/// The worker's hold on the slot, kept while it is awake.
pub(crate) type Held = ArcMutexGuard<RawMutex, Option<Wire>>;

/// What a caller needs to write in the worker's place.
pub(crate) struct Writer<'a> {
    pub(crate) slot: &'a Slot,
    pub(crate) outbox: &'a Outbox,
    pub(crate) stats: &'a Stats,
    /// Bytes left the buffered count (written to the socket).
    pub(crate) unbuffer: &'a dyn Fn(usize),
}

impl Writer<'_> {
    /// Writes the outbox from the calling thread if the worker is asleep,
    /// has not lent it since it slept, and the socket is not blocked. False
    /// when the worker must be woken: it writes the outbox itself, or waits
    /// for the socket, or ends the connection with the write's error.
    pub(crate) fn try_write(&self) -> bool {
        let Some(mut held) = self.slot.try_lock() else {
            return false;
        };
        let Some(wire) = held.as_mut() else {
            return false;
        };
        if !wire.accepting || wire.write_blocked || !std::mem::take(&mut wire.flush_lent) {
            return false;
        }
        if !wire.take_outbox(self.outbox, self.stats) {
            // The worker wrote ours before it slept: the next caller may still flush.
            wire.flush_lent = true;
            return true;
        }
        wire.ws.get_ref().foreign_thread();
        match wire.ws.get_mut().flush() {
            Ok(()) => {
                (self.unbuffer)(std::mem::take(&mut wire.in_flight));
                wire.needs_flush = false;
                true
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                wire.write_blocked = true;
                false
            }
            Err(e) => {
                wire.failed = Some(tungstenite::Error::Io(e));
                wire.accepting = false;
                false
            }
        }
    }
}
