//! The callback call's INVITE client (`hotdesk_core::sip::uac::Outbound`) on virtual time: answer,
//! busy, failures, digest challenges (RFC 3261 §22 with the RFC 2617 / RFC 7616 examples),
//! the ring timeout's CANCEL and the §9.1 rules around it, and timer B. Every response the
//! phone side sends goes through the real serialiser and parser first, and the flows that
//! involve the transaction layer run through the real `TransactionLayer`.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use hotdesk_core::sip::dialog::DialogState;
use hotdesk_core::sip::message::{self, Method, Request, Response, SipMessage, response_to};
use hotdesk_core::sip::sdp::{self, Codec, TelephoneEvent};
use hotdesk_core::sip::transaction::{
    ResponseMatch, Timers, TransactionEvent, TransactionKey, TransactionLayer,
};
use hotdesk_core::sip::uac::{
    AuthError, Credentials, Outbound, OutboundEvent, OutboundSettings, SettingsError, authorization,
};
use rand::SeedableRng;

const PROXY: &str = "192.0.2.1:5060";
const TARGET: &str = "sip:5401@pbx.example.com";
const PHONE_CONTACT: &str = "sip:5401@192.0.2.50:5062";
const RING: Duration = Duration::from_secs(30);
const T1: Duration = Duration::from_millis(500);

/// The phone answers with PCMA only (we prefer PCMU, so negotiation must follow the answer)
/// and telephone-event at 101.
const ANSWER_SDP: &str = "v=0\r\no=phone 1 1 IN IP4 192.0.2.50\r\ns=-\r\nc=IN IP4 192.0.2.50\r\n\
t=0 0\r\nm=audio 30000 RTP/AVP 8 101\r\na=rtpmap:8 PCMA/8000\r\n\
a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-16\r\na=ptime:20\r\na=sendrecv\r\n";

fn proxy() -> SocketAddr {
    PROXY.parse().unwrap()
}

fn creds() -> Credentials {
    Credentials {
        user: "hotdesk".into(),
        password: "s3cret".into(),
    }
}

fn settings(credentials: Option<Credentials>) -> OutboundSettings {
    OutboundSettings {
        target_uri: TARGET.into(),
        from_uri: "sip:hotdesk@pbx.example.com".into(),
        contact: "sip:hotdesk@192.0.2.10:5060".into(),
        sent_by: "192.0.2.10:5060".into(),
        proxy: proxy(),
        credentials,
        ring_timeout: RING,
        codecs: vec![Codec::Pcmu, Codec::Pcma],
        event_payload_type: 101,
        local_rtp: "192.0.2.10:20000".parse().unwrap(),
        agent: "hotdesk-test".into(),
        call_id: Some("cb-1@hotdesk".into()),
        t1: T1,
    }
}

/// Starts a call; returns it and its first INVITE (checked to go to the proxy).
fn start(t0: Instant, credentials: Option<Credentials>) -> (Outbound, Request) {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
    let mut out = Outbound::start(t0, settings(credentials), &mut rng).unwrap();
    let invite = next_request(&mut out);
    assert!(out.poll_request().is_none());
    (out, invite)
}

fn next_request(out: &mut Outbound) -> Request {
    let (to, request) = out.poll_request().expect("a request");
    assert_eq!(to, proxy());
    // What we hand the transaction layer must survive the wire.
    reparse_request(&request.to_bytes())
}

fn reparse_request(bytes: &[u8]) -> Request {
    match message::parse(bytes).unwrap() {
        SipMessage::Request(r) => r,
        other => panic!("not a request: {other:?}"),
    }
}

fn wire(response: Response) -> Response {
    match message::parse(&response.to_bytes()).unwrap() {
        SipMessage::Response(r) => r,
        other => panic!("not a response: {other:?}"),
    }
}

/// The phone's (or PBX's) response to `request`: To tag for everything but 100, Contact on
/// 1xx/2xx to INVITE, the SDP answer on 2xx to INVITE.
fn reply(request: &Request, code: u16, reason: &str, tag: &str) -> Response {
    let mut r = response_to(request, code, reason);
    if code != 100 {
        r = r.with_to_tag(tag);
    }
    if request.method == Method::Invite && (101..300).contains(&code) {
        r = r.with_header("Contact", &format!("<{PHONE_CONTACT}>"));
    }
    if request.method == Method::Invite && (200..300).contains(&code) {
        r = r.with_body("application/sdp", Bytes::from_static(ANSWER_SDP.as_bytes()));
    }
    wire(r)
}

