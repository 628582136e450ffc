//! Where the bytes handed to tungstenite stand in the frame sequence.
//!
//! tungstenite keeps its read and write buffers at the size of the largest
//! frame it has seen, and they are private to it: the only way to give that
//! memory back is to rebuild the `WebSocket` around the same socket, which
//! is safe only when tungstenite holds no byte of an unfinished frame and no
//! part of a fragmented message. Its buffer cannot be asked, so this follows
//! the stream from outside: it watches every byte tungstenite reads (the
//! HTTP response head, then frame headers and payload lengths) and says when
//! everything read so far is whole messages. Only headers are parsed, so it
//! costs a few instructions per frame, not per byte.

/// Follows frame boundaries in the bytes read from the server.
#[derive(Debug, Default)]
pub(crate) struct Frames {
    /// Where the HTTP response head stands ([`Head`]); `Head::Done` once it
    /// is over and frames begin.
    head: Head,
    /// The header of the frame being read, as far as it has arrived.
    header: [u8; MAX_HEADER],
    header_len: usize,
    /// Payload bytes of the current frame still to come.
    payload_left: u64,
    /// A data frame without FIN began a message that has not ended yet.
    in_message: bool,
    /// Frame headers completed so far (every kind of frame).
    count: u64,
}

const MAX_HEADER: usize = 14;

/// What the tracker needs of a frame header.
#[derive(Clone, Copy)]
struct Header {
    /// The header's own length in bytes.
    len: usize,
    fin: bool,
    opcode: u8,
    payload: u64,
}

impl Header {
    /// The header at the start of `h`, if all of it is there.
    fn parse(h: &[u8]) -> Option<Header> {
        let (b0, b1) = (*h.first()?, *h.get(1)?);
        let ext = match b1 & 0x7F {
            126 => 2,
            127 => 8,
            _ => 0,
        };
        let len = 2 + ext + if b1 & 0x80 != 0 { 4 } else { 0 };
        let payload = match ext {
            0 => u64::from(b1 & 0x7F),
            _ => h.get(2..2 + ext)?.iter().fold(0u64, |acc, b| (acc << 8) | u64::from(*b)),
        };
        (h.len() >= len).then_some(Header { len, fin: b0 & 0x80 != 0, opcode: b0 & 0x0F, payload })
    }
}

/// The response head as httparse (under tungstenite) reads it: empty lines
/// before the status line are skipped, a line ends with `\n` or `\r\n`,
/// and an empty line ends the head. So `\n\n` ends it as well as
/// `\r\n\r\n`, and a `\r\n\r\n` before the status line does not.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
enum Head {
    /// Nothing but empty lines yet.
    #[default]
    Before,
    /// Inside a line.
    Line,
    /// Just after a line's `\n`.
    LineEnd,
    /// After a line's `\n` and a `\r`.
    LineEndCr,
    Done,
}

impl Head {
    fn next(self, b: u8) -> Head {
        match (self, b) {
            (Head::Before, b'\r' | b'\n') => Head::Before,
            (Head::LineEnd, b'\r') => Head::LineEndCr,
            (Head::LineEnd | Head::LineEndCr, b'\n') => Head::Done,
            (_, b'\n') => Head::LineEnd,
            _ => Head::Line,
        }
    }
}

impl Frames {
    /// Notes bytes just read from the socket, in order.
    pub(crate) fn feed(&mut self, mut bytes: &[u8]) {
        while !bytes.is_empty() {
            if self.head != Head::Done {
                self.head = self.head.next(bytes[0]);
                bytes = &bytes[1..];
            } else if self.payload_left > 0 {
                let n = usize::try_from(self.payload_left).map_or(bytes.len(), |left| left.min(bytes.len()));
                self.payload_left -= n as u64;
                bytes = &bytes[n..];
            } else if let (0, Some(h)) = (self.header_len, Header::parse(bytes)) {
                // The usual case: a whole header in this read, parsed in place.
                self.begin(h);
                bytes = &bytes[h.len..];
            } else {
                self.header[self.header_len] = bytes[0];
                self.header_len += 1;
                bytes = &bytes[1..];
                if let Some(h) = Header::parse(&self.header[..self.header_len]) {
                    self.header_len = 0;
                    self.begin(h);
                }
            }
        }
    }

    /// A frame's header is complete: its payload comes next.
    fn begin(&mut self, h: Header) {
        if h.opcode < 8 {
            self.in_message = !h.fin; // data or continuation; control frames leave it
        }
        self.payload_left = h.payload;
        self.count += 1;
    }

    /// How many frames have begun (their header was complete) so far.
    pub(crate) fn count(&self) -> u64 {
        self.count
    }

    /// Payload bytes of the current frame not read yet.
    pub(crate) fn payload_left(&self) -> u64 {
        self.payload_left
    }

