//! `wsc_client_info`: the registry snapshot (getClients / getClient /
//! getClientByHandler). Strings are allocated by wsc and freed by the
//! matching free function, so C never frees Rust memory with `free()`.

use super::boundary::{call, guard, out, text};
use super::status::{wsc_state, wsc_status};
use super::wsc_id;
use crate::handler::ClientInfo;
use std::ffi::{c_char, CString};

/// Metadata of one unfinished connection. `uri` and `handler` are owned by
/// the struct: release them with `wsc_free_client_info` (or the whole array
/// with `wsc_free_clients`).
#[repr(C)]
pub struct wsc_client_info {
    /// The connection's id.
    pub id: wsc_id,
    /// The URI it was created with (NUL-terminated, owned by the struct).
    pub uri: *mut c_char,
    /// The handler name; NULL for connections made with `wsc_connect`.
    pub handler: *mut c_char,
    /// Its state when the snapshot was taken.
    pub state: wsc_state,
}

fn owned(s: &str) -> *mut c_char {
    CString::new(s.replace('\0', " ")).unwrap_or_default().into_raw()
}

impl From<ClientInfo> for wsc_client_info {
    fn from(c: ClientInfo) -> Self {
        wsc_client_info {
            id: c.id,
            uri: owned(&c.uri),
            handler: c.handler.as_deref().map_or(std::ptr::null_mut(), owned),
            state: c.state.into(),
        }
    }
}

/// # Safety
/// `p` is NULL or came from `owned` and is released once.
unsafe fn release(p: &mut *mut c_char) {
    if !p.is_null() {
        // SAFETY: per the function contract.
        drop(unsafe { CString::from_raw(*p) });
        *p = std::ptr::null_mut();
    }
}

/// A snapshot of every unfinished connection (connecting, open or closing),
/// made with `wsc_connect` or `wsc_create_websocket`, oldest first. Writes a
/// wsc-allocated array to `*out_clients` (NULL when empty) and its length to
/// `*out_len`; free it with `wsc_free_clients`. Neither pointer may be NULL.
#[no_mangle]
pub unsafe extern "C" fn wsc_get_clients(out_clients: *mut *mut wsc_client_info, out_len: *mut usize) -> wsc_status {
    call(|| {
        let (oc, ol) = (out(out_clients, "out_clients")?, out(out_len, "out_len")?);
        let list: Box<[wsc_client_info]> = crate::handler::clients().into_iter().map(Into::into).collect();
        *ol = list.len();
        *oc = if list.is_empty() { std::ptr::null_mut() } else { Box::into_raw(list).cast() };
        Ok(())
    })
}

/// Frees an array from `wsc_get_clients` (with the length it gave).
/// NULL is a no-op.
#[no_mangle]
pub unsafe extern "C" fn wsc_free_clients(clients: *mut wsc_client_info, len: usize) {
    guard((), || {
        if clients.is_null() {
            return;
        }
        // SAFETY: an array of `len` from wsc_get_clients, freed once.
        let mut list = unsafe { Box::from_raw(std::ptr::slice_from_raw_parts_mut(clients, len)) };
        for c in list.iter_mut() {
            // SAFETY: strings made by `owned`, released once.
            unsafe {
                release(&mut c.uri);
                release(&mut c.handler);
            }
        }
    })
}

/// Fills `*out_info` (caller-owned struct) for the unfinished connection
/// `id`; release its strings with `wsc_free_client_info`.
/// WSC_ERR_UNKNOWN_ID if it has finished or never existed, and for a
/// server-side connection (only connections this process created are
/// clients).
#[no_mangle]
pub unsafe extern "C" fn wsc_get_client(id: wsc_id, out_info: *mut wsc_client_info) -> wsc_status {
    call(|| {
        let o = out(out_info, "out_info")?;
        let info = crate::handler::client(id).and_then(|c| c.info()).ok_or(crate::Error::UnknownId)?;
        *o = info.into();
        Ok(())
    })
}

/// Frees the strings of a struct filled by `wsc_get_client` and sets them to
/// NULL (the struct itself is the caller's). NULL is a no-op; calling it
/// twice on the same struct is harmless.
#[no_mangle]
pub unsafe extern "C" fn wsc_free_client_info(info: *mut wsc_client_info) {
    guard((), || {
        // SAFETY: NULL or a struct filled by wsc_get_client.
        if let Some(i) = unsafe { info.as_mut() } {
            // SAFETY: strings made by `owned`; release() nulls them.
            unsafe {
                release(&mut i.uri);
                release(&mut i.handler);
            }
        }
    })
}

/// The id of the newest unfinished connection created with this handler;
/// 0 if none (or `handler` is NULL or not UTF-8).
#[no_mangle]
pub unsafe extern "C" fn wsc_get_client_by_handler(handler: *const c_char) -> wsc_id {
    guard(0, || {
        // SAFETY: NUL-terminated string per the header's contract.
        match unsafe { text(handler, "handler") } {
            Ok(name) => crate::handler::client_by_handler(name).map_or(0, |c| c.id()),
            Err(e) => {
                super::status::set_last_error(&e.to_string());
                0
            }
        }
    })
}
