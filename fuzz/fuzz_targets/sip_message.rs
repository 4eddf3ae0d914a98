//! The SIP parser on arbitrary bytes: it never panics, a message it accepts survives its own
//! serialiser (what we send back is built from what we parsed), and a refusal it builds is a
//! response it can parse itself.
#![no_main]

use hotdesk_core::sip::message::{SipMessage, bad_request, parse};
use libfuzzer_sys::fuzz_target;

#[path = "sip_common.rs"]
mod sip_common;
use sip_common::sendable;

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
