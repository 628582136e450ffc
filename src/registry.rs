//! The process-wide table of live connections and their worker threads.
//!
//! C callers hold only an id, so every C call resolves it here; the Rust
//! handle holds the shared state directly and uses the table only for
//! listing (`clients()`). Worker threads are counted and their join handles
//! kept so `shutdown` can prove every thread has exited before a host
//! `dlclose`s the library.
//!
//! Admission is a lock, not a flag: a connect holds it (shared) from its
//! "not shut down?" check until its worker is counted, and shutdown takes it
//! (exclusive) to stop admitting. So shutdown either refuses a connect or
//! sees its worker; nothing slips in between. This module only keeps the
//! books; `lifecycle` decides when each entry is made.

use crate::connection::{current_worker, Connection, Shared};
use crate::error::Error;
use crate::server::ServerShared;
use parking_lot::{Condvar, Mutex, RwLock, RwLockReadGuard};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock, Weak};
use std::thread::JoinHandle;
use std::time::Instant;

#[derive(Default)]
struct Workers {
    live: usize,
    handles: HashMap<u64, JoinHandle<()>>,
    exited: Vec<u64>,
}

pub(crate) struct Registry {
    conns: RwLock<HashMap<u64, Arc<Shared>>>,
    next_id: AtomicU64,
    /// True while new connections are admitted (see the module doc).
    admitting: RwLock<bool>,
    workers: Mutex<Workers>,
    workers_changed: Condvar,
    /// Running endpoint servers, so `shutdown` can stop them.
    servers: Mutex<Vec<Weak<ServerShared>>>,
}

/// Proof that a connect was admitted; shutdown cannot begin while it is held.
pub(crate) struct Admission<'a>(#[allow(dead_code)] RwLockReadGuard<'a, bool>);

pub(crate) fn registry() -> &'static Registry {
    static REGISTRY: OnceLock<Registry> = OnceLock::new();
    REGISTRY.get_or_init(|| Registry {
        conns: RwLock::new(HashMap::new()),
        next_id: AtomicU64::new(1),
        admitting: RwLock::new(true),
        workers: Mutex::new(Workers::default()),
        workers_changed: Condvar::new(),
        servers: Mutex::new(Vec::new()),
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

    /// Admits one new connection, or refuses it after `shutdown`.
    pub(crate) fn admit(&self) -> Result<Admission<'_>, Error> {
        let guard = self.admitting.read();
        if *guard {
            Ok(Admission(guard))
        } else {
            Err(Error::Shutdown)
        }
    }

    /// Stops (false) or resumes (true) admitting; waits for admitted
    /// connects to have registered their workers.
    pub(crate) fn set_admitting(&self, admitting: bool) {
        *self.admitting.write() = admitting;
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

    /// Starts a worker thread with `spawn` and counts it until it reports
    /// [`Registry::worker_exited`].
    pub(crate) fn spawn_worker(
        &self,
        id: u64,
        spawn: impl FnOnce() -> std::io::Result<JoinHandle<()>>,
    ) -> std::io::Result<()> {
        let mut workers = self.workers.lock();
        self.reap(&mut workers);
        let handle = spawn()?;
        workers.live += 1;
        workers.handles.insert(id, handle);
        Ok(())
    }

    /// Joins the threads that have said they are exiting (quick: they are).
    fn reap(&self, workers: &mut Workers) {
        let me = current_worker();
        let exited = std::mem::take(&mut workers.exited);
        for id in exited {
            if Some(id) == me {
                workers.exited.push(id);
            } else if let Some(h) = workers.handles.remove(&id) {
                let _ = h.join();
            }
        }
    }

    /// Waits until worker thread `id` has exited and joins it; returns at
    /// once if it was joined already (or never counted).
    pub(crate) fn join(&self, id: u64) {
        let mut workers = self.workers.lock();
        while workers.handles.contains_key(&id) {
            if let Some(at) = workers.exited.iter().position(|e| *e == id) {
                workers.exited.swap_remove(at);
                if let Some(h) = workers.handles.remove(&id) {
                    let _ = h.join();
                }
                return;
            }
            self.workers_changed.wait(&mut workers);
        }
    }

    /// True once worker thread `id` has been joined.
    pub(crate) fn was_joined(&self, id: u64) -> bool {
        !self.workers.lock().handles.contains_key(&id)
    }

    /// Notes a running server, for `shutdown`.
    pub(crate) fn add_server(&self, server: &Arc<ServerShared>) {
        let mut servers = self.servers.lock();
        servers.retain(|s| s.strong_count() > 0);
        servers.push(Arc::downgrade(server));
    }

    /// The running servers.
    pub(crate) fn servers(&self) -> Vec<Arc<ServerShared>> {
        self.servers.lock().iter().filter_map(Weak::upgrade).collect()
    }

    /// The last thing a worker thread does.
    pub(crate) fn worker_exited(&self, id: u64) {
        let mut workers = self.workers.lock();
        workers.live -= 1;
        workers.exited.push(id);
        self.workers_changed.notify_all();
    }

    /// Waits until at most `allowed` workers are running or `deadline`
    /// passes (`None`: no deadline), joins those that exited, and returns how
    /// many are still running.
    pub(crate) fn wait_for_workers(&self, allowed: usize, deadline: Option<Instant>) -> usize {
        let mut workers = self.workers.lock();
        while workers.live > allowed {
            match deadline {
                None => self.workers_changed.wait(&mut workers),
                Some(d) => {
                    if self.workers_changed.wait_until(&mut workers, d).timed_out() {
                        break;
                    }
                }
            }
        }
        self.reap(&mut workers);
        workers.live
    }
}