fn events(out: &mut Outbound) -> Vec<OutboundEvent> {
    std::iter::from_fn(|| out.poll_event()).collect()
}

fn raw_acks(out: &mut Outbound) -> Vec<Bytes> {
    std::iter::from_fn(|| out.poll_raw())
        .map(|(to, bytes)| {
            assert_eq!(to, proxy());
            bytes
        })
        .collect()
}

fn param<'a>(header: &'a str, name: &str) -> Option<&'a str> {
    header.split(", ").find_map(|p| {
        let (k, v) = p.trim_start_matches("Digest ").split_once('=')?;
        (k == name).then(|| v.trim_matches('"'))
    })
}

#[test]
fn the_invite_offers_our_codecs_to_the_target() {
    let t0 = Instant::now();
    let (out, invite) = start(t0, None);
    assert_eq!(invite.method, Method::Invite);
    assert_eq!(invite.uri, TARGET);
    assert_eq!(invite.headers.get("To"), Some("<sip:5401@pbx.example.com>"));
    let from = invite.from().unwrap();
    assert_eq!(from.uri, "sip:hotdesk@pbx.example.com");
    assert_eq!(from.tag.as_ref().map(String::len), Some(16));
    assert_eq!(invite.call_id(), Some("cb-1@hotdesk"));
    assert_eq!(out.call_id(), "cb-1@hotdesk");
    assert_eq!(invite.headers.get("CSeq"), Some("1 INVITE"));
    assert_eq!(invite.headers.get("Max-Forwards"), Some("70"));
    assert_eq!(
        invite.headers.get("Contact"),
        Some("<sip:hotdesk@192.0.2.10:5060>")
    );
    assert_eq!(invite.headers.get("User-Agent"), Some("hotdesk-test"));
    let via = invite.top_via().unwrap();
    assert_eq!(via.sent_by, "192.0.2.10:5060");
    assert!(via.branch.unwrap().starts_with("z9hG4bK"));
    assert_eq!(invite.headers.get("Content-Type"), Some("application/sdp"));
    assert!(invite.headers.get("Authorization").is_none());
    let offer = sdp::parse(std::str::from_utf8(&invite.body).unwrap()).unwrap();
    assert_eq!(offer.audio.remote, "192.0.2.10:20000".parse().unwrap());
    let pts: Vec<u8> = offer.audio.formats.iter().map(|f| f.payload_type).collect();
    assert_eq!(pts, [0, 8, 101]);
    assert_eq!(out.poll_timeout(), Some(t0 + RING));
}

#[test]
fn ringing_then_200_is_acked_and_answered() {
    let t0 = Instant::now();
    let (mut out, invite) = start(t0, None);
    out.handle_response(
        t0 + Duration::from_millis(40),
        &reply(&invite, 100, "Trying", ""),
    );
    out.handle_response(
        t0 + Duration::from_secs(1),
        &reply(&invite, 180, "Ringing", "ph1"),
    );
    assert_eq!(
        events(&mut out),
        [OutboundEvent::Trying, OutboundEvent::Ringing { code: 180 }]
    );
    assert!(raw_acks(&mut out).is_empty());

    let ok = reply(&invite, 200, "OK", "ph1");
    out.handle_response(t0 + Duration::from_secs(5), &ok);
    let acks = raw_acks(&mut out);
    assert_eq!(acks.len(), 1);
    let ack = reparse_request(&acks[0]);
    assert_eq!(ack.method, Method::Ack);
    assert_eq!(ack.uri, PHONE_CONTACT, "ACK goes to the remote target");
    assert_eq!(ack.headers.get("CSeq"), Some("1 ACK"));
    assert_eq!(ack.call_id(), Some("cb-1@hotdesk"));
    assert_eq!(ack.from_tag(), invite.from_tag());
    assert_eq!(ack.to_tag().as_deref(), Some("ph1"));
    assert_ne!(
        ack.branch(),
        invite.branch(),
        "2xx ACK is a new transaction"
    );
    assert!(ack.headers.get("Authorization").is_none());

    let evs = events(&mut out);
    let [OutboundEvent::Answered(a)] = &evs[..] else {
        panic!("{evs:?}")
    };
    assert_eq!(a.negotiated.codec, Codec::Pcma);
    assert_eq!(a.negotiated.codec_payload_type, 8);
    assert_eq!(a.negotiated.remote, "192.0.2.50:30000".parse().unwrap());
    assert_eq!(
        a.negotiated.telephone_event,
        Some(TelephoneEvent {
            payload_type: 101,
            clock_rate: 8000
        })
    );
    assert_eq!(a.dialog.state(), DialogState::Confirmed);
    assert_eq!(a.dialog.remote_target(), PHONE_CONTACT);
    assert_eq!(a.dialog.id().remote_tag, "ph1");
    assert_eq!(a.dialog.id().call_id, "cb-1@hotdesk");
    assert_eq!(a.answer, ok);
    assert!(out.poll_request().is_none(), "no CANCEL, no BYE");
    // The ring timeout is off; 2xx retransmissions are re-ACKed for 64·T1.
    assert_eq!(
        out.poll_timeout(),
        Some(t0 + Duration::from_secs(5) + T1 * 64)
    );
    assert!(!out.is_done());
    out.handle_timeout(t0 + Duration::from_secs(5) + T1 * 64);
    assert!(out.is_done());
    assert!(out.poll_request().is_none());
}

