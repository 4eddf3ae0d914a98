//! Reading RTP out of packet captures: classic pcap (microsecond and nanosecond, either byte
//! order) and pcapng (section header, interface description with `if_tsresol`, enhanced and
//! simple packet blocks), over Ethernet (with 802.1Q/802.1ad tags), Linux cooked v1/v2, BSD
//! loopback and raw IP links, IPv4 (unfragmented) and IPv6 (no extension headers), UDP.
//!
//! Used by `hotdesk qa` for the `rtp` fixtures and by `hotdesk replay`. Pure: bytes in, packets
//! with capture times out; a capture is untrusted input and never makes this panic. A capture
//! whose last record was cut short (tcpdump killed mid-write) keeps the records before it and
//! says so in [`Capture::truncated`].
//!
//! Writing is the narrow case the sipp tests need ([`PcapWriter`]): classic microsecond pcap,
//! Ethernet/IPv4/UDP, because that is what sipp's `play_pcap_audio` replays (it rewrites the
//! addresses and ports and paces the packets by their capture times).

use std::io::Write;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4};
use std::time::Duration;

use hotdesk_core::rtp::packet::{self, Packet};

/// Why a capture cannot be read at all.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PcapError {
    /// Neither a pcap nor a pcapng magic number.
    #[error("not a pcap or pcapng file (magic {magic:#010x})")]
    Magic {
        /// The first four bytes, big-endian.
        magic: u32,
    },
    /// The file header is shorter than its format requires.
    #[error("capture header truncated at byte {offset}")]
    Header {
        /// Where the header ran out.
        offset: usize,
    },
    /// A link type this reader does not decode.
    #[error(
        "link type {link_type} is not supported (Ethernet, Linux cooked, loopback, raw IP are)"
    )]
    LinkType {
        /// The LINKTYPE_ value.
        link_type: u32,
    },
    /// A pcapng block that is inconsistent (length not a multiple of 4, unknown interface …).
    #[error("pcapng block at byte {offset}: {reason}")]
    Block {
        /// Offset of the block.
        offset: usize,
        /// What is wrong.
        reason: &'static str,
    },
}

/// One UDP datagram from a capture.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Datagram {
    /// Capture time, since the Unix epoch.
    pub time: Duration,
    /// Source address.
    pub src: SocketAddr,
    /// Destination address.
    pub dst: SocketAddr,
    /// UDP payload.
    pub payload: Vec<u8>,
}

/// One RTP packet from a capture.
#[derive(Debug, Clone)]
pub struct CapturedRtp {
    /// Capture time, since the Unix epoch.
    pub time: Duration,
    /// Source address.
    pub src: SocketAddr,
    /// Destination address.
    pub dst: SocketAddr,
    /// The parsed packet.
    pub packet: Packet,
}

/// All UDP datagrams of a capture, in file order.
#[derive(Debug, Clone, Default)]
pub struct Capture {
    /// The datagrams.
    pub datagrams: Vec<Datagram>,
    /// Frames that were not IPv4/IPv6 UDP (ARP, TCP, fragments, …).
    pub skipped: usize,
    /// The last record was cut short.
    pub truncated: bool,
}

impl Capture {
    /// The datagrams that parse as RTP (version 2, payload type outside RTCP's 72-76, RFC 5761
    /// §4), e.g. not SIP or STUN on the same capture.
    pub fn rtp(&self) -> Vec<CapturedRtp> {
        self.datagrams
            .iter()
            .filter_map(|d| {
                let packet = packet::parse(&d.payload).ok()?;
                if (72..=76).contains(&packet.header.payload_type) && packet.header.marker {
                    return None;
                }
                Some(CapturedRtp {
                    time: d.time,
                    src: d.src,
                    dst: d.dst,
                    packet,
                })
            })
            .collect()
    }
}

// LINKTYPE_ values (tcpdump.org/linktypes).
const LT_NULL: u32 = 0;
const LT_ETHERNET: u32 = 1;
const LT_RAW: u32 = 101;
const LT_LOOP: u32 = 108;
const LT_LINUX_SLL: u32 = 113;
const LT_IPV4: u32 = 228;
const LT_IPV6: u32 = 229;
const LT_LINUX_SLL2: u32 = 276;

