//! A connection's life, in one place: admit → register → spawn → run →
//! terminal event → deregister → finished → thread exit.
//!
//! Every API style (callbacks, channel, named handlers, C) starts here, and
//! `shutdown` ends here, so the promises that span the whole life are kept by
//! one owner rather than by convention across modules:
//!
//! * `shutdown` returning `Ok` means no worker runs: a connect is admitted
//!   under a lock that `shutdown` takes to stop admitting (see `registry`),
//!   so it either is refused or has its worker counted before shutdown looks.
//! * Exactly one terminal event, then the id is gone: the steps after `run`
//!   are done by a guard's `Drop`, so no panic — in a callback, in the worker
//!   loop, in wsc itself — can skip deregistering or marking finished, and a
//!   panic in the worker loop still ends in one `Error` event.
//! * Server-side connections live the same life from their admission on
//!   (the acceptor answers everything else without a thread, see
//!   `server::acceptor`), and reconnect stays inside `worker::run`, so
//!   neither adds a second path through it.
//! * With an event loop the terminal callback runs on the application's
//!   thread, so the last step (deregister, finished) travels with the
//!   terminal event and runs after that callback (see `event_loop`).

use crate::accept::Upgraded;
use crate::connection::{set_current_worker, Connection, Shared, Sink};
use crate::error::{panic_text, ConnectionError, Error, ErrorKind};
use crate::event::Event;
use crate::event_loop::Attachment;
use crate::handler::handler_sink;
use crate::logging::wlog;
use crate::options::Options;
use crate::registry::registry;
use crate::server::ServerShared;
use crate::stats::Stats;
use crate::stream::{tcp, Stream, Transport};
use crate::target::Target;
use crate::waker::{deadline_in, StopSignal, Waker};
use crate::worker;
use std::net::TcpListener;
use std::os::fd::AsRawFd;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tungstenite::protocol::Role;
use tungstenite::WebSocket;

/// Registers a connection and starts its worker. Every API style ends here.
pub(crate) fn start(uri: &str, options: &Options, handler: Option<String>, sink: Sink) -> Result<Connection, Error> {
    let target = Target::parse(uri)?;
    let reg = registry();
    let _admitted = reg.admit()?;
    let waker = Waker::new().map_err(|e| Error::Internal(format!("cannot create eventfd: {e}")))?;
    let id = reg.next_id();
    let (shared, queues) =
        Shared::new(id, uri, handler, None, options.max_buffered_bytes, waker, Arc::default(), options.c_on_pong);
    let conn = Connection::from_shared(shared.clone());
    let life = Life::new(conn.clone(), sink, options)?;
    reg.insert(shared);
    let options = options.clone();
    let spawned = spawn(id, format!("wsc-{id}"), options.stack_size, move || {
        life.run(|conn, sink| worker::run(conn, sink, &target, &options, queues));
    });
    if let Err(e) = spawned {
        // The closure (and with it `life`) was dropped unrun: its guard has
        // already deregistered the connection and marked it finished.
        return Err(Error::Internal(format!("cannot start a worker thread: {e}")));
    }
    Ok(conn)
}

/// One connection from registration to finished. Whatever way it is
/// dropped — after its terminal event, during a panic, or never run because
/// its thread could not start — the connection leaves the registry and
/// `wait` returns.
struct Life {
    conn: Connection,
    sink: Sink,
    done: bool,
    /// With event-loop delivery: the tie to the loop, which runs the
    /// terminal callback and then finishes the connection.
    attachment: Option<Attachment>,
}

impl Life {
    /// Runs the connection with `body` (the worker loop of one side), then
    /// delivers its terminal event and finishes it.
    fn run(mut self, body: impl FnOnce(&Connection, &mut Sink) -> Event) {
        let (conn, sink) = (&self.conn, &mut self.sink);
        let end = catch_unwind(AssertUnwindSafe(|| body(conn, sink))).unwrap_or_else(|panic| {
            let why = format!("internal error: wsc panicked on the worker thread: {}", panic_text(&*panic));
            Event::Error(ConnectionError::new(ErrorKind::Other, why))
        });
        let end = self.conn.shared().conclude(end);
        log_end(self.conn.id(), &end);
        if let Some(attachment) = self.attachment.take() {
            self.done = true; // the loop finishes it, after the terminal callback
            let conn = self.conn.clone();
            attachment.deliver_terminal(&self.conn, end, Box::new(move || finish_connection(&conn)));
            return;
        }
        let (conn, sink) = (&self.conn, &mut self.sink);
        // A panic in the terminal callback is contained: there is nothing
        // left to report it to.
        let _ = catch_unwind(AssertUnwindSafe(|| sink(conn, end)));
        self.finish();
    }

    fn finish(&mut self) {
        if !std::mem::replace(&mut self.done, true) {
            if let Some(attachment) = self.attachment.take() {
                attachment.abandon();
            }
            finish_connection(&self.conn);
        }
    }
}

/// The last step of a connection's life: the id is forgotten and `wait` returns.
fn finish_connection(conn: &Connection) {
    registry().remove(conn.id());
    conn.shared().mark_finished();
}

