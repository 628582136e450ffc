//! The panic boundary and argument checks shared by every entry point.

use super::status::{set_last_error, wsc_status};
use crate::error::{panic_text, Error};
use std::ffi::{c_char, CStr};
use std::panic::{catch_unwind, AssertUnwindSafe};

/// Runs an entry point that reports a status. Failures (including a caught
/// panic, reported as `WSC_ERR_INTERNAL`) set `wsc_last_error()`.
pub(crate) fn call(f: impl FnOnce() -> Result<(), Error>) -> wsc_status {
    let result = catch_unwind(AssertUnwindSafe(f))
        .unwrap_or_else(|p| Err(Error::Internal(format!("panic in wsc: {}", panic_text(&*p)))));
    match result {
        Ok(()) => wsc_status::WSC_OK,
        Err(e) => {
            set_last_error(&e.to_string());
            wsc_status::from(&e)
        }
    }
}

/// Runs an entry point that returns a value; a panic yields `fallback`.
pub(crate) fn guard<T>(fallback: T, f: impl FnOnce() -> T) -> T {
    catch_unwind(AssertUnwindSafe(f)).unwrap_or_else(|p| {
        set_last_error(&format!("internal error: panic in wsc: {}", panic_text(&*p)));
        fallback
    })
}

/// A required NUL-terminated UTF-8 argument.
///
/// # Safety
/// `p` is NULL or points to a NUL-terminated string valid for the call.
pub(crate) unsafe fn text<'a>(p: *const c_char, what: &str) -> Result<&'a str, Error> {
    // SAFETY: forwarded contract.
    utf8(unsafe { nul_terminated(p, what) }?, what)
}

/// The bytes of a required NUL-terminated argument, not yet checked as
/// UTF-8 (for text that is checked on its copy).
///
/// # Safety
/// `p` is NULL or points to a NUL-terminated string valid for the call.
pub(crate) unsafe fn nul_terminated<'a>(p: *const c_char, what: &str) -> Result<&'a [u8], Error> {
    if p.is_null() {
        return Err(Error::InvalidArgument(format!("{what} is NULL")));
    }
    // SAFETY: non-NULL and NUL-terminated per the caller's contract.
    Ok(unsafe { CStr::from_ptr(p) }.to_bytes())
}

/// `b` as UTF-8, checked with SIMD: outgoing text must be valid (RFC 6455
/// 8.1), and a byte-at-a-time check is most of the CPU a large text
/// message costs (IXWebSocket spends ~70 % of it there).
pub(crate) fn utf8<'a>(b: &'a [u8], what: &str) -> Result<&'a str, Error> {
    simdutf8::basic::from_utf8(b).map_err(|_| Error::InvalidArgument(format!("{what} is not valid UTF-8")))
}

/// An optional NUL-terminated UTF-8 argument (NULL is `None`).
///
/// # Safety
/// As for [`text`].
pub(crate) unsafe fn optional_text<'a>(p: *const c_char, what: &str) -> Result<Option<&'a str>, Error> {
    if p.is_null() {
        Ok(None)
    } else {
        // SAFETY: forwarded contract.
        unsafe { text(p, what) }.map(Some)
    }
}

/// A byte buffer argument; NULL is allowed only with length 0.
///
/// # Safety
/// `p` is NULL or points to `len` readable bytes valid for the call.
pub(crate) unsafe fn bytes<'a>(p: *const u8, len: usize, what: &str) -> Result<&'a [u8], Error> {
    match (p.is_null(), len) {
        (true, 0) => Ok(&[]),
        (true, _) => Err(Error::InvalidArgument(format!("{what} is NULL with length {len}"))),
        // SAFETY: non-NULL and `len` readable bytes per the caller's contract.
        (false, _) => Ok(unsafe { std::slice::from_raw_parts(p, len) }),
    }
}

/// A required out-pointer.
pub(crate) fn out<'a, T>(p: *mut T, what: &str) -> Result<&'a mut T, Error> {
    // SAFETY: the caller passes NULL or a valid, writable, aligned T.
    unsafe { p.as_mut() }.ok_or_else(|| Error::InvalidArgument(format!("{what} is NULL")))
}

/// The live connection with this id.
pub(crate) fn connection(id: u64) -> Result<crate::Connection, Error> {
    crate::registry::registry().get(id).ok_or(Error::UnknownId)
}
