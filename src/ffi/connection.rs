//! `wsc_connect` and the calls on a connection id.

use super::boundary::{bytes, call, connection, nul_terminated, optional_text, out, text as c_text};
use super::observe::{with_error, wsc_on_pong_fn};
use super::options::{on_reconnecting_of, or_default, wsc_on_reconnecting_fn, wsc_options};
use super::status::{wsc_state, wsc_status};
use super::wsc_id;
use crate::connection::{Connection, Sink};
use crate::error::Error;
use crate::event::{Event, Message};
use crate::lifecycle::start;
use crate::outbox::Payload;
use crate::scratch;
use std::ffi::{c_char, c_void, CString};
use std::time::Duration;

/// Callbacks of one connection. Any member may be NULL.
///
/// Every callback runs on the connection's own worker thread (with an event
/// loop, `wsc_options_set_loop`: inside `wsc_loop_dispatch` on the thread
/// that calls it), never two of
/// one connection at once, in order: `on_open` once per successful
/// (re)connect (at most once without reconnect) and first, then messages,
/// then exactly one of `on_error` / `on_close`, last. Pointers
/// passed to a callback are valid only during that call; copy what you keep.
/// A callback may call any wsc function, including `wsc_close` on its own id.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct wsc_callbacks {
    /// The handshake completed.
    pub on_open: Option<unsafe extern "C" fn(id: wsc_id, user_data: *mut c_void)>,
    /// A complete message. `data` is valid only during the call; for text,
    /// `data[len] == '\0'` as a convenience (the text itself may contain NUL).
    pub on_message:
        Option<unsafe extern "C" fn(id: wsc_id, data: *const u8, len: usize, is_binary: bool, user_data: *mut c_void)>,
    /// Terminal: the connection failed (refused, DNS, TLS, HTTP status,
    /// protocol violation, timeout, peer vanished). `message` says why;
    /// `wsc_get_error_kind` and `wsc_get_http_status` say it for code.
    pub on_error: Option<unsafe extern "C" fn(id: wsc_id, message: *const c_char, user_data: *mut c_void)>,
    /// Terminal: the connection closed; the peer's code and reason, or 1006
    /// when closed while connecting or the closing handshake could not finish.
    pub on_close: Option<unsafe extern "C" fn(id: wsc_id, code: u16, reason: *const c_char, user_data: *mut c_void)>,
}

/// The application's pointer, handed back untouched on the worker thread.
#[derive(Clone, Copy)]
struct UserData(*mut c_void);
// SAFETY: wsc never dereferences it; the C contract makes the application
// responsible for using it from the worker thread.
unsafe impl Send for UserData {}

fn c_string(s: &str) -> CString {
    CString::new(s.replace('\0', " ")).unwrap_or_default()
}

/// The callbacks that come through `wsc_options` (`wsc_callbacks` is frozen).
struct CallbacksFromOptions {
    on_reconnecting: wsc_on_reconnecting_fn,
    on_pong: wsc_on_pong_fn,
}

/// Translates events into the C callbacks. Text gets a trailing NUL in a
/// buffer reused across messages (see `scratch`), so only text pays one copy.
fn c_sink(cb: wsc_callbacks, extra: CallbacksFromOptions, user_data: UserData) -> Sink {
    let CallbacksFromOptions { on_reconnecting, on_pong } = extra;
    Box::new(move |conn: &Connection, event: Event| {
        let (id, ud) = (conn.id(), user_data);
        // SAFETY (all calls below): the application supplied these function
        // pointers for exactly these arguments; pointers live for the call.
        match event {
            Event::Open => {
                if let Some(f) = cb.on_open {
                    unsafe { f(id, ud.0) }
                }
            }
            Event::Message(Message::Binary(b)) => {
                if let Some(f) = cb.on_message {
                    unsafe { f(id, b.as_ptr(), b.len(), true, ud.0) }
                }
            }
            Event::Message(Message::Text(t)) => {
                if let Some(f) = cb.on_message {
                    scratch::with_nul(t.as_bytes(), |buf| unsafe { f(id, buf.as_ptr(), t.len(), false, ud.0) })
                }
            }
            Event::Reconnecting { attempt, delay, reason } => {
                if let Some(f) = on_reconnecting {
                    let ms = u32::try_from(delay.as_millis()).unwrap_or(u32::MAX);
                    let r = c_string(reason.message());
                    unsafe { f(id, attempt, ms, r.as_ptr(), ud.0) }
                }
            }
            Event::Pong { data, rtt } => {
                if let Some(f) = on_pong {
                    let rtt_us = rtt.map_or(0, crate::stats::micros);
                    unsafe { f(id, data.as_ptr(), data.len(), rtt_us, ud.0) }
                }
            }
            Event::Error(e) => {
                if let Some(f) = cb.on_error {
                    let m = c_string(e.message());
                    with_error(&e, || unsafe { f(id, m.as_ptr(), ud.0) })
                }
            }
            Event::Close { code, reason } => {
                if let Some(f) = cb.on_close {
                    let r = c_string(&reason);
                    unsafe { f(id, code, r.as_ptr(), ud.0) }
                }
            }
        }
    })
}

