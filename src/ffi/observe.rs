//! What a C application can observe of a connection: statistics,
//! application pings and their pongs, the upgrade response's headers, and
//! the kind and HTTP status of the error being reported.

use super::boundary::{bytes, call, connection, guard, text};
use super::options::wsc_options;
use super::status::wsc_status;
use super::wsc_id;
use crate::error::{ConnectionError, Error, ErrorKind};
use std::cell::Cell;
use std::ffi::{c_char, c_void};
use std::mem::{offset_of, size_of};

/// Receives a pong: its payload (valid only during the call), the
/// round-trip time in microseconds of the ping it answers (keepalive or
/// `wsc_ping`; 0 for a pong that answers none) and the connection's
/// `user_data` (for a named handler's connection, the handler's). Runs on
/// the worker thread like every callback of the connection.
pub type wsc_on_pong_fn =
    Option<unsafe extern "C" fn(id: wsc_id, data: *const u8, len: usize, rtt_us: u32, user_data: *mut c_void)>;

/// Calls `on_pong` for every pong the connections made with these options
/// receive (`wsc_connect` and `wsc_create_websocket` alike); NULL (the
/// default) turns it off. Pongs are not messages: the flow gate does not
/// hold them back.
#[no_mangle]
pub unsafe extern "C" fn wsc_options_set_on_pong(o: *mut wsc_options, on_pong: wsc_on_pong_fn) -> wsc_status {
    call(|| {
        // SAFETY: the caller passes NULL or a pointer from wsc_options_new.
        let o = unsafe { o.as_mut() }.ok_or_else(|| Error::InvalidArgument("options is NULL".into()))?;
        o.inner.c_on_pong = on_pong;
        o.inner.deliver_pongs(on_pong.is_some());
        Ok(())
    })
}

/// Sends a ping with `len` bytes of `data` (copied; at most 125, else
/// WSC_ERR_INVALID_ARGUMENT; `data` may be NULL only when `len` is 0). It
/// does not wait behind queued messages; before open it goes out right after
/// the handshake. The answer reaches `on_pong` (see
/// `wsc_options_set_on_pong`) with the round-trip time, which
/// `wsc_get_stats` also keeps. WSC_ERR_CLOSED once closing.
#[no_mangle]
pub unsafe extern "C" fn wsc_ping(id: wsc_id, data: *const u8, len: usize) -> wsc_status {
    call(|| {
        if len > 125 {
            return Err(Error::InvalidArgument(format!(
                "ping payload is {len} bytes; at most 125 fit in a control frame"
            )));
        }
        // SAFETY: `len` readable bytes per the header's contract.
        let b = unsafe { bytes(data, len, "data")? };
        connection(id)?.ping(b.to_vec())
    })
}

/// A connection's counters. Set `struct_size` to `sizeof(wsc_stats)` before
/// calling `wsc_get_stats`; later versions only append fields. A library
/// fills whole fields only: those that end within `struct_size` bytes (and
/// that it knows), never part of one, and writes back in `struct_size` where
/// the last field it filled ends (`offsetof + sizeof` of that field; for
/// the whole struct of this header, `sizeof(wsc_stats)`: the struct has no
/// trailing padding, `reserved` fills it). So field `f` was filled when
/// `struct_size >= offsetof(wsc_stats, f) + sizeof f` on return.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct wsc_stats {
    /// The caller sets sizeof(wsc_stats); on return, the end of the last
    /// field filled.
    pub struct_size: usize,
    /// Payload bytes of the text and binary messages handed to the socket.
    pub bytes_sent: u64,
    /// Payload bytes of the text and binary messages received.
    pub bytes_received: u64,
    /// Text and binary messages handed to the socket.
    pub messages_sent: u64,
    /// Text and binary messages received.
    pub messages_received: u64,
    /// Frames written, of every kind (data, ping, pong, close).
    pub frames_sent: u64,
    /// Frames read, of every kind, each fragment counted.
    pub frames_received: u64,
    /// Pings sent: keepalive and `wsc_ping`.
    pub pings_sent: u64,
    /// Pongs received.
    pub pongs_received: u64,
    /// Round-trip time of the last pong that answered one of our pings, in
    /// microseconds; 0 until one has.
    pub last_rtt_us: u32,
    /// Reconnect attempts announced (one per `on_reconnecting`; see
    /// `wsc_options_set_reconnect`); 0 without reconnect.
    pub reconnects: u32,
    /// Durations of the phases of the last successful connect, in
    /// microseconds; 0 where a phase did not happen (DNS for an IP literal,
    /// TLS for ws://, proxy without one) and for a connection a server
    /// accepted. Through a proxy, DNS and TCP are those of reaching the proxy.
    pub dns_us: u32,
    /// TCP connect.
    pub tcp_us: u32,
    /// TLS handshake.
    pub tls_us: u32,
    /// HTTP upgrade, request sent to response read.
    pub upgrade_us: u32,
    /// The proxy's CONNECT or SOCKS exchange.
    pub proxy_us: u32,
    /// Always 0. It keeps the struct free of trailing padding, so a field a
    /// later version appends can never be mistaken for one already filled.
    pub reserved: u32,
}

