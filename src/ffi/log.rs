//! `wsc_set_log_callback`: wsc's own log lines to a C function.
//!
//! The sink is a `log::Log` installed as the process's logger the first
//! time a callback is set. The `log` crate has one logger per copy of the
//! crate: in a C host (which links wsc's own copy) that is always free. In
//! a Rust program that installed its own logger, this returns
//! WSC_ERR_INTERNAL and the application's logger already receives every
//! line instead.
//!
//! Only records whose target is `wsc` or `wsc::...` are forwarded:
//! tungstenite's own TRACE lines include the raw upgrade request (with its
//! `Authorization` and `Cookie` headers), so they never reach the callback.
//! The callback is copied out of its slot before it is called, so a
//! callback that calls wsc (even `wsc_set_log_callback`) finds no lock held.

use super::boundary::call;
use super::status::wsc_status;
use super::wsc_id;
use crate::error::Error;
use parking_lot::Mutex;
use std::ffi::{c_char, c_void, CString};

/// A log line's severity (the `log` crate's levels, same numbers).
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum wsc_log_level {
    /// A connection failed.
    WSC_LOG_ERROR = 1,
    /// Something unusual that wsc worked around.
    WSC_LOG_WARN,
    /// Connect attempts, TLS, upgrades, closes: a few lines a connection.
    WSC_LOG_INFO,
    /// Each phase of a connect, Close frames sent and received.
    WSC_LOG_DEBUG,
    /// Pings, pongs, request and response headers (credentials redacted).
    WSC_LOG_TRACE,
}

/// Receives one log line: its level, the connection it is about (0: none),
/// the NUL-terminated text (valid only during the call) and the
/// `user_data` given to `wsc_set_log_callback`. Called on whichever thread
/// logs (mostly connections' worker threads), possibly on several at once.
pub type wsc_log_fn =
    Option<unsafe extern "C" fn(level: wsc_log_level, id: wsc_id, message: *const c_char, user_data: *mut c_void)>;

/// A `wsc_log_level` received from C, taken as a plain integer so that an
/// out-of-range value is not undefined behaviour in Rust.
#[repr(transparent)]
#[derive(Debug, Clone, Copy)]
pub struct LogLevelArg(u32);

impl From<wsc_log_level> for LogLevelArg {
    fn from(level: wsc_log_level) -> Self {
        LogLevelArg(level as u32)
    }
}

impl From<u32> for LogLevelArg {
    /// Any value, as a C caller may pass (for tests of the checks).
    fn from(raw: u32) -> Self {
        LogLevelArg(raw)
    }
}

#[derive(Clone, Copy)]
struct Callback {
    f: unsafe extern "C" fn(wsc_log_level, wsc_id, *const c_char, *mut c_void),
    max: log::Level,
    user_data: *mut c_void,
}
// SAFETY: wsc never dereferences user_data; the application's callback gets
// it back on whatever thread logs, as documented.
unsafe impl Send for Callback {}

static CALLBACK: Mutex<Option<Callback>> = Mutex::new(None);

struct CSink;

static SINK: CSink = CSink;

fn ours(target: &str) -> bool {
    target == "wsc" || target.starts_with("wsc::")
}

impl log::Log for CSink {
    fn enabled(&self, metadata: &log::Metadata) -> bool {
        ours(metadata.target()) && CALLBACK.lock().is_some_and(|c| metadata.level() <= c.max)
    }

    fn log(&self, record: &log::Record) {
        if !ours(record.target()) {
            return;
        }
        // Copied out: the lock is released before the application runs.
        let Some(cb) = *CALLBACK.lock() else {
            return;
        };
        if record.level() > cb.max {
            return;
        }
        let Some(_delivery) = crate::logging::deliver() else {
            return; // shut down: nothing is logged until wsc_init
        };
        let id = record.key_values().get(log::kv::Key::from_str("conn")).and_then(|v| v.to_u64()).unwrap_or(0);
        let text = CString::new(record.args().to_string().replace('\0', " ")).unwrap_or_default();
        let level = match record.level() {
            log::Level::Error => wsc_log_level::WSC_LOG_ERROR,
            log::Level::Warn => wsc_log_level::WSC_LOG_WARN,
            log::Level::Info => wsc_log_level::WSC_LOG_INFO,
            log::Level::Debug => wsc_log_level::WSC_LOG_DEBUG,
            log::Level::Trace => wsc_log_level::WSC_LOG_TRACE,
        };
        // SAFETY: the application's function, with the arguments it expects;
        // `text` lives for the call.
        unsafe { (cb.f)(level, id, text.as_ptr(), cb.user_data) };
    }

    fn flush(&self) {}
}

/// Sends wsc's log lines up to `max_level` to `fn` (NULL turns logging
/// off), with `user_data` passed back untouched. Lines carry the
/// connection's id and never a credential: values of `Authorization`,
/// `Proxy-Authorization`, `Cookie` and `Set-Cookie` headers and proxy
/// passwords are redacted at every level. The callback stays installed
/// across `wsc_shutdown`/`wsc_init`, but is not called between a
/// `wsc_shutdown` that returned WSC_OK and the next `wsc_init`. It may call
/// wsc functions. After replacing or removing it, a call already in
/// progress on another thread may still finish with the old `user_data`;
/// a `wsc_shutdown` returning WSC_OK waits for those. WSC_ERR_INVALID_ARGUMENT
/// for a level outside WSC_LOG_ERROR..WSC_LOG_TRACE; WSC_ERR_INTERNAL if the
/// process already has another logger for the Rust `log` crate (only a Rust
/// program linking wsc as a crate can: its own logger gets the lines).
#[no_mangle]
pub unsafe extern "C" fn wsc_set_log_callback(
    log_fn: wsc_log_fn,
    max_level: LogLevelArg,
    user_data: *mut c_void,
) -> wsc_status {
    call(|| {
        let Some(f) = log_fn else {
            *CALLBACK.lock() = None;
            if installed() {
                log::set_max_level(log::LevelFilter::Off);
            }
            return Ok(());
        };
        let max = match max_level.0 {
            1 => log::Level::Error,
            2 => log::Level::Warn,
            3 => log::Level::Info,
            4 => log::Level::Debug,
            5 => log::Level::Trace,
            other => {
                return Err(Error::InvalidArgument(format!(
                    "max_level {other} is not a wsc_log_level (WSC_LOG_ERROR 1 .. WSC_LOG_TRACE 5)"
                )))
            }
        };
        if !installed() && log::set_logger(&SINK).is_err() {
            return Err(Error::Internal(
                "another logger is already installed for the Rust `log` crate in this process; \
                 wsc's lines go to it"
                    .into(),
            ));
        }
        *CALLBACK.lock() = Some(Callback { f, max, user_data });
        log::set_max_level(max.to_level_filter());
        Ok(())
    })
}

/// True when the process's logger is this sink.
fn installed() -> bool {
    std::ptr::addr_eq(log::logger(), &SINK as &dyn log::Log)
}
