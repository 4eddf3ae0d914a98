//! `sip::message` against real captures (sipp, baresip), hand-written phone-style INVITEs and
//! RFC 4475-style torture cases in `fixtures/sip/`, plus a never-panic property test.

use std::path::PathBuf;

use hotdesk_core::sip::message::{
    Method, ParseError, Request, Response, SipMessage, bad_request, parse, response_to,
};
use proptest::prelude::*;

fn fixture(name: &str) -> Vec<u8> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/sip")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn req(name: &str) -> Request {
    match parse(&fixture(name)) {
        Ok(SipMessage::Request(r)) => r,
        other => panic!("{name}: {other:?}"),
    }
}

fn resp(name: &str) -> Response {
    match parse(&fixture(name)) {
        Ok(SipMessage::Response(r)) => r,
        other => panic!("{name}: {other:?}"),
    }
}

fn err(name: &str) -> ParseError {
    match parse(&fixture(name)) {
        Err(e) => e,
        Ok(m) => panic!("{name} parsed: {m:?}"),
    }
}

#[test]
fn sipp_uac_invite() {
    let r = req("valid/sipp_uac_invite.txt");
    assert_eq!(r.method, Method::Invite);
    assert_eq!(r.request_user().as_deref(), Some("*88"));
    assert_eq!(r.caller_user().as_deref(), Some("5401"));
    assert_eq!(r.call_id(), Some("1-16193@127.0.0.1"));
    assert_eq!(r.branch().as_deref(), Some("z9hG4bK-16193-1-3"));
    assert_eq!(r.from_tag().as_deref(), Some("16193SIPpTag001"));
    assert_eq!(r.to_tag(), None);
    let via = r.top_via().unwrap();
    assert_eq!(via.sent_by, "127.0.0.1:15970");
    assert_eq!(via.rport, Some(None));
    assert_eq!(r.cseq().unwrap().seq, 1);
    // "Content-Length:   236" (sipp pads the value): the whole SDP and nothing more.
    assert_eq!(r.body.len(), 236);
    assert!(r.body.starts_with(b"v=0\r\n") && r.body.ends_with(b"a=sendrecv\r\n"));
    assert_eq!(r.headers.get("Content-Type"), Some("application/sdp"));
}

#[test]
fn baresip_invite() {
    let r = req("valid/baresip_invite.txt");
    assert_eq!(r.request_user().as_deref(), Some("*88"));
    assert_eq!(r.caller_user().as_deref(), Some("5401"));
    assert_eq!(r.cseq().unwrap().seq, 49360);
    assert_eq!(r.branch().as_deref(), Some("z9hG4bKbd6dd64a4beca0ee"));
    // baresip sends an empty "Supported:" header: legal, kept as empty.
    assert_eq!(r.headers.get("Supported"), Some(""));
    assert_eq!(r.body.len(), 337);
}

#[test]
fn sipp_uas_responses() {
    let trying = resp("valid/sipp_uas_100.txt");
    assert_eq!((trying.code, trying.reason.as_str()), (100, "Trying"));
    assert_eq!(trying.to_tag(), None);
    let ringing = resp("valid/sipp_uas_180.txt");
    assert_eq!(ringing.code, 180);
    assert_eq!(ringing.to_tag().as_deref(), Some("16332SIPpTag011"));
    let ok = resp("valid/sipp_uas_200.txt");
    assert_eq!(ok.code, 200);
    assert_eq!(ok.cseq().unwrap().method, Method::Invite);
    assert_eq!(ok.branch().as_deref(), Some("z9hG4bK-16193-1-3"));
    assert_eq!(ok.body.len(), 236);
}

#[test]
fn phone_style_invites() {
    let cisco = req("valid/cisco_invite.txt");
    assert_eq!(cisco.request_user().as_deref(), Some("*88"));
    assert_eq!(cisco.caller_user().as_deref(), Some("5401"));
    assert_eq!(cisco.from().unwrap().display.as_deref(), Some("Desk 5401"));
    assert_eq!(cisco.cseq().unwrap().seq, 101);

    let polycom = req("valid/polycom_invite.txt");
    assert_eq!(
        polycom.request_user().as_deref(),
        Some("*88"),
        "%2A88 decoded"
    );
    assert_eq!(polycom.caller_user().as_deref(), Some("5402"));

    let yealink = req("valid/yealink_invite.txt");
    assert_eq!(yealink.caller_user().as_deref(), Some("5403"));
    assert_eq!(yealink.from_tag().as_deref(), Some("2058911402"));

    // Asterisk puts a trunk identity in From's display and the caller in P-Asserted-Identity.
    let asterisk = req("valid/asterisk_invite.txt");
    assert_eq!(asterisk.caller_user().as_deref(), Some("5404"));
    assert_eq!(asterisk.headers.get("Session-Expires"), Some("1800"));
    assert!(asterisk.branch().unwrap().starts_with("z9hG4bKPj"));
}