// Every byte of the struct is a field: no padding a later field could take.
const _: () = assert!(offset_of!(wsc_stats, reserved) + size_of::<u32>() == size_of::<wsc_stats>());

/// Each field of `wsc_stats` after `struct_size`: its offset and size.
const STATS_FIELDS: [(usize, usize); 16] = {
    use std::mem::offset_of;
    const U64: usize = size_of::<u64>();
    const U32: usize = size_of::<u32>();
    [
        (offset_of!(wsc_stats, bytes_sent), U64),
        (offset_of!(wsc_stats, bytes_received), U64),
        (offset_of!(wsc_stats, messages_sent), U64),
        (offset_of!(wsc_stats, messages_received), U64),
        (offset_of!(wsc_stats, frames_sent), U64),
        (offset_of!(wsc_stats, frames_received), U64),
        (offset_of!(wsc_stats, pings_sent), U64),
        (offset_of!(wsc_stats, pongs_received), U64),
        (offset_of!(wsc_stats, last_rtt_us), U32),
        (offset_of!(wsc_stats, reconnects), U32),
        (offset_of!(wsc_stats, dns_us), U32),
        (offset_of!(wsc_stats, tcp_us), U32),
        (offset_of!(wsc_stats, tls_us), U32),
        (offset_of!(wsc_stats, upgrade_us), U32),
        (offset_of!(wsc_stats, proxy_us), U32),
        (offset_of!(wsc_stats, reserved), U32),
    ]
};

/// Copies every field of `full` that ends within the caller's `size` bytes
/// (never part of one, never padding), then `struct_size`: the end of the
/// last field written.
///
/// # Safety
/// `out` points to at least `size` writable bytes, `size >= size_of::<usize>()`.
unsafe fn write_whole_fields(full: &wsc_stats, out: *mut wsc_stats, size: usize) {
    let from = (full as *const wsc_stats).cast::<u8>();
    let to = out.cast::<u8>();
    let mut filled = size_of::<usize>();
    for (offset, len) in STATS_FIELDS.into_iter().take_while(|(offset, len)| offset + len <= size) {
        // SAFETY: the field lies inside both structs (checked against `size`);
        // its bytes are initialised (a field, not padding).
        unsafe { std::ptr::copy_nonoverlapping(from.add(offset), to.add(offset), len) };
        filled = offset + len;
    }
    // SAFETY: `struct_size` is the first field and `size` covers it.
    unsafe { std::ptr::addr_of_mut!((*out).struct_size).write_unaligned(filled) };
}

/// Copies the connection's counters into `*out` (see `wsc_stats`), from any
/// thread, including its own callbacks (in the terminal callback they are
/// final). Only whole fields are written (see `wsc_stats`); nothing past
/// `struct_size`. WSC_ERR_INVALID_ARGUMENT for NULL or a `struct_size`
/// smaller than a `size_t` (nothing is written); WSC_ERR_UNKNOWN_ID once
/// finished.
#[no_mangle]
pub unsafe extern "C" fn wsc_get_stats(id: wsc_id, out: *mut wsc_stats) -> wsc_status {
    call(|| {
        if out.is_null() {
            return Err(Error::InvalidArgument("out is NULL".into()));
        }
        // SAFETY: `out` points to at least a size_t per the contract (its
        // first field); nothing is read or written past `struct_size`.
        let size = unsafe { std::ptr::addr_of!((*out).struct_size).read_unaligned() };
        if size < size_of::<usize>() {
            return Err(Error::InvalidArgument(format!(
                "struct_size is {size}: set it to sizeof(wsc_stats) ({})",
                size_of::<wsc_stats>()
            )));
        }
        let s = connection(id)?.stats()?;
        let p = s.connect;
        let us = |d: std::time::Duration| crate::stats::micros(d);
        let full = wsc_stats {
            struct_size: 0,
            bytes_sent: s.bytes_sent,
            bytes_received: s.bytes_received,
            messages_sent: s.messages_sent,
            messages_received: s.messages_received,
            frames_sent: s.frames_sent,
            frames_received: s.frames_received,
            pings_sent: s.pings_sent,
            pongs_received: s.pongs_received,
            last_rtt_us: s.last_rtt.map_or(0, us),
            reconnects: s.reconnects,
            dns_us: us(p.dns),
            tcp_us: us(p.tcp),
            tls_us: us(p.tls),
            upgrade_us: us(p.upgrade),
            proxy_us: us(p.proxy),
            reserved: 0,
        };
        // SAFETY: the caller's struct has `size` writable bytes.
        unsafe { write_whole_fields(&full, out, size) };
        Ok(())
    })
}

