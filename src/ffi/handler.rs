//! Named handlers from C, and the event context a handler asks
//! (`wsc_get_method`, `wsc_get_message`, ...), as Dirigible's handlers do.
//!
//! The context is thread-local and set only for the duration of a handler
//! call, so it is visible exactly inside the handler, on that thread, and
//! nowhere else — another thread asking at the same moment sees nothing.

use super::boundary::{call, guard, optional_text, out, text};
use super::observe::with_error;
use super::options::{or_default, wsc_options};
use super::status::wsc_status;
use super::wsc_id;
use crate::event::{Event, Message};
use std::cell::RefCell;
use std::ffi::{c_char, c_void, CStr, CString};

/// A named handler: receives every event of the connections created with its
/// name, on their worker threads; ask the event context what happened.
pub type wsc_handler_fn = Option<unsafe extern "C" fn(id: wsc_id, user_data: *mut c_void)>;

/// The event being handled on this thread.
struct Context {
    method: &'static CStr,
    /// onmessage: the payload plus a trailing NUL.
    message: Option<(Vec<u8>, bool)>,
    error: Option<CString>,
    close_code: u16,
    /// The endpoint of a server-side connection.
    endpoint: Option<CString>,
    /// onreconnecting: the attempt and its delay in milliseconds.
    reconnect: (u32, u32),
}

thread_local! {
    static CONTEXT: RefCell<Option<Context>> = const { RefCell::new(None) };
}

impl Context {
    fn of(conn: &crate::Connection, event: &Event) -> Context {
        let endpoint = conn.endpoint().and_then(|e| CString::new(e).ok());
        let mut c =
            Context { method: c"onopen", message: None, error: None, close_code: 0, endpoint, reconnect: (0, 0) };
        match event {
            Event::Open => {}
            Event::Message(m) => {
                c.method = c"onmessage";
                let mut data = Vec::with_capacity(m.len() + 1);
                data.extend_from_slice(m.as_bytes());
                data.push(0);
                c.message = Some((data, matches!(m, Message::Binary(_))));
            }
            Event::Reconnecting { attempt, delay, reason } => {
                c.method = c"onreconnecting";
                c.error = Some(CString::new(reason.message().replace('\0', " ")).unwrap_or_default());
                c.reconnect = (*attempt, u32::try_from(delay.as_millis()).unwrap_or(u32::MAX));
            }
            Event::Pong { .. } => c.method = c"onpong",
            Event::Error(e) => {
                c.method = c"onerror";
                c.error = Some(CString::new(e.message().replace('\0', " ")).unwrap_or_default());
            }
            Event::Close { code, .. } => {
                c.method = c"onclose";
                c.close_code = *code;
            }
        }
        c
    }
}

#[derive(Clone, Copy)]
struct UserData(*mut c_void);
// SAFETY: never dereferenced by wsc; handed back to the application's handler.
unsafe impl Send for UserData {}
// SAFETY: as above; wsc only copies the pointer value.
unsafe impl Sync for UserData {}

/// Registers `handler` under `name` (copied), replacing any handler of that
/// name. Events of connections already using the name go to the new handler
/// from their next event on. `user_data` is passed back untouched.
///
/// Concurrency: the handler runs on the worker thread of each connection
/// created with its name, so it may run on several threads at once (never
/// twice at once for one connection). When replacing, this returns once no
/// call of the old handler is in progress, so the old `user_data` may be
/// freed then; called from inside any wsc callback it returns at once
/// instead (it cannot wait for itself), and the old `user_data` must stay
/// valid until the calls on other threads have returned.
#[no_mangle]
pub unsafe extern "C" fn wsc_register_handler(
    name: *const c_char,
    handler: wsc_handler_fn,
    user_data: *mut c_void,
) -> wsc_status {
    call(|| {
        // SAFETY: NUL-terminated string per the header's contract.
        let name = unsafe { text(name, "name")? };
        let f = handler.ok_or_else(|| crate::Error::InvalidArgument("handler is NULL".into()))?;
        let ud = UserData(user_data);
        crate::handler::register_handler(name, move |conn, event| {
            let ud = ud;
            if let Event::Pong { data, rtt } = event {
                // Pongs go to the connection's on_pong, with the handler's user_data.
                if let Some(on_pong) = conn.shared().c_on_pong {
                    let rtt_us = rtt.map_or(0, crate::stats::micros);
                    // SAFETY: the application's on_pong; `data` lives for the call.
                    unsafe { on_pong(conn.id(), data.as_ptr(), data.len(), rtt_us, ud.0) };
                }
                return;
            }
            // Handlers run on worker threads, whose thread-locals live
            // until the handler returns: `with` cannot fail here.
            let previous = CONTEXT.with(|slot| slot.replace(Some(Context::of(conn, event))));
            // SAFETY: the application's handler, called with its own user_data.
            let handle = || unsafe { f(conn.id(), ud.0) };
            match event {
                Event::Error(e) => with_error(e, handle),
                _ => handle(),
            }
            CONTEXT.with(|slot| *slot.borrow_mut() = previous);
        })
    })
}

