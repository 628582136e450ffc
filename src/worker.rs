//! The worker thread: one per connection, the owner of its socket, which it
//! lends to application threads only while it sleeps (see `wire`).
//!
//! The socket is non-blocking; the worker sleeps in `poll(2)` on it and on
//! the connection's eventfd (see `waker`), so an idle connection costs no CPU
//! and a send from another thread reaches the socket at once. Reading and
//! writing are independent: while the peer is not taking our data the worker
//! keeps reading and delivering (a peer that stops reading while its own
//! writes are blocked must not deadlock us), and while the flow gate is shut
//! it keeps writing but does not read. The loop ends in exactly one
//! [`Terminal`], which it returns rather than delivers: `lifecycle` delivers
//! it, so that it is delivered even when this loop panics.
//!
//! Every deadline is an `Option<Instant>`: a timeout too large to add to
//! "now" (`Duration::MAX`) means no deadline, never an overflow.

use crate::connection::{Connection, Control, Queues, Sink};
use crate::dial::{Dial, DialError};
use crate::error::{panic_text, ConnectionError, ErrorKind};
use crate::event::{Event, Message};
use crate::gate::Gate;
use crate::logging::wlog;
use crate::options::Options;
use crate::reconnect::{retried_close, retried_failure, retries_close, Backoff, Retry};
use crate::stats::{add, micros};
use crate::stream::{raw_fd, Stream};
use crate::target::Target;
use crate::waker::{deadline_in, Interest};
use crate::wire::{Held, Slot, Wire, LARGE};
use std::collections::VecDeque;
use std::os::fd::RawFd;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};
use tungstenite::protocol::frame::coding::CloseCode;
use tungstenite::protocol::{CloseFrame, Role};
use tungstenite::{Bytes, WebSocket};

/// How a connection ended: the last event it reports.
enum Terminal {
    Closed {
        code: u16,
        reason: String,
    },
    /// With the close code to send the peer, when RFC 6455 asks for one.
    Failed(ConnectionError, Option<CloseCode>),
}

/// How long a failed connection waits for the peer to close after our Close.
const LINGER: Duration = Duration::from_secs(1);

/// tungstenite's buffers (its read buffer, and any grown by a large
/// message) are given back when the worker goes to sleep after the
/// connection has been idle this long with nothing of a message in them (see
/// `frames`), and at its first sleep after the upgrade: an idle connection
/// keeps no buffer. The wake-up after that rebuilds them before anything is
/// read or written. Traffic that never pauses this long never pays for it.
const LEAN_AFTER_IDLE: Duration = Duration::from_secs(1);

/// The read buffer of a lean tungstenite: none. It is lean only while the
/// worker sleeps, and is never read, written or lent while lean.
const LEAN: usize = 0;

/// Connects, serves the connection until it ends, and returns its terminal
/// event (undelivered). Callbacks before it go to `sink`.
pub(crate) fn run(conn: &Connection, sink: &mut Sink, target: &Target, options: &Options, queues: Queues) -> Event {
    let gate =
        Gate::new(options.flow_control, conn.shared().outstanding.clone(), conn.shared().loop_pending.get().cloned());
    let mut worker = Worker { conn, sink, options, queues, gate, opened_at: None };
    let Some(settings) = options.reconnect else {
        return worker.connect_and_serve(target).into();
    };
    let mut backoff = Backoff::new(settings, conn.id());
    loop {
        let end = worker.connect_and_serve(target);
        if let Some(opened) = worker.opened_at.take() {
            backoff.opened_for(opened.elapsed());
        }
        if conn.shared().close_requested() {
            return end.into(); // nothing is retried after the application closed
        }
        let retry = match &end {
            Terminal::Failed(e, _) => retried_failure(e),
            Terminal::Closed { code, reason } => retried_close(*code, reason),
        };
        let Some(Retry { reason, retry_after }) = retry else {
            return end.into();
        };
        let Some((attempt, delay)) = backoff.next(retry_after) else {
            return Event::Error(reason); // the last retry failed too
        };
        if !conn.shared().mark_reconnecting() {
            return closed_while_connecting().into();
        }
        conn.shared().stats.reconnected();
        wlog!(Info, conn.id(), "reconnecting: attempt {attempt} in {} ms: {reason}", delay.as_millis());
        if let Err(end) = worker.deliver(Event::Reconnecting { attempt, delay, reason }) {
            return end.into();
        }
        if !worker.back_off(delay) {
            return closed_while_connecting().into();
        }
    }
}

