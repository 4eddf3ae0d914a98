//! Which address a call's RTP is taken from ("strict RTP", as Asterisk's `strictrtp`), and
//! which addresses may be a call's media address at all.
//!
//! Anyone who can reach a call's RTP port could otherwise inject RFC 4733 keys or audio into
//! someone's login, or, with symmetric RTP, turn the prompts towards themselves. The filter
//! latches on one source and drops the rest:
//! - the address the caller's SDP named is taken at its first packet;
//! - another address (a phone behind NAT) only after [`LEARN_PACKETS`] packets in sequence
//!   from it, none from the signalled address having come first;
//! - a re-INVITE naming a new address starts learning again.
//!
//! [`MediaScope`] says which hosts may be a call's media address: the host the INVITE came
//! from, and the networks an operator lists (`rtp.media_sources`). An SDP naming any other
//! host is not believed (an outside test aimed a call's prompts at a third party with one
//! 534-byte INVITE: 600× amplification), and RTP from such a host is never learnt.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use ipnet::IpNet;

/// The hosts a call's media may come from and go to.
#[derive(Debug, Clone)]
pub struct MediaScope {
    signalling: IpAddr,
    networks: Arc<[IpNet]>,
}

impl MediaScope {
    /// The signalling peer `signalling`, and `networks` besides it.
    pub fn new(signalling: IpAddr, networks: Arc<[IpNet]>) -> MediaScope {
        MediaScope {
            signalling: signalling.to_canonical(),
            networks,
        }
    }

    /// Any host at all (tests and offline tools, where nothing is sent anywhere).
    pub fn anywhere() -> MediaScope {
        MediaScope::new(
            IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED),
            Arc::from(vec![
                "0.0.0.0/0".parse().expect("literal"),
                "::/0".parse().expect("literal"),
            ]),
        )
    }

    /// Whether `ip` may be the call's media host.
    pub fn allows(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        ip == self.signalling || self.networks.iter().any(|n| n.contains(&ip))
    }
}

/// Packets in sequence from an address the SDP did not name before it is believed.
pub const LEARN_PACKETS: u8 = 4;

/// Largest sequence step still taken as "in sequence" while learning (a few lost packets).
const MAX_STEP: u16 = 10;

/// Sources followed at once while learning: packets from others cannot push the caller's out.
const CANDIDATES: usize = 8;

/// Decides, packet by packet, whether a datagram comes from the caller.
#[derive(Debug, Clone)]
pub struct SourceFilter {
    /// The SDP's address, when the scope allows it.
    signalled: Option<SocketAddr>,
    scope: MediaScope,
    state: State,
}

#[derive(Debug, Clone)]
enum State {
    Learning {
        /// Sources seen so far: the sequence number each sent last and how many in a row,
        /// most recently heard last.
        candidates: Vec<(SocketAddr, u16, u8)>,
    },
    Latched(SocketAddr),
}

impl SourceFilter {
    /// A filter for a call whose SDP named `signalled`, taking media only from `scope`.
    pub fn new(signalled: SocketAddr, scope: MediaScope) -> SourceFilter {
        SourceFilter {
            signalled: scope.allows(signalled.ip()).then_some(signalled),
            scope,
            state: State::Learning {
                candidates: Vec::new(),
            },
        }
    }

    /// The SDP's address, if the scope allows sending there before the caller's RTP has come.
    pub fn signalled(&self) -> Option<SocketAddr> {
        self.signalled
    }

    /// Whether the scope allows `addr` as the call's media address.
    pub fn allows(&self, addr: SocketAddr) -> bool {
        self.scope.allows(addr.ip())
    }

    /// The SDP moved the media (re-INVITE): learn again.
    pub fn resignal(&mut self, signalled: SocketAddr) {
        *self = SourceFilter::new(signalled, self.scope.clone());
    }

    /// The source latched on, if any.
    pub fn latched(&self) -> Option<SocketAddr> {
        match self.state {
            State::Latched(a) => Some(a),
            State::Learning { .. } => None,
        }
    }