#[test]
fn compact_headers_are_normalised() {
    let r = req("valid/compact_invite.txt");
    assert_eq!(r.call_id(), Some("compact-call-1@127.0.0.1"));
    assert_eq!(r.branch().as_deref(), Some("z9hG4bKcompact1"));
    assert_eq!(r.from_tag().as_deref(), Some("c1"));
    assert_eq!(r.to().unwrap().uri, "sip:*88@127.0.0.1");
    assert_eq!(r.headers.get("Contact"), Some("<sip:5405@127.0.0.1:5099>"));
    assert_eq!(r.headers.get("Supported"), Some("replaces"));
    assert_eq!(r.headers.get("Content-Type"), Some("application/sdp"));
    assert!(r.body.starts_with(b"v=0"));
    // Re-serialised with full names.
    let wire = String::from_utf8(r.to_bytes().to_vec()).unwrap();
    assert!(
        wire.contains("\r\nCall-ID: compact-call-1@127.0.0.1\r\n"),
        "{wire}"
    );
    assert!(wire.contains("\r\nVia: SIP/2.0/UDP"), "{wire}");
}

#[test]
fn torture_valid_cases() {
    let multi = req("valid/multiple_via.txt");
    let vias = multi.vias();
    assert_eq!(vias.len(), 3, "two lines, the second with a comma list");
    assert_eq!(vias[0].branch.as_deref(), Some("z9hG4bKproxy2"));
    assert_eq!(vias[0].received.as_deref(), Some("10.0.0.1"));
    assert_eq!(vias[2].transport, "TCP");
    assert_eq!(vias[2].sent_by, "192.0.2.4:5061");
    let resp = response_to(&multi, 200, "OK");
    assert_eq!(resp.vias(), vias, "every Via copied in order");

    let esc = req("valid/escaped_ruri.txt");
    assert_eq!(esc.request_user().as_deref(), Some("*88"));
    assert_eq!(esc.caller_user().as_deref(), Some("5401"));

    let folded = req("valid/folded_header.txt");
    assert_eq!(
        folded.headers.get("Subject"),
        Some("I know you're there, pick up the phone and talk to me!")
    );
    assert_eq!(
        folded.from_tag().as_deref(),
        Some("fold1"),
        "tag on a folded line"
    );
    assert_eq!(folded.call_id(), Some("folded-1@10.0.0.53"));
    assert_eq!(
        folded.branch().as_deref(),
        Some("z9hG4bKfold1"),
        "space before colon"
    );

    let unknown = req("valid/unknown_method.txt");
    assert_eq!(unknown.method, Method::Extension("NEWMETHOD".into()));

    let extra = req("valid/extra_bytes.txt");
    assert_eq!(
        &extra.body[..],
        b"hello",
        "bytes past Content-Length dropped"
    );

    assert_eq!(
        parse(&fixture("valid/keepalive.txt")),
        Ok(SipMessage::KeepAlive)
    );
    assert_eq!(parse(b"\r\n"), Ok(SipMessage::KeepAlive));
}

#[test]
fn torture_invalid_cases() {
    assert_eq!(
        err("invalid/missing_call_id.txt"),
        ParseError::MissingHeader { header: "Call-ID" }
    );
    assert_eq!(
        err("invalid/missing_call_id.txt").to_string(),
        "missing Call-ID"
    );
    assert!(matches!(
        err("invalid/bad_cseq.txt"),
        ParseError::BadHeader { header: "CSeq", .. }
    ));
    assert_eq!(
        err("invalid/bad_cseq.txt").to_string(),
        "bad CSeq \"-1 INVITE\""
    );
    assert_eq!(
        err("invalid/cseq_method_mismatch.txt"),
        ParseError::CSeqMethodMismatch {
            cseq: "BYE".into(),
            method: "INVITE".into()
        }
    );
    let cl = err("invalid/content_length_exceeds_body.txt");
    assert!(
        matches!(cl, ParseError::ContentLengthExceedsBody { declared: 300, actual } if actual < 300),
        "{cl:?}"
    );
    assert!(
        cl.to_string()
            .starts_with("Content-Length 300 exceeds body ")
    );
    assert_eq!(
        err("invalid/missing_max_forwards.txt"),
        ParseError::MissingHeader {
            header: "Max-Forwards"
        }
    );
    assert_eq!(
        err("invalid/missing_via.txt"),
        ParseError::MissingHeader { header: "Via" }
    );
    assert!(matches!(
        err("invalid/bad_version.txt"),
        ParseError::BadVersion { .. }
    ));
    assert!(matches!(
        err("invalid/bad_request_uri.txt"),
        ParseError::BadRequestUri { .. }
    ));
    assert_eq!(parse(b""), Err(ParseError::Empty));
}

