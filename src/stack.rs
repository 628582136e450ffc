//! Giving back the worker stack's high-water mark once a connection is open.
//!
//! An idle connection's memory is mostly its worker's stack, and a stack
//! page once touched stays resident for the thread's life. The deepest a
//! worker ever goes is the upgrade: tungstenite parses the response with a
//! 4 KiB header table on the stack, under the TLS and dial frames. An open
//! connection needs far less (measured: about 20 KiB resident per worker
//! after the upgrade, 14 KiB in use while it sleeps). So the worker hands
//! the pages below its current frame back to the kernel once, when it first
//! goes to sleep after the upgrade (one `madvise(2)` per connection): pages
//! below the stack pointer hold nothing by definition, and if the stack
//! grows again (a callback that needs more) they come back zeroed, as fresh
//! stack pages always do.

/// Releases the pages of the calling thread's stack below the current frame
/// (keeping a margin for the calls that follow). Best effort: does nothing
/// if the stack's bounds cannot be read.
pub(crate) fn trim() {
    const PAGE: usize = 4096;
    /// Kept below the stack pointer for the frames the caller is about to use.
    const MARGIN: usize = 4 << 10;
    let Some(low) = stack_low() else { return };
    let here = 0u8;
    let sp = std::ptr::addr_of!(here) as usize;
    let high = sp.saturating_sub(MARGIN) & !(PAGE - 1);
    let low = (low + PAGE - 1) & !(PAGE - 1);
    if high > low {
        // SAFETY: [low, high) lies inside this thread's own stack mapping,
        // below every live frame (the stack grows down); MADV_DONTNEED only
        // drops its pages, which read back as zeros if touched again.
        unsafe { libc::madvise(low as *mut libc::c_void, high - low, libc::MADV_DONTNEED) };
    }
}

/// The lowest address of the calling thread's stack above its guard page(s).
fn stack_low() -> Option<usize> {
    // SAFETY: attr is initialised by pthread_getattr_np before it is read
    // and destroyed after; the out-pointers are valid locals.
    unsafe {
        let mut attr: libc::pthread_attr_t = std::mem::zeroed();
        if libc::pthread_getattr_np(libc::pthread_self(), &mut attr) != 0 {
            return None;
        }
        let (mut addr, mut size, mut guard) = (std::ptr::null_mut(), 0usize, 0usize);
        let ok = libc::pthread_attr_getstack(&attr, &mut addr, &mut size) == 0
            && libc::pthread_attr_getguardsize(&attr, &mut guard) == 0;
        libc::pthread_attr_destroy(&mut attr);
        ok.then(|| addr as usize + guard)
    }
}