/// Serves a connection a server accepted (its upgrade already answered)
/// until it ends, on the same loop as a client's, and returns its terminal
/// event (undelivered).
pub(crate) fn run_accepted(
    conn: &Connection,
    sink: &mut Sink,
    ws: WebSocket<Stream>,
    options: &Options,
    queues: Queues,
) -> Event {
    let gate =
        Gate::new(options.flow_control, conn.shared().outstanding.clone(), conn.shared().loop_pending.get().cloned());
    let mut worker = Worker { conn, sink, options, queues, gate, opened_at: None };
    if !conn.shared().mark_open(None) {
        return closed_while_connecting().into();
    }
    worker.open_phase(ws, Role::Server).into()
}

impl From<Terminal> for Event {
    fn from(t: Terminal) -> Event {
        match t {
            Terminal::Closed { code, reason } => Event::Close { code, reason },
            Terminal::Failed(e, _) => Event::Error(e),
        }
    }
}

struct Worker<'a> {
    conn: &'a Connection,
    sink: &'a mut Sink,
    options: &'a Options,
    queues: Queues,
    gate: Gate,
    /// When the current (re)connect opened, for reconnect's backoff reset.
    opened_at: Option<Instant>,
}

impl Worker<'_> {
    /// Waits out a reconnect delay; false if the application closed meanwhile.
    fn back_off(&self, delay: Duration) -> bool {
        let shared = self.conn.shared();
        let deadline = deadline_in(delay);
        loop {
            if shared.close_requested() {
                return false;
            }
            if deadline.is_some_and(|d| Instant::now() >= d) {
                return true;
            }
            // No socket: only `close` (which always signals) or the deadline wakes it.
            shared.waker.wait(-1, Interest { read: false, write: false }, deadline);
        }
    }

    fn connect_and_serve(&mut self, target: &Target) -> Terminal {
        let shared = self.conn.shared();
        let aborted = || shared.close_requested();
        let dial = Dial {
            target,
            options: self.options,
            waker: &shared.waker,
            aborted: &aborted,
            deadline: deadline_in(self.options.connect_timeout),
            id: shared.id,
            stats: &shared.stats,
            response: &shared.response,
            phases: Default::default(),
        };
        let (ws, protocol) = match dial.establish() {
            Ok(open) => open,
            Err(DialError::Aborted) => return closed_while_connecting(),
            Err(DialError::Failed(e)) => return Terminal::Failed(e, None),
        };
        if !shared.mark_open(protocol) {
            return closed_while_connecting();
        }
        self.open_phase(ws, Role::Client)
    }

    /// From `on_open` to the end: the same for both sides of a connection.
    fn open_phase(&mut self, ws: WebSocket<Stream>, role: Role) -> Terminal {
        let mut session = Session::new(ws, role, self.options, &self.conn.shared().wire);
        self.opened_at = Some(Instant::now());
        let end = match self.deliver(Event::Open) {
            Ok(()) => {
                fault_point(self.conn.uri());
                loop {
                    if let Err(end) = session.step(self) {
                        break end;
                    }
                }
            }
            Err(end) => end,
        };
        // Bytes handed to the socket are lost with it (a reconnect resends
        // only what was still queued).
        self.conn.shared().unbuffer(std::mem::take(&mut session.wire().in_flight));
        session.end(self, end)
    }

    /// Runs a user callback; a panic ends the connection, never the process.
    fn deliver(&mut self, event: Event) -> Result<(), Terminal> {
        let (sink, conn) = (&mut *self.sink, self.conn);
        catch_unwind(AssertUnwindSafe(|| sink(conn, event))).map_err(|panic| {
            let why = format!("a callback panicked: {}", panic_text(&*panic));
            Terminal::Failed(ConnectionError::new(ErrorKind::Callback, why), Some(CloseCode::Error))
        })
    }

    /// Applies queued control commands; returns a close request if one
    /// came, and passes application pings to `ping`.
    fn take_control(&mut self, mut ping: impl FnMut(Bytes)) -> Option<CloseFrame> {
        let mut close = None;
        while let Ok(c) = self.queues.control.try_recv() {
            match c {
                Control::SetFlow(on) => self.gate.set_enabled(on),
                Control::Close { code, reason } => {
                    close = Some(CloseFrame { code: CloseCode::from(code), reason: reason.into() })
                }
                Control::Ping(data) => ping(data),
            }
        }
        close
    }
}

