//! The application's side of a connection: a cheap handle usable from any
//! thread, and the state it shares with the worker.
//!
//! Every call only queues a command for the worker and wakes it, or (a
//! send) frames the message into the outbox and, while the worker sleeps,
//! writes it to the non-blocking socket itself (see `outbox`, `wire`); so
//! nothing here blocks on the network and everything is safe from inside
//! callbacks. Messages and control are queued apart: while the socket is
//! backed up the worker stops taking messages but still sees
//! `message_complete`, `set_flow_control` and `close`.
//!
//! This module knows nothing of threads, the registry or the worker loop:
//! `lifecycle` builds a connection and drives it from start to finish, so a
//! handle can never be half-registered or outlive its bookkeeping.

use crate::error::Error;
use crate::event::{Event, Message};
use crate::gate::{Outstanding, Pending};
use crate::outbox::{Outbox, Payload};
use crate::response::HandshakeResponse;
use crate::stats::{ConnectionStats, Stats};
use crate::waker::{deadline_in, Waker};
use crate::wire::{Slot, Writer};
use crossbeam_channel::{unbounded, Receiver, Sender};
use parking_lot::{Condvar, Mutex};
use std::cell::Cell;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;
use tungstenite::{Bytes, Utf8Bytes};

/// Where a connection is in its life. A finished connection has no state:
/// calls on it return [`Error::UnknownId`].
///
/// States may be added in a minor release: `match` with a `_` arm.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
#[non_exhaustive]
pub enum State {
    /// DNS, TCP, TLS or the HTTP upgrade is in progress; sends are queued.
    Connecting = 0,
    /// The handshake has completed: messages flow both ways.
    Open = 1,
    /// `close` was called, the peer closed, or the terminal event is being
    /// delivered: nothing more can be sent.
    Closing = 2,
}

const FINISHED: u8 = 3;

/// Receives every event of one connection, on its worker thread.
pub(crate) type Sink = Box<dyn FnMut(&Connection, Event) + Send>;

/// Commands that must reach the worker even while the socket is backed up.
pub(crate) enum Control {
    Close {
        code: u16,
        reason: String,
    },
    SetFlow(bool),
    /// An application ping (payload of at most 125 bytes).
    Ping(Bytes),
}

/// The worker's end of a connection's command queue.
pub(crate) struct Queues {
    pub(crate) control: Receiver<Control>,
}

thread_local! {
    /// The id of the connection whose worker runs on this thread (0: none).
    /// A `const` `Cell` has no destructor, so it answers even while the
    /// thread's other thread-locals are being destroyed.
    static CURRENT_WORKER: Cell<u64> = const { Cell::new(0) };
}

/// The id of the connection whose worker thread is calling, if any.
pub(crate) fn current_worker() -> Option<u64> {
    CURRENT_WORKER.try_with(Cell::get).ok().filter(|&id| id != 0)
}

/// Marks the calling thread as the worker of connection `id`.
pub(crate) fn set_current_worker(id: u64) {
    let _ = CURRENT_WORKER.try_with(|c| c.set(id));
}

/// State shared between the handles and the worker.
pub(crate) struct Shared {
    pub(crate) id: u64,
    pub(crate) uri: String,
    pub(crate) handler: Option<String>,
    /// The server endpoint it was accepted on; `None` for a client.
    pub(crate) endpoint: Option<String>,
    state: AtomicU8,
    close_requested: AtomicBool,
    /// Messages sent and not yet written, framed (see `outbox`).
    pub(crate) outbox: Outbox,
    control: Sender<Control>,
    pub(crate) waker: Waker,
    /// The open socket, lent to application threads while the worker sleeps.
    pub(crate) wire: Slot,
    buffered: AtomicUsize,
    max_buffered: usize,
    /// Bumped after every queued command, so the worker's hot path (right
    /// after a callback) can skip its queues when nothing was queued.
    activity: AtomicU64,
    pub(crate) outstanding: Arc<Outstanding>,
    /// With event-loop delivery: undispatched messages (set once, before the worker starts).
    pub(crate) loop_pending: OnceLock<Arc<Pending>>,
    protocol: OnceLock<Option<String>>,
    /// Counters, bumped by the worker without a lock.
    pub(crate) stats: Arc<Stats>,
    /// The upgrade response: set once, on success or on a refused upgrade.
    pub(crate) response: OnceLock<HandshakeResponse>,
    /// The C `on_pong` of its options, for a C handler's connection (whose
    /// events reach the handler, which holds the `user_data`).
    pub(crate) c_on_pong: crate::ffi::wsc_on_pong_fn,
    /// Guards the change to finished, so `wait` cannot miss the notification.
    finishing: Mutex<()>,
    finished: Condvar,
}