#[test]
fn retransmitted_2xx_gets_the_same_ack_again() {
    let t0 = Instant::now();
    let (mut out, invite) = start(t0, None);
    let ok = reply(&invite, 200, "OK", "ph1");
    out.handle_response(t0 + Duration::from_secs(2), &ok);
    out.handle_response(t0 + Duration::from_millis(2500), &ok);
    let acks = raw_acks(&mut out);
    assert_eq!(acks.len(), 2);
    assert_eq!(acks[0], acks[1], "byte-identical ACK");
    assert_eq!(events(&mut out).len(), 1, "answered once");
    assert!(out.poll_request().is_none());
}

#[test]
fn busy_codes_report_busy() {
    for code in [486, 600, 603] {
        let t0 = Instant::now();
        let (mut out, invite) = start(t0, None);
        out.handle_response(
            t0 + Duration::from_secs(1),
            &reply(&invite, 180, "Ringing", "b"),
        );
        out.handle_response(
            t0 + Duration::from_secs(2),
            &reply(&invite, code, "Busy", "b"),
        );
        assert_eq!(
            events(&mut out),
            [
                OutboundEvent::Ringing { code: 180 },
                OutboundEvent::Busy { code }
            ]
        );
        // The non-2xx ACK is the transaction's (§17.1.1.3): nothing raw, no request.
        assert!(raw_acks(&mut out).is_empty());
        assert!(out.poll_request().is_none());
        assert!(out.is_done());
        assert_eq!(out.poll_timeout(), None);
    }
}

#[test]
fn not_found_fails_with_its_code_and_reason() {
    let t0 = Instant::now();
    let (mut out, invite) = start(t0, None);
    out.handle_response(t0, &reply(&invite, 404, "Not Found", "x"));
    assert_eq!(
        events(&mut out),
        [OutboundEvent::Failed {
            code: 404,
            reason: "Not Found".into()
        }]
    );
    // A retransmitted 404 changes nothing.
    out.handle_response(t0, &reply(&invite, 404, "Not Found", "x"));
    assert!(events(&mut out).is_empty());
    assert!(out.poll_request().is_none());
}