fn supported(link_type: u32) -> bool {
    matches!(
        link_type,
        LT_NULL | LT_ETHERNET | LT_RAW | LT_LOOP | LT_LINUX_SLL | LT_IPV4 | LT_IPV6 | LT_LINUX_SLL2
    ) || link_type == 12
        || link_type == 14
}

/// Reads a classic pcap or pcapng capture.
pub fn read(bytes: &[u8]) -> Result<Capture, PcapError> {
    let magic = be32(bytes, 0).ok_or(PcapError::Header { offset: 0 })?;
    match magic {
        0xA1B2_C3D4 | 0xD4C3_B2A1 | 0xA1B2_3C4D | 0x4D3C_B2A1 => read_classic(bytes, magic),
        0x0A0D_0D0A => read_ng(bytes),
        _ => Err(PcapError::Magic { magic }),
    }
}

fn be32(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_be_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

fn be16(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes(b.get(at..at + 2)?.try_into().ok()?))
}

/// A u32 in the file's byte order.
fn u32_at(b: &[u8], at: usize, little: bool) -> Option<u32> {
    let v: [u8; 4] = b.get(at..at + 4)?.try_into().ok()?;
    Some(if little {
        u32::from_le_bytes(v)
    } else {
        u32::from_be_bytes(v)
    })
}

fn u16_at(b: &[u8], at: usize, little: bool) -> Option<u16> {
    let v: [u8; 2] = b.get(at..at + 2)?.try_into().ok()?;
    Some(if little {
        u16::from_le_bytes(v)
    } else {
        u16::from_be_bytes(v)
    })
}

fn read_classic(bytes: &[u8], magic: u32) -> Result<Capture, PcapError> {
    let little = matches!(magic, 0xD4C3_B2A1 | 0x4D3C_B2A1);
    let nanos = matches!(magic, 0xA1B2_3C4D | 0x4D3C_B2A1);
    let link_type = u32_at(bytes, 20, little).ok_or(PcapError::Header { offset: 20 })?;
    // The upper bits of the link-type field carry FCS flags (pcap-savefile(5)).
    let link_type = link_type & 0x0FFF_FFFF;
    if !supported(link_type) {
        return Err(PcapError::LinkType { link_type });
    }
    let mut cap = Capture::default();
    let mut at = 24;
    while at < bytes.len() {
        let (Some(sec), Some(frac), Some(incl)) = (
            u32_at(bytes, at, little),
            u32_at(bytes, at + 4, little),
            u32_at(bytes, at + 8, little),
        ) else {
            cap.truncated = true;
            break;
        };
        let start = at + 16;
        let Some(frame) = start
            .checked_add(incl as usize)
            .and_then(|end| bytes.get(start..end))
        else {
            cap.truncated = true;
            break;
        };
        let sub = if nanos {
            Duration::from_nanos(u64::from(frac))
        } else {
            Duration::from_micros(u64::from(frac))
        };
        let time = Duration::from_secs(u64::from(sec)) + sub;
        push_frame(&mut cap, link_type, little, time, frame);
        at = start + incl as usize;
    }
    Ok(cap)
}

/// One pcapng interface: link type and timestamp units per second.
#[derive(Clone, Copy)]
struct Interface {
    link_type: u32,
    units_per_sec: u64,
}

