//! `wsc_loop`: event-loop delivery from C, an opaque handle the caller owns
//! from `wsc_loop_new` until `wsc_loop_free`.

use super::boundary::{call, guard, out};
use super::options::wsc_options;
use super::status::wsc_status;
use crate::error::Error;
use crate::event_loop::Loop;

/// An event loop's delivery queue (see `wsc_loop_new`).
pub struct wsc_loop {
    inner: Loop,
}

fn lp<'a>(l: *const wsc_loop) -> Result<&'a Loop, Error> {
    // SAFETY: the caller passes NULL or a pointer from wsc_loop_new not yet freed.
    unsafe { l.as_ref() }.map(|l| &l.inner).ok_or_else(|| Error::InvalidArgument("loop is NULL".into()))
}

/// A new loop: connections whose options name it (`wsc_options_set_loop`)
/// deliver every callback, named-handler calls included, only inside
/// `wsc_loop_dispatch` on the thread that calls it; I/O stays on their
/// worker threads. `*out_loop` is the caller's until `wsc_loop_free`.
#[no_mangle]
pub unsafe extern "C" fn wsc_loop_new(out_loop: *mut *mut wsc_loop) -> wsc_status {
    call(|| {
        let out_loop = out(out_loop, "out_loop")?;
        *out_loop = Box::into_raw(Box::new(wsc_loop { inner: Loop::new()? }));
        Ok(())
    })
}

/// The descriptor to poll for input (poll, epoll, libuv's uv_poll_t, GLib's
/// g_unix_fd_add): readable exactly while events wait. Owned by the loop;
/// do not close it. -1 for NULL.
#[no_mangle]
pub unsafe extern "C" fn wsc_loop_fd(l: *const wsc_loop) -> i32 {
    guard(-1, || lp(l).map_or(-1, Loop::fd))
}

/// Runs at most `max_events` queued callbacks (0: everything queued at the
/// call) on this thread; never blocks. `*out_dispatched` (may be NULL) gets
/// how many ran. Per connection the usual order holds: on_open first,
/// messages in order, exactly one terminal callback last; an id answers
/// until its terminal callback has been dispatched and has returned.
/// WSC_ERR_INVALID_ARGUMENT from inside a dispatched callback, or while
/// another thread dispatches the same loop. A connection's wsc_wait from the
/// thread that dispatches its loop is WSC_ERR_INVALID_ARGUMENT (it would
/// never return).
#[no_mangle]
pub unsafe extern "C" fn wsc_loop_dispatch(
    l: *mut wsc_loop,
    max_events: usize,
    out_dispatched: *mut usize,
) -> wsc_status {
    call(|| {
        let n = lp(l)?.dispatch(max_events)?;
        // SAFETY: NULL or a valid, writable size_t per the header's contract.
        if let Some(o) = unsafe { out_dispatched.as_mut() } {
            *o = n;
        }
        Ok(())
    })
}

/// Frees the loop. WSC_ERR_INVALID_ARGUMENT (and the loop stays valid)
/// while any attached connection's terminal callback has not been
/// dispatched: call wsc_shutdown (or close them), dispatch until nothing is
/// left, then free. Options that name a freed loop are refused by
/// wsc_connect (WSC_ERR_INVALID_ARGUMENT).
#[no_mangle]
pub unsafe extern "C" fn wsc_loop_free(l: *mut wsc_loop) -> wsc_status {
    call(|| {
        let left = lp(l)?.attached();
        if left > 0 {
            return Err(Error::InvalidArgument(format!(
                "{left} connection(s) of this loop have not had their terminal callback dispatched"
            )));
        }
        // SAFETY: a pointer from wsc_loop_new, freed once (the caller's contract).
        drop(unsafe { Box::from_raw(l) });
        Ok(())
    })
}

/// Names the loop that connections made with these options deliver their
/// callbacks through (NULL: none, the default: callbacks on the worker
/// thread). The options do not keep the loop alive.
#[no_mangle]
pub unsafe extern "C" fn wsc_options_set_loop(o: *mut wsc_options, l: *mut wsc_loop) -> wsc_status {
    call(|| {
        // SAFETY: the caller passes NULL or a pointer from wsc_options_new.
        let o = unsafe { o.as_mut() }.ok_or_else(|| Error::InvalidArgument("options is NULL".into()))?;
        // SAFETY: NULL or a pointer from wsc_loop_new not yet freed.
        match unsafe { l.as_ref() } {
            Some(l) => {
                o.inner.event_loop(&l.inner);
            }
            None => o.inner.event_loop = None,
        }
        Ok(())
    })
}

/// With a loop: at most `messages` undispatched messages per connection, of
/// at most `bytes` bytes in all (defaults 1000 and 16 MiB); at the cap the
/// connection stops reading its socket (TCP backpressure, and keepalive is
/// suspended as when the flow gate is shut) until the loop dispatches.
/// WSC_ERR_INVALID_ARGUMENT for 0.
#[no_mangle]
pub unsafe extern "C" fn wsc_options_set_loop_max_pending(
    o: *mut wsc_options,
    messages: usize,
    bytes: usize,
) -> wsc_status {
    call(|| {
        // SAFETY: the caller passes NULL or a pointer from wsc_options_new.
        let o = unsafe { o.as_mut() }.ok_or_else(|| Error::InvalidArgument("options is NULL".into()))?;
        o.inner.loop_max_pending(messages, bytes).map(drop)
    })
}
