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

use crate::connection::{set_current_worker, Connection, Queues, Shared, Sink};
use crate::error::{panic_text, ConnectionError, Error, ErrorKind};
use crate::event::Event;
use crate::options::Options;
use crate::registry::registry;
use crate::target::Target;
use crate::waker::{deadline_in, Waker};
use crate::worker;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::Duration;

/// Registers a connection and starts its worker. Every API style ends here.
pub(crate) fn start(uri: &str, options: &Options, handler: Option<String>, sink: Sink) -> Result<Connection, Error> {
    let target = Target::parse(uri)?;
    let reg = registry();
    let _admitted = reg.admit()?;
    let waker = Waker::new().map_err(|e| Error::Internal(format!("cannot create eventfd: {e}")))?;
    let id = reg.next_id();
    let (shared, queues) = Shared::new(id, uri, handler, options.max_buffered_bytes, waker);
    let conn = Connection::from_shared(shared.clone());
    reg.insert(shared);
    let life = Life { conn: conn.clone(), sink, done: false };
    let options = options.clone();
    let thread = std::thread::Builder::new().name(format!("wsc-{id}")).stack_size(options.stack_size);
    let spawned = reg.spawn_worker(id, move || {
        thread.spawn(move || {
            let _exit = ThreadExit(id);
            set_current_worker(id);
            life.run(target, options, queues);
        })
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
}

impl Life {
    fn run(mut self, target: Target, options: Options, queues: Queues) {
        let (conn, sink) = (&self.conn, &mut self.sink);
        let end = catch_unwind(AssertUnwindSafe(|| worker::run(conn, sink, &target, &options, queues))).unwrap_or_else(
            |panic| {
                let why = format!("internal error: wsc panicked on the worker thread: {}", panic_text(&*panic));
                Event::Error(ConnectionError::new(ErrorKind::Other, why))
            },
        );
        let end = self.conn.shared().conclude(end);
        let (conn, sink) = (&self.conn, &mut self.sink);
        // A panic in the terminal callback is contained: there is nothing
        // left to report it to.
        let _ = catch_unwind(AssertUnwindSafe(|| sink(conn, end)));
        self.finish();
    }

    fn finish(&mut self) {
        if !std::mem::replace(&mut self.done, true) {
            registry().remove(self.conn.id());
            self.conn.shared().mark_finished();
        }
    }
}

impl Drop for Life {
    fn drop(&mut self) {
        self.finish();
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
    for conn in reg.snapshot() {
        conn.shutdown_close();
    }
    let own = usize::from(crate::connection::current_worker().is_some());
    match reg.wait_for_workers(own, deadline_in(timeout)) {
        0 => Ok(()),
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