fn read_ng(bytes: &[u8]) -> Result<Capture, PcapError> {
    let mut cap = Capture::default();
    let mut little = true;
    let mut interfaces: Vec<Interface> = Vec::new();
    let mut at = 0usize;
    while at < bytes.len() {
        let Some(raw_type) = be32(bytes, at) else {
            cap.truncated = true;
            break;
        };
        if raw_type == 0x0A0D_0D0A {
            // Section header: its byte-order magic decides how the section is read.
            let bom = be32(bytes, at + 8).ok_or(PcapError::Header { offset: at + 8 })?;
            little = match bom {
                0x4D3C_2B1A => true,
                0x1A2B_3C4D => false,
                _ => {
                    return Err(PcapError::Block {
                        offset: at,
                        reason: "bad byte-order magic",
                    });
                }
            };
            interfaces.clear();
        }
        let (Some(block_type), Some(len)) =
            (u32_at(bytes, at, little), u32_at(bytes, at + 4, little))
        else {
            cap.truncated = true;
            break;
        };
        let len = len as usize;
        if len < 12 || !len.is_multiple_of(4) {
            return Err(PcapError::Block {
                offset: at,
                reason: "block length below 12 or not a multiple of 4",
            });
        }
        let Some(body) = at
            .checked_add(len)
            .and_then(|end| bytes.get(at + 8..end - 4))
        else {
            cap.truncated = true;
            break;
        };
        match block_type {
            1 => {
                let link_type = u32::from(u16_at(body, 0, little).unwrap_or(u16::MAX));
                if !supported(link_type) {
                    return Err(PcapError::LinkType { link_type });
                }
                interfaces.push(Interface {
                    link_type,
                    units_per_sec: ng_tsresol(body.get(8..).unwrap_or(&[]), little),
                });
            }
            6 => {
                let (Some(id), Some(hi), Some(lo), Some(incl)) = (
                    u32_at(body, 0, little),
                    u32_at(body, 4, little),
                    u32_at(body, 8, little),
                    u32_at(body, 12, little),
                ) else {
                    return Err(PcapError::Block {
                        offset: at,
                        reason: "enhanced packet block too short",
                    });
                };
                let iface = interfaces
                    .get(id as usize)
                    .copied()
                    .ok_or(PcapError::Block {
                        offset: at,
                        reason: "packet for an undeclared interface",
                    })?;
                let frame = 20usize
                    .checked_add(incl as usize)
                    .and_then(|end| body.get(20..end))
                    .ok_or(PcapError::Block {
                        offset: at,
                        reason: "captured length past the block",
                    })?;
                let ts = (u64::from(hi) << 32) | u64::from(lo);
                let per = iface.units_per_sec.max(1);
                let time = Duration::from_secs(ts / per)
                    + Duration::from_nanos(
                        ((u128::from(ts % per) * 1_000_000_000) / u128::from(per)) as u64,
                    );
                push_frame(&mut cap, iface.link_type, little, time, frame);
            }
            3 => {
                // Simple packet block: interface 0, no timestamp.
                let iface = interfaces.first().copied().ok_or(PcapError::Block {
                    offset: at,
                    reason: "packet for an undeclared interface",
                })?;
                let orig = u32_at(body, 0, little).unwrap_or(0) as usize;
                let data = body.get(4..).unwrap_or(&[]);
                let frame = &data[..orig.min(data.len())];
                push_frame(&mut cap, iface.link_type, little, Duration::ZERO, frame);
            }
            _ => {}
        }
        at += len;
    }
    Ok(cap)
}

/// `if_tsresol` (option 9) of an interface description block; microseconds by default.
fn ng_tsresol(mut options: &[u8], little: bool) -> u64 {
    while let (Some(code), Some(len)) = (u16_at(options, 0, little), u16_at(options, 2, little)) {
        let len = usize::from(len);
        if code == 0 {
            break;
        }
        if code == 9
            && len == 1
            && let Some(&v) = options.get(4)
        {
            let exp = u32::from(v & 0x7F);
            return if v & 0x80 != 0 {
                2u64.checked_pow(exp).unwrap_or(1_000_000)
            } else {
                10u64.checked_pow(exp).unwrap_or(1_000_000)
            };
        }
        let next = 4 + len.div_ceil(4) * 4;
        options = options.get(next..).unwrap_or(&[]);
    }
    1_000_000
}

/// Decodes a link-layer frame down to UDP and records the datagram (or counts it skipped).
fn push_frame(cap: &mut Capture, link_type: u32, file_little: bool, time: Duration, frame: &[u8]) {
    match udp_of(link_type, file_little, frame) {
        Some((src, dst, payload)) => cap.datagrams.push(Datagram {
            time,
            src,
            dst,
            payload: payload.to_vec(),
        }),
        None => cap.skipped += 1,
    }
}

