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
    /// DNS, TCP, TLS or the HTTP upgrade in progress; sends are queued.
    WSC_STATE_CONNECTING = 0,
    /// The handshake has completed.
    WSC_STATE_OPEN = 1,
    /// Closing, or inside the terminal callback: nothing more can be sent.
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

/// Declares the text of every status in one exhaustive `match` (a variant
/// left out does not compile) and derives the list of all statuses from the
/// same lines, so `wsc_status_str` and the conversion from a C integer cannot
/// drift from the enum.
macro_rules! status_texts {
    ($($variant:ident => $text:literal,)*) => {
        impl wsc_status {
            /// Every status, in declaration order.
            pub(crate) const ALL: &'static [wsc_status] = &[$(wsc_status::$variant),*];

            /// The static text `wsc_status_str` returns.
            pub(crate) fn text(self) -> &'static CStr {
                match self {
                    $(wsc_status::$variant => $text,)*
                }
            }

            /// The status with this numeric value, if there is one.
            pub(crate) fn from_raw(value: u32) -> Option<wsc_status> {
                Self::ALL.iter().copied().find(|s| *s as u32 == value)
            }
        }
    };
}

status_texts! {
    WSC_OK => c"WSC_OK",
    WSC_ERR_INVALID_ARGUMENT => c"WSC_ERR_INVALID_ARGUMENT: invalid argument",
    WSC_ERR_INVALID_URI => c"WSC_ERR_INVALID_URI: invalid URI",
    WSC_ERR_UNKNOWN_ID => c"WSC_ERR_UNKNOWN_ID: no such connection",
    WSC_ERR_CLOSED => c"WSC_ERR_CLOSED: the connection is closing",
    WSC_ERR_QUEUE_FULL => c"WSC_ERR_QUEUE_FULL: send queue full",
    WSC_ERR_UNKNOWN_HANDLER => c"WSC_ERR_UNKNOWN_HANDLER: no such handler",
    WSC_ERR_SHUTDOWN => c"WSC_ERR_SHUTDOWN: wsc has been shut down",
    WSC_ERR_INTERNAL => c"WSC_ERR_INTERNAL: internal error",
    WSC_ERR_TIMEOUT => c"WSC_ERR_TIMEOUT: timed out",
}

/// A static, NUL-terminated name for a status (e.g. "WSC_ERR_UNKNOWN_ID:
/// no such connection"). Never NULL; unknown values give "unknown status".
#[no_mangle]
pub extern "C" fn wsc_status_str(status: StatusArg) -> *const c_char {
    guard(c"unknown status".as_ptr(), || {
        wsc_status::from_raw(status.0).map_or(c"unknown status", wsc_status::text).as_ptr()
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

/// The library version, e.g. "0.1.0". Static; never NULL. Compare with
/// `WSC_VERSION`, the version of the header compiled against.
#[no_mangle]
pub extern "C" fn wsc_version() -> *const c_char {
    concat!(env!("CARGO_PKG_VERSION"), "\0").as_ptr().cast()
}

/// The library version as `(major << 16) | (minor << 8) | patch`, e.g.
/// 0x000100 for 0.1.0: compare with `WSC_VERSION_NUM` from the header a
/// program was compiled against (a `dlopen` host checks both).
#[no_mangle]
pub extern "C" fn wsc_version_num() -> u32 {
    VERSION_NUM
}

/// `(major << 16) | (minor << 8) | patch` of this crate, computed from
/// Cargo.toml at compile time; each part must fit in 8 bits.
pub(crate) const VERSION_NUM: u32 = {
    let (major, minor, patch) = (
        decimal(env!("CARGO_PKG_VERSION_MAJOR")),
        decimal(env!("CARGO_PKG_VERSION_MINOR")),
        decimal(env!("CARGO_PKG_VERSION_PATCH")),
    );
    assert!(major < 256 && minor < 256 && patch < 256, "each version part must fit in 8 bits");
    (major << 16) | (minor << 8) | patch
};

const fn decimal(s: &str) -> u32 {
    let bytes = s.as_bytes();
    let mut value = 0;
    let mut i = 0;
    while i < bytes.len() {
        assert!(bytes[i].is_ascii_digit(), "version parts are decimal");
        value = value * 10 + (bytes[i] - b'0') as u32;
        i += 1;
    }
    value
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_status_has_its_own_value_and_text() {
        for (i, s) in wsc_status::ALL.iter().enumerate() {
            assert_eq!(*s as u32, i as u32, "statuses are numbered 0, 1, 2, ...");
            assert_eq!(wsc_status::from_raw(i as u32), Some(*s));
            assert!(s.text().to_str().unwrap().starts_with(&format!("{s:?}")));
        }
        assert_eq!(wsc_status::from_raw(wsc_status::ALL.len() as u32), None);
    }

    #[test]
    fn version_num_is_the_cargo_version() {
        let parts: Vec<u32> = env!("CARGO_PKG_VERSION").split(['.', '-']).take(3).map(|p| p.parse().unwrap()).collect();
        assert_eq!(wsc_version_num(), (parts[0] << 16) | (parts[1] << 8) | parts[2]);
    }
}