/// Test builds only: connecting to this path makes the worker loop panic
/// outside any callback, as a bug in wsc would.
#[cfg(test)]
pub(crate) const PANIC_PATH: &str = "/wsc-test/panic-in-the-worker-loop";

fn fault_point(uri: &str) {
    #[cfg(test)]
    if uri.ends_with(PANIC_PATH) {
        panic!("injected fault: a panic in the worker loop");
    }
    let _ = uri;
}

fn closed_while_connecting() -> Terminal {
    Terminal::Closed { code: 1006, reason: "closed by the application while connecting".into() }
}

/// Where the closing handshake stands.
enum Closing {
    /// Nothing asked yet.
    No,
    /// The application asked; our Close goes out once queued messages are
    /// written. A peer that takes none of them until `deadline` (one close
    /// timeout, renewed whenever the socket accepts more) ends it with 1006.
    Requested { frame: CloseFrame, deadline: Option<Instant> },
    /// A Close frame was sent or received; waiting for the rest until `deadline`.
    Underway { deadline: Option<Instant>, peer: Option<(u16, String)> },
}

/// Keepalive pings: one every `interval`; nothing received within `timeout`
/// of a ping ends the connection. Suspended while the gate is shut.
struct Keepalive {
    interval: Duration,
    timeout: Duration,
    /// `None`: the interval is too long to ever come round.
    next_ping: Option<Instant>,
    waiting_since: Option<Instant>,
    /// Keepalive pings sent: the payload of the next one.
    sent: u64,
}

impl Keepalive {
    /// When nothing received since a ping means the peer is gone.
    fn pong_deadline(&self) -> Option<Instant> {
        self.waiting_since.and_then(|t| t.checked_add(self.timeout))
    }

    fn deadline(&self) -> Option<Instant> {
        match (self.pong_deadline(), self.next_ping) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }
}

/// Pings awaiting their pong, for the round-trip time: at most this many
/// are remembered (a peer answers only the latest of several, RFC 6455 5.5.3).
const PINGS_REMEMBERED: usize = 8;

/// The open phase: one socket, its queues and timers.
struct Session {
    /// The socket, held while the worker is awake (see `wire`); always
    /// `Some` until the session is dropped.
    link: Held,
    role: Role,
    fd: RawFd,
    write_ready: bool,
    /// Worth calling `read` (no `WouldBlock` since the last readiness).
    read_ready: bool,
    /// `Shared::activity` when the queues were last drained.
    seen_activity: u64,
    closing: Closing,
    keepalive: Option<Keepalive>,
    close_timeout: Duration,
    /// When to give tungstenite's buffers back if the connection stays idle.
    lean_at: Option<Instant>,
    /// Messages sent and received when `lean_at` was set (activity since
    /// then postpones it).
    traffic_at_arming: u64,
    /// The configured read buffer size, for the rebuild on waking.
    read_buffer: usize,
    /// tungstenite's last `read` wanted more bytes (it holds no whole frame).
    read_drained: bool,
    /// Pings sent and not yet answered: payload and when it was sent.
    pings: VecDeque<(Bytes, Instant)>,
    /// Application pings taken from the control queue, not yet written.
    ping_queue: Vec<Bytes>,
    /// The first sleep since the upgrade has happened (see `sleep`).
    slept_since_open: bool,
    /// tungstenite holds no buffers (an idle worker sleeps); senders write
    /// through the stream underneath and do not need them.
    lean: bool,
}

impl Session {
    fn new(ws: WebSocket<Stream>, role: Role, options: &Options, slot: &Slot) -> Session {
        let fd = raw_fd(ws.get_ref());
        let mut link = slot.lock_arc();
        *link = Some(Wire::new(ws));
        let keepalive = options.ping_interval.map(|interval| Keepalive {
            interval,
            timeout: options.pong_timeout,
            next_ping: deadline_in(interval),
            waiting_since: None,
            sent: 0,
        });
        Session {
            link,
            role,
            fd,
            write_ready: false,
            read_ready: true,
            seen_activity: 0,
            lean_at: None,
            traffic_at_arming: 0,
            read_buffer: options.read_buffer_size,
            read_drained: false,
            closing: Closing::No,
            keepalive,
            close_timeout: options.close_timeout,
            pings: VecDeque::new(),
            ping_queue: Vec::new(),
            slept_since_open: false,
            lean: false,
        }
    }

