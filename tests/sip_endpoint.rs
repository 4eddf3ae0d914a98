//! The SIP endpoint's answers before any call exists (`contract.md` §3), on virtual time.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use hotdesk_core::sip::endpoint::{CapacityError, Endpoint, EndpointEvent, EndpointSettings};
use hotdesk_core::sip::message::{self, Method, Response, SipMessage, new_tag, response_to};
use hotdesk_core::sip::transaction::{Timers, TransactionEvent};

const PHONE: &str = "127.0.0.1:5070";
const LOCALHOST: std::net::IpAddr = std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);

fn settings(max_calls: usize) -> EndpointSettings {
    EndpointSettings {
        agent: "hotdesk-test".into(),
        trusted: vec!["127.0.0.0/8".parse().unwrap()],
        max_calls,
        services: vec!["*97".into()],
        retry_after: Duration::from_secs(7),
        timers: Timers::default(),
        max_requests_per_source_s: 10_000,
        max_invites_per_source_s: 10_000,
        rate_exempt: Vec::new(),
    }
}

fn req(method: &str, user: &str, call_id: &str, branch: &str, to_tag: Option<&str>) -> String {
    let to_tag = to_tag.map(|t| format!(";tag={t}")).unwrap_or_default();
    let cseq_method = if method == "ACK" { "INVITE" } else { method };
    let cseq = if method == "CANCEL" {
        "1 CANCEL".to_string()
    } else {
        format!("1 {cseq_method}")
    };
    let cseq = if method == "ACK" {
        "1 ACK".to_string()
    } else {
        cseq
    };
    let body = if method == "INVITE" {
        "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
         m=audio 16000 RTP/AVP 0 101\r\na=rtpmap:101 telephone-event/8000\r\n"
    } else {
        ""
    };
    let content_type = if body.is_empty() {
        ""
    } else {
        "Content-Type: application/sdp\r\n"
    };
    format!(
        "{method} sip:{user}@127.0.0.1:5060 SIP/2.0\r\n\
         Via: SIP/2.0/UDP {PHONE};branch=z9hG4bK{branch}\r\n\
         From: <sip:5401@127.0.0.1>;tag=caller\r\n\
         To: <sip:{user}@127.0.0.1>{to_tag}\r\n\
         Call-ID: {call_id}\r\n\
         CSeq: {cseq}\r\n\
         Contact: <sip:5401@{PHONE}>\r\n\
         Max-Forwards: 70\r\n\
         {content_type}Content-Length: {}\r\n\r\n{body}",
        body.len()
    )
}

struct Harness {
    ep: Endpoint,
    now: Instant,
}

impl Harness {
    fn new(max_calls: usize) -> Harness {
        Harness {
            ep: Endpoint::new(settings(max_calls)),
            now: Instant::now(),
        }
    }

    fn send_from(&mut self, from: &str, text: &str) {
        self.ep
            .handle_datagram(self.now, from.parse().unwrap(), text.as_bytes());
    }

    fn send(&mut self, text: &str) {
        self.send_from(PHONE, text);
    }

    /// Responses sent, as (destination, code, CSeq method).
    fn responses(&mut self) -> Vec<(SocketAddr, Response)> {
        std::iter::from_fn(|| self.ep.poll_transmit())
            .map(|(to, bytes)| match message::parse(&bytes) {
                Ok(SipMessage::Response(r)) => (to, r),
                other => panic!("not a response: {other:?}"),
            })
            .collect()
    }

    fn codes(&mut self) -> Vec<u16> {
        self.responses().into_iter().map(|(_, r)| r.code).collect()
    }

    fn events(&mut self) -> Vec<EndpointEvent> {
        std::iter::from_fn(|| self.ep.poll_event()).collect()
    }

    /// An INVITE to `*97` that the runtime accepts: returns its transaction key.
    fn incoming(&mut self, call_id: &str, branch: &str) -> EndpointEvent {
        self.send(&req("INVITE", "*97", call_id, branch, None));
        assert_eq!(self.codes(), vec![100]);
        let mut events = self.events();
        assert_eq!(events.len(), 1);
        events.remove(0)
    }
}

#[test]
fn invite_to_a_service_is_handed_to_the_runtime_after_100() {
    let mut h = Harness::new(10);
    let EndpointEvent::Incoming {
        request,
        service,
        source,
        ..
    } = h.incoming("c1", "a1")
    else {
        panic!("not incoming")
    };
    assert_eq!(service, "*97");
    assert_eq!(source, PHONE.parse::<SocketAddr>().unwrap());
    assert_eq!(request.call_id(), Some("c1"));
    assert_eq!(h.ep.calls(), 1);
    // A retransmission is absorbed and repeats the 100.
    h.send(&req("INVITE", "*97", "c1", "a1", None));
    assert_eq!(h.codes(), vec![100]);
    assert!(h.events().is_empty());
}