/// (network layer protocol, payload) from a link-layer frame.
fn network_of(link_type: u32, file_little: bool, frame: &[u8]) -> Option<(u16, &[u8])> {
    const IPV4: u16 = 0x0800;
    const IPV6: u16 = 0x86DD;
    match link_type {
        LT_ETHERNET => {
            let mut ethertype = be16(frame, 12)?;
            let mut at = 14;
            // 802.1Q / 802.1ad tags, possibly stacked.
            while matches!(ethertype, 0x8100 | 0x88A8 | 0x9100) {
                ethertype = be16(frame, at + 2)?;
                at += 4;
            }
            Some((ethertype, frame.get(at..)?))
        }
        LT_LINUX_SLL => Some((be16(frame, 14)?, frame.get(16..)?)),
        LT_LINUX_SLL2 => Some((be16(frame, 0)?, frame.get(20..)?)),
        LT_NULL | LT_LOOP => {
            // The address family is in the capturing host's byte order for NULL (guess from the
            // file's), network order for LOOP. AF_INET is 2 everywhere; AF_INET6 is 10, 24, 28
            // or 30 depending on the OS.
            let family = if link_type == LT_LOOP {
                be32(frame, 0)?
            } else {
                u32_at(frame, 0, file_little)?
            };
            let proto = match family {
                2 => IPV4,
                10 | 24 | 28 | 30 => IPV6,
                _ => return None,
            };
            Some((proto, frame.get(4..)?))
        }
        _ => {
            // Raw IP: the version nibble decides.
            let proto = match frame.first()? >> 4 {
                4 => IPV4,
                6 => IPV6,
                _ => return None,
            };
            Some((proto, frame))
        }
    }
}

type Udp<'a> = (SocketAddr, SocketAddr, &'a [u8]);

fn udp_of(link_type: u32, file_little: bool, frame: &[u8]) -> Option<Udp<'_>> {
    let (proto, ip) = network_of(link_type, file_little, frame)?;
    let (src, dst, udp) = match proto {
        0x0800 => {
            let ihl = usize::from(ip.first()? & 0x0F) * 4;
            if ip.first()? >> 4 != 4 || ihl < 20 || *ip.get(9)? != 17 {
                return None;
            }
            // Fragments (MF set or non-zero offset) cannot be read as one datagram.
            if be16(ip, 6)? & 0x3FFF != 0 {
                return None;
            }
            let total = usize::from(be16(ip, 2)?);
            // Ethernet pads short frames; the IP total length says where the packet ends.
            let ip = ip.get(..total.min(ip.len()))?;
            let src: [u8; 4] = ip.get(12..16)?.try_into().ok()?;
            let dst: [u8; 4] = ip.get(16..20)?.try_into().ok()?;
            (
                IpAddr::V4(Ipv4Addr::from(src)),
                IpAddr::V4(Ipv4Addr::from(dst)),
                ip.get(ihl..)?,
            )
        }
        0x86DD => {
            if *ip.get(6)? != 17 {
                return None;
            }
            let len = usize::from(be16(ip, 4)?);
            let src: [u8; 16] = ip.get(8..24)?.try_into().ok()?;
            let dst: [u8; 16] = ip.get(24..40)?.try_into().ok()?;
            let body = ip.get(40..)?;
            (
                IpAddr::V6(Ipv6Addr::from(src)),
                IpAddr::V6(Ipv6Addr::from(dst)),
                body.get(..len.min(body.len()))?,
            )
        }
        _ => return None,
    };
    let sport = be16(udp, 0)?;
    let dport = be16(udp, 2)?;
    let ulen = usize::from(be16(udp, 4)?);
    if ulen < 8 {
        return None;
    }
    let payload = udp.get(8..ulen.min(udp.len()))?;
    Some((
        SocketAddr::new(src, sport),
        SocketAddr::new(dst, dport),
        payload,
    ))
}

/// Why a capture cannot be written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PcapWriteError {
    /// The underlying writer failed.
    #[error("writing the capture: {0}")]
    Io(#[from] std::io::Error),
    /// The datagram does not fit in one unfragmented IPv4 packet.
    #[error(
        "UDP payload of {len} bytes does not fit in one IPv4 packet (at most {MAX_UDP_PAYLOAD})"
    )]
    PayloadTooLarge {
        /// Payload length.
        len: usize,
    },
    /// The capture time does not fit the 32-bit seconds of a classic pcap record (past 2106).
    #[error("capture time {time:?} since the epoch does not fit a classic pcap record")]
    Time {
        /// The time asked for.
        time: Duration,
    },
}