#[test]
fn bad_request_carries_the_reason() {
    let data = fixture("invalid/missing_max_forwards.txt");
    let e = parse(&data).unwrap_err();
    let r = bad_request(&data, &e, "hotdesk").expect("addressable");
    assert_eq!(r.code, 400);
    assert_eq!(r.reason, "Bad Request (missing Max-Forwards)");
    assert_eq!(
        r.headers.get("Warning"),
        Some("399 hotdesk \"missing Max-Forwards\"")
    );
    assert_eq!(r.call_id(), Some("nomf@10.0.0.53"));
    // The 400 itself parses.
    assert!(matches!(parse(&r.to_bytes()), Ok(SipMessage::Response(_))));
    // Without a Call-ID there is nothing to address the answer with.
    let data = fixture("invalid/missing_call_id.txt");
    assert!(bad_request(&data, &parse(&data).unwrap_err(), "hotdesk").is_none());
}

#[test]
fn response_to_follows_8_2_6() {
    let invite = req("valid/sipp_uac_invite.txt");
    let ok = response_to(&invite, 200, "OK").with_to_tag("srv1");
    let wire = ok.to_bytes();
    let SipMessage::Response(back) = parse(&wire).unwrap() else {
        panic!()
    };
    assert_eq!(back.code, 200);
    assert_eq!(back.call_id(), invite.call_id());
    assert_eq!(back.cseq(), invite.cseq());
    assert_eq!(back.from(), invite.from());
    assert_eq!(back.to_tag().as_deref(), Some("srv1"));
    assert_eq!(back.vias(), invite.vias());
    assert_eq!(back.headers.get("Content-Length"), Some("0"));
}

#[test]
fn every_valid_fixture_round_trips() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures/sip/valid");
    let mut n = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let data = std::fs::read(&path).unwrap();
        let first = parse(&data).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let wire = match &first {
            SipMessage::Request(r) => r.to_bytes(),
            SipMessage::Response(r) => r.to_bytes(),
            SipMessage::KeepAlive => continue,
        };
        assert_eq!(parse(&wire).as_ref(), Ok(&first), "{}", path.display());
        n += 1;
    }
    assert!(n >= 14, "only {n} fixtures");
}

fn seeds() -> Vec<Vec<u8>> {
    [
        "valid/sipp_uac_invite.txt",
        "valid/baresip_invite.txt",
        "valid/sipp_uas_200.txt",
        "valid/compact_invite.txt",
        "valid/folded_header.txt",
        "valid/multiple_via.txt",
        "invalid/content_length_exceeds_body.txt",
    ]
    .iter()
    .map(|n| fixture(n))
    .collect()
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 2000,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn arbitrary_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..2048)) {
        let _ = parse(&data);
    }

    #[test]
    fn mutated_messages_never_panic(
        seed in 0usize..7,
        edits in proptest::collection::vec((any::<usize>(), any::<u8>(), 0u8..4), 1..12),
        cut in any::<usize>(),
    ) {
        let mut data = seeds()[seed].clone();
        for (pos, byte, op) in edits {
            let pos = pos % (data.len() + 1);
            match op {
                0 if pos < data.len() => data[pos] = byte,
                1 => data.insert(pos, byte),
                2 if pos < data.len() => { data.remove(pos); }
                _ => {
                    const SPECIAL: &[u8] = b":;,<>\"%\r\n ";
                    data.insert(pos, SPECIAL[byte as usize % SPECIAL.len()]);
                }
            }
        }
        data.truncate(cut % (data.len() + 1) + data.len() / 2);
        if let Ok(m) = parse(&data) {
            // Whatever parses must serialise to something that parses to the same thing.
            let wire = match &m {
                SipMessage::Request(r) => {
                    // The responses we would build for it must parse too.
                    let answer = response_to(r, 400, "Bad Request").with_to_tag("t");
                    prop_assert!(matches!(parse(&answer.to_bytes()), Ok(SipMessage::Response(_))));
                    r.to_bytes()
                }
                SipMessage::Response(r) => r.to_bytes(),
                SipMessage::KeepAlive => return Ok(()),
            };
            // Serialising adds Content-Length, so compare from the first serialisation on.
            let again = match parse(&wire) {
                Ok(SipMessage::Request(r)) => r.to_bytes(),
                Ok(SipMessage::Response(r)) => r.to_bytes(),
                other => return Err(TestCaseError::fail(format!("{other:?}"))),
            };
            prop_assert_eq!(again, wire);
        } else if let Err(e) = parse(&data) {
            let _ = bad_request(&data, &e, "hotdesk");
            prop_assert!(!e.to_string().contains(['\r', '\n']));
        }
    }
}