/// The 407 flow through the real transaction layer: it ACKs the 407 itself, and the INVITE
/// with credentials is a new transaction (CSeq 2, new branch, same Call-ID and From tag).
#[test]
fn proxy_challenge_is_answered_with_a_new_invite() {
    let t0 = Instant::now();
    let mut layer = TransactionLayer::new(Timers::default());
    let (mut out, invite) = start(t0, Some(creds()));
    let key1 = layer.send_request(t0, proxy(), invite.clone()).unwrap();
    assert_eq!(layer.poll_transmit().unwrap().payload, invite.to_bytes());

    let challenge = reply(&invite, 407, "Proxy Authentication Required", "pbx")
        .with_header(
            "Proxy-Authenticate",
            "Digest realm=\"pbx.example.com\", nonce=\"n0nce-1\", qop=\"auth\", algorithm=MD5, opaque=\"op\"",
        );
    let t1 = t0 + Duration::from_millis(30);
    assert_eq!(
        layer.handle_response(t1, wire(challenge)),
        ResponseMatch::Matched(key1.clone())
    );
    let ack407 = reparse_request(&layer.poll_transmit().unwrap().payload);
    assert_eq!(ack407.method, Method::Ack);
    assert_eq!(ack407.headers.get("CSeq"), Some("1 ACK"));
    while let Some((key, event)) = layer.poll_event() {
        out.handle_transaction_event(t1, &key, event);
    }
    assert!(events(&mut out).is_empty(), "a challenge is not an outcome");

    let second = next_request(&mut out);
    assert!(out.poll_request().is_none());
    assert_eq!(second.method, Method::Invite);
    assert_eq!(second.uri, TARGET);
    assert_eq!(second.headers.get("CSeq"), Some("2 INVITE"));
    assert_eq!(second.call_id(), invite.call_id());
    assert_eq!(second.from_tag(), invite.from_tag());
    assert_eq!(second.headers.get("To"), invite.headers.get("To"));
    assert_ne!(second.branch(), invite.branch());
    assert_eq!(second.body, invite.body, "same offer");
    assert!(second.headers.get("Authorization").is_none());
    let auth = second
        .headers
        .get("Proxy-Authorization")
        .unwrap()
        .to_owned();
    assert_eq!(param(&auth, "username"), Some("hotdesk"));
    assert_eq!(param(&auth, "realm"), Some("pbx.example.com"));
    assert_eq!(param(&auth, "nonce"), Some("n0nce-1"));
    assert_eq!(param(&auth, "uri"), Some(TARGET));
    assert_eq!(param(&auth, "qop"), Some("auth"));
    assert_eq!(param(&auth, "nc"), Some("00000001"));
    assert_eq!(param(&auth, "opaque"), Some("op"));
    assert_eq!(param(&auth, "algorithm"), Some("MD5"));
    // RFC 2617 §3.2.2.1, recomputed from its definition.
    let md5 =
        |s: &str| digest_auth::Algorithm::new(digest_auth::AlgorithmType::MD5, false).hash_str(s);
    let cnonce = param(&auth, "cnonce").unwrap();
    let ha1 = md5("hotdesk:pbx.example.com:s3cret");
    let ha2 = md5(&format!("INVITE:{TARGET}"));
    let expected = md5(&format!("{ha1}:n0nce-1:00000001:{cnonce}:auth:{ha2}"));
    assert_eq!(param(&auth, "response"), Some(expected.as_str()));

    let key2 = layer.send_request(t1, proxy(), second.clone()).unwrap();
    assert_ne!(key2, key1);
    let t2 = t0 + Duration::from_secs(3);
    layer.handle_response(t2, reply(&second, 200, "OK", "ph1"));
    while let Some((key, event)) = layer.poll_event() {
        out.handle_transaction_event(t2, &key, event);
    }
    let acks = raw_acks(&mut out);
    let ack = reparse_request(&acks[0]);
    assert_eq!(ack.headers.get("CSeq"), Some("2 ACK"));
    // §13.2.2.4: the ACK carries the INVITE's credentials.
    assert_eq!(ack.headers.get("Proxy-Authorization"), Some(auth.as_str()));
    assert!(matches!(
        &events(&mut out)[..],
        [OutboundEvent::Answered(_)]
    ));
}

#[test]
fn refused_credentials_fail_without_a_third_invite() {
    let t0 = Instant::now();
    let (mut out, invite) = start(t0, Some(creds()));
    let challenge = |req: &Request, nonce: &str| {
        wire(
            response_to(req, 401, "Unauthorized")
                .with_to_tag("pbx")
                .with_header(
                    "WWW-Authenticate",
                    &format!("Digest realm=\"pbx.example.com\", nonce=\"{nonce}\", qop=\"auth\""),
                ),
        )
    };
    out.handle_response(t0, &challenge(&invite, "n1"));
    let second = next_request(&mut out);
    assert_eq!(second.headers.get("CSeq"), Some("2 INVITE"));
    let auth = second.headers.get("Authorization").unwrap();
    assert_eq!(param(auth, "nonce"), Some("n1"));
    assert!(second.headers.get("Proxy-Authorization").is_none());

    // A new nonce without stale=true: the password was wrong.
    out.handle_response(t0, &challenge(&second, "n2"));
    assert!(out.poll_request().is_none(), "no third INVITE");
    assert_eq!(
        events(&mut out),
        [OutboundEvent::Failed {
            code: 401,
            reason: "Unauthorized".into()
        }]
    );
    assert!(out.is_done());
}

