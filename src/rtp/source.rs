//! Which address a call's RTP is taken from ("strict RTP", as Asterisk's `strictrtp`).
//!
//! Anyone who can reach a call's RTP port could otherwise inject RFC 4733 keys or audio into
//! someone's login, or, with symmetric RTP, turn the prompts towards themselves. The filter
//! latches on one source and drops the rest:
//! - the address the caller's SDP named is taken at its first packet;
//! - another address (a phone behind NAT) only after [`LEARN_PACKETS`] packets in sequence
//!   from it, none from the signalled address having come first;
//! - a re-INVITE naming a new address starts learning again.

use std::net::SocketAddr;

/// Packets in sequence from an address the SDP did not name before it is believed.
pub const LEARN_PACKETS: u8 = 4;

/// Largest sequence step still taken as "in sequence" while learning (a few lost packets).
const MAX_STEP: u16 = 10;

/// Sources followed at once while learning: packets from others cannot push the caller's out.
const CANDIDATES: usize = 8;

/// Decides, packet by packet, whether a datagram comes from the caller.
#[derive(Debug, Clone)]
pub struct SourceFilter {
    signalled: SocketAddr,
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
    /// A filter for a call whose SDP named `signalled`.
    pub fn new(signalled: SocketAddr) -> SourceFilter {
        SourceFilter {
            signalled,
            state: State::Learning {
                candidates: Vec::new(),
            },
        }
    }

    /// The SDP moved the media (re-INVITE): learn again.
    pub fn resignal(&mut self, signalled: SocketAddr) {
        *self = SourceFilter::new(signalled);
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
            State::Learning { .. } if source == self.signalled => {
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

    #[test]
    fn the_signalled_address_is_taken_at_once_and_others_dropped() {
        let mut f = SourceFilter::new(addr("192.0.2.9:40000"));
        assert!(!f.accept(addr("203.0.113.1:5004"), 7));
        assert!(f.accept(addr("192.0.2.9:40000"), 100));
        assert_eq!(f.latched(), Some(addr("192.0.2.9:40000")));
        for seq in 8..20 {
            assert!(!f.accept(addr("203.0.113.1:5004"), seq));
        }
    }

    #[test]
    fn a_nat_address_is_learnt_from_packets_in_sequence() {
        let mut f = SourceFilter::new(addr("10.0.0.5:40000"));
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
        let mut f = SourceFilter::new(addr("10.0.0.5:40000"));
        let spoof = addr("203.0.113.1:5004");
        for seq in [5u16, 900, 17, 40_000, 3, 12_000, 60, 61, 500] {
            assert!(!f.accept(spoof, seq));
        }
        assert_eq!(f.latched(), None);
    }
}