    /// A tracker for a server, whose HTTP request head was read before the
    /// stream was built: it starts at the frames.
    pub(crate) fn after_head() -> Frames {
        Frames { head: Head::Done, ..Frames::default() }
    }

    /// True when every byte read so far belongs to whole messages: nothing
    /// of a frame or of a fragmented message is left in tungstenite's hands
    /// once it has processed what it read.
    pub(crate) fn at_message_boundary(&self) -> bool {
        self.head == Head::Done && self.header_len == 0 && self.payload_left == 0 && !self.in_message
    }
}

#[cfg(test)]
mod tests {
    use super::Frames;
    use proptest::prelude::*;

    /// A server frame (unmasked unless `mask`), as tungstenite would read it.
    fn frame(b0: u8, len: usize, mask: bool) -> Vec<u8> {
        let mut out = Vec::new();
        crate::outbox::push_header(&mut out, b0, len, mask);
        if mask {
            out.extend_from_slice(&[1, 2, 3, 4]);
        }
        out.extend(vec![b'x'; len]);
        out
    }

    const HEAD: &[u8] = b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n";

    #[test]
    fn boundaries_of_whole_and_fragmented_messages() {
        let mut f = Frames::default();
        assert!(!f.at_message_boundary(), "still in the HTTP head");
        f.feed(HEAD);
        assert!(f.at_message_boundary());
        f.feed(&frame(0x81, 70_000, false)[..100]);
        assert!(!f.at_message_boundary(), "mid-payload");
        f.feed(&frame(0x81, 70_000, false)[100..]);
        assert!(f.at_message_boundary());
        f.feed(&frame(0x01, 3, false)); // first fragment
        assert!(!f.at_message_boundary(), "mid-message");
        f.feed(&frame(0x89, 2, false)); // a ping between fragments
        assert!(!f.at_message_boundary());
        f.feed(&frame(0x80, 3, false)); // last fragment
        assert!(f.at_message_boundary());
        f.feed(&[0x82]);
        assert!(!f.at_message_boundary(), "mid-header");
    }

    /// Found by the fuzzer (fuzz/regressions/frames/): tungstenite accepts a
    /// response head whose lines end in a bare `\n`, and skips empty lines
    /// before the status line; the tracker waited for `\r\n\r\n` and so
    /// never saw the head end (or saw it inside a later frame's payload).
    #[test]
    fn the_head_ends_where_httparse_ends_it() {
        let frame = frame(0x81, 2, false);
        for head in [
            &b"HTTP/1.1 101 OK\nUpgrade: websocket\n\n"[..],
            b"HTTP/1.1 101 OK\r\nUpgrade: websocket\n\r\n",
            b"\r\n\r\n\nHTTP/1.1 101 OK\r\nUpgrade: websocket\r\n\r\n",
        ] {
            let mut f = Frames::default();
            f.feed(&head[..head.len() - 1]);
            assert!(!f.at_message_boundary(), "{head:?}: ended early");
            f.feed(&head[head.len() - 1..]);
            assert!(f.at_message_boundary(), "{head:?}: the head did not end");
            f.feed(&frame[..1]);
            assert!(!f.at_message_boundary());
            f.feed(&frame[1..]);
            assert_eq!((f.count(), f.at_message_boundary()), (1, true), "{head:?}");
        }
    }

    proptest! {
        /// However the bytes are split into reads, the boundary is reported
        /// exactly after each whole message and nowhere else.
        #[test]
        fn any_split_finds_exactly_the_message_ends(
            frames in proptest::collection::vec((any::<bool>(), 0u8..3, 0usize..70_000, any::<bool>()), 1..8),
            cuts in proptest::collection::vec(1usize..20_000, 0..40),
        ) {
            let mut bytes = HEAD.to_vec();
            let mut ends = vec![HEAD.len()];
            let mut open = false;
            for (fin, kind, len, mask) in frames {
                // kind: 0 data/continuation, 1 ping, 2 close (control: always FIN, short)
                let (b0, len) = match kind {
                    0 => ((u8::from(fin) << 7) | if open { 0 } else { 1 }, len),
                    1 => (0x89, len % 126),
                    _ => (0x88, len % 126),
                };
                bytes.extend(frame(b0, len, mask));
                if kind == 0 {
                    open = !fin;
                }
                if !open {
                    ends.push(bytes.len());
                }
            }
            let mut f = Frames::default();
            let mut at = 0;
            let mut cuts = cuts.into_iter();
            while at < bytes.len() {
                let n = cuts.next().unwrap_or(bytes.len()).min(bytes.len() - at);
                f.feed(&bytes[at..at + n]);
                at += n;
                prop_assert_eq!(f.at_message_boundary(), ends.contains(&at), "after {} bytes", at);
            }
        }
    }
}
