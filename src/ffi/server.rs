//! `wsc_server`: the endpoint server from C, an opaque handle owned by the
//! caller from `wsc_server_start` until `wsc_server_stop` frees it.

use super::boundary::{call, guard, optional_text, out, text};
use super::status::wsc_status;
use crate::error::Error;
use crate::server::{Server, ServerBuilder};
use std::ffi::c_char;
use std::time::Duration;

/// A running endpoint server. Create with `wsc_server_start`; stop and free
/// with `wsc_server_stop`.
pub struct wsc_server {
    inner: Server,
}

fn server<'a>(s: *const wsc_server) -> Result<&'a Server, Error> {
    // SAFETY: the caller passes NULL or a pointer from wsc_server_start not yet stopped.
    unsafe { s.as_ref() }.map(|s| &s.inner).ok_or_else(|| Error::InvalidArgument("server is NULL".into()))
}

/// Starts an endpoint server on `bind_address` ("127.0.0.1:8080"; port 0
/// picks a free one, see `wsc_server_local_port`), serving every
/// `*.websocket` descriptor in `descriptor_dir` (NULL: none; add endpoints
/// with `wsc_server_add_endpoint`) at `/websockets/v4/service/<endpoint>`,
/// and a small test page at `/`. One acceptor thread reads every pending
/// request head (no thread per socket; see `wsc_server_set_max_pending`);
/// each admitted upgrade gets an id and a worker thread like a client's;
/// its events go to the endpoint's named handler, where
/// `wsc_get_endpoint()` names the endpoint.
/// WSC_ERR_INVALID_ARGUMENT for a bad address, a missing directory or a bad
/// descriptor (wsc_last_error names the file and the field; nothing is
/// served then); WSC_ERR_INTERNAL if the address cannot be bound (the OS
/// error is in wsc_last_error); WSC_ERR_SHUTDOWN after wsc_shutdown.
/// `*out_server` is the caller's until `wsc_server_stop`. Any thread.
#[no_mangle]
pub unsafe extern "C" fn wsc_server_start(
    bind_address: *const c_char,
    descriptor_dir: *const c_char,
    out_server: *mut *mut wsc_server,
) -> wsc_status {
    call(|| {
        // SAFETY: NUL-terminated strings (descriptor_dir may be NULL) per the header's contract.
        let (bind, dir) =
            unsafe { (text(bind_address, "bind_address")?, optional_text(descriptor_dir, "descriptor_dir")?) };
        start(Server::bind(bind), dir, out_server)
    })
}

/// Starts what `builder` describes, with the descriptors of `dir`, into `*out_server`.
fn start(mut builder: ServerBuilder, dir: Option<&str>, out_server: *mut *mut wsc_server) -> Result<(), Error> {
    let out_server = out(out_server, "out_server")?;
    if let Some(dir) = dir {
        builder = builder.descriptors(dir);
    }
    *out_server = Box::into_raw(Box::new(wsc_server { inner: builder.start()? }));
    Ok(())
}

/// Like `wsc_server_start`, serving wss://: `cert_chain_pem_path` names a
/// PEM file with the server's certificate first and its chain after it,
/// `key_pem_path` its private key in PKCS#8 PEM ("BEGIN PRIVATE KEY"). The
/// TLS handshake runs on the server's acceptor thread, never on a thread
/// of its own, and counts against the handshake timeout and the pending
/// limit like the request head. WSC_ERR_INVALID_ARGUMENT as for
/// `wsc_server_start`, and for NULL paths, an unreadable file or a key
/// that does not fit the certificate (wsc_last_error says which); nothing
/// is served then. `*out_server` is the caller's until `wsc_server_stop`.
/// Any thread.
#[no_mangle]
pub unsafe extern "C" fn wsc_server_start_tls(
    bind_address: *const c_char,
    descriptor_dir: *const c_char,
    cert_chain_pem_path: *const c_char,
    key_pem_path: *const c_char,
    out_server: *mut *mut wsc_server,
) -> wsc_status {
    call(|| {
        // SAFETY: NUL-terminated strings (descriptor_dir may be NULL) per the header's contract.
        let (bind, dir, cert, key) = unsafe {
            (
                text(bind_address, "bind_address")?,
                optional_text(descriptor_dir, "descriptor_dir")?,
                text(cert_chain_pem_path, "cert_chain_pem_path")?,
                text(key_pem_path, "key_pem_path")?,
            )
        };
        start(Server::bind(bind).tls(cert, key), dir, out_server)
    })
}