#[test]
fn stale_nonce_is_retried_once_per_nonce() {
    let t0 = Instant::now();
    let (mut out, invite) = start(t0, Some(creds()));
    let challenge = |req: &Request, nonce: &str, stale: bool| {
        let stale = if stale { ", stale=true" } else { "" };
        wire(
            response_to(req, 401, "Unauthorized")
                .with_to_tag("pbx")
                .with_header(
                    "WWW-Authenticate",
                    &format!("Digest realm=\"r\", nonce=\"{nonce}\", algorithm=SHA-256, qop=\"auth\"{stale}"),
                ),
        )
    };
    out.handle_response(t0, &challenge(&invite, "n1", false));
    let second = next_request(&mut out);
    out.handle_response(t0, &challenge(&second, "n2", true));
    let third = next_request(&mut out);
    assert_eq!(third.headers.get("CSeq"), Some("3 INVITE"));
    let auth = third.headers.get("Authorization").unwrap();
    assert_eq!(param(auth, "nonce"), Some("n2"));
    assert_eq!(
        param(auth, "nc"),
        Some("00000001"),
        "a new nonce counts from 1"
    );
    assert_eq!(param(auth, "algorithm"), Some("SHA-256"));
    assert_eq!(param(auth, "response").map(str::len), Some(64));
    assert_eq!(third.headers.get_all("Authorization").count(), 1);

    // The same nonce again, even "stale": we would loop.
    out.handle_response(t0, &challenge(&third, "n2", true));
    assert!(out.poll_request().is_none());
    assert_eq!(
        events(&mut out),
        [OutboundEvent::Failed {
            code: 401,
            reason: "Unauthorized".into()
        }]
    );
}

#[test]
fn challenge_without_credentials_fails() {
    let t0 = Instant::now();
    let (mut out, invite) = start(t0, None);
    let challenge = response_to(&invite, 407, "Proxy Authentication Required")
        .with_to_tag("pbx")
        .with_header("Proxy-Authenticate", "Digest realm=\"r\", nonce=\"n\"");
    out.handle_response(t0, &wire(challenge));
    assert!(out.poll_request().is_none());
    assert_eq!(
        events(&mut out),
        [OutboundEvent::Failed {
            code: 407,
            reason: "Proxy Authentication Required".into()
        }]
    );
}

#[test]
fn unusable_challenges_fail_instead_of_panicking() {
    for header in [
        "Basic realm=\"r\"",
        // digest_auth 0.3.1 panics on this one (char counts used as byte offsets).
        "Digest realm=\"\u{e9}\u{e9}\u{e9}\u{e9}\u{e9}\u{e9}\u{e9}\u{e9}\",nonce=\"n\"",
        "Digest realm=\"r\"",
        "Digest realm=\"r\", nonce=\"n\", qop=\"auth-int\"",
        "Digest realm=\"r\", nonce=\"n\", algorithm=ROT13",
        "Digest realm=\"unterminated",
    ] {
        let t0 = Instant::now();
        let (mut out, invite) = start(t0, Some(creds()));
        let challenge = response_to(&invite, 401, "Unauthorized")
            .with_to_tag("pbx")
            .with_header("WWW-Authenticate", header);
        out.handle_response(t0, &wire(challenge));
        assert!(out.poll_request().is_none(), "{header}");
        assert_eq!(
            events(&mut out),
            [OutboundEvent::Failed {
                code: 401,
                reason: "Unauthorized".into()
            }],
            "{header}"
        );
    }
    let c = creds();
    let get = Method::parse("GET").unwrap();
    assert_eq!(
        authorization("Basic realm=\"r\"", &get, "/", &c, "x"),
        Err(AuthError::NotDigest)
    );
    assert_eq!(
        authorization("Digest realm=\"\u{e9}\", nonce=\"n\"", &get, "/", &c, "x"),
        Err(AuthError::NotAscii)
    );
    assert_eq!(
        authorization(
            "Digest realm=\"r\", nonce=\"n\", qop=\"auth-int\"",
            &get,
            "/",
            &c,
            "x"
        ),
        Err(AuthError::NoQopAuth)
    );
    // The scheme is case-insensitive (RFC 7235 §2.1), and SIP allows blanks around `=`.
    let header =
        authorization("digest realm = \"r\" , nonce= \"n,=x\"", &get, "/", &c, "x").unwrap();
    assert_eq!(param(&header, "realm"), Some("r"));
    assert_eq!(param(&header, "nonce"), Some("n,=x"));
}

