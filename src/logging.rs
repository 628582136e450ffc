//! What wsc logs, through the `log` crate's facade.
//!
//! Every line is logged with the module's target (`wsc::dial`,
//! `wsc::worker`, ...), a key-value `conn` holding the connection id (0:
//! none), and the text `conn N: ...`, so any logger the application installs
//! shows it. A line costs nothing when no logger wants its level: the
//! [`wlog!`] macro checks `log`'s static and dynamic maximum level before
//! anything is formatted.
//!
//! Credentials never reach a line: request headers are logged through
//! [`header_value`], which replaces the values of `Authorization`,
//! `Proxy-Authorization`, `Cookie` and `Set-Cookie`, and proxies are shown
//! by their `Display`, which hides user and password.
//!
//! Invariant: no lock that a wsc call could wait for is held across a
//! [`wlog!`] line, since the C sink hands the line to an application that may
//! call wsc (client and server functions) from it. The one lock held is a
//! connection's wire lock on its own worker, which other threads only ever
//! `try_lock` (see `wire`). `tests/log_reentry.rs` calls wsc from every
//! TRACE line through an exchange, refusals and shutdown.
//!
//! Between a successful [`crate::shutdown`] and the next [`crate::init`]
//! nothing is logged ([`close`] waits for lines being delivered, so none is
//! delivered after `shutdown` returns).

use std::cell::Cell;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::time::Instant;

static OPEN: AtomicBool = AtomicBool::new(true);
/// Lines being delivered to a sink that honours the gate (the C callback).
static IN_FLIGHT: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    /// How many gated deliveries this thread is inside (a log callback that
    /// logs, or that calls `shutdown`). `const` with no destructor: usable
    /// during thread exit.
    static DEPTH: Cell<usize> = const { Cell::new(0) };
}

/// True unless `shutdown` has succeeded and `init` has not run since.
#[inline]
pub(crate) fn is_open() -> bool {
    OPEN.load(std::sync::atomic::Ordering::Relaxed)
}

/// Logs `format!(...)` at `log::Level::$level` for connection `$id`, with
/// the calling module as target. Formats nothing unless a logger wants it.
macro_rules! wlog {
    ($level:ident, $id:expr, $($arg:tt)+) => {{
        let level = ::log::Level::$level;
        if level <= ::log::STATIC_MAX_LEVEL && level <= ::log::max_level() && $crate::logging::is_open() {
            let conn: u64 = $id;
            ::log::log!(level, conn = conn; "conn {}: {}", conn, format_args!($($arg)+));
        }
    }};
}
pub(crate) use wlog;

/// Whether lines at `level` would be logged now (to skip preparing them).
#[inline]
pub(crate) fn enabled(level: log::Level) -> bool {
    level <= log::STATIC_MAX_LEVEL && level <= log::max_level() && is_open()
}

/// Headers whose values are credentials, never logged.
const SECRET_HEADERS: &[&str] = &["authorization", "proxy-authorization", "cookie", "set-cookie"];

/// The value to log for header `name`: `***` for a credential.
pub(crate) fn header_value<'a>(name: &str, value: &'a str) -> &'a str {
    if SECRET_HEADERS.iter().any(|s| s.eq_ignore_ascii_case(name)) {
        "***"
    } else {
        value
    }
}

/// A gated delivery in progress; dropping it ends it.
pub(crate) struct Delivery(());

/// Starts a delivery to a gated sink, or `None` once the gate is closed.
pub(crate) fn deliver() -> Option<Delivery> {
    IN_FLIGHT.fetch_add(1, SeqCst);
    if !OPEN.load(SeqCst) {
        IN_FLIGHT.fetch_sub(1, SeqCst);
        return None;
    }
    let _ = DEPTH.try_with(|d| d.set(d.get() + 1));
    Some(Delivery(()))
}

impl Drop for Delivery {
    fn drop(&mut self) {
        let _ = DEPTH.try_with(|d| d.set(d.get().saturating_sub(1)));
        IN_FLIGHT.fetch_sub(1, SeqCst);
    }
}

/// Stops logging and waits until no line is being delivered on another
/// thread, or `deadline` passes. False if some still was at the deadline.
pub(crate) fn close(deadline: Option<Instant>) -> bool {
    OPEN.store(false, SeqCst);
    let own = DEPTH.try_with(Cell::get).unwrap_or(0);
    while IN_FLIGHT.load(SeqCst) > own {
        if deadline.is_some_and(|d| Instant::now() >= d) {
            return false;
        }
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
    true
}

/// Logs again (after `init`).
pub(crate) fn reopen() {
    OPEN.store(true, SeqCst);
}