#[test]
fn percent_encoded_service_is_the_same_service() {
    let mut h = Harness::new(10);
    h.send(&req("INVITE", "%2A97", "c1", "a1", None));
    assert_eq!(h.codes(), vec![100]);
    assert!(matches!(h.events()[..], [EndpointEvent::Incoming { .. }]));
}

#[test]
fn unknown_number_is_404_and_takes_no_slot() {
    let mut h = Harness::new(10);
    h.send(&req("INVITE", "*55", "c1", "a1", None));
    assert_eq!(h.codes(), vec![100, 404]);
    assert!(h.events().is_empty());
    assert_eq!(h.ep.calls(), 0);
}

#[test]
fn untrusted_source_is_403() {
    let mut h = Harness::new(10);
    h.send_from("192.0.2.9:5060", &req("INVITE", "*97", "c1", "a1", None));
    let responses = h.responses();
    let codes: Vec<u16> = responses.iter().map(|(_, r)| r.code).collect();
    assert_eq!(codes, vec![100, 403]);
    // Responses go back where the request came from.
    assert_eq!(
        responses[1].0,
        "192.0.2.9:5060".parse::<SocketAddr>().unwrap()
    );
    assert!(h.events().is_empty());
}

#[test]
fn over_capacity_is_503_with_retry_after_and_a_slot_frees_when_a_call_ends() {
    let mut h = Harness::new(1);
    h.incoming("c1", "a1");
    h.send(&req("INVITE", "*97", "c2", "a2", None));
    let responses = h.responses();
    assert_eq!(responses.len(), 2);
    let busy = &responses[1].1;
    assert_eq!(busy.code, 503);
    assert_eq!(busy.headers.get("Retry-After"), Some("7"));
    assert_eq!(
        h.ep.register_outbound("c3", LOCALHOST),
        Err(CapacityError::Full(1))
    );
    h.ep.call_ended("c1");
    h.incoming("c4", "a4");
}

#[test]
fn draining_refuses_invites_and_options_with_503() {
    let mut h = Harness::new(10);
    h.ep.start_draining();
    h.send(&req("INVITE", "*97", "c1", "a1", None));
    assert_eq!(h.codes(), vec![100, 503]);
    h.send(&req("OPTIONS", "hotdesk", "o1", "o1", None));
    let responses = h.responses();
    assert_eq!(responses[0].1.code, 503);
    assert!(responses[0].1.headers.get("Retry-After").is_some());
    assert_eq!(
        h.ep.register_outbound("c2", LOCALHOST),
        Err(CapacityError::Draining)
    );
}

#[test]
fn an_unavailable_store_refuses_new_calls_but_not_calls_up() {
    let mut h = Harness::new(10);
    h.incoming("c1", "a1");
    h.ep.set_unavailable(Some("store unavailable: disk full".into()));
    h.send(&req("INVITE", "*97", "c2", "a2", None));
    let responses = h.responses();
    assert_eq!(responses.len(), 2);
    assert_eq!(responses[1].1.code, 503);
    assert_eq!(responses[1].1.headers.get("Retry-After"), Some("7"));
    assert!(
        matches!(h.ep.register_outbound("c3", LOCALHOST), Err(CapacityError::Unavailable(r)) if r.contains("disk full"))
    );
    h.send(&req("OPTIONS", "hotdesk", "o1", "o1", None));
    assert_eq!(h.codes(), vec![503]);
    // The call that was up still gets its requests.
    h.send(&req("BYE", "*97", "c1", "b1", Some("t")));
    let events = h.events();
    assert!(
        matches!(events.as_slice(), [EndpointEvent::InDialog { call_id, .. }] if call_id == "c1"),
        "{events:?}"
    );
    h.ep.set_unavailable(None);
    h.incoming("c5", "a5");
}

#[test]
fn options_is_200_with_allow() {
    let mut h = Harness::new(10);
    h.send(&req("OPTIONS", "hotdesk", "o1", "o1", None));
    let r = h.responses().remove(0).1;
    assert_eq!(r.code, 200);
    assert_eq!(
        r.headers.get("Allow"),
        Some("INVITE, ACK, BYE, CANCEL, OPTIONS, INFO")
    );
    assert!(r.to_tag().is_some());
}

#[test]
fn cancel_before_the_answer_is_200_then_487_and_the_call_is_off() {
    let mut h = Harness::new(10);
    h.incoming("c1", "a1");
    h.send(&req("CANCEL", "*97", "c1", "a1", None));
    let responses = h.responses();
    let summary: Vec<(u16, String)> = responses
        .iter()
        .map(|(_, r)| (r.code, r.cseq().unwrap().method.to_string()))
        .collect();
    assert_eq!(
        summary,
        vec![(200, "CANCEL".into()), (487, "INVITE".into())]
    );
    assert_eq!(
        h.events(),
        vec![EndpointEvent::Cancelled {
            call_id: "c1".into()
        }]
    );
    assert_eq!(h.ep.calls(), 0);
}

