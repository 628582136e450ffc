//! Status codes: the C face of [`crate::Error`], plus the per-thread detail
//! string, because a code alone cannot say which argument was wrong.

use super::boundary::guard;
use crate::connection::State;
use crate::error::Error;
use std::cell::RefCell;
use std::ffi::{c_char, CStr, CString};

/// What a wsc function returns. Details of a failure: `wsc_last_error()`.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum wsc_status {
    /// Success.
    WSC_OK = 0,
    /// NULL where not allowed, invalid UTF-8, bad option value.
    WSC_ERR_INVALID_ARGUMENT = 1,
    /// Unparsable, or a scheme other than ws/wss.
    WSC_ERR_INVALID_URI = 2,
    /// No such connection: never existed, or already finished.
    WSC_ERR_UNKNOWN_ID = 3,
    /// The connection is closing: nothing more can be sent.
    WSC_ERR_CLOSED = 4,
    /// Max buffered outgoing bytes reached.
    WSC_ERR_QUEUE_FULL = 5,
    /// No handler is registered under that name.
    WSC_ERR_UNKNOWN_HANDLER = 6,
    /// wsc_shutdown() has run.
    WSC_ERR_SHUTDOWN = 7,
    /// A bug, including a caught panic; or the system refused a resource
    /// (file descriptors, threads): wsc_last_error() says which.
    WSC_ERR_INTERNAL = 8,
    /// wsc_shutdown: not every worker thread has exited.
    WSC_ERR_TIMEOUT = 9,
}

/// A connection's state, as reported by `wsc_get_state`.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum wsc_state {
    WSC_STATE_CONNECTING = 0,
    WSC_STATE_OPEN = 1,
    WSC_STATE_CLOSING = 2,
}

impl From<State> for wsc_state {
    fn from(s: State) -> Self {
        match s {
            State::Connecting => wsc_state::WSC_STATE_CONNECTING,
            State::Open => wsc_state::WSC_STATE_OPEN,
            State::Closing => wsc_state::WSC_STATE_CLOSING,
        }
    }
}

impl From<&Error> for wsc_status {
    fn from(e: &Error) -> Self {
        match e {
            Error::InvalidArgument(_) => wsc_status::WSC_ERR_INVALID_ARGUMENT,
            Error::InvalidUri(_) => wsc_status::WSC_ERR_INVALID_URI,
            Error::UnknownId => wsc_status::WSC_ERR_UNKNOWN_ID,
            Error::Closed => wsc_status::WSC_ERR_CLOSED,
            Error::QueueFull { .. } => wsc_status::WSC_ERR_QUEUE_FULL,
            Error::UnknownHandler(_) => wsc_status::WSC_ERR_UNKNOWN_HANDLER,
            Error::Shutdown => wsc_status::WSC_ERR_SHUTDOWN,
            Error::Internal(_) => wsc_status::WSC_ERR_INTERNAL,
            Error::Timeout(_) => wsc_status::WSC_ERR_TIMEOUT,
        }
    }
}

/// A status received from C. Taken as a plain integer (`wsc_status` in the
/// header, via cbindgen's rename) so that an out-of-range value from a C
/// caller is not undefined behaviour in Rust.
#[repr(transparent)]
#[derive(Debug, Clone, Copy)]
pub struct StatusArg(u32);

thread_local! {
    static LAST_ERROR: RefCell<CString> = RefCell::new(CString::default());
}

/// What `wsc_last_error()` says on a thread whose thread-locals are already
/// destroyed (a call from a thread-exit destructor): there is nowhere left
/// to keep a per-thread message.
const NO_DETAIL: &CStr = c"no detail: the calling thread is exiting";

/// Records the detail of a failure for `wsc_last_error()` on this thread.
/// During thread exit the detail is dropped (see [`NO_DETAIL`]).
pub(crate) fn set_last_error(message: &str) {
    let c = CString::new(message.replace('\0', " ")).unwrap_or_default();
    let _ = LAST_ERROR.try_with(|slot| {
        if let Ok(mut s) = slot.try_borrow_mut() {
            *s = c;
        }
    });
}

/// A static, NUL-terminated name for a status (e.g. "WSC_ERR_UNKNOWN_ID:
/// no such connection"). Never NULL; unknown values give "unknown status".
#[no_mangle]
pub extern "C" fn wsc_status_str(status: StatusArg) -> *const c_char {
    guard(c"unknown status".as_ptr(), || {
        let s = match status.0 {
            0 => c"WSC_OK",
            1 => c"WSC_ERR_INVALID_ARGUMENT: invalid argument",
            2 => c"WSC_ERR_INVALID_URI: invalid URI",
            3 => c"WSC_ERR_UNKNOWN_ID: no such connection",
            4 => c"WSC_ERR_CLOSED: the connection is closing",
            5 => c"WSC_ERR_QUEUE_FULL: send queue full",
            6 => c"WSC_ERR_UNKNOWN_HANDLER: no such handler",
            7 => c"WSC_ERR_SHUTDOWN: wsc has been shut down",
            8 => c"WSC_ERR_INTERNAL: internal error",
            9 => c"WSC_ERR_TIMEOUT: timed out",
            _ => c"unknown status",
        };
        s.as_ptr()
    })
}

/// The detail of this thread's last failed wsc call, NUL-terminated ("" if
/// none). Owned by wsc: valid until this thread's next wsc call; never NULL.
/// Any thread, including from thread-exit destructors (pthread key or C++
/// `thread_local`), where it may be a fixed text saying no detail is kept.
#[no_mangle]
pub extern "C" fn wsc_last_error() -> *const c_char {
    guard(NO_DETAIL.as_ptr(), || {
        LAST_ERROR
            .try_with(|slot| slot.try_borrow().map_or(NO_DETAIL.as_ptr(), |s| s.as_ptr()))
            .unwrap_or(NO_DETAIL.as_ptr())
    })
}

/// The library version, e.g. "0.1.0". Static; never NULL.
#[no_mangle]
pub extern "C" fn wsc_version() -> *const c_char {
    concat!(env!("CARGO_PKG_VERSION"), "\0").as_ptr().cast()
}
