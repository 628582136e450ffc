//! `wsc_options`: an opaque builder, so adding options never breaks the ABI.

use super::boundary::{call, guard, text};
use super::status::wsc_status;
use crate::error::Error;
use crate::options::Options;
use std::ffi::{c_char, c_void};
use std::time::Duration;

/// Connection options. Create with `wsc_options_new`, free with
/// `wsc_options_free`. Not retained by `wsc_connect`: free it whenever you
/// like. Not thread-safe: do not modify one from two threads at once.
pub struct wsc_options {
    pub(crate) inner: Options,
    /// C callbacks that come through the options (`wsc_callbacks` is frozen).
    pub(crate) on_reconnecting: wsc_on_reconnecting_fn,
}

/// Called before each reconnect attempt (see `wsc_options_set_reconnect`),
/// on the connection's worker thread, with the attempt's number (from 1),
/// the delay before it in milliseconds, why the connection was lost
/// (valid during the call only) and the connection's `user_data`.
pub type wsc_on_reconnecting_fn =
    Option<unsafe extern "C" fn(id: u64, attempt: u32, delay_ms: u32, reason: *const c_char, user_data: *mut c_void)>;

fn with(o: *mut wsc_options, f: impl FnOnce(&mut Options) -> Result<(), Error>) -> wsc_status {
    call(|| {
        // SAFETY: the caller passes NULL or a pointer from wsc_options_new.
        let o = unsafe { o.as_mut() }.ok_or_else(|| Error::InvalidArgument("options is NULL".into()))?;
        f(&mut o.inner)
    })
}

fn millis(ms: u32) -> Duration {
    Duration::from_millis(u64::from(ms))
}

/// Options with the defaults (10 s connect timeout, 5 s close timeout, no
/// pings, 64 MiB max message, 64 MiB send queue, flow control off, system CA
/// roots). Owned by the caller: free with `wsc_options_free`. NULL only if
/// out of memory.
#[no_mangle]
pub extern "C" fn wsc_options_new() -> *mut wsc_options {
    guard(std::ptr::null_mut(), || {
        Box::into_raw(Box::new(wsc_options { inner: Options::default(), on_reconnecting: None }))
    })
}

/// Frees options from `wsc_options_new`. NULL is a no-op.
#[no_mangle]
pub unsafe extern "C" fn wsc_options_free(options: *mut wsc_options) {
    guard((), || {
        if !options.is_null() {
            // SAFETY: a pointer from wsc_options_new, freed once by contract.
            drop(unsafe { Box::from_raw(options) });
        }
    })
}

/// Adds a header to the HTTP upgrade request. Both strings are copied.
/// WSC_ERR_INVALID_ARGUMENT for NULL, invalid UTF-8 or an invalid header.
/// Without a `User-Agent` header the request sends `User-Agent: wsc/<version>`.
#[no_mangle]
pub unsafe extern "C" fn wsc_options_add_header(
    o: *mut wsc_options,
    name: *const c_char,
    value: *const c_char,
) -> wsc_status {
    with(o, |opts| {
        // SAFETY: NUL-terminated strings per the header's contract.
        let (name, value) = unsafe { (text(name, "name")?, text(value, "value")?) };
        opts.add_header(name, value).map(drop)
    })
}

/// Offers a subprotocol (copied). The server's choice: `wsc_get_protocol`.
#[no_mangle]
pub unsafe extern "C" fn wsc_options_add_subprotocol(o: *mut wsc_options, protocol: *const c_char) -> wsc_status {
    // SAFETY: NUL-terminated string per the header's contract.
    with(o, |opts| opts.add_subprotocol(unsafe { text(protocol, "protocol")? }).map(drop))
}

/// Default 10 s: DNS, TCP, TLS and HTTP handshake together.
#[no_mangle]
pub unsafe extern "C" fn wsc_options_set_connect_timeout_ms(o: *mut wsc_options, ms: u32) -> wsc_status {
    with(o, |opts| {
        opts.connect_timeout(millis(ms));
        Ok(())
    })
}

/// Default 5 s: how long to wait for the peer's Close after sending ours.
#[no_mangle]
pub unsafe extern "C" fn wsc_options_set_close_timeout_ms(o: *mut wsc_options, ms: u32) -> wsc_status {
    with(o, |opts| {
        opts.close_timeout(millis(ms));
        Ok(())
    })
}

