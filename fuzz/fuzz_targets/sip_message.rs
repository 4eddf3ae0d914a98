//! The SIP parser on arbitrary bytes: it never panics, a message it accepts survives its own
//! serialiser (what we send back is built from what we parsed), and a refusal it builds is a
//! response it can parse itself.
#![no_main]

use hotdesk::sip::message::{ParseError, SipMessage, bad_request, parse};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    match parse(data) {
        Ok(SipMessage::Request(request)) => {
            let again = parse(&request.to_bytes());
            assert!(again.is_ok(), "re-parse of a serialised request: {again:?}");
        }
        Ok(SipMessage::Response(response)) => {
            let again = parse(&response.to_bytes());
            assert!(
                again.is_ok(),
                "re-parse of a serialised response: {again:?}"
            );
        }
        Ok(_) => {}
        Err(error) => {
            if let Some(answer) = bad_request(data, &error, "hotdesk-fuzz") {
                let bytes = answer.to_bytes();
                assert!(
                    sendable(&bytes),
                    "our 400 does not parse: {:?}",
                    String::from_utf8_lossy(&bytes)
                );
            }
        }
    }
});

/// What we send must parse, except that a refusal copies the request's Via, From, To,
/// Call-ID and CSeq as RFC 3261 §8.2.6.2 requires, and one of those may be the very header
/// that was malformed.
fn sendable(bytes: &[u8]) -> bool {
    const COPIED: [&str; 5] = ["Via", "From", "To", "Call-ID", "CSeq"];
    match parse(bytes) {
        Ok(SipMessage::Request(_) | SipMessage::Response(_)) => true,
        Err(ParseError::BadHeader { header, .. }) => {
            bytes.starts_with(b"SIP/2.0 ") && COPIED.contains(&header)
        }
        _ => false,
    }
}
