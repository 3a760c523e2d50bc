//! What the layer reads of gRPC: which requests are gRPC calls, their `grpc-status`, and
//! whether a response streams (carries more than one message).
//!
//! gRPC is HTTP/2 with a few headers and trailers: a request is a `POST` with a
//! `content-type` of `application/grpc` (or `application/grpc+proto`, …) to
//! `/package.Service/Method`; the response's status is the `grpc-status` trailer, or a
//! header of a response without a body (trailers-only); each message in a body is
//! prefixed by a flag byte and a four-byte big-endian length.

use bytes::Buf;
use http::HeaderMap;

/// Whether a request with these headers is a gRPC call (not gRPC-Web, whose trailers travel
/// in the body). The caller checks first that it is a `POST` over HTTP/2.
#[inline]
pub(crate) fn is_grpc_request(headers: &HeaderMap) -> bool {
    headers
        .get(http::header::CONTENT_TYPE)
        .is_some_and(|v| is_grpc_content_type(v.as_bytes()))
}

fn is_grpc_content_type(value: &[u8]) -> bool {
    const GRPC: &[u8] = b"application/grpc";
    value.len() >= GRPC.len()
        && value[..GRPC.len()].eq_ignore_ascii_case(GRPC)
        && matches!(value.get(GRPC.len()), None | Some(b'+' | b';'))
}

/// The `grpc-status` in `headers` (a trailers-only response's headers, or trailers): a
/// decimal number, else `None`.
pub(crate) fn grpc_status(headers: &HeaderMap) -> Option<u32> {
    let value = headers.get("grpc-status")?.as_bytes();
    if value.is_empty() || value.len() > 9 || !value.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(value.iter().fold(0u32, |n, d| n * 10 + u32::from(d - b'0')))
}

/// Finds the messages of a gRPC body across data frames: each starts with a five-byte
/// prefix (a flag byte and the length), and may span frames.
///
/// Eight bytes with nothing to drop: it sits in the response body at little cost to requests
/// that are not gRPC calls.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct MessageCounter {
    /// Bytes of the current message's body still to come; while in a prefix, the length
    /// read from it so far.
    remaining: u32,
    /// Bytes of the current prefix seen so far (0 to 4; 0 also between messages).
    prefix_seen: u8,
    /// Messages started so far, up to 255.
    pub(crate) messages: u8,
    /// Set when a frame could not be read whole (a buffer in more pieces than looked at):
    /// the count is no longer followed.
    lost: bool,
}

/// How many pieces of a non-contiguous buffer are looked at.
const MAX_PIECES: usize = 8;

impl MessageCounter {
    /// Follows one data frame; returns the number of messages started so far (at most 255).
    pub(crate) fn on_data<D: Buf>(&mut self, data: &D) -> u8 {
        if self.lost {
            return self.messages;
        }
        let total = data.remaining();
        let chunk = data.chunk();
        if chunk.len() == total {
            self.on_bytes(chunk);
        } else {
            let mut pieces = [std::io::IoSlice::new(&[]); MAX_PIECES];
            let n = data.chunks_vectored(&mut pieces);
            let seen: usize = pieces[..n].iter().map(|p| p.len()).sum();
            if seen != total {
                self.lost = true;
                return self.messages;
            }
            for piece in &pieces[..n] {
                self.on_bytes(piece);
            }
        }
        self.messages
    }

    fn on_bytes(&mut self, mut bytes: &[u8]) {
        while !bytes.is_empty() {
            if self.prefix_seen == 0 && self.remaining > 0 {
                let take = bytes
                    .len()
                    .min(usize::try_from(self.remaining).unwrap_or(usize::MAX));
                // `take` is at most `remaining`, a `u32`.
                self.remaining -= u32::try_from(take).unwrap_or(self.remaining);
                bytes = &bytes[take..];
                continue;
            }
            // In a prefix: byte 0 is the flag, bytes 1 to 4 the length.
            if self.prefix_seen == 0 {
                self.messages = self.messages.saturating_add(1);
            } else {
                self.remaining = (self.remaining << 8) | u32::from(bytes[0]);
            }
            bytes = &bytes[1..];
            self.prefix_seen += 1;
            if self.prefix_seen == 5 {
                // The length is read: its body follows.
                self.prefix_seen = 0;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grpc_content_types_are_recognised_and_grpc_web_is_not() {
        for yes in [
            "application/grpc",
            "application/grpc+proto",
            "Application/GRPC;charset=utf-8",
        ] {
            assert!(is_grpc_content_type(yes.as_bytes()), "{yes}");
        }
        for no in [
            "application/grpc-web",
            "application/json",
            "application/gr",
            "",
        ] {
            assert!(!is_grpc_content_type(no.as_bytes()), "{no}");
        }
    }

    #[test]
    fn grpc_status_is_a_decimal_number_or_nothing() {
        let status = |v: &str| {
            let mut headers = HeaderMap::new();
            headers.insert("grpc-status", v.parse().expect("a header value"));
            grpc_status(&headers)
        };
        assert_eq!(status("0"), Some(0));
        assert_eq!(status("14"), Some(14));
        assert_eq!(status("999999999"), Some(999_999_999));
        for bad in ["", "-1", "1x", "9999999999", " 5"] {
            assert_eq!(status(bad), None, "{bad:?}");
        }
        assert_eq!(grpc_status(&HeaderMap::new()), None);
    }

    /// One message per frame, several in one frame, and prefixes and bodies split across
    /// frames at every possible point.
    #[test]
    fn messages_are_counted_across_frames_however_they_are_split() {
        let message = |len: usize| {
            let mut m = vec![0u8];
            m.extend_from_slice(&(len as u32).to_be_bytes());
            m.extend(std::iter::repeat_n(7u8, len));
            m
        };
        let body: Vec<u8> = [message(3), message(0), message(300), message(1)].concat();
        for split in 0..=body.len() {
            for second in split..=body.len() {
                let mut counter = MessageCounter::default();
                for part in [&body[..split], &body[split..second], &body[second..]] {
                    counter.on_data(&bytes::Bytes::copy_from_slice(part));
                }
                assert_eq!(counter.messages, 4, "split at {split} and {second}");
            }
        }
        let mut counter = MessageCounter::default();
        assert_eq!(counter.on_data(&bytes::Bytes::from(message(5))), 1);
        // A buffer in two pieces.
        let two = bytes::Bytes::from(message(2)).chain(bytes::Bytes::from(message(4)));
        assert_eq!(counter.on_data(&two), 3);
    }
}
