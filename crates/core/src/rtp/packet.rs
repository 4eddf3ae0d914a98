//! RTP packets (RFC 3550 §5.1): parsed before anything acts on them, and serialised.
//!
//! The codec is the project's own, not the `rtp` crate's, for two reasons. The crate's
//! `Unmarshal` trusts the header it reads (it does not check the version, and a header
//! extension element (RFC 8285 §4.2, §4.3) whose length runs past the buffer makes it panic),
//! so every length had to be checked here anyway. And the crate depends on `webrtc-util`,
//! which depends on tokio: the sans-IO core must not. The fixed header is twelve octets; what
//! remains is the CSRC list, the extension block and the padding, each checked against the
//! datagram's length before it is read, so network input never panics. The `rtp` crate is
//! used where its types are needed (capture files, WebRTC tracks), and the tests hold the two
//! codecs to the same bytes.

use bytes::{BufMut, Bytes, BytesMut};

/// An RTP header extension block (RFC 3550 §5.3.1), kept as it came.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Extension {
    /// The profile word (`0xBEDE` for RFC 8285 one-byte elements, `0x100x` two-byte).
    pub profile: u16,
    /// The block, a multiple of four octets.
    pub data: Bytes,
}

/// The RTP header (RFC 3550 §5.1), version 2.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Header {
    /// `M`.
    pub marker: bool,
    /// `PT`, 7 bits.
    pub payload_type: u8,
    /// The sequence number.
    pub sequence_number: u16,
    /// The RTP timestamp.
    pub timestamp: u32,
    /// The synchronisation source.
    pub ssrc: u32,
    /// Contributing sources (at most 15).
    pub csrc: Vec<u32>,
    /// The extension block, if `X` was set.
    pub extension: Option<Extension>,
}

/// One RTP packet: its header and its payload, padding removed.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Packet {
    /// The header.
    pub header: Header,
    /// The payload, without padding.
    pub payload: Bytes,
}

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
    /// A packet that cannot be written: more than 15 CSRCs, or an extension block whose
    /// length is not a multiple of four octets (or over 256 KiB).
    #[error("RTP packet cannot be serialised: {reason}")]
    Unwritable {
        /// Why.
        reason: &'static str,
    },
}

/// Parses one datagram into a packet whose payload has its padding removed.
pub fn parse(datagram: &[u8]) -> Result<Packet, PacketError> {
    let header_len = validate(datagram)?;
    let d = datagram;
    let be32 = |at: usize| u32::from_be_bytes([d[at], d[at + 1], d[at + 2], d[at + 3]]);
    let csrc_count = usize::from(d[0] & 0x0F);
    let csrc = (0..csrc_count)
        .map(|i| be32(FIXED_HEADER_LEN + 4 * i))
        .collect();
    let extension = (d[0] & 0x10 != 0).then(|| {
        let at = FIXED_HEADER_LEN + 4 * csrc_count;
        Extension {
            profile: u16::from_be_bytes([d[at], d[at + 1]]),
            data: Bytes::copy_from_slice(&d[at + 4..header_len]),
        }
    });
    let padding = if d[0] & 0x20 != 0 {
        usize::from(d[d.len() - 1])
    } else {
        0
    };
    Ok(Packet {
        header: Header {
            marker: d[1] & 0x80 != 0,
            payload_type: d[1] & 0x7F,
            sequence_number: u16::from_be_bytes([d[2], d[3]]),
            timestamp: be32(4),
            ssrc: be32(8),
            csrc,
            extension,
        },
        payload: Bytes::copy_from_slice(&d[header_len..d.len() - padding]),
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

/// Walks RFC 8285 elements, so that a block whose elements run past it is refused.
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
            // id 15 is reserved (RFC 8285 §4.2): whatever follows cannot be read as
            // elements, so the packet is refused rather than guessed at.
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

/// Serialises a packet (no padding: the payload is written as it is).
pub fn serialize(packet: &Packet) -> Result<Bytes, PacketError> {
    let h = &packet.header;
    if h.csrc.len() > 15 {
        return Err(PacketError::Unwritable {
            reason: "more than 15 CSRCs",
        });
    }
    let ext_len = match &h.extension {
        Some(e) if !e.data.len().is_multiple_of(4) || e.data.len() > 4 * usize::from(u16::MAX) => {
            return Err(PacketError::Unwritable {
                reason: "the extension block is not a whole number of 32-bit words",
            });
        }
        Some(e) => 4 + e.data.len(),
        None => 0,
    };
    let mut buf = BytesMut::with_capacity(
        FIXED_HEADER_LEN + 4 * h.csrc.len() + ext_len + packet.payload.len(),
    );
    let x = if h.extension.is_some() { 0x10 } else { 0 };
    buf.put_u8((RTP_VERSION << 6) | x | h.csrc.len() as u8);
    buf.put_u8((u8::from(h.marker) << 7) | (h.payload_type & 0x7F));
    buf.put_u16(h.sequence_number);
    buf.put_u32(h.timestamp);
    buf.put_u32(h.ssrc);
    for c in &h.csrc {
        buf.put_u32(*c);
    }
    if let Some(e) = &h.extension {
        buf.put_u16(e.profile);
        buf.put_u16((e.data.len() / 4) as u16);
        buf.put_slice(&e.data);
    }
    buf.put_slice(&packet.payload);
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