impl Shared {
    /// A connection in state `Connecting`, and the worker's ends of its queues.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        id: u64,
        uri: &str,
        handler: Option<String>,
        endpoint: Option<String>,
        max_buffered: usize,
        waker: Waker,
        stats: Arc<Stats>,
        c_on_pong: crate::ffi::wsc_on_pong_fn,
    ) -> (Arc<Shared>, Queues) {
        let (control, control_rx) = unbounded();
        let mask = endpoint.is_none(); // a client masks its frames
        let shared = Arc::new(Shared {
            id,
            uri: uri.to_owned(),
            handler,
            endpoint,
            state: AtomicU8::new(State::Connecting as u8),
            close_requested: AtomicBool::new(false),
            outbox: Outbox::new(mask),
            control,
            waker,
            wire: Slot::default(),
            buffered: AtomicUsize::new(0),
            activity: AtomicU64::new(0),
            outstanding: Arc::default(),
            loop_pending: OnceLock::new(),
            max_buffered,
            protocol: OnceLock::new(),
            stats,
            response: OnceLock::new(),
            c_on_pong,
            finishing: Mutex::new(()),
            finished: Condvar::new(),
        });
        (shared, Queues { control: control_rx })
    }

    pub(crate) fn state(&self) -> Option<State> {
        match self.state.load(Ordering::SeqCst) {
            0 => Some(State::Connecting),
            1 => Some(State::Open),
            2 => Some(State::Closing),
            _ => None,
        }
    }

    /// Worker: the handshake finished. False if the application closed the
    /// connection while it was connecting (the handshake is then abandoned).
    pub(crate) fn mark_open(&self, protocol: Option<String>) -> bool {
        let _ = self.protocol.set(protocol.filter(|p| !p.is_empty()));
        self.state
            .compare_exchange(State::Connecting as u8, State::Open as u8, Ordering::SeqCst, Ordering::SeqCst)
            .is_ok()
    }

    pub(crate) fn mark_closing(&self) {
        self.state.store(State::Closing as u8, Ordering::SeqCst);
    }

    pub(crate) fn mark_finished(&self) {
        let _guard = self.finishing.lock();
        self.state.store(FINISHED, Ordering::SeqCst);
        self.finished.notify_all();
    }

    /// Settles the terminal event, atomically with `close`: from here on
    /// `close` is refused (`Closed`), and if the application's `close` got in
    /// first, a failure is reported as it asked, as `Close` 1006 (a browser
    /// does the same). So once `close` has returned `Ok`, the end is `Close`.
    pub(crate) fn conclude(&self, end: Event) -> Event {
        let closed_by_application = self.close_requested.swap(true, Ordering::SeqCst);
        self.mark_closing();
        match end {
            Event::Error(e) if closed_by_application => Event::Close { code: 1006, reason: e.message().to_owned() },
            other => other,
        }
    }

    /// True once the application asked to close; no message is delivered after it.
    pub(crate) fn close_requested(&self) -> bool {
        self.close_requested.load(Ordering::SeqCst)
    }

    /// Worker, with reconnect: back to connecting for another try. Returns
    /// false if the application closed meanwhile (the try is abandoned).
    pub(crate) fn mark_reconnecting(&self) -> bool {
        self.state.store(State::Connecting as u8, Ordering::SeqCst);
        !self.close_requested()
    }

    /// Worker: a value that changes whenever a command (not a message: see
    /// `Outbox::hinted`) has been queued.
    pub(crate) fn activity(&self) -> u64 {
        self.activity.load(Ordering::Acquire)
    }

    /// Handles: a command was queued; wake the worker if it sleeps.
    fn queued(&self) {
        self.activity.fetch_add(1, Ordering::Release);
        self.waker.wake();
    }

    /// Worker: `bytes` left the queue (written to the socket, or dropped).
    pub(crate) fn unbuffer(&self, bytes: usize) {
        self.buffered.fetch_sub(bytes, Ordering::SeqCst);
    }
}