/// Starts connecting to `uri` (ws:// or wss://) and returns at once with the
/// new id in `*out_id`; the outcome arrives through the callbacks, on the
/// connection's worker thread. `options` may be NULL (defaults) and is not
/// retained. `callbacks` is copied; it and `out_id` must not be NULL.
/// `user_data` is passed back untouched to every callback.
/// WSC_ERR_INVALID_URI for a bad URI, WSC_ERR_SHUTDOWN after `wsc_shutdown`.
#[no_mangle]
pub unsafe extern "C" fn wsc_connect(
    uri: *const c_char,
    options: *const wsc_options,
    callbacks: *const wsc_callbacks,
    user_data: *mut c_void,
    out_id: *mut wsc_id,
) -> wsc_status {
    call(|| {
        // SAFETY: NUL-terminated string per the header's contract.
        let uri = unsafe { c_text(uri, "uri")? };
        // SAFETY: NULL or a valid wsc_callbacks per the header's contract.
        let cb = *unsafe { callbacks.as_ref() }.ok_or_else(|| Error::InvalidArgument("callbacks is NULL".into()))?;
        let out_id = out(out_id, "out_id")?;
        let on_reconnecting = on_reconnecting_of(options);
        let options = or_default(options);
        let extra = CallbacksFromOptions { on_reconnecting, on_pong: options.c_on_pong };
        let conn = start(uri, &options, None, c_sink(cb, extra, UserData(user_data)))?;
        *out_id = conn.id();
        Ok(())
    })
}

/// Queues a NUL-terminated UTF-8 text message (copied). Before the
/// connection is open it is sent right after the handshake, in order.
/// WSC_ERR_CLOSED once closing, WSC_ERR_QUEUE_FULL past max_buffered_bytes,
/// WSC_ERR_INVALID_ARGUMENT for NULL or invalid UTF-8.
#[no_mangle]
pub unsafe extern "C" fn wsc_send(id: wsc_id, text: *const c_char) -> wsc_status {
    call(|| {
        // SAFETY: NUL-terminated string per the header's contract.
        let t = unsafe { nul_terminated(text, "text")? };
        connection(id)?.send_borrowed(Payload::UncheckedText(t), "text")
    })
}

/// Queues a text message of `len` bytes of UTF-8 (copied; may contain NUL).
/// `text` may be NULL only when `len` is 0.
#[no_mangle]
pub unsafe extern "C" fn wsc_send_text(id: wsc_id, text: *const c_char, len: usize) -> wsc_status {
    call(|| {
        // SAFETY: `len` readable bytes per the header's contract.
        let b = unsafe { bytes(text.cast(), len, "text")? };
        connection(id)?.send_borrowed(Payload::UncheckedText(b), "text")
    })
}

/// Queues a binary message of `len` bytes (copied). `data` may be NULL only
/// when `len` is 0.
#[no_mangle]
pub unsafe extern "C" fn wsc_send_binary(id: wsc_id, data: *const u8, len: usize) -> wsc_status {
    call(|| {
        // SAFETY: `len` readable bytes per the header's contract.
        let b = unsafe { bytes(data, len, "data")? };
        connection(id)?.send_borrowed(Payload::Binary(b), "data")
    })
}

