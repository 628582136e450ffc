//! The process-wide table of live connections and their worker threads.
//!
//! C callers hold only an id, so every C call resolves it here; the Rust
//! handle holds the shared state directly and uses the table only for
//! listing (`clients()`) and lifecycle. Worker threads are counted and their
//! join handles kept so `shutdown` can prove every thread has exited before
//! a host `dlclose`s the library.

use crate::connection::{Connection, Shared};
use crate::error::Error;
use parking_lot::{Condvar, Mutex, RwLock};
use std::cell::Cell;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

#[derive(Default)]
struct Workers {
    live: usize,
    handles: HashMap<u64, JoinHandle<()>>,
    exited: Vec<u64>,
}

pub(crate) struct Registry {
    conns: RwLock<HashMap<u64, Arc<Shared>>>,
    next_id: AtomicU64,
    shut_down: AtomicBool,
    workers: Mutex<Workers>,
    workers_changed: Condvar,
}

thread_local! {
    /// The id of the connection whose worker runs on this thread (0: none).
    static CURRENT_WORKER: Cell<u64> = const { Cell::new(0) };
}

pub(crate) fn registry() -> &'static Registry {
    static REGISTRY: OnceLock<Registry> = OnceLock::new();
    REGISTRY.get_or_init(|| Registry {
        conns: RwLock::new(HashMap::new()),
        next_id: AtomicU64::new(1),
        shut_down: AtomicBool::new(false),
        workers: Mutex::new(Workers::default()),
        workers_changed: Condvar::new(),
    })
}

impl Registry {
    pub(crate) fn next_id(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }

    /// True if `id` was handed out at some point (finished or not).
    pub(crate) fn was_issued(&self, id: u64) -> bool {
        id != 0 && id < self.next_id.load(Ordering::Relaxed)
    }

    pub(crate) fn check_running(&self) -> Result<(), Error> {
        if self.shut_down.load(Ordering::SeqCst) {
            Err(Error::Shutdown)
        } else {
            Ok(())
        }
    }

    pub(crate) fn insert(&self, shared: Arc<Shared>) {
        self.conns.write().insert(shared.id, shared);
    }

    pub(crate) fn remove(&self, id: u64) {
        self.conns.write().remove(&id);
    }

    /// The connection with this id, if it has not finished.
    pub(crate) fn get(&self, id: u64) -> Option<Connection> {
        self.conns.read().get(&id).cloned().map(Connection::from_shared)
    }

    /// Every unfinished connection, oldest first.
    pub(crate) fn snapshot(&self) -> Vec<Connection> {
        let mut all: Vec<Connection> = self.conns.read().values().cloned().map(Connection::from_shared).collect();
        all.sort_by_key(Connection::id);
        all
    }

    /// Starts a worker thread and counts it until it has finished.
    pub(crate) fn spawn_worker(
        &self,
        id: u64,
        stack_size: usize,
        body: impl FnOnce() + Send + 'static,
    ) -> std::io::Result<()> {
        let mut workers = self.workers.lock();
        self.reap(&mut workers);
        let handle = std::thread::Builder::new().name(format!("wsc-{id}")).stack_size(stack_size).spawn(move || {
            CURRENT_WORKER.with(|c| c.set(id));
            let _exit = WorkerExit(id);
            body();
        })?;
        workers.live += 1;
        workers.handles.insert(id, handle);
        Ok(())
    }

    /// Joins the threads that have said they are exiting (quick: they are).
    fn reap(&self, workers: &mut Workers) {
        let me = CURRENT_WORKER.with(Cell::get);
        let exited = std::mem::take(&mut workers.exited);
        for id in exited {
            if id == me {
                workers.exited.push(id);
            } else if let Some(h) = workers.handles.remove(&id) {
                let _ = h.join();
            }
        }
    }

    fn worker_exited(&self, id: u64) {
        let mut workers = self.workers.lock();
        workers.live -= 1;
        workers.exited.push(id);
        self.workers_changed.notify_all();
    }

    fn shutdown(&self, timeout: Duration) -> Result<(), Error> {
        self.shut_down.store(true, Ordering::SeqCst);
        for conn in self.snapshot() {
            conn.shutdown_close();
        }
        let deadline = Instant::now() + timeout;
        let own = usize::from(CURRENT_WORKER.with(Cell::get) != 0);
        let mut workers = self.workers.lock();
        while workers.live > own {
            if self.workers_changed.wait_until(&mut workers, deadline).timed_out() {
                break;
            }
        }
        self.reap(&mut workers);
        match workers.live {
            0 => Ok(()),
            n if n == own => Err(Error::Timeout(
                "called from inside a callback: every other worker has exited, but the calling one cannot wait for itself".into(),
            )),
            n => Err(Error::Timeout(format!("{n} worker thread(s) still running after {} ms", timeout.as_millis()))),
        }
    }
}

/// The id of the connection whose worker thread is calling, if any.
pub(crate) fn current_worker() -> Option<u64> {
    Some(CURRENT_WORKER.with(Cell::get)).filter(|&id| id != 0)
}

/// Marks the worker as exited even if its body unwinds.
struct WorkerExit(u64);

impl Drop for WorkerExit {
    fn drop(&mut self) {
        registry().worker_exited(self.0);
    }
}

/// Closes every connection (code 1001; handshakes in progress are aborted)
/// and waits up to `timeout` for every worker thread to exit. `Ok` means none
/// is left, so a host may `dlclose` the library. After it, new connections are
/// refused with [`Error::Shutdown`] until [`init`].
///
/// Called from inside a callback it waits for every other worker but cannot
/// wait for its own, and returns [`Error::Timeout`].
pub fn shutdown(timeout: Duration) -> Result<(), Error> {
    registry().shutdown(timeout)
}

/// Allows new connections again after [`shutdown`]; a no-op otherwise.
pub fn init() {
    registry().shut_down.store(false, Ordering::SeqCst);
}