#[test]
fn digest_matches_rfc_2617_example() {
    // RFC 2617 §3.5.
    let header = authorization(
        "Digest realm=\"testrealm@host.com\", qop=\"auth,auth-int\", \
         nonce=\"dcd98b7102dd2f0e8b11d0f600bfb0c093\", opaque=\"5ccc069c403ebaf9f0171e9517f40e41\"",
        &Method::parse("GET").unwrap(),
        "/dir/index.html",
        &Credentials {
            user: "Mufasa".into(),
            password: "Circle Of Life".into(),
        },
        "0a4f113b",
    )
    .unwrap();
    assert_eq!(
        header,
        "Digest username=\"Mufasa\", realm=\"testrealm@host.com\", \
         nonce=\"dcd98b7102dd2f0e8b11d0f600bfb0c093\", uri=\"/dir/index.html\", qop=auth, \
         nc=00000001, cnonce=\"0a4f113b\", response=\"6629fae49393a05397450978507c4ef1\", \
         opaque=\"5ccc069c403ebaf9f0171e9517f40e41\", algorithm=MD5"
    );
}

#[test]
fn digest_matches_rfc_7616_examples() {
    // RFC 7616 §3.9.1: the same challenge answered with SHA-256 and MD5.
    let creds = Credentials {
        user: "Mufasa".into(),
        password: "Circle of Life".into(),
    };
    for (algorithm, response) in [
        (
            "SHA-256",
            "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1",
        ),
        ("MD5", "8ca523f5e9506fed4657c9700eebdbec"),
    ] {
        let header = authorization(
            &format!(
                "Digest realm=\"http-auth@example.org\", qop=\"auth, auth-int\", \
                 algorithm={algorithm}, nonce=\"7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v\", \
                 opaque=\"FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS\""
            ),
            &Method::parse("GET").unwrap(),
            "/dir/index.html",
            &creds,
            "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ",
        )
        .unwrap();
        assert_eq!(param(&header, "response"), Some(response), "{algorithm}");
        assert_eq!(param(&header, "qop"), Some("auth"));
        assert_eq!(param(&header, "algorithm"), Some(algorithm));
    }
}

#[test]
fn ring_timeout_cancels_after_ringing_then_487_is_no_answer() {
    let t0 = Instant::now();
    let (mut out, invite) = start(t0, None);
    out.handle_response(
        t0 + Duration::from_secs(1),
        &reply(&invite, 180, "Ringing", "ph1"),
    );
    out.handle_timeout(t0 + RING - Duration::from_millis(1));
    assert!(out.poll_request().is_none(), "not yet");
    out.handle_timeout(t0 + RING);
    let cancel = next_request(&mut out);
    assert!(out.poll_request().is_none());
    // §9.1: same Request-URI, Call-ID, From, To (no tag), CSeq number and top Via.
    assert_eq!(cancel.method, Method::Cancel);
    assert_eq!(cancel.uri, invite.uri);
    assert_eq!(cancel.headers.get("Via"), invite.headers.get("Via"));
    assert_eq!(cancel.headers.get("CSeq"), Some("1 CANCEL"));
    assert_eq!(cancel.headers.get("From"), invite.headers.get("From"));
    assert_eq!(cancel.headers.get("To"), Some("<sip:5401@pbx.example.com>"));
    assert_eq!(cancel.call_id(), invite.call_id());
    assert_eq!(cancel.headers.get("Max-Forwards"), Some("70"));
    assert_eq!(events(&mut out), [OutboundEvent::Ringing { code: 180 }]);

    // 200 for the CANCEL says nothing about the INVITE.
    out.handle_response(t0 + RING, &reply(&cancel, 200, "OK", "ph1"));
    assert!(events(&mut out).is_empty());
    out.handle_response(
        t0 + RING + Duration::from_millis(50),
        &reply(&invite, 487, "Request Terminated", "ph1"),
    );
    assert_eq!(events(&mut out), [OutboundEvent::NoAnswer]);
    assert!(raw_acks(&mut out).is_empty());
    assert!(out.poll_request().is_none());
    assert!(out.is_done());
}

