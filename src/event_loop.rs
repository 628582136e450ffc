//! Event-loop delivery: callbacks on the application's own thread.
//!
//! I/O stays on the worker threads; only delivery moves. A connection that
//! names a loop hands every event to the loop's queue instead of calling its
//! sink, and the application runs them with `dispatch` on its own thread,
//! woken by an eventfd that is readable exactly while events wait (written
//! when the queue becomes non-empty, drained when dispatch empties it, both
//! under the queue's lock). The connection's end moves too: its id answers
//! until its terminal callback has been dispatched, so the step that
//! deregisters it travels with the terminal event (see `lifecycle`).
//! An undispatched queue cannot grow without bound: each connection's
//! undispatched messages are capped, and at the cap its flow gate shuts.

use crate::connection::{Connection, Sink};
use crate::error::{panic_text, Error};
use crate::event::Event;
use crate::gate::Pending;
use parking_lot::Mutex;
use std::cell::Cell;
use std::collections::VecDeque;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::ThreadId;

thread_local! {
    /// True while this thread runs a dispatched callback.
    static IN_DISPATCH: Cell<bool> = const { Cell::new(false) };
}

/// Runs when dropped: the connection's last step (deregister, finished).
pub(crate) type Finish = Box<dyn FnOnce() + Send>;

struct Item {
    conn: Connection,
    event: Event,
    sink: Arc<Mutex<Sink>>,
    pending: Arc<Pending>,
    finish: Option<Finish>,
}

pub(crate) struct LoopShared {
    queue: Mutex<VecDeque<Item>>,
    fd: OwnedFd,
    dispatching: AtomicBool,
    dispatcher: Arc<Mutex<Option<ThreadId>>>,
    /// Connections whose terminal callback has not been dispatched yet.
    attached: AtomicUsize,
}

/// An event loop's delivery queue: connections made with
/// [`crate::Options::event_loop`] deliver every callback only inside
/// [`Loop::dispatch`], on the thread that calls it. Poll [`Loop::fd`]
/// (readable exactly while events wait) with `poll`, epoll, mio, libuv or
/// GLib.
pub struct Loop {
    pub(crate) shared: Arc<LoopShared>,
}

impl Loop {
    /// A new, empty loop.
    ///
    /// # Errors
    /// [`Error::Internal`] if the system refuses an eventfd.
    pub fn new() -> Result<Loop, Error> {
        // SAFETY: eventfd has no memory preconditions; the result is checked.
        let fd = unsafe { libc::eventfd(0, libc::EFD_NONBLOCK | libc::EFD_CLOEXEC) };
        if fd < 0 {
            return Err(Error::Internal(format!("cannot create eventfd: {}", std::io::Error::last_os_error())));
        }
        Ok(Loop {
            shared: Arc::new(LoopShared {
                queue: Mutex::new(VecDeque::new()),
                // SAFETY: a fresh descriptor nothing else owns.
                fd: unsafe { OwnedFd::from_raw_fd(fd) },
                dispatching: AtomicBool::new(false),
                dispatcher: Arc::default(),
                attached: AtomicUsize::new(0),
            }),
        })
    }

    /// The descriptor to poll for input: readable exactly while events wait.
    pub fn fd(&self) -> RawFd {
        self.shared.fd.as_raw_fd()
    }

    /// Runs at most `max_events` queued callbacks (0: everything queued at
    /// the call) on this thread and returns how many ran. Never blocks.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] from inside a dispatched callback, or while
    /// another thread dispatches this loop.
    pub fn dispatch(&self, max_events: usize) -> Result<usize, Error> {
        self.shared.dispatch(max_events)
    }

    /// Connections whose terminal callback has not been dispatched yet.
    pub fn attached(&self) -> usize {
        self.shared.attached.load(Ordering::SeqCst)
    }
}

impl AsRawFd for Loop {
    fn as_raw_fd(&self) -> RawFd {
        self.fd()
    }
}

impl std::fmt::Debug for Loop {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Loop").field("fd", &self.fd()).field("attached", &self.attached()).finish()
    }
}

/// A connection's tie to its loop, held by its lifecycle.
pub(crate) struct Attachment {
    lp: Arc<LoopShared>,
    sink: Arc<Mutex<Sink>>,
    pending: Arc<Pending>,
}