    /// Whether an RTP packet with sequence number `seq` from `source` belongs to the call.
    pub fn accept(&mut self, source: SocketAddr, seq: u16) -> bool {
        match &mut self.state {
            State::Latched(a) => *a == source,
            _ if !self.scope.allows(source.ip()) => false,
            State::Learning { .. } if Some(source) == self.signalled => {
                self.state = State::Latched(source);
                true
            }
            State::Learning { candidates } => {
                let known = candidates.iter().position(|c| c.0 == source);
                let count = match known.map(|i| candidates.remove(i)) {
                    Some((_, last, n)) if (1..=MAX_STEP).contains(&seq.wrapping_sub(last)) => n + 1,
                    _ => 1,
                };
                if count >= LEARN_PACKETS {
                    self.state = State::Latched(source);
                    return true;
                }
                if candidates.len() == CANDIDATES {
                    candidates.remove(0);
                }
                candidates.push((source, seq, count));
                false
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    fn filter(signalled: &str) -> SourceFilter {
        SourceFilter::new(addr(signalled), MediaScope::anywhere())
    }

    #[test]
    fn the_signalled_address_is_taken_at_once_and_others_dropped() {
        let mut f = filter("192.0.2.9:40000");
        assert!(!f.accept(addr("203.0.113.1:5004"), 7));
        assert!(f.accept(addr("192.0.2.9:40000"), 100));
        assert_eq!(f.latched(), Some(addr("192.0.2.9:40000")));
        for seq in 8..20 {
            assert!(!f.accept(addr("203.0.113.1:5004"), seq));
        }
    }

    #[test]
    fn a_nat_address_is_learnt_from_packets_in_sequence() {
        let mut f = filter("10.0.0.5:40000");
        let nat = addr("198.51.100.7:61000");
        let spoof = addr("203.0.113.1:5004");
        assert!(!f.accept(nat, 65534));
        // Packets from elsewhere in between do not reset the count.
        assert!(!f.accept(spoof, 3));
        assert!(!f.accept(nat, 65535));
        assert!(!f.accept(nat, 1)); // one lost, across the wrap
        assert!(f.accept(nat, 2));
        assert_eq!(f.latched(), Some(nat));
        assert!(!f.accept(spoof, 3));
        f.resignal(addr("10.0.0.5:40002"));
        assert!(f.accept(addr("10.0.0.5:40002"), 9));
    }

    #[test]
    fn random_sequence_numbers_never_latch() {
        let mut f = filter("10.0.0.5:40000");
        let spoof = addr("203.0.113.1:5004");
        for seq in [5u16, 900, 17, 40_000, 3, 12_000, 60, 61, 500] {
            assert!(!f.accept(spoof, seq));
        }
        assert_eq!(f.latched(), None);
    }

    #[test]
    fn media_outside_the_scope_is_neither_believed_nor_learnt() {
        let proxy: IpAddr = "198.51.100.1".parse().unwrap();
        let scope = MediaScope::new(proxy, Arc::from(vec!["10.0.0.0/8".parse().unwrap()]));
        // The SDP names a third party: nothing is sent there, and its packets are dropped.
        let mut f = SourceFilter::new(addr("203.0.113.9:4000"), scope.clone());
        assert_eq!(f.signalled(), None);
        for seq in 1..10 {
            assert!(!f.accept(addr("203.0.113.9:4000"), seq));
        }
        // The signalling host (a phone behind NAT) is learnt from its packets in sequence.
        for seq in 1..LEARN_PACKETS as u16 {
            assert!(!f.accept(addr("198.51.100.1:61000"), seq));
        }
        assert!(f.accept(addr("198.51.100.1:61000"), LEARN_PACKETS as u16));
        // A listed network may be named, also as an IPv4-mapped address.
        let f = SourceFilter::new(addr("[::ffff:10.1.2.3]:4000"), scope);
        assert_eq!(f.signalled(), Some(addr("[::ffff:10.1.2.3]:4000")));
    }
}
