//! Messages waiting to be written, already framed by the thread that sent
//! them.
//!
//! A queue of messages made every send pay twice on top of the framing: a
//! push by the sender and a pop by the worker (with their atomics and, for
//! an unbounded channel, their allocations), one message at a time. When an
//! application streams small messages the worker is awake almost all the
//! time, so nearly every send took that path: it left wsc at 0.70× raw
//! tungstenite's rate. Here the sender frames its message itself (header,
//! mask, payload: the work tungstenite would do on the worker) into one byte
//! buffer under a short lock, and the worker takes the whole buffer at once
//! by swapping it for an empty one, however many messages it holds.
//!
//! - **Order** is the order of appends, which a lock serialises; the worker
//!   and a caller writing in its place (see `wire`) take the batch under the
//!   wire's lock, and bytes leave through one ordered buffer (see `stream`).
//! - **Whole frames only.** A batch is whole frames, so it can wait here
//!   across a reconnect and go out on the next connection; a frame half
//!   written when a connection drops is lost with that connection's socket,
//!   as it was when tungstenite held it.
//! - **Masking** is what RFC 6455 asks of a client: a fresh, unpredictable
//!   key per frame. Each client's outbox has its own ChaCha generator
//!   (`rand`'s `StdRng`), seeded from the operating system when the
//!   connection is made. Not `rand`'s thread generator, as tungstenite uses:
//!   a send may come from a host thread that is exiting (its thread-locals
//!   already destroyed: the generator would panic), and the generator would
//!   register a thread-local destructor on every host thread that sends,
//!   which keeps the library mapped after `dlclose`. A server's frames are
//!   not masked.
//! - **Memory.** The empty buffer the worker swaps in is the one it drained
//!   last time, so a busy connection allocates nothing per batch; an idle one
//!   gives both back (see `release`).

use crate::event::Message;
use crate::scratch::PIECE;
use crate::wire::LARGE;
use parking_lot::Mutex;
use rand::rngs::{StdRng, SysRng};
use rand::{Rng, SeedableRng};
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};

/// Frames written by senders, not yet taken by a writer.
#[derive(Default)]
pub(crate) struct Batch {
    /// Whole frames, header and (masked) payload.
    pub(crate) bytes: Vec<u8>,
    /// How many messages `bytes` holds.
    pub(crate) messages: u64,
    /// Their payload bytes (what the buffered-bytes limit counts).
    pub(crate) payload: usize,
    /// One of them was larger than [`LARGE`].
    pub(crate) large: bool,
}

impl Batch {
    pub(crate) fn is_empty(&self) -> bool {
        self.messages == 0
    }
}

/// A connection's outgoing messages, framed.
pub(crate) struct Outbox {
    inner: Mutex<Inner>,
    /// Set when a message is framed, cleared when the outbox is taken: a
    /// hint, read without the lock, for the worker's check right after a
    /// callback (whether to write before reading on). Its decision to sleep
    /// looks under the lock.
    hint: AtomicBool,
}

struct Inner {
    batch: Batch,
    /// A client's masking keys; `None` for a server.
    keys: Option<StdRng>,
}

/// Text is checked in blocks of this size, each while it is still in the
/// second-level cache, then masked.
const BLOCK: usize = 64 << 10;

/// A buffer kept by a drained batch for the next one: larger ones are freed.
/// A busy connection sending messages of up to a megabyte reuses its
/// buffers instead of faulting fresh pages in for every message (glibc
/// gives large freed blocks back to the kernel); an idle one frees them.
const KEPT: usize = 2 << 20;

/// Opcodes of a text and a binary frame.
const TEXT: u8 = 0x1;
const BINARY: u8 = 0x2;