#[test]
fn answer_crossing_the_cancel_is_acked_hung_up_and_no_answer() {
    let t0 = Instant::now();
    let (mut out, invite) = start(t0, None);
    out.handle_response(
        t0 + Duration::from_secs(1),
        &reply(&invite, 183, "Session Progress", "ph1"),
    );
    out.handle_timeout(t0 + RING);
    let cancel = next_request(&mut out);
    assert_eq!(cancel.method, Method::Cancel);

    let ok = reply(&invite, 200, "OK", "ph1");
    out.handle_response(t0 + RING + Duration::from_millis(10), &ok);
    let acks = raw_acks(&mut out);
    assert_eq!(acks.len(), 1);
    let ack = reparse_request(&acks[0]);
    assert_eq!(ack.method, Method::Ack);
    assert_eq!(ack.headers.get("CSeq"), Some("1 ACK"));
    assert_eq!(ack.to_tag().as_deref(), Some("ph1"));
    let bye = next_request(&mut out);
    assert_eq!(bye.method, Method::Bye);
    assert_eq!(bye.uri, PHONE_CONTACT);
    assert_eq!(bye.headers.get("CSeq"), Some("2 BYE"));
    assert_eq!(bye.to_tag().as_deref(), Some("ph1"));
    assert_eq!(bye.from_tag(), invite.from_tag());
    assert_eq!(
        events(&mut out),
        [
            OutboundEvent::Ringing { code: 183 },
            OutboundEvent::NoAnswer
        ]
    );
    // Its retransmission is ACKed again, but hung up only once.
    out.handle_response(t0 + RING + Duration::from_millis(510), &ok);
    assert_eq!(raw_acks(&mut out), acks);
    assert!(out.poll_request().is_none());
    assert!(events(&mut out).is_empty());
}

#[test]
fn no_cancel_before_a_provisional_arrives() {
    let t0 = Instant::now();
    let (mut out, invite) = start(t0, None);
    out.handle_timeout(t0 + RING);
    // §9.1: "If no provisional response has been received, the CANCEL request MUST NOT be sent".
    assert!(out.poll_request().is_none());
    assert!(events(&mut out).is_empty());
    let late = t0 + RING + Duration::from_secs(1);
    out.handle_response(late, &reply(&invite, 100, "Trying", ""));
    let cancel = next_request(&mut out);
    assert_eq!(cancel.method, Method::Cancel);
    assert_eq!(cancel.branch(), invite.branch());
    assert_eq!(events(&mut out), [OutboundEvent::Trying]);
    out.handle_response(late, &reply(&invite, 487, "Request Terminated", "ph1"));
    assert_eq!(events(&mut out), [OutboundEvent::NoAnswer]);
}

#[test]
fn ring_timeout_with_no_response_at_all_ends_at_timer_b() {
    let t0 = Instant::now();
    let mut layer = TransactionLayer::new(Timers::default());
    let (mut out, invite) = start(t0, None);
    layer.send_request(t0, proxy(), invite).unwrap();
    let mut now = t0;
    // Drive both clocks until the layer gives up (timer B = 64·T1 = 32 s > the 30 s ring).
    while let Some(due) = [layer.poll_timeout(), out.poll_timeout()]
        .into_iter()
        .flatten()
        .min()
    {
        now = due;
        layer.handle_timeout(now);
        out.handle_timeout(now);
        while let Some((key, event)) = layer.poll_event() {
            out.handle_transaction_event(now, &key, event);
        }
        assert!(
            out.poll_request().is_none(),
            "never a CANCEL without a provisional"
        );
        if out.is_done() {
            break;
        }
    }
    assert_eq!(now, t0 + T1 * 64);
    assert_eq!(
        events(&mut out),
        [OutboundEvent::Failed {
            code: 408,
            reason: "Request Timeout".into()
        }]
    );
}

