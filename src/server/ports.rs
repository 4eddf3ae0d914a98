//! The RTP port pool (`rtp.port_range`): each call binds the next free even port.

use std::net::{IpAddr, SocketAddr};
use std::ops::RangeInclusive;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Hands out even ports of a range round-robin. A port is free again when the call's socket is
/// dropped; a port some other program holds is skipped.
#[derive(Debug)]
pub struct RtpPorts {
    first: u16,
    /// Even ports in the range.
    count: usize,
    next: AtomicUsize,
}

impl RtpPorts {
    /// The even ports of `range` (RTP on even ports, RFC 3550 §11; the odd one is RTCP's).
    pub fn new(range: RangeInclusive<u16>) -> RtpPorts {
        let first = range.start() + range.start() % 2;
        let count = if first > *range.end() {
            0
        } else {
            usize::from((range.end() - first) / 2 + 1)
        };
        RtpPorts {
            first,
            count,
            next: AtomicUsize::new(0),
        }
    }

    /// Binds a UDP socket on `ip` at the next even port that is free.
    pub fn bind(&self, ip: IpAddr) -> std::io::Result<std::net::UdpSocket> {
        for _ in 0..self.count {
            let n = self.next.fetch_add(1, Ordering::Relaxed) % self.count;
            // n < count ≤ 32768, so the port stays inside the range.
            let port = self.first + (n as u16) * 2;
            match std::net::UdpSocket::bind(SocketAddr::new(ip, port)) {
                Ok(socket) => return Ok(socket),
                Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => continue,
                Err(e) => return Err(e),
            }
        }
        Err(std::io::Error::new(
            std::io::ErrorKind::AddrInUse,
            "every port of rtp.port_range is in use",
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    #[test]
    fn even_ports_round_robin_skipping_busy_ones() {
        let pool = RtpPorts::new(41001..=41006);
        let ip = IpAddr::V4(Ipv4Addr::LOCALHOST);
        let a = pool.bind(ip).unwrap();
        let b = pool.bind(ip).unwrap();
        let c = pool.bind(ip).unwrap();
        let ports: Vec<u16> = [&a, &b, &c]
            .iter()
            .map(|s| s.local_addr().unwrap().port())
            .collect();
        assert_eq!(ports, vec![41002, 41004, 41006]);
        // All three taken: the pool says so instead of reusing one.
        assert_eq!(
            pool.bind(ip).unwrap_err().kind(),
            std::io::ErrorKind::AddrInUse
        );
        drop(b);
        assert_eq!(pool.bind(ip).unwrap().local_addr().unwrap().port(), 41004);
    }
}