/// A handle to one connection: cheap to clone, `Send + Sync`, usable from any
/// thread and from inside callbacks. The connection lives until it is closed
/// or ends, whether or not any handle is kept; once it has finished every
/// call returns [`Error::UnknownId`].
#[derive(Clone)]
pub struct Connection {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection").field("id", &self.shared.id).field("uri", &self.shared.uri).finish()
    }
}

impl PartialEq for Connection {
    fn eq(&self, other: &Self) -> bool {
        self.shared.id == other.shared.id
    }
}
impl Eq for Connection {}

impl Connection {
    pub(crate) fn from_shared(shared: Arc<Shared>) -> Connection {
        Connection { shared }
    }

    pub(crate) fn shared(&self) -> &Shared {
        &self.shared
    }

    /// The connection's id: never 0, never reused within a process.
    pub fn id(&self) -> u64 {
        self.shared.id
    }

    /// The URI it was created with.
    pub fn uri(&self) -> &str {
        &self.shared.uri
    }

    /// The named handler it was created with, if any.
    pub fn handler(&self) -> Option<&str> {
        self.shared.handler.as_deref()
    }

    /// The endpoint of the [`crate::Server`] that accepted it; `None` for a
    /// connection this process created.
    pub fn endpoint(&self) -> Option<&str> {
        self.shared.endpoint.as_deref()
    }

    /// Connecting, open or closing; [`Error::UnknownId`] once finished.
    /// Closing as soon as `close()` has returned, as a browser's `readyState`.
    ///
    /// # Errors
    /// [`Error::UnknownId`] once the connection has finished (its terminal
    /// event has been delivered).
    pub fn state(&self) -> Result<State, Error> {
        match self.shared.state() {
            Some(State::Open) if self.shared.close_requested() => Ok(State::Closing),
            state => state.ok_or(Error::UnknownId),
        }
    }

    /// The subprotocol the server chose; `None` when it chose none, and
    /// before open.
    pub fn protocol(&self) -> Option<String> {
        self.shared.protocol.get().cloned().flatten()
    }

    /// A snapshot of the connection's counters: bytes, messages and frames
    /// each way, pings, pongs, the last round-trip time and how long each
    /// phase of the connect took. Always on; final once finished (the
    /// snapshot taken in the terminal callback has every count).
    ///
    /// # Errors
    /// [`Error::UnknownId`] once the connection has finished.
    pub fn stats(&self) -> Result<ConnectionStats, Error> {
        self.state()?;
        Ok(self.shared.stats.snapshot())
    }

    /// The server's answer to the HTTP upgrade (status and headers): after
    /// open, and for a refused upgrade inside the terminal error callback
    /// (the status is then the refusal's, e.g. 401). `None` before a
    /// response arrived, when none did (failed before it, malformed), and
    /// for a connection a [`crate::Server`] accepted.
    pub fn response(&self) -> Option<HandshakeResponse> {
        self.shared.response.get().cloned()
    }

    /// Sends a ping with `data` (at most 125 bytes). It goes through the
    /// control queue, so it does not wait behind messages queued and not yet
    /// handed to the socket; before open it is sent right after the handshake. The answer arrives as [`crate::Event::Pong`]
    /// (when asked for with [`crate::Builder::on_pong`] or
    /// [`crate::Options::deliver_pongs`]) with the round-trip time, which
    /// [`Connection::stats`] also keeps.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for more than 125 bytes; otherwise as
    /// [`Connection::send_message`] ([`Error::Closed`], [`Error::UnknownId`]).
    pub fn ping(&self, data: impl Into<Bytes>) -> Result<(), Error> {
        let data = data.into();
        if data.len() > 125 {
            return Err(Error::InvalidArgument(format!(
                "ping payload is {} bytes; at most 125 fit in a control frame",
                data.len()
            )));
        }
        self.sendable()?;
        self.control(Control::Ping(data))
    }

    /// Bytes accepted by `send` and not yet written to the socket.
    ///
    /// # Errors
    /// [`Error::UnknownId`] once the connection has finished.
    pub fn buffered_amount(&self) -> Result<usize, Error> {
        self.state()?;
        Ok(self.shared.buffered.load(Ordering::SeqCst))
    }