/// Closes with code 1000. Queued messages are written first, then the
/// closing handshake runs (bounded by the close timeout) and `on_close`
/// follows. On a connection still connecting the handshake is abandoned at
/// once and it ends with `on_close(1006, ...)`. After it no further
/// `on_message` is delivered. A second close is WSC_ERR_CLOSED.
#[no_mangle]
pub extern "C" fn wsc_close(id: wsc_id) -> wsc_status {
    call(|| connection(id)?.close())
}

/// Closes with `code` (1000 or 3000-4999) and `reason` (NULL or at most 123
/// bytes of UTF-8, copied); anything else is WSC_ERR_INVALID_ARGUMENT.
#[no_mangle]
pub unsafe extern "C" fn wsc_close_with(id: wsc_id, code: u16, reason: *const c_char) -> wsc_status {
    call(|| {
        // SAFETY: NULL or a NUL-terminated string per the header's contract.
        let reason = unsafe { optional_text(reason, "reason")? }.unwrap_or("");
        connection(id)?.close_with(code, reason)
    })
}

/// Turns flow control on or off. While on, after each `on_message` nothing
/// more is read from the socket or delivered until `wsc_message_complete`.
/// Turning it off releases the gate. Any thread, any time.
#[no_mangle]
pub extern "C" fn wsc_set_flow_control(id: wsc_id, enabled: bool) -> wsc_status {
    call(|| connection(id)?.set_flow_control(enabled))
}

/// With flow control on: the last delivered message is done, deliver the
/// next. Any thread, any later time. With no message outstanding it is a
/// no-op (it banks no credit).
#[no_mangle]
pub extern "C" fn wsc_message_complete(id: wsc_id) -> wsc_status {
    call(|| connection(id)?.message_complete())
}

/// Writes the state to `*out_state`. Inside the terminal callback the id
/// still answers (WSC_STATE_CLOSING); after it, WSC_ERR_UNKNOWN_ID.
#[no_mangle]
pub unsafe extern "C" fn wsc_get_state(id: wsc_id, out_state: *mut wsc_state) -> wsc_status {
    call(|| {
        let o = out(out_state, "out_state")?;
        *o = connection(id)?.state()?.into();
        Ok(())
    })
}

/// Writes to `*out_bytes` the bytes accepted by send and not yet written.
#[no_mangle]
pub unsafe extern "C" fn wsc_buffered_amount(id: wsc_id, out_bytes: *mut usize) -> wsc_status {
    call(|| {
        let o = out(out_bytes, "out_bytes")?;
        *o = connection(id)?.buffered_amount()?;
        Ok(())
    })
}

/// The negotiated subprotocol ("" if none or not yet open), copied
/// NUL-terminated into `buf`; a NULL or too small buf is
/// WSC_ERR_INVALID_ARGUMENT and nothing is written past `buf_len`.
#[no_mangle]
pub unsafe extern "C" fn wsc_get_protocol(id: wsc_id, buf: *mut c_char, buf_len: usize) -> wsc_status {
    call(|| {
        if buf.is_null() {
            return Err(Error::InvalidArgument("buf is NULL".into()));
        }
        let protocol = connection(id)?.protocol().unwrap_or_default();
        if protocol.len() + 1 > buf_len {
            return Err(Error::InvalidArgument(format!(
                "buf_len {buf_len} is too small: the protocol needs {} bytes with its NUL",
                protocol.len() + 1
            )));
        }
        // SAFETY: buf has at least protocol.len() + 1 writable bytes (checked).
        unsafe {
            std::ptr::copy_nonoverlapping(protocol.as_ptr(), buf.cast::<u8>(), protocol.len());
            *buf.add(protocol.len()) = 0;
        }
        Ok(())
    })
}

/// Blocks the calling thread until the connection has finished or
/// `timeout_ms` passes: WSC_OK once finished (the terminal callback has
/// returned; also for an id that finished earlier), WSC_ERR_TIMEOUT
/// otherwise, WSC_ERR_UNKNOWN_ID for an id that was never issued. Must not be called from the
/// connection's own callbacks (it would wait for itself: WSC_ERR_TIMEOUT).
#[no_mangle]
pub extern "C" fn wsc_wait(id: wsc_id, timeout_ms: u32) -> wsc_status {
    call(|| match crate::registry::registry().get(id) {
        Some(conn) => conn.wait(Duration::from_millis(u64::from(timeout_ms))),
        None if crate::registry::registry().was_issued(id) => Ok(()),
        None => Err(Error::UnknownId),
    })
}