/// Serves `endpoint` (ASCII letters, digits, '-', '_', '.'; not "." or "..")
/// with the handler registered as `handler`, from the next connection on.
/// The handler need not be registered yet: until it is, the endpoint answers
/// 503. WSC_ERR_INVALID_ARGUMENT for a bad name or an endpoint already served.
#[no_mangle]
pub unsafe extern "C" fn wsc_server_add_endpoint(
    server_: *mut wsc_server,
    endpoint: *const c_char,
    handler: *const c_char,
) -> wsc_status {
    call(|| {
        // SAFETY: NUL-terminated strings per the header's contract.
        let (endpoint, handler) = unsafe { (text(endpoint, "endpoint")?, text(handler, "handler")?) };
        server(server_)?.add_endpoint(endpoint, handler)
    })
}

/// The TCP port the server listens on; 0 for NULL.
#[no_mangle]
pub unsafe extern "C" fn wsc_server_local_port(server_: *const wsc_server) -> u16 {
    guard(0, || server(server_).map_or(0, |s| s.local_addr().port()))
}

/// Limits for new connections: at most `max_connections` admitted at once
/// (503 past it, answered without a thread; default 1000; sockets still
/// sending their head are not counted, see `wsc_server_set_max_pending`),
/// incoming messages of at most `max_message_size` bytes (default 64 MiB; a
/// larger one ends that connection with 1009), the TLS handshake and the
/// request head within `handshake_timeout_ms` (default 10000; the socket is
/// closed past it). A zero value is WSC_ERR_INVALID_ARGUMENT. Any thread.
#[no_mangle]
pub unsafe extern "C" fn wsc_server_set_limits(
    server_: *mut wsc_server,
    max_connections: u32,
    max_message_size: usize,
    handshake_timeout_ms: u32,
) -> wsc_status {
    call(|| {
        let timeout = Duration::from_millis(u64::from(handshake_timeout_ms));
        server(server_)?.set_limits(max_connections, max_message_size, timeout)
    })
}

/// At most `max` accepted sockets waiting for their request head at once
/// (default 1024). A socket accepted past it is closed at once, counted and
/// logged at WARN (at most once a second); each pending socket is also
/// bounded by the handshake timeout (`wsc_server_set_limits`). A pending
/// socket costs no thread. WSC_ERR_INVALID_ARGUMENT for 0 or NULL. Any thread.
#[no_mangle]
pub unsafe extern "C" fn wsc_server_set_max_pending(server_: *mut wsc_server, max: u32) -> wsc_status {
    call(|| server(server_)?.set_max_pending(max))
}

/// Accepts browsers from `origin` (copied; e.g. "http://127.0.0.1:8080").
/// With none added any Origin is accepted; with some, an upgrade whose
/// Origin header is not among them gets 403 (one without an Origin header,
/// from a program rather than a browser, is accepted).
#[no_mangle]
pub unsafe extern "C" fn wsc_server_add_allowed_origin(server_: *mut wsc_server, origin: *const c_char) -> wsc_status {
    call(|| {
        // SAFETY: NUL-terminated string per the header's contract.
        let origin = unsafe { text(origin, "origin")? };
        server(server_)?.add_allowed_origin(origin)
    })
}

/// Stops accepting, closes every connection of this server with 1001 (their
/// handlers see onclose), joins every thread it started, their last handler
/// calls included, and frees the server: the pointer is invalid after
/// WSC_OK. Called from inside one of this server's own handler calls it is
/// WSC_ERR_INVALID_ARGUMENT and the server stays valid (it cannot join its
/// own thread). After wsc_shutdown (which stops every server) it only frees.
#[no_mangle]
pub unsafe extern "C" fn wsc_server_stop(server_: *mut wsc_server) -> wsc_status {
    call(|| {
        server(server_)?.stop()?;
        // SAFETY: a pointer from wsc_server_start, freed once (the caller's contract).
        drop(unsafe { Box::from_raw(server_) });
        Ok(())
    })
}