/// Copies the value of header `name` (case-insensitive) of the connection's
/// HTTP upgrade response, NUL-terminated, into `buf`. A header sent several
/// times gives its values joined with ", " (`Set-Cookie`: with "\n").
/// Readable once open, and for a refused upgrade inside `on_error` (or a
/// handler's onerror). WSC_ERR_INVALID_ARGUMENT, saying which in
/// `wsc_last_error()`, when: the header is absent, no response has arrived
/// (or it was not HTTP), `buf` is NULL, or `buf_len` is too small for the
/// value and its NUL (nothing is written past `buf_len`).
#[no_mangle]
pub unsafe extern "C" fn wsc_get_response_header(
    id: wsc_id,
    name: *const c_char,
    buf: *mut c_char,
    buf_len: usize,
) -> wsc_status {
    call(|| {
        // SAFETY: NUL-terminated string per the header's contract.
        let name = unsafe { text(name, "name")? };
        if buf.is_null() {
            return Err(Error::InvalidArgument("buf is NULL".into()));
        }
        let conn = connection(id)?;
        let response = conn
            .response()
            .ok_or_else(|| Error::InvalidArgument("no HTTP upgrade response has been received".into()))?;
        let value = response
            .header_joined(name)
            .ok_or_else(|| Error::InvalidArgument(format!("the upgrade response has no header '{name}' (absent)")))?;
        let value = value.replace('\0', " ");
        if value.len() + 1 > buf_len {
            return Err(Error::InvalidArgument(format!(
                "buf_len {buf_len} is too small: header '{name}' needs {} bytes with its NUL",
                value.len() + 1
            )));
        }
        // SAFETY: buf has at least value.len() + 1 writable bytes (checked).
        unsafe {
            std::ptr::copy_nonoverlapping(value.as_ptr(), buf.cast::<u8>(), value.len());
            *buf.add(value.len()) = 0;
        }
        Ok(())
    })
}

/// Why a connection failed, as `wsc_get_error_kind` reports it.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum wsc_error_kind {
    /// Not inside `on_error` / a handler's onerror.
    WSC_ERROR_NONE = 0,
    /// The host name did not resolve.
    WSC_ERROR_RESOLVE,
    /// TCP connect failed (refused, unreachable).
    WSC_ERROR_CONNECT,
    /// TLS failed (certificate, host name, handshake).
    WSC_ERROR_TLS,
    /// The HTTP upgrade was refused (`wsc_get_http_status`) or malformed.
    WSC_ERROR_HANDSHAKE,
    /// The peer broke RFC 6455.
    WSC_ERROR_PROTOCOL,
    /// An incoming message exceeded the maximum (closed with 1009).
    WSC_ERROR_MESSAGE_TOO_BIG,
    /// Connect timeout or keepalive timeout.
    WSC_ERROR_TIMEOUT,
    /// The peer went away without a closing handshake.
    WSC_ERROR_CONNECTION_LOST,
    /// A callback failed (a Rust callback panicked).
    WSC_ERROR_CALLBACK,
    /// The proxy could not be reached or refused the tunnel
    /// (`wsc_get_http_status` for a refused CONNECT).
    WSC_ERROR_PROXY,
    /// Any other failure.
    WSC_ERROR_OTHER,
}