#[test]
fn transaction_timeout_fails_408_and_other_keys_are_ignored() {
    let t0 = Instant::now();
    let (mut out, invite) = start(t0, None);
    let key = TransactionKey::client(&invite).unwrap();
    let mut other = key.clone();
    other.branch = "z9hG4bKsomeoneelse".into();
    out.handle_transaction_event(t0, &other, TransactionEvent::Timeout);
    assert!(events(&mut out).is_empty());
    out.handle_transaction_event(t0 + T1 * 64, &key, TransactionEvent::Timeout);
    assert_eq!(
        events(&mut out),
        [OutboundEvent::Failed {
            code: 408,
            reason: "Request Timeout".into()
        }]
    );
    out.handle_transaction_event(t0 + T1 * 64, &key, TransactionEvent::Terminated);
    assert!(events(&mut out).is_empty());
    assert!(out.poll_request().is_none());
}

#[test]
fn caller_cancel_reports_cancelled() {
    let t0 = Instant::now();
    let (mut out, invite) = start(t0, None);
    out.handle_response(t0, &reply(&invite, 180, "Ringing", "ph1"));
    out.cancel(t0 + Duration::from_secs(2));
    assert_eq!(next_request(&mut out).method, Method::Cancel);
    assert_eq!(
        out.poll_timeout(),
        Some(t0 + Duration::from_secs(2) + T1 * 64)
    );
    // No 487 ever: §9.1 gives up 64·T1 after the CANCEL.
    out.handle_timeout(t0 + Duration::from_secs(2) + T1 * 64);
    assert_eq!(
        events(&mut out),
        [
            OutboundEvent::Ringing { code: 180 },
            OutboundEvent::Cancelled
        ]
    );
    assert!(out.is_done());
}

#[test]
fn unusable_sdp_answer_is_acked_hung_up_and_fails_488() {
    let t0 = Instant::now();
    let (mut out, invite) = start(t0, None);
    let g729 = ANSWER_SDP
        .replace("RTP/AVP 8 101", "RTP/AVP 18 101")
        .replace("a=rtpmap:8 PCMA/8000", "a=rtpmap:18 G729/8000");
    let ok = wire(
        response_to(&invite, 200, "OK")
            .with_to_tag("ph1")
            .with_header("Contact", &format!("<{PHONE_CONTACT}>"))
            .with_body("application/sdp", Bytes::from(g729)),
    );
    out.handle_response(t0, &ok);
    assert_eq!(raw_acks(&mut out).len(), 1);
    assert_eq!(next_request(&mut out).method, Method::Bye);
    let evs = events(&mut out);
    let [OutboundEvent::Failed { code: 488, reason }] = &evs[..] else {
        panic!("{evs:?}")
    };
    assert!(
        reason.starts_with("SDP answer: no common codec"),
        "{reason}"
    );
}

#[test]
fn a_second_fork_answering_is_acked_and_hung_up() {
    let t0 = Instant::now();
    let (mut out, invite) = start(t0, None);
    out.handle_response(t0, &reply(&invite, 200, "OK", "desk"));
    out.handle_response(t0, &reply(&invite, 200, "OK", "mobile"));
    let acks = raw_acks(&mut out);
    assert_eq!(acks.len(), 2);
    assert_eq!(
        reparse_request(&acks[1]).to_tag().as_deref(),
        Some("mobile")
    );
    let bye = next_request(&mut out);
    assert_eq!(bye.method, Method::Bye);
    assert_eq!(bye.to_tag().as_deref(), Some("mobile"));
    assert!(out.poll_request().is_none());
    assert!(
        matches!(&events(&mut out)[..], [OutboundEvent::Answered(a)] if a.dialog.id().remote_tag == "desk")
    );
}

#[test]
fn bad_settings_are_refused() {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
    let mut s = settings(None);
    s.codecs.clear();
    assert_eq!(
        Outbound::start(Instant::now(), s, &mut rng).unwrap_err(),
        SettingsError::NoCodecs
    );
    let mut s = settings(None);
    s.call_id = Some("has space".into());
    assert!(matches!(
        Outbound::start(Instant::now(), s, &mut rng),
        Err(SettingsError::InvalidInvite(_))
    ));
}