/// Sends a ping every `ms` milliseconds; 0 (the default) turns pings off.
/// Each carries an 8-byte big-endian sequence number; its pong updates the
/// round-trip time (`wsc_get_stats`) and reaches `on_pong` if set.
#[no_mangle]
pub unsafe extern "C" fn wsc_options_set_ping_interval_ms(o: *mut wsc_options, ms: u32) -> wsc_status {
    with(o, |opts| {
        opts.ping_interval(Some(millis(ms)));
        Ok(())
    })
}

/// Default 10 s; nothing received this long after a ping: `on_error`.
/// Suspended while the flow gate is shut (nothing is read then).
#[no_mangle]
pub unsafe extern "C" fn wsc_options_set_pong_timeout_ms(o: *mut wsc_options, ms: u32) -> wsc_status {
    with(o, |opts| {
        opts.pong_timeout(millis(ms));
        Ok(())
    })
}

/// Largest incoming message (default 64 MiB); a bigger one ends the
/// connection with close code 1009 and `on_error`. 0 is invalid.
#[no_mangle]
pub unsafe extern "C" fn wsc_options_set_max_message_size(o: *mut wsc_options, bytes: usize) -> wsc_status {
    with(o, |opts| opts.max_message_size(bytes).map(drop))
}

/// Limit on bytes accepted by send but not yet written (default 64 MiB);
/// past it sends return WSC_ERR_QUEUE_FULL. 0 is invalid.
#[no_mangle]
pub unsafe extern "C" fn wsc_options_set_max_buffered_bytes(o: *mut wsc_options, bytes: usize) -> wsc_status {
    with(o, |opts| opts.max_buffered_bytes(bytes).map(drop))
}

/// Starts the connection with flow control on (see `wsc_set_flow_control`).
#[no_mangle]
pub unsafe extern "C" fn wsc_options_set_flow_control(o: *mut wsc_options, enabled: bool) -> wsc_status {
    with(o, |opts| {
        opts.flow_control(enabled);
        Ok(())
    })
}

/// Trusts the PEM certificates in this file in addition to the system roots.
/// The file is read now: WSC_ERR_INVALID_ARGUMENT if it cannot be read or
/// holds no certificate.
#[no_mangle]
pub unsafe extern "C" fn wsc_options_set_ca_file(o: *mut wsc_options, pem_path: *const c_char) -> wsc_status {
    // SAFETY: NUL-terminated string per the header's contract.
    with(o, |opts| opts.ca_file(unsafe { text(pem_path, "pem_path")? }).map(drop))
}

/// Presents a client certificate: a PEM certificate (chain) file and a PEM
/// PKCS#8 private key file, both read now.
#[no_mangle]
pub unsafe extern "C" fn wsc_options_set_client_certificate(
    o: *mut wsc_options,
    cert_pem_path: *const c_char,
    key_pem_path: *const c_char,
) -> wsc_status {
    with(o, |opts| {
        // SAFETY: NUL-terminated strings per the header's contract.
        let (cert, key) = unsafe { (text(cert_pem_path, "cert_pem_path")?, text(key_pem_path, "key_pem_path")?) };
        opts.client_certificate(cert, key).map(drop)
    })
}

/// DANGER, for tests only: accept any server certificate and host name.
#[no_mangle]
pub unsafe extern "C" fn wsc_options_set_danger_accept_invalid_certs(o: *mut wsc_options, accept: bool) -> wsc_status {
    with(o, |opts| {
        opts.danger_accept_invalid_certs(accept);
        Ok(())
    })
}

/// Size of each worker thread's stack, which also runs the callbacks
/// (default 256 KiB; at least 64 KiB).
#[no_mangle]
pub unsafe extern "C" fn wsc_options_set_stack_size(o: *mut wsc_options, bytes: usize) -> wsc_status {
    with(o, |opts| opts.stack_size(bytes).map(drop))
}

/// Bytes read from the socket per system call (default 8 KiB; 1 KiB to
/// 64 MiB). Larger favours big messages, smaller many idle connections.
#[no_mangle]
pub unsafe extern "C" fn wsc_options_set_read_buffer_size(o: *mut wsc_options, bytes: usize) -> wsc_status {
    with(o, |opts| opts.read_buffer_size(bytes).map(drop))
}