    fn wire(&mut self) -> &mut Wire {
        self.link.as_mut().expect("a session holds its wire until it is dropped")
    }

    fn wired(&self) -> &Wire {
        self.link.as_ref().expect("a session holds its wire until it is dropped")
    }

    /// tungstenite holds nothing but whole, processed messages, and nothing
    /// waits to be written: it can be rebuilt without losing a byte.
    fn quiescent(&self) -> bool {
        self.read_drained
            && matches!(self.closing, Closing::No)
            && !self.wired().write_blocked
            && !self.wired().needs_flush
            && self.wired().in_flight == 0
            && self.wired().ws.get_ref().at_message_boundary()
    }

    /// The idle time before giving the buffers back has passed without
    /// traffic (with traffic, it starts again) and nothing would be lost.
    fn lean_due(&mut self, w: &Worker) -> bool {
        if !self.lean_at.is_some_and(|t| Instant::now() >= t) || !self.quiescent() {
            return false;
        }
        if traffic(w) != self.traffic_at_arming {
            self.arm(w);
            return false;
        }
        true
    }

    /// Gives tungstenite's buffers back if the connection stays idle.
    fn arm(&mut self, w: &Worker) {
        self.lean_at = deadline_in(LEAN_AFTER_IDLE);
        self.traffic_at_arming = traffic(w);
    }

    /// The same socket in a new tungstenite `WebSocket` (nothing else of
    /// tungstenite's state is kept: see `quiescent`), reading through a
    /// buffer of `read_buffer` bytes.
    fn rebuild(&mut self, read_buffer: usize) {
        let old = self.link.take().expect("a session holds its wire until it is dropped");
        let config = old.ws.get_config().read_buffer_size(read_buffer);
        let ws = WebSocket::from_raw_socket(old.ws.into_inner(), self.role, Some(config));
        *self.link = Some(Wire { ws, ..old });
    }

    /// tungstenite (and the write buffers) without buffers, while the worker sleeps.
    fn go_lean(&mut self, w: &Worker) {
        self.rebuild(LEAN);
        self.wire().ws.get_mut().release();
        self.wire().spare = Vec::new();
        w.conn.shared().outbox.release();
        crate::scratch::release();
        self.lean = true;
        self.lean_at = None;
    }

    /// Awake again: tungstenite gets its buffers back before any use, and
    /// gives them back if the connection stays idle.
    fn wake_lean(&mut self, w: &Worker) {
        if std::mem::take(&mut self.lean) {
            self.rebuild(self.read_buffer);
            self.arm(w);
        }
    }

    /// A message of `len` bytes passed through tungstenite's buffers.
    fn passed(&mut self, w: &Worker, len: usize) {
        if len > LARGE {
            self.arm(w);
        }
    }

    /// The last word to the peer: a failure RFC 6455 wants explained gets
    /// its Close frame (and a linger so it arrives), however it came about.
    fn end(&mut self, w: &Worker, end: Terminal) -> Terminal {
        if let Terminal::Failed(_, Some(code)) = &end {
            self.fail_politely(w, *code);
        }
        end
    }

    fn step(&mut self, w: &mut Worker) -> Result<(), Terminal> {
        self.lent_back(w)?;
        self.control(w);
        self.write(w)?;
        self.read(w)?;
        self.timers(w)?;
        self.sleep(w);
        Ok(())
    }

    /// What application threads did with the wire while the worker slept.
    fn lent_back(&mut self, w: &Worker) -> Result<(), Terminal> {
        let wire = self.wire();
        wire.flush_lent = false;
        if let Some(e) = wire.failed.take() {
            return Err(self.failure(e));
        }
        if std::mem::take(&mut wire.large) {
            self.arm(w);
        }
        Ok(())
    }

    fn control(&mut self, w: &mut Worker) {
        self.seen_activity = w.conn.shared().activity();
        let queue = &mut self.ping_queue;
        if let Some(frame) = w.take_control(|data| queue.push(data)) {
            if matches!(self.closing, Closing::No) {
                wlog!(
                    Debug,
                    w.conn.id(),
                    "closing requested: code {} {:?}",
                    u16::from(frame.code),
                    frame.reason.as_str()
                );
                self.closing = Closing::Requested { frame, deadline: deadline_in(self.close_timeout) };
                w.conn.shared().mark_closing();
            }
        }
    }