impl Life {
    /// A life for `conn`, delivering through `options`' event loop if it names one.
    fn new(conn: Connection, sink: Sink, options: &Options) -> Result<Life, Error> {
        let Some(lp) = &options.event_loop else {
            return Ok(Life { conn, sink, done: false, attachment: None });
        };
        let lp =
            lp.0.upgrade()
                .ok_or_else(|| Error::InvalidArgument("the options name an event loop that was freed".into()))?;
        let (max_messages, max_bytes) = options.loop_max_pending;
        let (attachment, queuing, pending) = lp.attach(sink, max_messages, max_bytes);
        let _ = conn.shared().loop_pending.set(pending);
        Ok(Life { conn, sink: queuing, done: false, attachment: Some(attachment) })
    }
}

/// The connection's end, for the log: errors at ERROR, closes at INFO.
fn log_end(id: u64, end: &Event) {
    match end {
        Event::Error(e) => match e.http_status() {
            Some(status) => wlog!(Error, id, "connection failed ({:?}, HTTP {status}): {e}", e.kind()),
            None => wlog!(Error, id, "connection failed ({:?}): {e}", e.kind()),
        },
        Event::Close { code, reason } => wlog!(Info, id, "connection closed: code {code} {reason:?}"),
        _ => {}
    }
}

impl Drop for Life {
    fn drop(&mut self) {
        self.finish();
    }
}

/// Starts a worker thread that the registry counts until it exits (so
/// `shutdown` can wait for it), as the worker of connection `id`.
fn spawn(id: u64, name: String, stack: usize, body: impl FnOnce() + Send + 'static) -> std::io::Result<()> {
    let thread = std::thread::Builder::new().name(name).stack_size(stack);
    registry().spawn_worker(id, move || {
        thread.spawn(move || {
            let _exit = ThreadExit(id);
            set_current_worker(id);
            body();
        })
    })
}

/// Starts a server's acceptor (`server::acceptor`) on a counted thread.
pub(crate) fn serve(server: Arc<ServerShared>, listener: TcpListener) -> Result<(), Error> {
    let reg = registry();
    let _admitted = reg.admit()?;
    listener.set_nonblocking(true).map_err(|e| Error::Internal(format!("cannot listen: {e}")))?;
    let id = reg.next_id();
    server.started(id);
    reg.add_server(&server);
    let name = format!("wsc-accept-{}", server.addr.port());
    spawn(id, name, SERVER_STACK, move || crate::server::acceptor::run(&server, &listener))
        .map_err(|e| Error::Internal(format!("cannot start the accept thread: {e}")))
}

/// Stack of a server's threads (its connections run the handlers).
const SERVER_STACK: usize = 256 << 10;

/// Gives an admitted upgrade its own worker thread, which answers 101 and
/// then serves it. Counted in the server's `live` until the thread ends.
///
/// # Errors
/// [`Error::Shutdown`] once wsc shuts down; [`Error::Internal`] when no
/// thread can be started (the socket closes).
pub(crate) fn start_accepted(server: &Arc<ServerShared>, upgraded: Upgraded) -> Result<(), Error> {
    let reg = registry();
    let _admitted = reg.admit()?;
    let id = reg.next_id();
    server.live.fetch_add(1, Ordering::SeqCst);
    server.started(id);
    let s = server.clone();
    let spawned = spawn(id, format!("wsc-{id}"), SERVER_STACK, move || {
        let _live = Admitted(s.clone());
        serve_one(&s, id, upgraded);
    });
    spawned.map_err(|e| {
        server.live.fetch_sub(1, Ordering::SeqCst); // the socket was dropped: the client sees the close
        Error::Internal(format!("cannot start a worker thread: {e}"))
    })
}

/// Counts an admitted connection out of its server when its thread ends.
struct Admitted(Arc<ServerShared>);

impl Drop for Admitted {
    fn drop(&mut self) {
        self.0.live.fetch_sub(1, Ordering::SeqCst);
    }
}

/// A server-side connection's life: the 101, then registration and the
/// same worker loop as a client.
fn serve_one(server: &ServerShared, id: u64, upgraded: Upgraded) {
    let Upgraded { mut transport, request, leftover, response, endpoint, handler, deadline } = upgraded;
    if !write_all(&server.stop, &mut transport, &response, deadline) {
        return;
    }
    let options = Options { max_message_size: server.max_message_size(), ..Options::default() };
    let stats = Arc::new(Stats::default());
    let stream = Stream::accepted(transport, &leftover, stats.clone());
    let ws = WebSocket::from_partially_read(stream, leftover, Role::Server, Some(options.websocket_config()));
    let Ok(waker) = Waker::new() else {
        return;
    };
    let scheme = if server.tls.is_some() { "wss" } else { "ws" };
    let uri = format!("{scheme}://{}{}", server.addr, crate::accept::target_path(&request));
    let (shared, queues) = Shared::new(
        id,
        &uri,
        Some(handler.clone()),
        Some(endpoint.clone()),
        options.max_buffered_bytes,
        waker,
        stats,
        None,
    );
    let conn = Connection::from_shared(shared.clone());
    {
        let reg = registry();
        let Ok(_admitted) = reg.admit() else {
            return; // shutting down: the socket closes
        };
        let mut conns = server.conns.lock();
        if server.stop.is_raised() {
            return;
        }
        reg.insert(shared);
        conns.insert(id);
    }
    let _forget = Forget(server, id);
    wlog!(Info, id, "accepted {uri} on endpoint '{endpoint}' (handler '{handler}')");
    let life = Life { conn, sink: handler_sink(&handler), done: false, attachment: None };
    life.run(|conn, sink| worker::run_accepted(conn, sink, ws, &options, queues));
}

