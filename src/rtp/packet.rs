//! RTP packets (RFC 3550 §5.1) over the `rtp` crate, parsed before anything acts on them.
//!
//! The `rtp` crate's `Unmarshal` trusts the header it reads: it does not check the version,
//! and a one- or two-byte header extension (RFC 8285 §4.2, §4.3) whose element length runs past
//! the buffer makes it panic. So [`parse`] walks the fixed header, the CSRC list, the extension
//! block and its elements and the padding count (RFC 3550 §5.1 `P`, last octet) itself, and only
//! hands bytes to the crate once every length is known to fit. Network input never panics.

use bytes::{Bytes, BytesMut};
use webrtc_util::marshal::{Marshal, MarshalSize, Unmarshal};

pub use rtp::header::Header;
pub use rtp::packet::Packet;

/// Length of the fixed RTP header (RFC 3550 §5.1).
pub const FIXED_HEADER_LEN: usize = 12;
/// The only RTP version in use (RFC 3550 §5.1 `V`).
pub const RTP_VERSION: u8 = 2;

/// RFC 8285 §4.2 one-byte header extension profile.
const PROFILE_ONE_BYTE: u16 = 0xBEDE;
/// RFC 8285 §4.3 two-byte header extension profile (the low 4 bits are "appbits").
const PROFILE_TWO_BYTE_MASK: u16 = 0xFFF0;
const PROFILE_TWO_BYTE: u16 = 0x1000;

/// Why bytes are not an RTP packet.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PacketError {
    /// Shorter than the fixed header plus the CSRC list / extension it announces.
    #[error("RTP packet too short: {len} bytes, header needs {need}")]
    TooShort {
        /// Bytes received.
        len: usize,
        /// Bytes the header announces.
        need: usize,
    },
    /// `V` is not 2 (RTCP on the RTP port, STUN, or garbage).
    #[error("RTP version {version}, expected 2")]
    Version {
        /// The version field.
        version: u8,
    },
    /// A header-extension element (RFC 8285) runs past the extension block, or uses id 15.
    #[error("RTP header extension element at byte {offset} is malformed")]
    ExtensionElement {
        /// Byte offset of the element in the packet.
        offset: usize,
    },
    /// The padding count (last octet, `P` set) is zero or longer than the payload.
    #[error("RTP padding of {padding} bytes with only {available} bytes after the header")]
    Padding {
        /// The padding count octet.
        padding: u8,
        /// Bytes after the header.
        available: usize,
    },
    /// The `rtp` crate refused the packet (parse or marshal).
    #[error("rtp crate: {message}")]
    Codec {
        /// The crate's message.
        message: String,
    },
}

/// Parses one datagram into a packet whose payload has its padding removed.
pub fn parse(datagram: &[u8]) -> Result<Packet, PacketError> {
    validate(datagram)?;
    let mut buf = datagram;
    Packet::unmarshal(&mut buf).map_err(|e| PacketError::Codec {
        message: e.to_string(),
    })
}

/// Checks every length in the header; returns the header length (fixed + CSRC + extension).
fn validate(d: &[u8]) -> Result<usize, PacketError> {
    if d.len() < FIXED_HEADER_LEN {
        return Err(PacketError::TooShort {
            len: d.len(),
            need: FIXED_HEADER_LEN,
        });
    }
    let version = d[0] >> 6;
    if version != RTP_VERSION {
        return Err(PacketError::Version { version });
    }
    let padding = d[0] & 0x20 != 0;
    let extension = d[0] & 0x10 != 0;
    let csrc_count = usize::from(d[0] & 0x0F);
    let mut need = FIXED_HEADER_LEN + 4 * csrc_count;
    if d.len() < need {
        return Err(PacketError::TooShort { len: d.len(), need });
    }
    if extension {
        let at = need;
        need += 4;
        if d.len() < need {
            return Err(PacketError::TooShort { len: d.len(), need });
        }
        let profile = u16::from_be_bytes([d[at], d[at + 1]]);
        let words = usize::from(u16::from_be_bytes([d[at + 2], d[at + 3]]));
        let start = need;
        need += 4 * words;
        if d.len() < need {
            return Err(PacketError::TooShort { len: d.len(), need });
        }
        check_elements(profile, &d[start..need], start)?;
    }
    if padding {
        let available = d.len() - need;
        let count = d[d.len() - 1];
        if count == 0 || usize::from(count) > available {
            return Err(PacketError::Padding {
                padding: count,
                available,
            });
        }
    }
    Ok(need)
}

/// Walks RFC 8285 elements so the crate's parser never reads past the block.
fn check_elements(profile: u16, block: &[u8], base: usize) -> Result<(), PacketError> {
    let two_byte = profile & PROFILE_TWO_BYTE_MASK == PROFILE_TWO_BYTE;
    if profile != PROFILE_ONE_BYTE && !two_byte {
        // RFC 3550 §5.3.1 extension: opaque, the crate copies it whole.
        return Ok(());
    }
    let mut i = 0;
    while i < block.len() {
        let b = block[i];
        if b == 0 {
            i += 1;
            continue;
        }
        let offset = base + i;
        let len = if two_byte {
            let Some(&l) = block.get(i + 1) else {
                return Err(PacketError::ExtensionElement { offset });
            };
            i += 2;
            usize::from(l)
        } else {
            // id 15 is reserved; the crate stops there and would leave the rest of the block
            // in the payload, so refuse it rather than mis-split the packet.
            if b >> 4 == 15 {
                return Err(PacketError::ExtensionElement { offset });
            }
            i += 1;
            usize::from(b & 0x0F) + 1
        };
        if i + len > block.len() {
            return Err(PacketError::ExtensionElement { offset });
        }
        i += len;
    }
    Ok(())
}

/// Serialises a packet (header, payload, and padding when `header.padding` is set).
pub fn serialize(packet: &Packet) -> Result<Bytes, PacketError> {
    let mut buf = BytesMut::zeroed(packet.marshal_size());
    let n = packet
        .marshal_to(&mut buf)
        .map_err(|e| PacketError::Codec {
            message: e.to_string(),
        })?;
    buf.truncate(n);
    Ok(buf.freeze())
}

/// Builds a plain packet (no CSRC, extension or padding).
pub fn build(
    payload_type: u8,
    marker: bool,
    sequence_number: u16,
    timestamp: u32,
    ssrc: u32,
    payload: Bytes,
) -> Packet {
    Packet {
        header: Header {
            version: RTP_VERSION,
            marker,
            payload_type: payload_type & 0x7F,
            sequence_number,
            timestamp,
            ssrc,
            ..Header::default()
        },
        payload,
    }
}

/// RFC 3550 Appendix A.1 serial comparison: is sequence number `a` after `b`?
pub fn seq_after(a: u16, b: u16) -> bool {
    a != b && a.wrapping_sub(b) < 0x8000
}

/// Serial comparison of RTP timestamps: is `a` after `b` (within half the 32-bit range)?
pub fn ts_after(a: u32, b: u32) -> bool {
    a != b && a.wrapping_sub(b) < 0x8000_0000
}