/// Largest UDP payload of one IPv4 packet without options: 65 535 less the IPv4 and UDP headers.
pub const MAX_UDP_PAYLOAD: usize = 65_535 - IPV4_HEADER_LEN - UDP_HEADER_LEN;

const ETHERNET_HEADER_LEN: usize = 14;
const IPV4_HEADER_LEN: usize = 20;
const UDP_HEADER_LEN: usize = 8;
/// Snapshot length in the file header: every frame written is whole, so any value at least the
/// largest frame will do; this is tcpdump's default.
const SNAPLEN: u32 = 262_144;
/// Locally administered MAC addresses (bit 1 of the first octet): they name no real interface,
/// and sipp replaces the link layer anyway.
const SRC_MAC: [u8; 6] = [0x02, 0x00, 0x00, 0x00, 0x00, 0x01];
const DST_MAC: [u8; 6] = [0x02, 0x00, 0x00, 0x00, 0x00, 0x02];

/// Writes a classic pcap (microsecond timestamps, little-endian, LINKTYPE_ETHERNET) of
/// Ethernet/IPv4/UDP datagrams, each with correct lengths and IPv4 and UDP checksums so that
/// tshark shows them as good and sipp replays them unchanged but for addresses and ports.
///
/// Frames are not padded to Ethernet's 60-byte minimum: a capture taken on the sending host does
/// not show padding either, and readers go by the IPv4 total length.
#[derive(Debug)]
pub struct PcapWriter<W: Write> {
    out: W,
    /// IPv4 identification of the next packet (RFC 6864: unique per source while in flight;
    /// a counter is what stacks do).
    ip_id: u16,
}

impl<W: Write> PcapWriter<W> {
    /// Writes the file header to `out`. Wrap a file in a `BufWriter`: every record is several
    /// small writes.
    pub fn new(mut out: W) -> Result<Self, PcapWriteError> {
        let mut header = [0u8; 24];
        header[0..4].copy_from_slice(&0xA1B2_C3D4u32.to_le_bytes());
        header[4..6].copy_from_slice(&2u16.to_le_bytes());
        header[6..8].copy_from_slice(&4u16.to_le_bytes());
        // thiszone and sigfigs stay zero (pcap-savefile(5): always 0 in practice).
        header[16..20].copy_from_slice(&SNAPLEN.to_le_bytes());
        header[20..24].copy_from_slice(&LT_ETHERNET.to_le_bytes());
        out.write_all(&header)?;
        Ok(PcapWriter { out, ip_id: 0 })
    }

    /// Appends one UDP datagram captured at `time` (since the Unix epoch; sub-microsecond parts
    /// are dropped).
    pub fn write_udp(
        &mut self,
        time: Duration,
        src: SocketAddrV4,
        dst: SocketAddrV4,
        payload: &[u8],
    ) -> Result<(), PcapWriteError> {
        if payload.len() > MAX_UDP_PAYLOAD {
            return Err(PcapWriteError::PayloadTooLarge { len: payload.len() });
        }
        let secs = u32::try_from(time.as_secs()).map_err(|_| PcapWriteError::Time { time })?;
        let frame = udp_frame(src, dst, self.ip_id, payload);
        self.ip_id = self.ip_id.wrapping_add(1);
        let len = frame.len() as u32;
        let mut record = [0u8; 16];
        record[0..4].copy_from_slice(&secs.to_le_bytes());
        record[4..8].copy_from_slice(&time.subsec_micros().to_le_bytes());
        record[8..12].copy_from_slice(&len.to_le_bytes());
        record[12..16].copy_from_slice(&len.to_le_bytes());
        self.out.write_all(&record)?;
        self.out.write_all(&frame)?;
        Ok(())
    }

    /// Flushes and hands back the writer.
    pub fn finish(mut self) -> Result<W, PcapWriteError> {
        self.out.flush()?;
        Ok(self.out)
    }
}