    /// Writes a ping (keepalive or the application's) and remembers when.
    fn ping(&mut self, w: &mut Worker, data: Bytes) -> Result<(), Terminal> {
        if !self.wire().ws.can_write() {
            return Ok(());
        }
        if self.pings.len() == PINGS_REMEMBERED {
            self.pings.pop_front();
        }
        self.pings.push_back((data.clone(), Instant::now()));
        add(&w.conn.shared().stats.pings_sent, 1);
        wlog!(Trace, w.conn.id(), "ping sent ({} bytes)", data.len());
        self.wire().needs_flush = true;
        let r = self.wire().ws.write(tungstenite::Message::Ping(data));
        self.written(r).map(drop)
    }

    /// A pong arrived: the round-trip time of the ping it answers (the
    /// newest with the same payload; older ones will not be answered).
    fn ponged(&mut self, w: &Worker, data: &Bytes) -> Option<Duration> {
        let stats = &w.conn.shared().stats;
        add(&stats.pongs_received, 1);
        let at = self.pings.iter().rposition(|(sent, _)| sent == data)?;
        let rtt = self.pings[at].1.elapsed();
        self.pings.drain(..=at);
        stats.last_rtt_us.store(micros(rtt).max(1), Relaxed);
        wlog!(Trace, w.conn.id(), "pong received: round trip {} us", rtt.as_micros());
        Some(rtt)
    }

    /// Hands queued messages to tungstenite and flushes; sends our Close once
    /// everything queued before it is written.
    fn write(&mut self, w: &mut Worker) -> Result<(), Terminal> {
        if self.wire().write_blocked {
            if !self.write_ready {
                return Ok(());
            }
            self.flush(w)?;
            if self.wire().write_blocked {
                return Ok(());
            }
        }
        for data in std::mem::take(&mut self.ping_queue) {
            if matches!(self.closing, Closing::No | Closing::Requested { .. }) {
                self.ping(w, data)?;
            }
        }
        if self.wire().write_blocked {
            return Ok(());
        }
        // Once a Close is under way no data goes out (with reconnect, what is
        // still in the outbox waits for the next connection).
        if !matches!(self.closing, Closing::Underway { .. }) {
            self.take_outbox(w);
        }
        if self.wire().needs_flush {
            self.flush(w)?;
        }
        if matches!(self.closing, Closing::Requested { .. })
            && !self.wire().write_blocked
            && w.conn.shared().outbox.is_empty()
        {
            self.send_close(w.conn.id())?;
        }
        Ok(())
    }

    /// Moves the messages senders framed into the stream, behind what is
    /// there (or drops them if tungstenite may no longer write).
    fn take_outbox(&mut self, w: &Worker) {
        let shared = w.conn.shared();
        if !self.wire().ws.can_write() {
            shared.unbuffer(shared.outbox.clear());
            return;
        }
        if self.wire().take_outbox(&shared.outbox, &shared.stats) && std::mem::take(&mut self.wire().large) {
            self.arm(w);
        }
    }

    fn flush(&mut self, w: &mut Worker) -> Result<(), Terminal> {
        let r = self.wire().ws.flush();
        if self.written(r)? {
            w.conn.shared().unbuffer(std::mem::take(&mut self.wire().in_flight));
            self.wire().write_blocked = false;
            self.wire().needs_flush = false;
        }
        Ok(())
    }

    /// A write's outcome: true if it went through. `WouldBlock` means
    /// tungstenite kept the data and the worker waits for POLLOUT; any other
    /// error ends the connection.
    fn written(&mut self, r: tungstenite::Result<()>) -> Result<bool, Terminal> {
        match r {
            Ok(()) => Ok(true),
            Err(tungstenite::Error::Io(e)) if e.kind() == std::io::ErrorKind::WouldBlock => {
                self.wire().write_blocked = true;
                self.write_ready = false;
                Ok(false)
            }
            Err(e) => Err(self.failure(e)),
        }
    }

    fn send_close(&mut self, id: u64) -> Result<(), Terminal> {
        let Closing::Requested { frame, .. } = std::mem::replace(&mut self.closing, Closing::No) else {
            return Ok(());
        };
        self.closing = Closing::Underway { deadline: deadline_in(self.close_timeout), peer: None };
        self.wire().accepting = false;
        wlog!(Debug, id, "Close sent: code {}", u16::from(frame.code));
        let r = self.wire().ws.close(Some(frame));
        self.written(r).map(drop)
    }