    /// Queues a text message. Before the connection is open it is sent right
    /// after the handshake, in order with every other send.
    ///
    /// ```
    /// # let server = wsc::server::EchoServer::start("127.0.0.1:0")?;
    /// let (conn, events) = wsc::connect(&server.url("echo"))?;
    /// conn.send("queued until the handshake is done")?;
    /// # conn.close()?;
    /// # for _ in events {}
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// As [`Connection::send_message`].
    pub fn send(&self, text: impl Into<Utf8Bytes>) -> Result<(), Error> {
        self.send_message(Message::Text(text.into()))
    }

    /// Queues a binary message.
    ///
    /// # Errors
    /// As [`Connection::send_message`].
    pub fn send_binary(&self, data: impl Into<Bytes>) -> Result<(), Error> {
        self.send_message(Message::Binary(data.into()))
    }

    /// Queues a message.
    ///
    /// # Errors
    /// [`Error::Closed`] once closing (after `close`, or when the peer has
    /// closed); [`Error::QueueFull`] when the message would take the bytes
    /// waiting to be written past `max_buffered_bytes` (nothing is queued);
    /// [`Error::UnknownId`] once the connection has finished.
    pub fn send_message(&self, message: Message) -> Result<(), Error> {
        self.send_borrowed(Payload::from(&message), "message")
    }

    /// Queues a message framed straight from `payload` (for the C ABI's
    /// sends the copy into the outbox is the only one).
    ///
    /// # Errors
    /// As [`Connection::send_message`], and [`Error::InvalidArgument`] for
    /// unchecked text that is not UTF-8 (`what` names it).
    pub(crate) fn send_borrowed(&self, payload: Payload<'_>, what: &str) -> Result<(), Error> {
        let len = match &payload {
            Payload::Text(t) => t.len(),
            Payload::UncheckedText(b) | Payload::Binary(b) => b.len(),
        };
        self.enqueue(len, |outbox| {
            outbox.push(payload).map_err(|_| Error::InvalidArgument(format!("{what} is not valid UTF-8")))
        })
    }

    /// Counts `len` bytes against the buffered limit, frames the message
    /// into the outbox (`push`), and writes it or wakes the worker.
    fn enqueue(&self, len: usize, push: impl FnOnce(&Outbox) -> Result<(), Error>) -> Result<(), Error> {
        self.sendable()?;
        let s = &*self.shared;
        let before = s.buffered.fetch_add(len, Ordering::SeqCst);
        if before.saturating_add(len) > s.max_buffered {
            s.buffered.fetch_sub(len, Ordering::SeqCst);
            return Err(Error::QueueFull { buffered: before, limit: s.max_buffered });
        }
        if let Err(e) = push(&s.outbox) {
            s.buffered.fetch_sub(len, Ordering::SeqCst);
            return Err(e);
        }
        let writer = Writer { slot: &s.wire, outbox: &s.outbox, stats: &s.stats, unbuffer: &|n| s.unbuffer(n) };
        if !writer.try_write() {
            s.waker.wake(); // the outbox is its own sign of activity (see `Outbox::hinted`)
        }
        Ok(())
    }

    /// Closes with code 1000: queued messages are written first, then the
    /// closing handshake runs (bounded by the close timeout). On a connection
    /// still connecting the handshake is abandoned at once and the connection
    /// ends with `Close { code: 1006 }`. Once this has returned `Ok` the
    /// terminal event is `Close`, whatever else happens at the same moment.
    ///
    /// # Errors
    /// [`Error::Closed`] for a second close, or once the connection's end is
    /// already settled (inside its terminal callback); [`Error::UnknownId`]
    /// once it has finished.
    pub fn close(&self) -> Result<(), Error> {
        self.close_with(1000, "")
    }

    /// Closes with `code` (1000 or 3000–4999) and a reason of at most 123
    /// bytes; otherwise as [`Connection::close`].
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for another code or a longer reason
    /// (nothing happens); otherwise as [`Connection::close`].
    pub fn close_with(&self, code: u16, reason: &str) -> Result<(), Error> {
        if code != 1000 && !(3000..=4999).contains(&code) {
            return Err(Error::InvalidArgument(format!("close code {code} is not allowed: use 1000 or 3000-4999")));
        }
        if reason.len() > 123 {
            return Err(Error::InvalidArgument(format!(
                "close reason is {} bytes; at most 123 fit in a Close frame",
                reason.len()
            )));
        }
        self.request_close(code, reason)
    }

