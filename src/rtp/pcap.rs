//! Reading RTP out of packet captures: classic pcap (microsecond and nanosecond, either byte
//! order) and pcapng (section header, interface description with `if_tsresol`, enhanced and
//! simple packet blocks), over Ethernet (with 802.1Q/802.1ad tags), Linux cooked v1/v2, BSD
//! loopback and raw IP links, IPv4 (unfragmented) and IPv6 (no extension headers), UDP.
//!
//! Used by `hotdesk qa` for the `rtp` fixtures and by `hotdesk replay`. Pure: bytes in, packets
//! with capture times out; a capture is untrusted input and never makes this panic. A capture
//! whose last record was cut short (tcpdump killed mid-write) keeps the records before it and
//! says so in [`Capture::truncated`].

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use super::packet::{self, Packet};

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
        if len < 12 || len % 4 != 0 {
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