/// What a message carries, borrowed from the sender.
pub(crate) enum Payload<'a> {
    /// Text known to be UTF-8 (a Rust string).
    Text(&'a str),
    /// Bytes meant as text, not checked yet (from C).
    UncheckedText(&'a [u8]),
    Binary(&'a [u8]),
}

impl<'a> From<&'a Message> for Payload<'a> {
    fn from(m: &'a Message) -> Payload<'a> {
        match m {
            Message::Text(t) => Payload::Text(t.as_str()),
            Message::Binary(b) => Payload::Binary(b),
        }
    }
}

/// A text payload that is not UTF-8.
#[derive(Debug)]
pub(crate) struct NotUtf8;

impl Outbox {
    /// `mask`: a client's outbox (its frames are masked).
    pub(crate) fn new(mask: bool) -> Outbox {
        Outbox {
            inner: Mutex::new(Inner { batch: Batch::default(), keys: mask.then(seeded) }),
            hint: AtomicBool::new(false),
        }
    }

    /// Frames `payload` (one final frame) after what is already here,
    /// copying it from the caller's memory: the only copy. Unchecked text
    /// (from C) is checked on that copy, so what goes out is what was checked
    /// even if the caller's memory changes meanwhile.
    ///
    /// # Errors
    /// [`NotUtf8`] for unchecked text that is not UTF-8: nothing is queued.
    pub(crate) fn push(&self, payload: Payload<'_>) -> Result<(), NotUtf8> {
        let (opcode, bytes, check) = match payload {
            Payload::Text(t) => (TEXT, t.as_bytes(), false),
            Payload::UncheckedText(b) => (TEXT, b, true),
            Payload::Binary(b) => (BINARY, b, false),
        };
        let mut inner = self.inner.lock();
        let key = inner.keys.as_mut().map(|keys| keys.next_u32().to_ne_bytes());
        let batch = &mut inner.batch;
        let start = batch.bytes.len();
        let framed = frame_into(&mut batch.bytes, opcode, bytes, key, check);
        if framed.is_err() {
            batch.bytes.truncate(start);
            return framed;
        }
        batch.messages += 1;
        batch.payload += bytes.len();
        batch.large |= bytes.len() > LARGE;
        self.hint.store(true, Relaxed);
        Ok(())
    }

    /// Probably not empty (see `hint`); never false after a push by this
    /// thread that has not been taken since.
    pub(crate) fn hinted(&self) -> bool {
        self.hint.load(Relaxed)
    }

    /// True while messages wait here.
    pub(crate) fn is_empty(&self) -> bool {
        self.inner.lock().batch.is_empty()
    }

    /// Everything here, leaving `spare` (emptied) in its place.
    pub(crate) fn take(&self, mut spare: Vec<u8>) -> Batch {
        spare.clear();
        if spare.capacity() > KEPT {
            spare = Vec::new();
        }
        let fresh = Batch { bytes: spare, ..Batch::default() };
        let mut inner = self.inner.lock();
        self.hint.store(false, Relaxed);
        std::mem::replace(&mut inner.batch, fresh)
    }

    /// Drops everything here; returns its payload bytes.
    pub(crate) fn clear(&self) -> usize {
        std::mem::take(&mut self.inner.lock().batch).payload
    }

    /// Frees the buffer if nothing waits in it (an idle connection).
    pub(crate) fn release(&self) {
        let batch = &mut self.inner.lock().batch;
        if batch.is_empty() {
            batch.bytes = Vec::new();
        }
    }
}

/// A generator seeded by the operating system. Should that fail (Linux's
/// `getrandom` does not, once the system has booted), the seed mixes what
/// varies from process to process and moment to moment, so keys still
/// differ from connection to connection.
fn seeded() -> StdRng {
    StdRng::try_from_rng(&mut SysRng).unwrap_or_else(|_| {
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
        let local = 0u8;
        let mut seed = [0u8; 32];
        seed[..16].copy_from_slice(&now.as_nanos().to_le_bytes());
        seed[16..24].copy_from_slice(&(std::ptr::addr_of!(local) as u64).to_le_bytes());
        seed[24..28].copy_from_slice(&std::process::id().to_le_bytes());
        StdRng::from_seed(seed)
    })
}

/// Appends one final frame: RFC 6455 section 5.2. With `check_utf8`, the
/// payload's copy is checked before it is masked.
fn frame_into(
    out: &mut Vec<u8>,
    opcode: u8,
    payload: &[u8],
    key: Option<[u8; 4]>,
    check_utf8: bool,
) -> Result<(), NotUtf8> {
    out.reserve(14 + payload.len());
    push_header(out, 0x80 | opcode, payload.len(), key.is_some());
    if let Some(key) = key {
        out.extend_from_slice(&key);
    }
    if check_utf8 {
        return copy_checked(out, payload, key);
    }
    // In pieces: glibc's copy of large blocks is slow on some machines (see
    // `scratch`), and each piece is masked while it is in the first-level cache.
    for piece in payload.chunks(PIECE) {
        let at = out.len();
        out.extend_from_slice(piece);
        if let Some(key) = key {
            apply_mask(&mut out[at..], key, 0); // PIECE keeps the mask in phase
        }
    }
    Ok(())
}

/// Appends a frame header: the first byte `b0` (FIN, RSV, opcode), then the
/// mask bit and the payload length in its 7-, 16- or 64-bit form.
pub(crate) fn push_header(out: &mut Vec<u8>, b0: u8, len: usize, masked: bool) {
    let mask_bit = if masked { 0x80 } else { 0 };
    out.push(b0);
    match len {
        0..=125 => out.push(mask_bit | len as u8),
        126..=0xFFFF => {
            out.push(mask_bit | 126);
            out.extend_from_slice(&(len as u16).to_be_bytes());
        }
        _ => {
            out.push(mask_bit | 127);
            out.extend_from_slice(&(len as u64).to_be_bytes());
        }
    }
}

/// Copies `payload` after `out`'s end block by block, checks each block's
/// copy as UTF-8 (a character cut by a block's end is checked with the next
/// block), and masks what has been checked.
fn copy_checked(out: &mut Vec<u8>, payload: &[u8], key: Option<[u8; 4]>) -> Result<(), NotUtf8> {
    let base = out.len();
    let mut checked = 0; // payload bytes checked (and masked)
    let blocks = payload.chunks(BLOCK);
    let last = blocks.len().saturating_sub(1);
    for (i, block) in blocks.enumerate() {
        crate::scratch::append(out, block);
        let fresh = &out[base + checked..];
        let good = match simdutf8::compat::from_utf8(fresh) {
            Ok(_) => fresh.len(),
            Err(e) if e.error_len().is_none() && i < last => e.valid_up_to(),
            Err(_) => return Err(NotUtf8),
        };
        if let Some(key) = key {
            apply_mask(&mut out[base + checked..base + checked + good], key, checked);
        }
        checked += good;
    }
    Ok(())
}

/// XORs `bytes` with the key, the first of them being byte `offset` of the
/// payload.
fn apply_mask(bytes: &mut [u8], key: [u8; 4], offset: usize) {
    let key: [u8; 4] = std::array::from_fn(|i| key[(offset + i) % 4]);
    let wide = u64::from_ne_bytes([key[0], key[1], key[2], key[3], key[0], key[1], key[2], key[3]]);
    let mut chunks = bytes.chunks_exact_mut(8);
    for chunk in &mut chunks {
        let v = u64::from_ne_bytes(chunk.try_into().expect("chunks of 8"));
        chunk.copy_from_slice(&(v ^ wide).to_ne_bytes());
    }
    for (i, b) in chunks.into_remainder().iter_mut().enumerate() {
        *b ^= key[i % 4];
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use tungstenite::protocol::frame::FrameHeader;

    /// Parses `bytes` as one frame with tungstenite's own parser.
    fn parse(bytes: &[u8]) -> (FrameHeader, Vec<u8>) {
        let mut cursor = std::io::Cursor::new(bytes);
        let (header, len) = FrameHeader::parse(&mut cursor).unwrap().unwrap();
        let start = cursor.position() as usize;
        let mut payload = bytes[start..].to_vec();
        assert_eq!(payload.len() as u64, len);
        if let Some(key) = header.mask {
            apply_mask(&mut payload, key, 0);
        }
        (header, payload)
    }

    proptest! {
        #[test]
        fn frames_parse_back(payload in proptest::collection::vec(any::<u8>(), 0..70_000), mask: bool, text: bool) {
            let mut out = Vec::new();
            let key = mask.then_some([1, 2, 3, 250]);
            frame_into(&mut out, if text { TEXT } else { BINARY }, &payload, key, false).unwrap();
            let (header, back) = parse(&out);
            prop_assert!(header.is_final);
            prop_assert_eq!(header.mask, key);
            prop_assert_eq!(back, payload);
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]
        /// Text of many blocks, with characters of every width cut by the
        /// block boundaries: valid text frames as it is, and one bad byte
        /// anywhere is refused, leaving nothing behind.
        #[test]
        fn checked_text_across_blocks(
            chars in proptest::collection::vec(any::<char>(), 0..60_000),
            bad in any::<proptest::sample::Index>(),
            mask: bool,
        ) {
            let text: String = chars.into_iter().collect();
            let key = mask.then_some([0xA5, 0x5A, 0xFF, 0x01]);
            let mut out = vec![9];
            frame_into(&mut out, TEXT, text.as_bytes(), key, true).unwrap();
            let (_, back) = parse(&out[1..]);
            prop_assert_eq!(&back[..], text.as_bytes());
            if !text.is_empty() {
                let mut broken = text.into_bytes();
                let at = bad.index(broken.len());
                broken[at] = 0xFF; // never valid in UTF-8
                let mut out = vec![9];
                prop_assert!(frame_into(&mut out, TEXT, &broken, key, true).is_err());
                let outbox = Outbox::new(mask);
                prop_assert!(outbox.push(Payload::UncheckedText(&broken)).is_err());
                prop_assert!(outbox.is_empty());
                prop_assert!(outbox.inner.lock().batch.bytes.is_empty());
            }
        }
    }

    #[test]
    fn length_encodings_at_their_edges() {
        for len in [0, 125, 126, 0xFFFF, 0x1_0000] {
            let mut out = Vec::new();
            frame_into(&mut out, BINARY, &vec![7; len], Some([9, 8, 7, 6]), false).unwrap();
            let (_, back) = parse(&out);
            assert_eq!(back.len(), len);
            assert!(back.iter().all(|&b| b == 7));
        }
    }

    #[test]
    fn take_swaps_in_the_spare_and_counts() {
        let outbox = Outbox::new(true);
        outbox.push(Payload::Binary(&[0; 10])).unwrap();
        outbox.push(Payload::Text("hi")).unwrap();
        assert!(!outbox.is_empty());
        let batch = outbox.take(Vec::with_capacity(100));
        assert_eq!((batch.messages, batch.payload, batch.large), (2, 12, false));
        assert_eq!(batch.bytes.len(), 2 + 4 + 10 + 2 + 4 + 2);
        assert!(outbox.is_empty());
        assert_eq!(outbox.inner.lock().batch.bytes.capacity(), 100);
    }
}