/// Removes the handler. Connections created with it carry on, but their
/// events are dropped until a handler of that name is registered again.
/// WSC_ERR_UNKNOWN_HANDLER if none is registered under `name`.
///
/// Returns once no call of the handler is in progress on any thread: its
/// `user_data` may be freed as soon as this returns WSC_OK. Called from
/// inside any wsc callback (including the handler itself) it returns at
/// once instead, and `user_data` must stay valid until the handler's calls
/// on other threads have returned (e.g. free it from outside a callback).
#[no_mangle]
pub unsafe extern "C" fn wsc_unregister_handler(name: *const c_char) -> wsc_status {
    // SAFETY: NUL-terminated string per the header's contract.
    call(|| crate::handler::unregister_handler(unsafe { text(name, "name")? }))
}

/// createWebsocket(uri, handler, engine): engine NULL, "" or "default" means
/// the one engine there is (worker threads over tungstenite); any other name
/// is WSC_ERR_INVALID_ARGUMENT with a last_error naming the engines there
/// are. options may be NULL. An unregistered handler is
/// WSC_ERR_UNKNOWN_HANDLER. Returns at once, like `wsc_connect`.
#[no_mangle]
pub unsafe extern "C" fn wsc_create_websocket(
    uri: *const c_char,
    handler: *const c_char,
    engine: *const c_char,
    options: *const wsc_options,
    out_id: *mut wsc_id,
) -> wsc_status {
    call(|| {
        // SAFETY: NUL-terminated strings (engine may be NULL) per the contract.
        let (uri, handler, engine) =
            unsafe { (text(uri, "uri")?, text(handler, "handler")?, optional_text(engine, "engine")?) };
        let out_id = out(out_id, "out_id")?;
        let conn = crate::handler::create_websocket(uri, handler, engine, Some(&or_default(options)))?;
        *out_id = conn.id();
        Ok(())
    })
}

/// Inside a handler: "onopen", "onmessage", "onerror" or "onclose"
/// (static strings). NULL outside a handler invocation or on another thread.
#[no_mangle]
pub extern "C" fn wsc_get_method() -> *const c_char {
    context(std::ptr::null(), |c| c.method.as_ptr())
}

/// onmessage: the data, NUL-terminated, valid until the handler returns;
/// NULL otherwise.
#[no_mangle]
pub extern "C" fn wsc_get_message() -> *const c_char {
    context(std::ptr::null(), |c| c.message.as_ref().map_or(std::ptr::null(), |(d, _)| d.as_ptr().cast()))
}

/// onmessage: the message length in bytes (without the NUL); 0 otherwise.
#[no_mangle]
pub extern "C" fn wsc_get_message_length() -> usize {
    context(0, |c| c.message.as_ref().map_or(0, |(d, _)| d.len() - 1))
}

/// onmessage: true for a binary message; false otherwise.
#[no_mangle]
pub extern "C" fn wsc_get_message_is_binary() -> bool {
    context(false, |c| c.message.as_ref().is_some_and(|(_, b)| *b))
}

/// onerror: the error message, valid until the handler returns; NULL otherwise.
#[no_mangle]
pub extern "C" fn wsc_get_error() -> *const c_char {
    context(std::ptr::null(), |c| c.error.as_ref().map_or(std::ptr::null(), |e| e.as_ptr()))
}

/// Inside a handler: the endpoint's name for a connection a `wsc_server`
/// accepted, valid until the handler returns; NULL for a client connection,
/// outside a handler invocation or on another thread.
#[no_mangle]
pub extern "C" fn wsc_get_endpoint() -> *const c_char {
    context(std::ptr::null(), |c| c.endpoint.as_ref().map_or(std::ptr::null(), |e| e.as_ptr()))
}

/// onreconnecting: the retry's number, from 1; 0 otherwise.
#[no_mangle]
pub extern "C" fn wsc_get_reconnect_attempt() -> u32 {
    context(0, |c| c.reconnect.0)
}

/// onreconnecting: the delay before the retry, in milliseconds; 0 otherwise.
#[no_mangle]
pub extern "C" fn wsc_get_reconnect_delay_ms() -> u32 {
    context(0, |c| c.reconnect.1)
}

/// onclose: the close code; 0 otherwise.
#[no_mangle]
pub extern "C" fn wsc_get_close_code() -> u16 {
    context(0, |c| c.close_code)
}

/// True inside a handler handling onopen.
#[no_mangle]
pub extern "C" fn wsc_is_on_open() -> bool {
    context(false, |c| c.method == c"onopen")
}

/// True inside a handler handling onmessage.
#[no_mangle]
pub extern "C" fn wsc_is_on_message() -> bool {
    context(false, |c| c.method == c"onmessage")
}

/// True inside a handler handling onerror.
#[no_mangle]
pub extern "C" fn wsc_is_on_error() -> bool {
    context(false, |c| c.method == c"onerror")
}

/// True inside a handler handling onclose.
#[no_mangle]
pub extern "C" fn wsc_is_on_close() -> bool {
    context(false, |c| c.method == c"onclose")
}

/// Reads the current context; `outside` when there is none, including on a
/// thread whose thread-locals are already destroyed (a thread-exit
/// destructor is never inside a handler).
fn context<T: Copy>(outside: T, f: impl FnOnce(&Context) -> T) -> T {
    guard(outside, || {
        CONTEXT
            .try_with(|slot| match slot.try_borrow() {
                Ok(c) => c.as_ref().map_or(outside, f),
                Err(_) => outside,
            })
            .unwrap_or(outside)
    })
}
