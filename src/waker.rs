//! How a worker sleeps without busy waiting and is woken at once.
//!
//! The worker blocks in `poll(2)` on its socket and an eventfd. Other threads
//! queue a command and then write the eventfd, but only if the worker said it
//! was about to sleep: a send to a busy worker (say, from inside its own
//! callback) costs no system call. The protocol, all SeqCst:
//! worker: `sleeping = true`, re-check its queues, `poll`;
//! caller: push, then `if sleeping.swap(false) { write(eventfd) }`.
//! Either the worker sees the command on its re-check or the caller sees the
//! flag and wakes it; a stale wake-up only costs one spurious loop.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

pub(crate) struct Waker {
    fd: OwnedFd,
    sleeping: AtomicBool,
}

/// What the socket should be polled for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Interest {
    pub(crate) read: bool,
    pub(crate) write: bool,
}

/// What woke the worker.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Readiness {
    pub(crate) readable: bool,
    pub(crate) writable: bool,
    /// Error or hang-up on the socket: a read or write will report it.
    pub(crate) hangup: bool,
}

/// A new non-blocking eventfd.
fn eventfd() -> io::Result<OwnedFd> {
    // SAFETY: eventfd has no memory preconditions; the result is checked.
    let fd = unsafe { libc::eventfd(0, libc::EFD_NONBLOCK | libc::EFD_CLOEXEC) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: fd is a freshly created descriptor that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Writes 1 to an eventfd. A full counter (EAGAIN) already means "readable".
fn signal(fd: &OwnedFd) {
    let one: u64 = 1;
    // SAFETY: writes 8 bytes from a valid u64 to an eventfd we own.
    unsafe { libc::write(fd.as_raw_fd(), (&one as *const u64).cast(), 8) };
}

/// Polls `socket` for `interest` and `other` for input until `deadline`.
/// Returns the socket's readiness and whether `other` was readable.
fn poll_pair(socket: RawFd, interest: Interest, other: RawFd, deadline: Option<Instant>) -> (Readiness, bool) {
    let mut events: libc::c_short = 0;
    if interest.read {
        events |= libc::POLLIN;
    }
    if interest.write {
        events |= libc::POLLOUT;
    }
    let mut fds =
        [libc::pollfd { fd: socket, events, revents: 0 }, libc::pollfd { fd: other, events: libc::POLLIN, revents: 0 }];
    let timeout = deadline.map_or(-1, poll_timeout);
    // SAFETY: fds is a valid array of two pollfd for the duration of the call.
    let n = unsafe { libc::poll(fds.as_mut_ptr(), 2, timeout) };
    if n <= 0 {
        return (Readiness::default(), false);
    }
    let r = fds[0].revents;
    let ready = Readiness {
        readable: r & libc::POLLIN != 0,
        writable: r & libc::POLLOUT != 0,
        hangup: r & (libc::POLLERR | libc::POLLHUP) != 0,
    };
    (ready, fds[1].revents != 0)
}

/// A signal raised once for many sleepers (a server stopping: its accept
/// loop and every handshake in progress). Its eventfd is never drained, so
/// once raised every poll on it returns at once.
pub(crate) struct StopSignal {
    fd: OwnedFd,
    raised: AtomicBool,
}

impl StopSignal {
    pub(crate) fn new() -> io::Result<StopSignal> {
        Ok(StopSignal { fd: eventfd()?, raised: AtomicBool::new(false) })
    }

    pub(crate) fn raise(&self) {
        self.raised.store(true, Ordering::SeqCst);
        signal(&self.fd);
    }

    pub(crate) fn is_raised(&self) -> bool {
        self.raised.load(Ordering::SeqCst)
    }

    /// The eventfd, readable once raised (for a caller polling many sockets).
    pub(crate) fn fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }

    /// Blocks until `socket` is ready for `interest`, the signal is raised,
    /// or `deadline` passes.
    pub(crate) fn wait(&self, socket: RawFd, interest: Interest, deadline: Option<Instant>) -> Readiness {
        poll_pair(socket, interest, self.fd.as_raw_fd(), deadline).0
    }
}

impl Waker {
    pub(crate) fn new() -> io::Result<Waker> {
        Ok(Waker { fd: eventfd()?, sleeping: AtomicBool::new(false) })
    }

    /// Called by any thread after queuing a command.
    pub(crate) fn wake(&self) {
        if self.sleeping.swap(false, Ordering::SeqCst) {
            self.signal();
        }
    }

    /// Wakes the worker whether or not it announced sleep (used to abort).
    pub(crate) fn signal(&self) {
        signal(&self.fd);
    }

    /// Worker: announce sleep. Re-check the queues after this, then `wait`.
    pub(crate) fn prepare_sleep(&self) {
        self.sleeping.store(true, Ordering::SeqCst);
    }

    /// Worker: work turned up during the re-check; stay awake.
    pub(crate) fn cancel_sleep(&self) {
        self.sleeping.store(false, Ordering::SeqCst);
    }

    /// Worker: blocks until the socket is ready for `interest`, the eventfd is
    /// written, or `deadline` passes. Never returns early for nothing.
    pub(crate) fn wait(&self, socket: RawFd, interest: Interest, deadline: Option<Instant>) -> Readiness {
        let (ready, woken) = poll_pair(socket, interest, self.fd.as_raw_fd(), deadline);
        self.sleeping.store(false, Ordering::SeqCst);
        if woken {
            self.drain();
        }
        ready
    }

    fn drain(&self) {
        let mut buf: u64 = 0;
        // SAFETY: reads at most 8 bytes into a valid u64 from our own eventfd.
        unsafe { libc::read(self.fd.as_raw_fd(), (&mut buf as *mut u64).cast(), 8) };
    }
}

/// The deadline `timeout` from now; `None` (no deadline) when it is too far
/// away to represent, as `Duration::MAX` is.
pub(crate) fn deadline_in(timeout: Duration) -> Option<Instant> {
    Instant::now().checked_add(timeout)
}

/// Milliseconds until `deadline` for `poll(2)`: rounded up, so the worker
/// never wakes just before the deadline and spins; capped at `i32::MAX`
/// (about 24 days), after which the caller simply polls again.
pub(crate) fn poll_timeout(deadline: Instant) -> i32 {
    let left = deadline.saturating_duration_since(Instant::now());
    i32::try_from(left.as_nanos().div_ceil(1_000_000)).unwrap_or(i32::MAX)
}

impl Waker {
    /// Worker: blocks until one of `fds` is ready for its interest, the
    /// eventfd is written, or `deadline` passes; returns each fd's readiness,
    /// in order. For a dial that waits on several sockets at once (name
    /// server sockets and racing connection attempts).
    pub(crate) fn wait_all(&self, fds: &[(RawFd, Interest)], deadline: Option<Instant>) -> Vec<Readiness> {
        let mut polled: Vec<libc::pollfd> = fds
            .iter()
            .map(|&(fd, interest)| libc::pollfd { fd, events: events(interest), revents: 0 })
            .chain(std::iter::once(libc::pollfd { fd: self.fd.as_raw_fd(), events: libc::POLLIN, revents: 0 }))
            .collect();
        let timeout = deadline.map_or(-1, poll_timeout);
        // SAFETY: `polled` is a valid array of pollfd of the given length for the call.
        let n = unsafe { libc::poll(polled.as_mut_ptr(), polled.len() as libc::nfds_t, timeout) };
        self.sleeping.store(false, Ordering::SeqCst);
        let (woken, sockets) = polled.split_last().expect("the eventfd is always polled");
        if n > 0 && woken.revents != 0 {
            self.drain();
        }
        sockets.iter().map(|p| if n > 0 { readiness(p.revents) } else { Readiness::default() }).collect()
    }
}

/// `poll(2)` events for `interest`.
fn events(interest: Interest) -> libc::c_short {
    let mut events = 0;
    if interest.read {
        events |= libc::POLLIN;
    }
    if interest.write {
        events |= libc::POLLOUT;
    }
    events
}

/// What `poll(2)` reported for one descriptor.
fn readiness(revents: libc::c_short) -> Readiness {
    Readiness {
        readable: revents & libc::POLLIN != 0,
        writable: revents & libc::POLLOUT != 0,
        hangup: revents & (libc::POLLERR | libc::POLLHUP) != 0,
    }
}

#[cfg(test)]
mod tests {
    use super::{deadline_in, poll_timeout};
    use std::time::{Duration, Instant};

    #[test]
    fn far_deadlines_never_overflow() {
        assert_eq!(deadline_in(Duration::MAX), None);
        let now = Instant::now();
        for ms in [0u64, 1, (1 << 31) - 2, 1 << 31, 1 << 32, 1 << 40] {
            let Some(d) = now.checked_add(Duration::from_millis(ms)) else { continue };
            let t = poll_timeout(d);
            assert!(t >= 0, "{ms} ms gave {t}");
            assert!(u64::try_from(t).unwrap() <= ms.max(1), "{ms} ms gave {t}");
        }
        assert_eq!(poll_timeout(now + Duration::from_secs(1 << 40)), i32::MAX);
    }

    #[test]
    fn wait_all_reports_each_fd_and_wakes_on_signal() {
        use super::{eventfd, signal, Interest, Waker};
        use std::os::fd::AsRawFd;
        let waker = Waker::new().unwrap();
        let (quiet, ready) = (eventfd().unwrap(), eventfd().unwrap());
        let read = Interest { read: true, write: false };
        let fds = [(quiet.as_raw_fd(), read), (ready.as_raw_fd(), read)];
        // Nothing ready: the deadline ends the wait, nothing reported.
        let r = waker.wait_all(&fds, Some(Instant::now() + Duration::from_millis(10)));
        assert!(r.iter().all(|r| !r.readable && !r.writable && !r.hangup), "{r:?}");
        // One ready: reported at its place, with no deadline at all.
        signal(&ready);
        let r = waker.wait_all(&fds, None);
        assert!(!r[0].readable && r[1].readable, "{r:?}");
        // The eventfd written: returns with nothing ready (with no deadline,
        // only the signal can end this wait).
        waker.signal();
        let r = waker.wait_all(&fds[..1], None);
        assert!(!r[0].readable);
        // Drained: the next wait lasts until its deadline.
        let started = Instant::now();
        waker.wait_all(&fds[..1], Some(started + Duration::from_millis(20)));
        assert!(started.elapsed() >= Duration::from_millis(20));
    }
}