    /// Should the socket be read now? Not while the gate is shut, unless the
    /// application is closing (then messages are read and dropped).
    fn wants_read(&self, w: &Worker) -> bool {
        w.gate.is_open() || w.conn.shared().close_requested() || !matches!(self.closing, Closing::No)
    }

    fn read(&mut self, w: &mut Worker) -> Result<(), Terminal> {
        while self.read_ready && self.wants_read(w) {
            match self.wire().ws.read() {
                Ok(msg) => {
                    self.read_drained = false;
                    self.passed(w, msg.len());
                    self.received(w, msg)?
                }
                Err(tungstenite::Error::Io(e)) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    self.read_ready = false;
                    self.read_drained = true;
                }
                Err(tungstenite::Error::ConnectionClosed) => return Err(self.closed()),
                Err(e) => return Err(self.failure(e)),
            }
        }
        if self.wire().needs_flush && !self.wire().write_blocked {
            self.flush(w)?;
        }
        Ok(())
    }

    fn received(&mut self, w: &mut Worker, msg: tungstenite::Message) -> Result<(), Terminal> {
        if let Some(k) = &mut self.keepalive {
            k.waiting_since = None;
        }
        let message = match msg {
            tungstenite::Message::Text(t) => Message::Text(t),
            tungstenite::Message::Binary(b) => Message::Binary(b),
            tungstenite::Message::Ping(_) => {
                self.wire().needs_flush = true;
                return Ok(());
            }
            tungstenite::Message::Close(frame) => {
                let peer = frame.map_or((1005, String::new()), |f| (u16::from(f.code), f.reason.to_string()));
                wlog!(Debug, w.conn.id(), "Close received: code {} {:?}", peer.0, peer.1);
                self.peer_closed(w, peer);
                return Ok(());
            }
            tungstenite::Message::Pong(data) => {
                let rtt = self.ponged(w, &data);
                if w.options.pongs {
                    w.deliver(Event::Pong { data, rtt })?;
                }
                return Ok(());
            }
            tungstenite::Message::Frame(_) => return Ok(()),
        };
        let conn = w.conn;
        let stats = &conn.shared().stats;
        add(&stats.messages_received, 1);
        add(&stats.bytes_received, message.len() as u64);
        if w.conn.shared().close_requested() || !matches!(self.closing, Closing::No) {
            return Ok(()); // closing: read and dropped
        }
        w.gate.take();
        w.deliver(Event::Message(message))?;
        // Send what the callback queued before reading on (ping-pong latency).
        let shared = w.conn.shared();
        if shared.activity() == self.seen_activity && !shared.outbox.hinted() {
            return Ok(());
        }
        self.control(w);
        self.write(w)
    }

    fn peer_closed(&mut self, w: &mut Worker, peer: (u16, String)) {
        let code = peer.0;
        self.wire().needs_flush = true; // tungstenite queued the Close reply
        self.wire().accepting = false;
        w.conn.shared().mark_closing();
        self.closing = match std::mem::replace(&mut self.closing, Closing::No) {
            Closing::Underway { deadline, .. } => Closing::Underway { deadline, peer: Some(peer) },
            _ => Closing::Underway { deadline: deadline_in(self.close_timeout), peer: Some(peer) },
        };
        // Messages still queued can no longer be sent on this connection;
        // with reconnect they wait for the next one if the peer asked for a
        // later try.
        let kept = w.options.reconnect.is_some() && retries_close(code);
        if !kept {
            let shared = w.conn.shared();
            shared.unbuffer(shared.outbox.clear());
        }
    }

    /// The closing handshake finished and the peer closed TCP.
    fn closed(&self) -> Terminal {
        match &self.closing {
            Closing::Underway { peer: Some((code, reason)), .. } => {
                Terminal::Closed { code: *code, reason: reason.clone() }
            }
            _ => Terminal::Closed { code: 1005, reason: String::new() },
        }
    }

    /// Turns a tungstenite error into the terminal event. (Once the
    /// application asked to close, `Shared::conclude` reports a failure as
    /// Close 1006, as a browser does.)
    fn failure(&self, e: tungstenite::Error) -> Terminal {
        if let Closing::Underway { peer: Some((code, reason)), .. } = &self.closing {
            return Terminal::Closed { code: *code, reason: reason.clone() };
        }
        let (err, code) = classify(e);
        Terminal::Failed(err, code)
    }

    /// Fails the connection as RFC 6455 asks: a Close frame with the
    /// reason's code, then the socket is dropped (after a short linger).
    fn fail_politely(&mut self, w: &Worker, code: CloseCode) {
        self.wire().accepting = false;
        if self.wire().ws.can_write() {
            let _ = self.wire().ws.close(Some(CloseFrame { code, reason: "".into() }));
            let _ = self.wire().ws.flush();
        }
        self.linger(&w.conn.shared().waker);
    }

    /// Half-closes, then discards what the peer still sends until it closes
    /// or a short deadline passes. Closing a socket with unread data makes
    /// Linux send a reset, and the peer would lose our Close frame.
    /// Never inlined: its 4 KiB buffer would otherwise sit in the open
    /// phase's frame, resident for the connection's whole life (see `stack`).
    #[inline(never)]
    fn linger(&self, waker: &crate::waker::Waker) {
        // SAFETY: shutdown and recv on our own open socket, into a local buffer.
        unsafe { libc::shutdown(self.fd, libc::SHUT_WR) };
        let deadline = Instant::now() + LINGER.min(self.close_timeout);
        let mut buf = [0u8; 4096];
        while Instant::now() < deadline {
            waker.wait(self.fd, Interest { read: true, write: false }, Some(deadline));
            loop {
                let n = unsafe { libc::recv(self.fd, buf.as_mut_ptr().cast(), buf.len(), libc::MSG_DONTWAIT) };
                if n == 0 || (n < 0 && std::io::Error::last_os_error().kind() != std::io::ErrorKind::WouldBlock) {
                    return; // the peer closed too (or the socket failed)
                }
                if n < 0 {
                    break;
                }
            }
        }
    }

    fn timers(&mut self, w: &mut Worker) -> Result<(), Terminal> {
        let now = Instant::now();
        if let Closing::Requested { deadline, .. } = &self.closing {
            if deadline.map_or(true, |d| now < d) {
                return Ok(());
            }
            let ms = self.close_timeout.as_millis();
            return Err(Terminal::Closed {
                code: 1006,
                reason: format!("close timeout: the peer took none of the queued messages for {ms} ms"),
            });
        }
        if let Closing::Underway { deadline, peer } = &self.closing {
            if deadline.map_or(true, |d| now < d) {
                return Ok(());
            }
            let ms = self.close_timeout.as_millis();
            return Err(match peer {
                Some((code, reason)) => Terminal::Closed { code: *code, reason: reason.clone() },
                None => Terminal::Closed {
                    code: 1006,
                    reason: format!("close timeout: the peer did not answer our Close within {ms} ms"),
                },
            });
        }
        let gate_open = w.gate.is_open();
        let Some(k) = &mut self.keepalive else {
            return Ok(());
        };
        if !gate_open {
            k.waiting_since = None; // nothing is read while the gate is shut
            return Ok(());
        }
        if let Some(deadline) = k.pong_deadline() {
            if now >= deadline {
                let ms = k.timeout.as_millis();
                let why = format!("keepalive timeout: nothing received within {ms} ms of a ping");
                return Err(Terminal::Failed(ConnectionError::new(ErrorKind::Timeout, why), None));
            }
        }
        if k.next_ping.is_some_and(|t| now >= t) {
            k.next_ping = now.checked_add(k.interval);
            k.waiting_since.get_or_insert(now);
            // A sequence number, so each pong finds its own ping even when
            // the peer answers slower than the interval.
            k.sent += 1;
            let seq = Bytes::copy_from_slice(&k.sent.to_be_bytes());
            self.ping(w, seq)?;
            if !self.wire().write_blocked {
                self.flush(w)?;
            }
        }
        Ok(())
    }

    fn deadline(&self, w: &Worker) -> Option<Instant> {
        let timer = match &self.closing {
            Closing::Underway { deadline, .. } | Closing::Requested { deadline, .. } => *deadline,
            _ if w.gate.is_open() => self.keepalive.as_ref().and_then(Keepalive::deadline),
            _ => None,
        };
        // A shrink that came due but could not happen yet waits for the
        // next wake-up anyway; only a future one sets a deadline.
        let shrink = self.lean_at.filter(|t| *t > Instant::now());
        match (timer, shrink) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Sleeps until the socket, a command or a timer needs the worker.
    fn sleep(&mut self, w: &mut Worker) {
        let waker = &w.conn.shared().waker;
        waker.prepare_sleep();
        // Everything below is re-checked after announcing sleep, so a
        // `message_complete` or send racing with us is never missed.
        let reading = self.wants_read(w);
        if reading && self.read_ready {
            waker.cancel_sleep();
            return; // the gate just opened: buffered data may be waiting
        }
        let wire = self.wired();
        // Once a Close is under way queued messages stay queued (see
        // `write`): they are no reason to stay awake, or the worker would
        // spin without ever polling for the peer's answer.
        let takes_data = !matches!(self.closing, Closing::Underway { .. });
        let more_to_write =
            !wire.write_blocked && (wire.needs_flush || (takes_data && !w.conn.shared().outbox.is_empty()));
        let close_due = matches!(self.closing, Closing::Requested { .. }) && !self.wire().write_blocked;
        if more_to_write || close_due || !w.queues.control.is_empty() {
            waker.cancel_sleep();
            return;
        }
        let interest = Interest { read: reading, write: self.wire().write_blocked };
        // A socket we want nothing from is left out, or a hang-up would spin us.
        let fd = if interest.read || interest.write { self.fd } else { -1 };
        // At the first sleep since the upgrade, and after idling: keep no
        // buffer while asleep, and give back the stack the upgrade used.
        if !std::mem::replace(&mut self.slept_since_open, true) {
            match self.quiescent() {
                true => self.go_lean(w),
                false => self.arm(w), // not now: once idle
            }
            crate::stack::trim();
        } else if self.lean_due(w) {
            self.go_lean(w);
        }
        let deadline = self.deadline(w);
        // Asleep, the worker lends the socket to application threads.
        self.wire().flush_lent = true;
        let ready = Held::unlocked(&mut self.link, || waker.wait(fd, interest, deadline));
        self.wake_lean(w);
        self.read_ready |= ready.readable || ready.hangup;
        self.write_ready |= ready.writable || ready.hangup;
        if let Closing::Requested { deadline, .. } = &mut self.closing {
            if ready.writable {
                *deadline = deadline_in(self.close_timeout); // the peer is taking data
            }
        }
    }
}

