//! Process-wide start and stop, for hosts that `dlopen`/`dlclose` wsc.

use super::boundary::call;
use super::status::wsc_status;
use std::time::Duration;

/// Closes every connection (code 1001; handshakes in progress are aborted),
/// waits up to `timeout_ms` for every worker thread to exit, and returns
/// WSC_OK only when all have exited: then no connection is listed, every id
/// is WSC_ERR_UNKNOWN_ID, and a wsc_connect racing this call has either been
/// refused (WSC_ERR_SHUTDOWN) or was among those shut down, so dlclose() is
/// safe. Any thread, including callbacks and thread-exit destructors.
/// WSC_ERR_TIMEOUT if some have not; called from inside a callback it waits
/// for every other worker but cannot wait for its own, and returns
/// WSC_ERR_TIMEOUT. From then on wsc_connect and wsc_create_websocket return
/// WSC_ERR_SHUTDOWN until wsc_init(); calls on ids still finishing behave as
/// for any closing connection. A later wsc_shutdown waits for any worker
/// still running and returns WSC_OK once none is left.
#[no_mangle]
pub extern "C" fn wsc_shutdown(timeout_ms: u32) -> wsc_status {
    call(|| crate::lifecycle::shutdown(Duration::from_millis(u64::from(timeout_ms))))
}

/// Optional on first load, a no-op returning WSC_OK when not shut down. A
/// host that reloads the library calls it after each dlopen(): glibc may keep
/// the library mapped after dlclose() (Rust registers thread-local
/// destructors) and hand the same, shut-down instance to the next dlopen().
#[no_mangle]
pub extern "C" fn wsc_init() -> wsc_status {
    call(|| {
        crate::lifecycle::init();
        Ok(())
    })
}