/// Tunnels connections made with these options through a proxy; the string
/// is copied. `http://[user:password@]host[:port]` (HTTP `CONNECT`, for ws://
/// and wss:// alike), `socks5://...` (the target name resolved here) or
/// `socks5h://...` (resolved by the proxy); no scheme means `http://`, no
/// port 1080, credentials are percent-decoded. `""` connects directly, even
/// when `wsc_options_set_proxy_from_env` is on. TLS still verifies the wss://
/// host. Credentials never appear in `wsc_last_error()` or any `on_error`
/// message. WSC_ERR_INVALID_ARGUMENT for NULL, invalid UTF-8, another
/// scheme, no host, a bad port or bad percent-encoding (nothing changed).
/// Failures while talking to the proxy reach `on_error`, naming the proxy.
#[no_mangle]
pub unsafe extern "C" fn wsc_options_set_proxy(o: *mut wsc_options, proxy_uri: *const c_char) -> wsc_status {
    // SAFETY: NUL-terminated string per the header's contract.
    with(o, |opts| opts.proxy(unsafe { text(proxy_uri, "proxy_uri")? }).map(drop))
}

/// Off by default. On: when no proxy was set with `wsc_options_set_proxy`,
/// each connect reads the environment as libcurl does (`no_proxy`, then
/// `ws_proxy`/`http_proxy` for ws://, `wss_proxy`/`https_proxy` for wss://,
/// then `all_proxy`; upper-case accepted except `HTTP_PROXY`; see the README).
#[no_mangle]
pub unsafe extern "C" fn wsc_options_set_proxy_from_env(o: *mut wsc_options, enabled: bool) -> wsc_status {
    with(o, |opts| {
        opts.proxy_from_env(enabled);
        Ok(())
    })
}

/// The options to use: the caller's, or the defaults for NULL.
/// Reconnects after an unexpected loss, keeping the id: retries with
/// exponential backoff and full jitter from `min_delay_ms` up to
/// `max_delay_ms`, at most `max_attempts` times (0: unlimited). Each retry
/// is announced to `on_reconnecting` (see `wsc_options_set_on_reconnecting`);
/// `on_open` runs again on success (once per successful (re)connect); the
/// one terminal callback comes when wsc gives up or the application closes.
/// What is retried and what happens to queued messages: README, "Reconnect".
/// A `min_delay_ms` of 0 means 100 ms (capped by `max_delay_ms`): the
/// delays' cap always grows, so no setting retries without a delay (a
/// server that drops every connection after the upgrade gets a handful of
/// attempts in the first seconds, not thousands).
/// WSC_ERR_INVALID_ARGUMENT if `max_delay_ms` is 0 or below `min_delay_ms`.
#[no_mangle]
pub unsafe extern "C" fn wsc_options_set_reconnect(
    o: *mut wsc_options,
    min_delay_ms: u32,
    max_delay_ms: u32,
    max_attempts: u32,
) -> wsc_status {
    with(o, |opts| {
        opts.reconnect(crate::Reconnect {
            min_delay: millis(min_delay_ms),
            max_delay: millis(max_delay_ms),
            max_attempts,
        })
        .map(drop)
    })
}

/// Sets the callback announcing each reconnect attempt (NULL: none), for
/// connections made with `wsc_connect`; it gets the connection's
/// `user_data`. A named handler sees the same as method "onreconnecting".
#[no_mangle]
pub unsafe extern "C" fn wsc_options_set_on_reconnecting(o: *mut wsc_options, f: wsc_on_reconnecting_fn) -> wsc_status {
    call(|| {
        // SAFETY: the caller passes NULL or a pointer from wsc_options_new.
        let o = unsafe { o.as_mut() }.ok_or_else(|| Error::InvalidArgument("options is NULL".into()))?;
        o.on_reconnecting = f;
        Ok(())
    })
}

/// The reconnect callback set on `o` (NULL options: none).
pub(crate) fn on_reconnecting_of(o: *const wsc_options) -> wsc_on_reconnecting_fn {
    // SAFETY: the caller passes NULL or a pointer from wsc_options_new.
    unsafe { o.as_ref() }.and_then(|o| o.on_reconnecting)
}

pub(crate) fn or_default(o: *const wsc_options) -> Options {
    // SAFETY: the caller passes NULL or a pointer from wsc_options_new.
    unsafe { o.as_ref() }.map_or_else(Options::default, |o| o.inner.clone())
}