/// Writes all of `bytes`; false once the server stops, the deadline passes
/// or the socket fails.
fn write_all(stop: &StopSignal, t: &mut Transport, mut bytes: &[u8], deadline: Option<Instant>) -> bool {
    use std::io::{ErrorKind as IoKind, Write};
    while !bytes.is_empty() {
        match t.write(bytes) {
            Ok(0) => return false,
            Ok(n) => bytes = &bytes[n..],
            Err(e) if e.kind() == IoKind::WouldBlock => {
                let live = || !stop.is_raised() && deadline.map_or(true, |d| Instant::now() < d);
                if !live() {
                    return false;
                }
                stop.wait(tcp(t).as_raw_fd(), tcp(t).blocked_on(), deadline);
            }
            Err(e) if e.kind() == IoKind::Interrupted => {}
            Err(_) => return false,
        }
    }
    true
}

/// Takes a finished connection off its server's list.
struct Forget<'a>(&'a ServerShared, u64);

impl Drop for Forget<'_> {
    fn drop(&mut self) {
        self.0.conns.lock().remove(&self.1);
    }
}

/// Counts the worker thread out even if everything before it unwound.
struct ThreadExit(u64);

impl Drop for ThreadExit {
    fn drop(&mut self) {
        registry().worker_exited(self.0);
    }
}

/// Closes every connection (code 1001; handshakes in progress are aborted)
/// and waits up to `timeout` for every worker thread to exit. `Ok` means none
/// is left and none can start, so a host may `dlclose` the library. After it,
/// new connections are refused with [`Error::Shutdown`] until [`init`].
///
/// Any `timeout` works; one too large to represent as a deadline waits
/// without one.
///
/// # Errors
/// [`Error::Timeout`] if some worker thread is still running at the
/// deadline (call it again before unloading). Called from inside a callback
/// it waits for every other worker but cannot wait for its own, and returns
/// [`Error::Timeout`].
pub fn shutdown(timeout: Duration) -> Result<(), Error> {
    let reg = registry();
    reg.set_admitting(false);
    for server in reg.servers() {
        server.stop.raise(); // accept loops and handshakes end at once
    }
    for conn in reg.snapshot() {
        conn.shutdown_close();
    }
    let own = usize::from(crate::connection::current_worker().is_some());
    let deadline = deadline_in(timeout);
    match reg.wait_for_workers(own, deadline) {
        0 if crate::logging::close(deadline) => Ok(()),
        0 => {
            crate::logging::reopen();
            Err(Error::Timeout(format!(
                "a log callback was still running on another thread after {} ms",
                timeout.as_millis()
            )))
        }
        n if n == own => Err(Error::Timeout(
            "called from inside a callback: every other worker has exited, but the calling one cannot wait for itself"
                .into(),
        )),
        n => Err(Error::Timeout(format!("{n} worker thread(s) still running after {} ms", timeout.as_millis()))),
    }
}

/// Allows new connections again after [`shutdown`]; a no-op otherwise.
pub fn init() {
    registry().set_admitting(true);
    crate::logging::reopen();
}

#[cfg(test)]
mod tests {
    use super::*;
    use crossbeam_channel::RecvTimeoutError;

    const DEADLINE: Duration = Duration::from_secs(20);

    #[test]
    fn a_panic_in_the_worker_loop_still_ends_in_one_error_and_finishes() {
        let server = crate::server::EchoServer::start("127.0.0.1:0").unwrap();
        let (tx, rx) = crossbeam_channel::unbounded();
        let sink: Sink = Box::new(move |_, ev| {
            let _ = tx.send(ev);
        });
        let uri = format!("ws://{}{}", server.addr(), crate::worker::PANIC_PATH);
        let conn = start(&uri, &Options::default(), None, sink).unwrap();
        assert_eq!(rx.recv_timeout(DEADLINE), Ok(Event::Open));
        match rx.recv_timeout(DEADLINE) {
            Ok(Event::Error(e)) => {
                assert_eq!(e.kind(), ErrorKind::Other);
                assert!(e.message().contains("injected fault"), "{e}");
            }
            other => panic!("expected the terminal error, got {other:?}"),
        }
        // The sink was dropped with the finished connection: nothing follows.
        assert_eq!(rx.recv_timeout(DEADLINE), Err(RecvTimeoutError::Disconnected));
        assert_eq!(conn.wait(DEADLINE), Ok(()));
        assert!(registry().get(conn.id()).is_none());
        assert_eq!(conn.state(), Err(Error::UnknownId));
    }
}