    /// Closing for `shutdown`: code 1001, never refused for its code.
    pub(crate) fn shutdown_close(&self) {
        let _ = self.request_close(1001, "shutting down");
    }

    fn request_close(&self, code: u16, reason: &str) -> Result<(), Error> {
        let s = &*self.shared;
        if s.state().is_none() {
            return Err(Error::UnknownId);
        }
        if s.close_requested.swap(true, Ordering::SeqCst) {
            return Err(Error::Closed);
        }
        // Closing while connecting abandons the handshake: the worker sees
        // the state change when the forced wake-up interrupts its poll.
        let _ =
            s.state.compare_exchange(State::Connecting as u8, State::Closing as u8, Ordering::SeqCst, Ordering::SeqCst);
        let _ = s.control.send(Control::Close { code, reason: reason.to_owned() });
        s.activity.fetch_add(1, Ordering::Release);
        s.waker.signal();
        Ok(())
    }

    /// Turns flow control on or off. While on, after each delivered message
    /// nothing more is read or delivered until [`Connection::message_complete`].
    /// Turning it off releases the gate.
    ///
    /// # Errors
    /// [`Error::UnknownId`] once the connection has finished.
    pub fn set_flow_control(&self, enabled: bool) -> Result<(), Error> {
        self.control(Control::SetFlow(enabled))
    }

    /// Says the last delivered message is done; with flow control on the next
    /// one may be delivered. With no message outstanding it does nothing.
    ///
    /// # Errors
    /// [`Error::UnknownId`] once the connection has finished.
    pub fn message_complete(&self) -> Result<(), Error> {
        let s = &*self.shared;
        s.state().ok_or(Error::UnknownId)?;
        // From the connection's own callback the worker is awake and looks
        // at the gate when the callback returns: no wake-up needed.
        if s.outstanding.complete() && current_worker() != Some(s.id) {
            s.waker.wake();
        }
        Ok(())
    }

    /// Blocks until the connection has finished (its terminal event has been
    /// delivered) or `timeout` passes. Any `timeout` works; one too large to
    /// represent as a deadline (`Duration::MAX`) waits without one.
    ///
    /// # Errors
    /// [`Error::Timeout`] when `timeout` passes first, and at once when
    /// called from the connection's own callbacks (it would wait for itself).
    pub fn wait(&self, timeout: Duration) -> Result<(), Error> {
        if current_worker() == Some(self.id()) {
            return Err(Error::Timeout("a connection cannot wait for itself from its own callback".into()));
        }
        if self.shared.state().is_some() && self.shared.loop_pending.get().is_some_and(|p| p.on_dispatcher()) {
            return Err(Error::InvalidArgument(
                "this thread dispatches the connection's event loop: waiting here would never end (dispatch instead)"
                    .into(),
            ));
        }
        let deadline = deadline_in(timeout);
        let mut guard = self.shared.finishing.lock();
        while self.shared.state().is_some() {
            let Some(deadline) = deadline else {
                self.shared.finished.wait(&mut guard);
                continue;
            };
            if self.shared.finished.wait_until(&mut guard, deadline).timed_out() {
                return Err(Error::Timeout(format!(
                    "connection {} still running after {} ms",
                    self.id(),
                    timeout.as_millis()
                )));
            }
        }
        Ok(())
    }

    /// `Ok` while something may still be sent: not finished, not closing.
    fn sendable(&self) -> Result<(), Error> {
        let s = &*self.shared;
        match s.state() {
            None => Err(Error::UnknownId),
            Some(State::Closing) => Err(Error::Closed),
            Some(_) if s.close_requested() => Err(Error::Closed),
            Some(_) => Ok(()),
        }
    }

    fn control(&self, c: Control) -> Result<(), Error> {
        let s = &*self.shared;
        s.state().ok_or(Error::UnknownId)?;
        s.control.send(c).map_err(|_| Error::UnknownId)?;
        s.queued();
        Ok(())
    }
}