impl LoopShared {
    /// Attaches a connection: returns the tie, the sink its worker calls
    /// (which only queues), and its undispatched-message counter.
    pub(crate) fn attach(
        self: &Arc<Self>,
        sink: Sink,
        max_messages: usize,
        max_bytes: usize,
    ) -> (Attachment, Sink, Arc<Pending>) {
        self.attached.fetch_add(1, Ordering::SeqCst);
        let pending = Arc::new(Pending::new(max_messages, max_bytes, self.dispatcher.clone()));
        let att = Attachment { lp: self.clone(), sink: Arc::new(Mutex::new(sink)), pending: pending.clone() };
        let (lp, real, p) = (self.clone(), att.sink.clone(), pending.clone());
        let queuing: Sink = Box::new(move |conn, event| {
            if let Event::Message(m) = &event {
                p.queued(m.len());
            }
            lp.push(Item { conn: conn.clone(), event, sink: real.clone(), pending: p.clone(), finish: None });
        });
        (att, queuing, pending)
    }

    fn push(&self, item: Item) {
        let mut q = self.queue.lock();
        q.push_back(item);
        if q.len() == 1 {
            let one: u64 = 1;
            // SAFETY: 8 bytes from a valid u64 to our own eventfd.
            unsafe { libc::write(self.fd.as_raw_fd(), (&one as *const u64).cast(), 8) };
        }
    }

    fn pop(&self) -> Option<Item> {
        let mut q = self.queue.lock();
        let item = q.pop_front();
        if item.is_some() && q.is_empty() {
            let mut n: u64 = 0;
            // SAFETY: reads at most 8 bytes into a valid u64 from our own eventfd.
            unsafe { libc::read(self.fd.as_raw_fd(), (&mut n as *mut u64).cast(), 8) };
        }
        item
    }

    fn dispatch(&self, max_events: usize) -> Result<usize, Error> {
        if IN_DISPATCH.try_with(Cell::get).unwrap_or(false) {
            return Err(Error::InvalidArgument("wsc_loop_dispatch called from inside a dispatched callback".into()));
        }
        if self.dispatching.swap(true, Ordering::SeqCst) {
            return Err(Error::InvalidArgument("another thread is dispatching this loop".into()));
        }
        *self.dispatcher.lock() = Some(std::thread::current().id());
        let limit = if max_events == 0 { self.queue.lock().len() } else { max_events };
        let mut ran = 0;
        while ran < limit {
            let Some(item) = self.pop() else { break };
            self.run(item);
            ran += 1;
        }
        self.dispatching.store(false, Ordering::SeqCst);
        Ok(ran)
    }

    /// Runs one callback; a panic in it closes that connection (1011 is not
    /// a code an application may send, so it closes with 4000 "callback
    /// panicked") and goes no further.
    fn run(&self, item: Item) {
        let Item { conn, event, sink, pending, finish } = item;
        let len = if let Event::Message(m) = &event { Some(m.len()) } else { None };
        let _ = IN_DISPATCH.try_with(|d| d.set(true));
        let result = catch_unwind(AssertUnwindSafe(|| (sink.lock())(&conn, event)));
        let _ = IN_DISPATCH.try_with(|d| d.set(false));
        if let Err(panic) = result {
            let _ = conn.close_with(
                4000,
                &format!("callback panicked: {}", panic_text(&*panic)).chars().take(100).collect::<String>(),
            );
        }
        if len.is_some_and(|n| pending.dispatched(n)) {
            conn.shared().waker.wake();
        }
        if let Some(finish) = finish {
            self.attached.fetch_sub(1, Ordering::SeqCst);
            finish();
        }
    }
}

impl Attachment {
    /// The connection ends without a terminal event to queue (its thread
    /// never started): it no longer counts as attached.
    pub(crate) fn abandon(self) {
        self.lp.attached.fetch_sub(1, Ordering::SeqCst);
    }

    /// Queues the terminal event with the step that finishes the
    /// connection, which runs once its callback has been dispatched.
    pub(crate) fn deliver_terminal(self, conn: &Connection, event: Event, finish: Finish) {
        let Attachment { lp, sink, pending } = self;
        lp.push(Item { conn: conn.clone(), event, sink, pending, finish: Some(finish) });
    }
}