#[test]
fn cancel_after_the_answer_is_200_only_and_cancel_of_nothing_is_481() {
    let mut h = Harness::new(10);
    let EndpointEvent::Incoming {
        key,
        request: invite,
        ..
    } = h.incoming("c1", "a1")
    else {
        panic!()
    };
    let ok = response_to(&invite, 200, "OK").with_to_tag(&new_tag());
    h.ep.respond(h.now, &key, &ok);
    assert_eq!(h.codes(), vec![200]);
    h.send(&req("CANCEL", "*97", "c1", "a1", None));
    assert_eq!(h.codes(), vec![200]);
    assert!(h.events().is_empty());
    assert_eq!(h.ep.calls(), 1);
    h.send(&req("CANCEL", "*97", "zz", "nothing", None));
    assert_eq!(h.codes(), vec![481]);
}

#[test]
fn in_dialog_requests_and_acks_go_to_their_call_others_get_481() {
    let mut h = Harness::new(10);
    let EndpointEvent::Incoming {
        key,
        request: invite,
        ..
    } = h.incoming("c1", "a1")
    else {
        panic!()
    };
    h.ep.respond(
        h.now,
        &key,
        &response_to(&invite, 200, "OK").with_to_tag("us"),
    );
    h.codes();
    h.send(&req("ACK", "*97", "c1", "ack1", Some("us")));
    assert!(matches!(
        &h.events()[..],
        [EndpointEvent::Ack { call_id, .. }] if call_id == "c1"
    ));
    h.send(&req("BYE", "*97", "c1", "b1", Some("us")));
    let events = h.events();
    let [
        EndpointEvent::InDialog {
            call_id, request, ..
        },
    ] = &events[..]
    else {
        panic!("{events:?}")
    };
    assert_eq!((call_id.as_str(), &request.method), ("c1", &Method::Bye));
    // No response yet: the call answers it.
    assert!(h.codes().is_empty());
    h.send(&req("BYE", "*97", "other", "b2", Some("x")));
    assert_eq!(h.codes(), vec![481]);
}

#[test]
fn methods_we_do_not_serve_get_405_or_501_with_allow() {
    let mut h = Harness::new(10);
    h.send(&req("REGISTER", "5401", "r1", "r1", None));
    h.send(&req("FOO", "5401", "f1", "f1", None));
    let responses = h.responses();
    let codes: Vec<u16> = responses.iter().map(|(_, r)| r.code).collect();
    assert_eq!(codes, vec![405, 501]);
    assert!(
        responses
            .iter()
            .all(|(_, r)| r.headers.get("Allow").is_some())
    );
}

#[test]
fn malformed_request_is_400_naming_the_problem_and_keepalives_are_ignored() {
    let mut h = Harness::new(10);
    let bad = req("INVITE", "*97", "c1", "a1", None).replace("CSeq: 1 INVITE", "CSeq: one INVITE");
    h.send(&bad);
    // The 400 echoes the CSeq it could not read (§8.2.6), so read it as text.
    let (to, bytes) = h.ep.poll_transmit().expect("a 400");
    let text = String::from_utf8_lossy(&bytes);
    assert_eq!(to, PHONE.parse::<SocketAddr>().unwrap());
    let status = text.lines().next().unwrap();
    assert!(status.starts_with("SIP/2.0 400 "), "{status}");
    assert!(status.contains("CSeq"), "{status}");
    h.send("\r\n\r\n");
    assert!(h.responses().is_empty());
    assert!(h.events().is_empty());
}

#[test]
fn a_calls_request_gets_its_responses_and_a_timeout_after_64_t1() {
    let mut h = Harness::new(10);
    h.ep.register_outbound("out1", LOCALHOST).unwrap();
    let bye = message::parse(
        req("BYE", "5401", "out1", "cl1", Some("them"))
            .replace(PHONE, "127.0.0.1:5060")
            .as_bytes(),
    );
    let Ok(SipMessage::Request(bye)) = bye else {
        panic!()
    };
    let phone: SocketAddr = PHONE.parse().unwrap();
    h.ep.send_request(h.now, "out1", phone, bye.clone());
    let sent: Vec<_> = std::iter::from_fn(|| h.ep.poll_transmit()).collect();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].0, phone);
    // Nobody answers: timer F fires at 64·T1 = 32 s and the call hears of it.
    let deadline = h.now + Duration::from_secs(32);
    while let Some(t) = h.ep.poll_timeout().filter(|t| *t <= deadline) {
        h.ep.handle_timeout(t);
    }
    let events = h.events();
    let [
        EndpointEvent::RequestFailed {
            call_id,
            key,
            event,
        },
    ] = &events[..]
    else {
        panic!("{events:?}")
    };
    assert_eq!(
        (call_id.as_str(), &key.method, event),
        ("out1", &Method::Bye, &TransactionEvent::Timeout)
    );
    // A response now matches nothing and is dropped.
    let late = response_to(&bye, 200, "OK");
    h.ep.handle_datagram(deadline, phone, &late.to_bytes());
    assert!(h.events().is_empty());
}
