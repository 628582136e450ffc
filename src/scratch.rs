//! A reusable buffer for handing text to C with a trailing NUL.
//!
//! C gets incoming text NUL-terminated, which takes a copy. A fresh buffer
//! per message costs more than the copy: glibc gives a freed block back to
//! the kernel once the heap's free top passes its trim threshold, so a
//! 64 KiB or 1 MiB buffer allocated and freed per message page-faults all
//! of its pages in again every time (measured: a 64 KiB text echo through
//! the C ABI spent a third of its CPU there). So each thread keeps one
//! buffer. On a worker thread (one connection) it grows to the largest
//! recent message and is given back when the connection idles (`release`,
//! called as the worker goes lean); on any other thread (an event loop's,
//! serving many connections) it keeps at most [`KEPT`] bytes.

use crate::connection::current_worker;
use std::cell::RefCell;

/// The most a thread other than a worker keeps between messages.
const KEPT: usize = 64 << 10;

thread_local! {
    static BUFFER: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// Calls `f` with `bytes` followed by a NUL, from the thread's buffer (a
/// fresh one if it is in use or being destroyed at thread exit).
pub(crate) fn with_nul<R>(bytes: &[u8], f: impl FnOnce(&[u8]) -> R) -> R {
    let fill = |buf: &mut Vec<u8>| {
        buf.clear();
        buf.reserve(bytes.len() + 1);
        append(buf, bytes);
        buf.push(0);
    };
    let kept = BUFFER.try_with(|cell| {
        let mut buf = cell.try_borrow_mut().ok()?;
        let mut taken = std::mem::take(&mut *buf);
        drop(buf); // not borrowed while `f` runs
        fill(&mut taken);
        Some(taken)
    });
    let Some(mut buf) = kept.ok().flatten() else {
        let mut local = Vec::new();
        fill(&mut local);
        return f(&local);
    };
    let r = f(&buf);
    if current_worker().is_none() && buf.capacity() > KEPT {
        buf = Vec::new();
    }
    let _ = BUFFER.try_with(|cell| {
        if let Ok(mut slot) = cell.try_borrow_mut() {
            *slot = buf;
        }
    });
    r
}

/// Copies of more than this go in pieces of this size (see [`append`]); a
/// multiple of 4, so a WebSocket mask stays in phase from piece to piece.
pub(crate) const PIECE: usize = 2 << 10;

/// Appends `bytes` to `buf` in pieces small enough for glibc's vector copy.
/// For large copies glibc's `memcpy` uses `rep movsb`, which on this
/// project's reference machine (AMD EPYC, KVM) ran a 64 KiB copy of freshly
/// received data at under 2 GB/s: a third of a 64 KiB text echo's CPU. In
/// 2 KiB pieces the same copy runs at cache speed, and elsewhere the pieces
/// cost a few nanoseconds per 64 KiB.
pub(crate) fn append(buf: &mut Vec<u8>, bytes: &[u8]) {
    buf.reserve(bytes.len());
    for piece in bytes.chunks(PIECE) {
        buf.extend_from_slice(piece);
    }
}

/// Copies `from` over `to` (of the same length) in pieces, as [`append`] does.
pub(crate) fn copy(to: &mut [u8], from: &[u8]) {
    for (to, from) in to.chunks_mut(PIECE).zip(from.chunks(PIECE)) {
        to.copy_from_slice(from);
    }
}

/// Gives the calling thread's buffer back to the allocator.
pub(crate) fn release() {
    let _ = BUFFER.try_with(|cell| {
        if let Ok(mut buf) = cell.try_borrow_mut() {
            *buf = Vec::new();
        }
    });
}
