//! What the SIP fuzz targets share.

use hotdesk_core::sip::message::{ParseError, SipMessage, parse};

/// What we send must parse, except that a refusal copies the request's Via, From, To,
/// Call-ID and CSeq as RFC 3261 §8.2.6.2 requires, and one of those may be the very header
/// that was malformed.
pub fn sendable(bytes: &[u8]) -> bool {
    const COPIED: [&str; 5] = ["Via", "From", "To", "Call-ID", "CSeq"];
    match parse(bytes) {
        Ok(SipMessage::Request(_) | SipMessage::Response(_)) => true,
        Err(ParseError::BadHeader { header, .. }) => {
            bytes.starts_with(b"SIP/2.0 ") && COPIED.contains(&header)
        }
        _ => false,
    }
}