/// Found by the `sip_message` fuzzer: the 400 to a `SIP/7.0` request put the error's own
/// quotes inside the Warning's quoted-string (`"unsupported version "SIP/7.0""`).
#[test]
fn refusal_warning_is_one_quoted_string() {
    let datagram = b"INVITE sip:*88@10.0.0.20 SIP/7.0\r\n\
        Via: SIP/7.0/UDP 10.0.0.53:5060;branch=z9hG4bKver\r\n\
        From: <sip:5401@10.0.0.20>;tag=v1\r\nTo: <sip:*88@10.0.0.20>\r\n\
        Call-ID: badversion@10.0.0.53\r\nCSeq: 1 INVITE\r\nMax-Forwards: 70\r\n\
        Content-Length: 0\r\n\r\n";
    let error = parse(datagram).unwrap_err();
    let answer = bad_request(datagram, &error, "hotdesk").expect("an answer");
    let warning = answer.headers.get("Warning").expect("a Warning");
    let text = warning
        .strip_prefix("399 hotdesk \"")
        .and_then(|t| t.strip_suffix('"'))
        .expect("399 agent \"text\"");
    // Inside a quoted-string every quote is escaped.
    let bare_quote = text
        .char_indices()
        .any(|(i, c)| c == '"' && !text[..i].ends_with('\\'));
    assert!(!bare_quote, "{warning}");
    assert!(text.contains(r#"\"SIP/7.0\""#), "{warning}");
}

/// Found by the `sip_message` fuzzer: a request with two different Call-IDs (and Froms, Tos,
/// CSeqs) got a 400 that echoed both of each, which no parser (ours included) accepts.
#[test]
fn refusal_of_duplicated_headers_is_well_formed() {
    let datagram = b"INVITE sip:*88@10.0.0.20 SIP/2.0\r\n\
        Via: SIP/2.0/UDP 10.0.0.53:5062;branch=z9hG4bK1;rport\r\n\
        Via: SIP/2.0/UDP 10.0.0.53:5060;branch=z9hG4bK2\r\n\
        From: <sip:5403@10.0.0.10>;tag=a\r\nFrom: <sip:5401@10.0.0.20>;tag=b\r\n\
        To: <sip:*88@10.0.0.10>\r\nTo: <sip:*89@10.0.0.20>\r\n\
        Call-ID: one@10.0.0.53\r\nCall-ID: two@10.0.0.53\r\n\
        CSeq: 2 INVITE\r\nCSeq: 3 INVITE\r\nContent-Length: 0\r\n\r\n";
    let error = parse(datagram).unwrap_err();
    let answer = bad_request(datagram, &error, "hotdesk").expect("an answer");
    let again = match parse(&answer.to_bytes()) {
        Ok(SipMessage::Response(r)) => r,
        other => panic!("our 400 does not parse: {other:?}"),
    };
    assert_eq!(again.code, 400);
    assert_eq!(again.call_id(), Some("one@10.0.0.53"));
    assert_eq!(again.headers.get_all("Via").count(), 2);
    assert_eq!(again.cseq().unwrap().seq, 2);
}

/// Found by the `sip_message` fuzzer: a request whose Via is empty got a 400 with an empty
/// Via, which says nowhere to send it; such a request is dropped, as one without a Via is.
#[test]
fn request_with_an_empty_via_is_dropped() {
    let datagram = b"INVITE_ sip:*88@10.0.0.20 SIP/2.0\r\nVia: \r\n\
        From: <sip:5401@10.0.0.20>;tag=a\r\nTo: <sip:*88@10.0.0.20>\r\n\
        Call-ID: c@10.0.0.53\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n";
    let error = parse(datagram).unwrap_err();
    assert!(bad_request(datagram, &error, "hotdesk").is_none());
    // The same with a Via of commas only (found later by the `sip_endpoint` fuzzer).
    let commas = String::from_utf8_lossy(datagram).replace("Via: \r\n", "Via: , ,\r\n");
    let error = parse(commas.as_bytes()).unwrap_err();
    assert!(bad_request(commas.as_bytes(), &error, "hotdesk").is_none());
    let with_via = String::from_utf8_lossy(datagram).replace(
        "Via: \r\n",
        "Via: SIP/2.0/UDP 10.0.0.53;branch=z9hG4bKx\r\nVia: \r\n",
    );
    let error = parse(with_via.as_bytes()).unwrap_err();
    let answer = bad_request(with_via.as_bytes(), &error, "hotdesk").expect("an answer");
    assert!(matches!(
        parse(&answer.to_bytes()),
        Ok(SipMessage::Response(_))
    ));
}