/// A whole capture in memory: `datagrams` are (capture time since the epoch, UDP payload), all
/// from `src` to `dst`.
pub fn write_udp_capture<'a>(
    src: SocketAddrV4,
    dst: SocketAddrV4,
    datagrams: impl IntoIterator<Item = (Duration, &'a [u8])>,
) -> Result<Vec<u8>, PcapWriteError> {
    let mut w = PcapWriter::new(Vec::new())?;
    for (time, payload) in datagrams {
        w.write_udp(time, src, dst, payload)?;
    }
    w.finish()
}

/// One Ethernet frame carrying `payload` in IPv4/UDP; the caller has checked the length.
fn udp_frame(src: SocketAddrV4, dst: SocketAddrV4, ip_id: u16, payload: &[u8]) -> Vec<u8> {
    let udp_len = UDP_HEADER_LEN + payload.len();
    let ip_len = IPV4_HEADER_LEN + udp_len;
    let mut f = Vec::with_capacity(ETHERNET_HEADER_LEN + ip_len);
    f.extend_from_slice(&DST_MAC);
    f.extend_from_slice(&SRC_MAC);
    f.extend_from_slice(&0x0800u16.to_be_bytes());

    let ip_at = f.len();
    f.push(0x45); // version 4, 5 words of header (no options)
    f.push(0); // DSCP/ECN: best effort; sipp sends from a raw socket and keeps it
    f.extend_from_slice(&(ip_len as u16).to_be_bytes());
    f.extend_from_slice(&ip_id.to_be_bytes());
    f.extend_from_slice(&0x4000u16.to_be_bytes()); // DF, offset 0: never a fragment
    f.push(64); // TTL
    f.push(17); // UDP
    f.extend_from_slice(&[0, 0]); // checksum, filled in below
    f.extend_from_slice(&src.ip().octets());
    f.extend_from_slice(&dst.ip().octets());
    let ip_sum = internet_checksum(&[&f[ip_at..]]);
    f[ip_at + 10..ip_at + 12].copy_from_slice(&ip_sum.to_be_bytes());

    let udp_at = f.len();
    f.extend_from_slice(&src.port().to_be_bytes());
    f.extend_from_slice(&dst.port().to_be_bytes());
    f.extend_from_slice(&(udp_len as u16).to_be_bytes());
    f.extend_from_slice(&[0, 0]);
    f.extend_from_slice(payload);
    // RFC 768: the checksum covers a pseudo-header of addresses, protocol and UDP length.
    let mut pseudo = [0u8; 12];
    pseudo[0..4].copy_from_slice(&src.ip().octets());
    pseudo[4..8].copy_from_slice(&dst.ip().octets());
    pseudo[9] = 17;
    pseudo[10..12].copy_from_slice(&(udp_len as u16).to_be_bytes());
    let udp_sum = match internet_checksum(&[&pseudo, &f[udp_at..]]) {
        // A computed zero is sent as all ones: zero on the wire means "no checksum".
        0 => 0xFFFF,
        sum => sum,
    };
    f[udp_at + 6..udp_at + 8].copy_from_slice(&udp_sum.to_be_bytes());
    f
}

/// RFC 1071 Internet checksum over the concatenation of `parts` (each but the last of even
/// length, as here).
fn internet_checksum(parts: &[&[u8]]) -> u16 {
    let mut sum = 0u32;
    for part in parts {
        let mut words = part.chunks_exact(2);
        for w in &mut words {
            sum += u32::from(u16::from_be_bytes([w[0], w[1]]));
        }
        if let [last] = words.remainder() {
            sum += u32::from(*last) << 8;
        }
    }
    while sum > 0xFFFF {
        sum = (sum & 0xFFFF) + (sum >> 16);
    }
    !(sum as u16)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checksum_matches_a_worked_example() {
        // The IPv4 header example of Wikipedia's "Internet checksum" article.
        let header = [
            0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11, 0x00, 0x00, 0xc0, 0xa8,
            0x00, 0x01, 0xc0, 0xa8, 0x00, 0xc7,
        ];
        assert_eq!(internet_checksum(&[&header]), 0xB861);
    }

    #[test]
    fn odd_payload_is_padded_with_a_zero_octet() {
        assert_eq!(internet_checksum(&[&[0x12]]), !0x1200);
        assert_eq!(
            internet_checksum(&[&[0x12, 0x34], &[0x56]]),
            !(0x1234u16 + 0x5600)
        );
    }
}
