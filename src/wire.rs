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
//!   the worker holds it, the message goes through the queue as before (and
//!   an awake worker needs no wake-up system call).
//! - **Order.** A caller writes only when the queue is empty, checked under
//!   the lock, and the worker takes from the queue only under the lock; so a
//!   message never overtakes one queued before it.
//! - **Never blocking the caller.** The socket is non-blocking: what the
//!   kernel does not take stays in tungstenite's buffer, the wire is marked
//!   blocked (later sends queue) and the worker is woken to wait for
//!   `POLLOUT`. A peer that stops reading cannot stall the caller, and the
//!   worker keeps reading meanwhile.
//! - **Batching.** Flushing is a system call per message. A caller flushes
//!   itself once per worker sleep (the ping-pong case: the worker has
//!   nothing else to do, so the caller saves its wake-up); a second message
//!   before the worker has woken only joins tungstenite's buffer, and the
//!   worker, woken once, flushes everything that collected (the streaming
//!   case: one `send(2)` for many messages).
//! - **Failures.** A write error cannot end the connection from the
//!   caller's thread; it is left here for the worker, which ends the
//!   connection exactly as if it had failed the write itself.
//! - **Closing.** Once a Close has been sent or received the wire stops
//!   accepting, so nothing is ever written after a Close.

use crate::stats::{add, Stats};
use crate::stream::Stream;
use crate::waker::Waker;
use parking_lot::{lock_api::ArcMutexGuard, Mutex, RawMutex};
use std::sync::Arc;
use tungstenite::{Message, WebSocket};

/// A message larger than this makes the worker plan to give tungstenite's
/// buffers back after a pause (see `frames`).
pub(crate) const LARGE: usize = 64 << 10;

/// The open connection's socket and what its writers share.
pub(crate) struct Wire {
    pub(crate) ws: WebSocket<Stream>,
    /// Bytes handed to tungstenite but not yet flushed to the socket.
    pub(crate) in_flight: usize,
    /// The last write or flush hit `WouldBlock`: the worker waits for POLLOUT.
    pub(crate) write_blocked: bool,
    /// Something (a message, a pong, a Close reply) waits in tungstenite's buffer.
    pub(crate) needs_flush: bool,
    /// Application threads may write: open, and no Close sent or received.
    pub(crate) accepting: bool,
    /// The worker is asleep: the next caller may flush its message itself.
    pub(crate) flush_lent: bool,
    /// A caller's write failed; the worker ends the connection with it.
    pub(crate) failed: Option<tungstenite::Error>,
    /// A caller wrote a message larger than [`LARGE`].
    pub(crate) large: bool,
    /// tungstenite holds no buffers (an idle worker sleeps): it is not lent
    /// until the worker has rebuilt them.
    pub(crate) lean: bool,
}

impl Wire {
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
            lean: false,
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
    pub(crate) stats: &'a Stats,
    pub(crate) waker: &'a Waker,
    /// True while the queue holds messages (they must go first).
    pub(crate) queued: &'a dyn Fn() -> bool,
    /// Bytes left the buffered count (written to the socket).
    pub(crate) unbuffer: &'a dyn Fn(usize),
}

impl Writer<'_> {
    /// Writes `msg` from the calling thread if the worker is asleep and
    /// nothing is queued or blocked; otherwise gives it back to be queued.
    pub(crate) fn try_write(&self, msg: Message) -> Result<(), Message> {
        let Some(mut held) = self.slot.try_lock() else {
            return Err(msg);
        };
        let Some(wire) = held.as_mut() else {
            return Err(msg);
        };
        if !wire.accepting || wire.lean || wire.write_blocked || (self.queued)() {
            return Err(msg);
        }
        wire.ws.get_ref().foreign_thread();
        let len = msg.len();
        wire.large |= len > LARGE;
        wire.in_flight += len;
        add(&self.stats.messages_sent, 1);
        add(&self.stats.bytes_sent, len as u64);
        let flushed = match wire.ws.write(msg) {
            Ok(()) if wire.flush_lent => {
                wire.flush_lent = false;
                wire.ws.flush().map(|()| true)
            }
            other => other.map(|()| false),
        };
        let wake = match flushed {
            Ok(true) => {
                (self.unbuffer)(std::mem::take(&mut wire.in_flight));
                wire.needs_flush = false;
                false
            }
            Ok(false) => {
                wire.needs_flush = true;
                true // the worker flushes what collects until it wakes
            }
            Err(tungstenite::Error::Io(e)) if e.kind() == std::io::ErrorKind::WouldBlock => {
                wire.write_blocked = true;
                wire.needs_flush = true;
                true
            }
            Err(e) => {
                wire.failed = Some(e);
                wire.accepting = false;
                true
            }
        };
        drop(held);
        if wake {
            self.waker.wake();
        }
        Ok(())
    }
}