impl From<ErrorKind> for wsc_error_kind {
    fn from(k: ErrorKind) -> Self {
        match k {
            ErrorKind::Resolve => wsc_error_kind::WSC_ERROR_RESOLVE,
            ErrorKind::Connect => wsc_error_kind::WSC_ERROR_CONNECT,
            ErrorKind::Tls => wsc_error_kind::WSC_ERROR_TLS,
            ErrorKind::Handshake { .. } => wsc_error_kind::WSC_ERROR_HANDSHAKE,
            ErrorKind::Protocol => wsc_error_kind::WSC_ERROR_PROTOCOL,
            ErrorKind::MessageTooBig => wsc_error_kind::WSC_ERROR_MESSAGE_TOO_BIG,
            ErrorKind::Timeout => wsc_error_kind::WSC_ERROR_TIMEOUT,
            ErrorKind::ConnectionLost => wsc_error_kind::WSC_ERROR_CONNECTION_LOST,
            ErrorKind::Callback => wsc_error_kind::WSC_ERROR_CALLBACK,
            ErrorKind::Proxy { .. } => wsc_error_kind::WSC_ERROR_PROXY,
            ErrorKind::Other => wsc_error_kind::WSC_ERROR_OTHER,
        }
    }
}

thread_local! {
    /// The error being reported on this thread: kind and HTTP status. A
    /// `const` `Cell` has no destructor, so it answers during thread exit.
    static ERROR: Cell<(wsc_error_kind, u16)> = const { Cell::new((wsc_error_kind::WSC_ERROR_NONE, 0)) };
}

/// Runs `f` (the application's `on_error` or handler) with `e` as the
/// error `wsc_get_error_kind` and `wsc_get_http_status` report.
pub(crate) fn with_error<R>(e: &ConnectionError, f: impl FnOnce() -> R) -> R {
    let now = (e.kind().into(), e.http_status().unwrap_or(0));
    let previous = ERROR.try_with(|c| c.replace(now)).ok();
    let r = f();
    if let Some(p) = previous {
        let _ = ERROR.try_with(|c| c.set(p));
    }
    r
}

/// Inside `on_error` or a handler's onerror (on that thread, during that
/// call): the kind of the failure. WSC_ERROR_NONE anywhere else.
#[no_mangle]
pub extern "C" fn wsc_get_error_kind() -> wsc_error_kind {
    guard(wsc_error_kind::WSC_ERROR_NONE, || ERROR.try_with(|c| c.get().0).unwrap_or(wsc_error_kind::WSC_ERROR_NONE))
}

/// Inside `on_error` or a handler's onerror: the HTTP status that ended the
/// connection (a refused upgrade's, e.g. 401, or a proxy's refused
/// CONNECT); 0 for other failures and anywhere else.
#[no_mangle]
pub extern "C" fn wsc_get_http_status() -> u16 {
    guard(0, || ERROR.try_with(|c| c.get().1).unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_kinds_have_the_values_of_the_c_contract() {
        use wsc_error_kind::*;
        let all = [
            WSC_ERROR_NONE,
            WSC_ERROR_RESOLVE,
            WSC_ERROR_CONNECT,
            WSC_ERROR_TLS,
            WSC_ERROR_HANDSHAKE,
            WSC_ERROR_PROTOCOL,
            WSC_ERROR_MESSAGE_TOO_BIG,
            WSC_ERROR_TIMEOUT,
            WSC_ERROR_CONNECTION_LOST,
            WSC_ERROR_CALLBACK,
            WSC_ERROR_PROXY,
            WSC_ERROR_OTHER,
        ];
        for (i, k) in all.iter().enumerate() {
            assert_eq!(*k as u32, i as u32);
        }
    }

    #[test]
    fn outside_on_error_there_is_no_error() {
        assert_eq!(wsc_get_error_kind(), wsc_error_kind::WSC_ERROR_NONE);
        assert_eq!(wsc_get_http_status(), 0);
        let e = ConnectionError::new(ErrorKind::Handshake { status: Some(401) }, "refused");
        with_error(&e, || {
            assert_eq!(wsc_get_error_kind(), wsc_error_kind::WSC_ERROR_HANDSHAKE);
            assert_eq!(wsc_get_http_status(), 401);
        });
        assert_eq!(wsc_get_error_kind(), wsc_error_kind::WSC_ERROR_NONE);
        assert_eq!(wsc_get_http_status(), 0);
    }

    #[test]
    fn stats_layout_is_the_c_contract() {
        // size_t, 8 x uint64_t, 7 x uint32_t, padded to 8.
        assert_eq!(size_of::<wsc_stats>(), 8 + 8 * 8 + 7 * 4 + 4);
        assert_eq!(std::mem::offset_of!(wsc_stats, bytes_sent), 8);
        assert_eq!(std::mem::offset_of!(wsc_stats, last_rtt_us), 72);
        assert_eq!(std::mem::offset_of!(wsc_stats, proxy_us), 96);
    }
}