impl Drop for Session {
    /// The socket closes; application threads find no wire and queue.
    fn drop(&mut self) {
        drop(self.link.take());
    }
}

/// Data messages sent and received so far (a cheap sign of activity).
fn traffic(w: &Worker) -> u64 {
    let stats = &w.conn.shared().stats;
    stats.messages_sent.load(Relaxed).wrapping_add(stats.messages_received.load(Relaxed))
}

/// What a tungstenite error means for the user, and the close code (if
/// any) that tells the peer why we are failing the connection.
fn classify(e: tungstenite::Error) -> (ConnectionError, Option<CloseCode>) {
    use tungstenite::error::ProtocolError as P;
    use tungstenite::Error as E;
    let lost = |m: String| (ConnectionError::new(ErrorKind::ConnectionLost, m), None);
    match e {
        E::Io(io) => match io.kind() {
            std::io::ErrorKind::ConnectionReset
            | std::io::ErrorKind::BrokenPipe
            | std::io::ErrorKind::ConnectionAborted
            | std::io::ErrorKind::UnexpectedEof => lost(format!("connection lost: {io}")),
            _ => (ConnectionError::new(ErrorKind::Other, format!("I/O error: {io}")), None),
        },
        E::Protocol(P::ResetWithoutClosingHandshake) => {
            lost("connection lost: the peer closed TCP without a closing handshake".into())
        }
        E::AlreadyClosed | E::ConnectionClosed => lost("connection lost: the socket is already closed".into()),
        E::Protocol(p) => (
            ConnectionError::new(ErrorKind::Protocol, format!("protocol violation by the peer: {p}")),
            Some(CloseCode::Protocol),
        ),
        E::Utf8(_) => (
            ConnectionError::new(
                ErrorKind::Protocol,
                "protocol violation by the peer: invalid UTF-8 in a text message",
            ),
            Some(CloseCode::Invalid),
        ),
        E::Capacity(c) => (
            ConnectionError::new(ErrorKind::MessageTooBig, format!("incoming message too big: {c}")),
            Some(CloseCode::Size),
        ),
        E::Tls(t) => (ConnectionError::new(ErrorKind::Tls, format!("TLS error: {t}")), None),
        other => (ConnectionError::new(ErrorKind::Other, format!("unexpected error: {other}")), None),
    }
}
