//! RFC 3261 §17 transaction machines on virtual time: exact retransmission schedules and
//! timeouts for timers A-M, retransmission absorption, and the layer's matching rules.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use hotdesk_core::sip::message::{Method, Request, Response, SipMessage, parse, response_to};
use hotdesk_core::sip::transaction::{
    ClientInvite, ClientInviteState, ClientNonInvite, ClientNonInviteState, Incoming,
    ResponseMatch, ServerInvite, ServerInviteState, ServerNonInvite, ServerNonInviteState, Side,
    Timers, TransactionError, TransactionEvent, TransactionKey, TransactionLayer,
};

fn request(method: &str, branch: &str) -> Request {
    let text = format!(
        "{method} sip:*88@127.0.0.1:5060 SIP/2.0\r\n\
         Via: SIP/2.0/UDP 127.0.0.1:5070;branch={branch};rport\r\n\
         From: <sip:5401@127.0.0.1>;tag=from1\r\n\
         To: <sip:*88@127.0.0.1>\r\n\
         Call-ID: call-1@127.0.0.1\r\n\
         CSeq: 1 {method}\r\n\
         Max-Forwards: 70\r\n\
         Content-Length: 0\r\n\r\n"
    );
    match parse(text.as_bytes()).expect("test request parses") {
        SipMessage::Request(r) => r,
        other => panic!("not a request: {other:?}"),
    }
}

fn reparse_response(r: &Response) -> Response {
    match parse(&r.to_bytes()).expect("built response parses") {
        SipMessage::Response(r) => r,
        other => panic!("not a response: {other:?}"),
    }
}

fn secs(t: f64) -> Duration {
    Duration::from_secs_f64(t)
}

/// Generic driver over the four machines' common verbs.
trait Machine {
    fn timeout(&self) -> Option<Instant>;
    fn fire(&mut self, now: Instant);
    fn transmit(&mut self) -> Option<bytes::Bytes>;
    fn event(&mut self) -> Option<TransactionEvent>;
}

macro_rules! impl_machine {
    ($t:ty) => {
        impl Machine for $t {
            fn timeout(&self) -> Option<Instant> {
                self.poll_timeout()
            }
            fn fire(&mut self, now: Instant) {
                self.handle_timeout(now)
            }
            fn transmit(&mut self) -> Option<bytes::Bytes> {
                self.poll_transmit()
            }
            fn event(&mut self) -> Option<TransactionEvent> {
                self.poll_event()
            }
        }
    };
}
impl_machine!(ClientInvite);
impl_machine!(ClientNonInvite);
impl_machine!(ServerInvite);
impl_machine!(ServerNonInvite);

/// Runs a machine on its own timers until it stops asking to be woken (or `limit`), and
/// returns the times (relative to `base`) of every datagram and every event it produced.
fn run<M: Machine>(
    m: &mut M,
    base: Instant,
    limit: Duration,
) -> (Vec<Duration>, Vec<(Duration, TransactionEvent)>) {
    let (mut sends, mut events) = (Vec::new(), Vec::new());
    while let Some(t) = m.timeout() {
        if t > base + limit {
            break;
        }
        // Check a timer never fires early: just before it is due nothing happens.
        m.fire(t - Duration::from_nanos(1));
        assert!(m.transmit().is_none(), "fired early at {:?}", t - base);
        m.fire(t);
        while m.transmit().is_some() {
            sends.push(t - base);
        }
        while let Some(e) = m.event() {
            events.push((t - base, e));
        }
    }
    (sends, events)
}

fn drain_sends<M: Machine>(m: &mut M) -> usize {
    let mut n = 0;
    while m.transmit().is_some() {
        n += 1;
    }
    n
}

/// A machine built by `new` at `base` (now) on the default timers, for a request of `method`
/// with top-Via `branch`; nothing drained yet.
fn start<M>(
    new: fn(Instant, Request, Timers) -> M,
    method: &str,
    branch: &str,
) -> (Instant, Request, M) {
    let base = Instant::now();
    let request = request(method, branch);
    let machine = new(base, request.clone(), Timers::default());
    (base, request, machine)
}

/// Seconds after `base` as durations.
fn at(times: &[f64]) -> Vec<Duration> {
    times.iter().copied().map(secs).collect()
}

/// Timer E (Trying) and G: T1 doubling up to T2, every 4 s from then on, until 64·T1.
const DOUBLING_TO_T2: [f64; 10] = [0.5, 1.5, 3.5, 7.5, 11.5, 15.5, 19.5, 23.5, 27.5, 31.5];

/// The events of a timeout (B, F or H) at `t` seconds.
fn timed_out_at(t: f64) -> Vec<(Duration, TransactionEvent)> {
    vec![
        (secs(t), TransactionEvent::Timeout),
        (secs(t), TransactionEvent::Terminated),
    ]
}

/// Runs `m` to its end and checks it sends nothing more (`why` says why not) and only
/// terminates, at `t` seconds.
fn assert_ends_quietly_at<M: Machine>(m: &mut M, base: Instant, t: f64, why: &str) {
    let (sends, events) = run(m, base, secs(100.0));
    assert!(sends.is_empty(), "{why}");
    assert_eq!(events, vec![(secs(t), TransactionEvent::Terminated)]);
}

/// The next event is a response with this code, passed up to the TU.
fn assert_response_event<M: Machine>(m: &mut M, code: u16) {
    let event = m.event();
    assert!(
        matches!(&event, Some(TransactionEvent::Response(r)) if r.code == code),
        "expected a {code} for the TU, got {event:?}"
    );
}

#[test]
fn client_invite_retransmits_on_a_and_times_out_on_b() {
    let (base, _, mut tx) = start(ClientInvite::new, "INVITE", "z9hG4bKa");
    assert_eq!(drain_sends(&mut tx), 1, "INVITE sent at once");
    let (sends, events) = run(&mut tx, base, secs(100.0));
    assert_eq!(sends, at(&[0.5, 1.5, 3.5, 7.5, 15.5, 31.5]));
    assert_eq!(events, timed_out_at(32.0));
    assert_eq!(tx.state(), ClientInviteState::Terminated);
    assert_eq!(tx.poll_timeout(), None);
}

#[test]
fn client_invite_stops_retransmitting_after_provisional() {
    let (base, invite, mut tx) = start(ClientInvite::new, "INVITE", "z9hG4bKb");
    drain_sends(&mut tx);
    tx.handle_timeout(base + secs(0.5));
    assert_eq!(drain_sends(&mut tx), 1);
    let ringing = reparse_response(&response_to(&invite, 180, "Ringing").with_to_tag("t1"));
    tx.handle_response(base + secs(0.7), &ringing);
    assert_eq!(tx.state(), ClientInviteState::Proceeding);
    assert_response_event(&mut tx, 180);
    // Neither A nor B runs in Proceeding: nothing to wake for.
    assert_eq!(tx.poll_timeout(), None);
    tx.handle_timeout(base + secs(100.0));
    assert_eq!(drain_sends(&mut tx), 0);
    assert_eq!(tx.poll_event(), None);
}

#[test]
fn client_invite_acks_non_2xx_and_reacks_retransmissions_until_d() {
    let (base, invite, mut tx) = start(ClientInvite::new, "INVITE", "z9hG4bKc");
    drain_sends(&mut tx);
    let busy = reparse_response(&response_to(&invite, 486, "Busy Here").with_to_tag("t2"));
    tx.handle_response(base + secs(1.0), &busy);
    assert_eq!(tx.state(), ClientInviteState::Completed);
    let ack = tx.poll_transmit().expect("ACK sent");
    let ack = match parse(&ack).unwrap() {
        SipMessage::Request(r) => r,
        other => panic!("{other:?}"),
    };
    assert_eq!(ack.method, Method::Ack);
    assert_eq!(ack.branch(), invite.branch(), "same branch as the INVITE");
    assert_eq!(ack.to_tag().as_deref(), Some("t2"), "To from the response");
    assert_eq!(ack.cseq().unwrap().seq, 1);
    assert_eq!(ack.cseq().unwrap().method, Method::Ack);
    assert_eq!(ack.uri, invite.uri);
    assert_response_event(&mut tx, 486);
    // A retransmitted 486 is re-ACKed, not passed up.
    tx.handle_response(base + secs(2.0), &busy);
    assert_eq!(drain_sends(&mut tx), 1);
    assert_eq!(tx.poll_event(), None);
    // Timer D: 32 s after the final response.
    assert_eq!(tx.poll_timeout(), Some(base + secs(33.0)));
    assert_ends_quietly_at(
        &mut tx,
        base,
        33.0,
        "Completed never retransmits on its own",
    );
}

#[test]
fn client_invite_accepted_passes_2xx_retransmissions_until_m() {
    let (base, invite, mut tx) = start(ClientInvite::new, "INVITE", "z9hG4bKd");
    drain_sends(&mut tx);
    let ok = reparse_response(&response_to(&invite, 200, "OK").with_to_tag("t3"));
    tx.handle_response(base + secs(2.0), &ok);
    assert_eq!(tx.state(), ClientInviteState::Accepted);
    assert_eq!(
        drain_sends(&mut tx),
        0,
        "the TU ACKs a 2xx, not the transaction"
    );
    assert_response_event(&mut tx, 200);
    tx.handle_response(base + secs(2.5), &ok);
    assert_response_event(&mut tx, 200);
    let (_, events) = run(&mut tx, base, secs(100.0));
    assert_eq!(events, vec![(secs(34.0), TransactionEvent::Terminated)]);
}

#[test]
fn client_non_invite_e_doubles_to_t2_and_f_times_out() {
    let (base, _, mut tx) = start(ClientNonInvite::new, "OPTIONS", "z9hG4bKe");
    assert_eq!(drain_sends(&mut tx), 1);
    let (sends, events) = run(&mut tx, base, secs(100.0));
    // Intervals 0.5, 1, 2, 4, 4, 4, ...
    assert_eq!(sends, at(&DOUBLING_TO_T2));
    assert_eq!(events, timed_out_at(32.0));
    assert_eq!(tx.state(), ClientNonInviteState::Terminated);
}

#[test]
fn client_non_invite_after_provisional_e_fires_every_t2() {
    let (base, bye, mut tx) = start(ClientNonInvite::new, "BYE", "z9hG4bKf");
    drain_sends(&mut tx);
    // Retransmissions at 0.5 and 1.5, then a 100 at 2.0: the pending E (3.5) stands, and
    // from there on E is T2.
    tx.handle_timeout(base + secs(0.5));
    tx.handle_timeout(base + secs(1.5));
    assert_eq!(drain_sends(&mut tx), 2);
    let trying = reparse_response(&response_to(&bye, 100, "Trying"));
    tx.handle_response(base + secs(2.0), &trying);
    assert_eq!(tx.state(), ClientNonInviteState::Proceeding);
    assert_response_event(&mut tx, 100);
    let (sends, events) = run(&mut tx, base, secs(100.0));
    assert_eq!(sends, at(&[3.5, 7.5, 11.5, 15.5, 19.5, 23.5, 27.5, 31.5]));
    assert_eq!(events[0], (secs(32.0), TransactionEvent::Timeout));
}

#[test]
fn client_non_invite_provisional_early_in_trying() {
    let (base, bye, mut tx) = start(ClientNonInvite::new, "BYE", "z9hG4bKf2");
    drain_sends(&mut tx);
    let trying = reparse_response(&response_to(&bye, 100, "Trying"));
    tx.handle_response(base + secs(0.2), &trying);
    let (sends, _) = run(&mut tx, base, secs(10.0));
    assert_eq!(sends, at(&[0.5, 4.5, 8.5]));
}

#[test]
fn client_non_invite_final_then_k() {
    let (base, bye, mut tx) = start(ClientNonInvite::new, "BYE", "z9hG4bKg");
    drain_sends(&mut tx);
    let ok = reparse_response(&response_to(&bye, 200, "OK"));
    tx.handle_response(base + secs(1.0), &ok);
    assert_eq!(tx.state(), ClientNonInviteState::Completed);
    assert_response_event(&mut tx, 200);
    tx.handle_response(base + secs(1.2), &ok);
    assert_eq!(tx.poll_event(), None, "retransmitted final absorbed");
    assert_ends_quietly_at(&mut tx, base, 6.0, "Completed never retransmits on its own");
}

#[test]
fn server_invite_retransmits_final_on_g_until_h() {
    let (base, invite, mut tx) = start(ServerInvite::new, "INVITE", "z9hG4bKh");
    let trying = tx.poll_transmit().expect("100 Trying at once");
    assert!(trying.starts_with(b"SIP/2.0 100 Trying\r\n"));
    let busy = response_to(&invite, 486, "Busy Here").with_to_tag("s1");
    tx.send_response(base + secs(1.0), &busy).unwrap();
    assert_eq!(tx.poll_transmit(), Some(busy.to_bytes()));
    assert_eq!(tx.state(), ServerInviteState::Completed);
    let (sends, events) = run(&mut tx, base, secs(100.0));
    // G from the final (t = 1): +0.5, +1.5, +3.5, +7.5, +11.5, ... +31.5; H at +32.
    let expected: Vec<Duration> = DOUBLING_TO_T2.iter().map(|t| secs(t + 1.0)).collect();
    assert_eq!(sends, expected);
    assert_eq!(events, timed_out_at(33.0));
}

#[test]
fn server_invite_ack_confirms_then_i() {
    let (base, invite, mut tx) = start(ServerInvite::new, "INVITE", "z9hG4bKi");
    drain_sends(&mut tx);
    let busy = response_to(&invite, 486, "Busy Here").with_to_tag("s2");
    tx.send_response(base, &busy).unwrap();
    drain_sends(&mut tx);
    tx.handle_timeout(base + secs(0.5));
    assert_eq!(drain_sends(&mut tx), 1);
    // INVITE retransmission in Completed: the final again.
    tx.handle_request(base + secs(0.8), &invite);
    assert_eq!(tx.poll_transmit(), Some(busy.to_bytes()));
    let ack = request("ACK", "z9hG4bKi");
    tx.handle_request(base + secs(1.0), &ack);
    assert_eq!(tx.state(), ServerInviteState::Confirmed);
    tx.handle_request(base + secs(1.1), &ack);
    assert_eq!(drain_sends(&mut tx), 0, "ACKs absorbed");
    assert_ends_quietly_at(&mut tx, base, 6.0, "no G after the ACK");
}

#[test]
fn server_invite_proceeding_resends_last_provisional() {
    let (base, invite, mut tx) = start(ServerInvite::new, "INVITE", "z9hG4bKj");
    let trying = tx.poll_transmit().unwrap();
    tx.handle_request(base + secs(0.5), &invite);
    assert_eq!(tx.poll_transmit(), Some(trying), "the 100 again");
    let ringing = response_to(&invite, 180, "Ringing").with_to_tag("s3");
    tx.send_response(base + secs(0.6), &ringing).unwrap();
    assert_eq!(tx.poll_transmit(), Some(ringing.to_bytes()));
    tx.handle_request(base + secs(1.5), &invite);
    assert_eq!(
        tx.poll_transmit(),
        Some(ringing.to_bytes()),
        "the 180 again"
    );
    assert_eq!(tx.poll_timeout(), None, "Proceeding has no timer on UDP");
}

#[test]
fn server_invite_2xx_accepted_until_l() {
    let (base, invite, mut tx) = start(ServerInvite::new, "INVITE", "z9hG4bKk");
    drain_sends(&mut tx);
    let ok = response_to(&invite, 200, "OK").with_to_tag("s4");
    tx.send_response(base + secs(1.0), &ok).unwrap();
    assert_eq!(tx.state(), ServerInviteState::Accepted);
    assert_eq!(drain_sends(&mut tx), 1);
    tx.handle_request(base + secs(1.5), &invite);
    assert_eq!(
        drain_sends(&mut tx),
        0,
        "INVITE retransmission absorbed in Accepted"
    );
    tx.send_response(base + secs(1.5), &ok).unwrap();
    assert_eq!(drain_sends(&mut tx), 1, "TU's 2xx retransmission goes out");
    assert!(matches!(
        tx.send_response(base + secs(1.6), &response_to(&invite, 486, "Busy Here")),
        Err(TransactionError::WrongState { code: 486, .. })
    ));
    assert_ends_quietly_at(
        &mut tx,
        base,
        33.0,
        "the transaction never retransmits a 2xx itself",
    );
}

#[test]
fn server_non_invite_absorbs_and_resends_until_j() {
    let (base, bye, mut tx) = start(ServerNonInvite::new, "BYE", "z9hG4bKl");
    assert_eq!(tx.poll_transmit(), None, "no automatic 100 for non-INVITE");
    tx.handle_request(base + secs(0.5), &bye);
    assert_eq!(tx.poll_transmit(), None, "Trying absorbs retransmissions");
    let ok = response_to(&bye, 200, "OK").with_to_tag("s5");
    tx.send_response(base + secs(1.0), &ok).unwrap();
    assert_eq!(tx.state(), ServerNonInviteState::Completed);
    assert_eq!(tx.poll_transmit(), Some(ok.to_bytes()));
    for t in [1.5, 2.5, 4.5] {
        tx.handle_request(base + secs(t), &bye);
        assert_eq!(tx.poll_transmit(), Some(ok.to_bytes()), "resent at {t}");
    }
    assert!(tx.send_response(base + secs(5.0), &ok).is_err());
    assert_ends_quietly_at(
        &mut tx,
        base,
        33.0,
        "the final goes out again only on request",
    );
}

#[test]
fn server_non_invite_proceeding_resends_provisional() {
    let (base, info, mut tx) = start(ServerNonInvite::new, "INFO", "z9hG4bKm");
    let trying = response_to(&info, 100, "Trying");
    tx.send_response(base, &trying).unwrap();
    assert_eq!(tx.state(), ServerNonInviteState::Proceeding);
    drain_sends(&mut tx);
    tx.handle_request(base + secs(0.5), &info);
    assert_eq!(tx.poll_transmit(), Some(trying.to_bytes()));
}

#[test]
fn timers_are_configurable() {
    let timers = Timers {
        t1: Duration::from_millis(100),
        t2: Duration::from_millis(400),
        t4: Duration::from_secs(1),
        timer_d: Duration::from_secs(8),
    };
    let base = Instant::now();
    let mut tx = ClientNonInvite::new(base, request("OPTIONS", "z9hG4bKn"), timers);
    drain_sends(&mut tx);
    let (sends, events) = run(&mut tx, base, secs(100.0));
    let ms = |v: &[u64]| {
        v.iter()
            .map(|m| Duration::from_millis(*m))
            .collect::<Vec<_>>()
    };
    // 0.1, 0.2, 0.4, 0.4 ...; F = 6.4 s.
    let mut expected = vec![100, 300, 700];
    while *expected.last().unwrap() + 400 < 6400 {
        expected.push(expected.last().unwrap() + 400);
    }
    assert_eq!(sends, ms(&expected));
    assert_eq!(
        events[0],
        (Duration::from_millis(6400), TransactionEvent::Timeout)
    );
}

#[test]
fn transport_error_terminates() {
    let (base, _, mut tx) = start(ClientInvite::new, "INVITE", "z9hG4bKo");
    tx.handle_transport_error(base);
    assert_eq!(tx.poll_event(), Some(TransactionEvent::TransportError));
    assert_eq!(tx.poll_event(), Some(TransactionEvent::Terminated));
    assert_eq!(tx.poll_timeout(), None);
}

fn addr(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

/// Now, and an empty layer on the default timers.
fn layer() -> (Instant, TransactionLayer) {
    (Instant::now(), TransactionLayer::new(Timers::default()))
}

/// Feeds `request` from `source` to `layer`, which must open a server transaction for it.
fn new_server_transaction(
    layer: &mut TransactionLayer,
    now: Instant,
    source: SocketAddr,
    request: Request,
) -> TransactionKey {
    let method = request.method.clone();
    match layer.handle_request(now, source, request).unwrap() {
        Incoming::New { key, .. } => key,
        other => panic!("{method} should open a new transaction, got {other:?}"),
    }
}

#[test]
fn layer_server_invite_matching_ack_and_cancel() {
    let (base, mut layer) = layer();
    let invite = request("INVITE", "z9hG4bKp");
    let key = new_server_transaction(&mut layer, base, addr(5070), invite.clone());
    assert_eq!(key.side, Side::Server);
    let t = layer.poll_transmit().unwrap();
    assert_eq!(t.destination, addr(5070));
    assert!(t.payload.starts_with(b"SIP/2.0 100 "));
    // Retransmitted INVITE: absorbed, the 100 resent.
    assert_eq!(
        layer
            .handle_request(base + secs(0.5), addr(5070), invite.clone())
            .unwrap(),
        Incoming::Absorbed { key: key.clone() }
    );
    assert!(layer.poll_transmit().is_some());
    // A CANCEL has its own transaction but finds the INVITE.
    let cancel = request("CANCEL", "z9hG4bKp");
    assert_eq!(layer.cancel_target(&cancel), Some(key.clone()));
    let ckey = new_server_transaction(&mut layer, base, addr(5070), cancel);
    assert_ne!(ckey, key);
    layer
        .respond(base, &ckey, &response_to(&invite, 200, "OK"))
        .unwrap();
    let terminated = response_to(&invite, 487, "Request Terminated").with_to_tag("x");
    layer.respond(base, &key, &terminated).unwrap();
    while layer.poll_transmit().is_some() {}
    // The ACK for the 487 carries the INVITE's branch: it matches and stops G.
    let ack = request("ACK", "z9hG4bKp");
    assert_eq!(
        layer
            .handle_request(base + secs(0.1), addr(5070), ack)
            .unwrap(),
        Incoming::Absorbed { key: key.clone() }
    );
    layer.handle_timeout(base + secs(0.5));
    assert!(
        layer.poll_transmit().is_none(),
        "no G retransmission after ACK"
    );
    // An ACK with a fresh branch (the 2xx ACK of RFC 3261 §17.1.1.3) matches nothing.
    let ack2 = request("ACK", "z9hG4bKother");
    assert!(matches!(
        layer.handle_request(base, addr(5070), ack2).unwrap(),
        Incoming::Ack(_)
    ));
    // Everything ends: I (5 s) for the INVITE, J (32 s) for the CANCEL.
    while let Some(t) = layer.poll_timeout() {
        layer.handle_timeout(t);
    }
    assert!(layer.is_empty());
    let terminated: Vec<_> = std::iter::from_fn(|| layer.poll_event())
        .filter(|(_, e)| *e == TransactionEvent::Terminated)
        .map(|(k, _)| k)
        .collect();
    assert_eq!(terminated, vec![key, ckey]);
}

#[test]
fn layer_same_branch_from_other_host_is_another_transaction() {
    let (base, mut layer) = layer();
    let a = request("OPTIONS", "z9hG4bKsame");
    let text = String::from_utf8(a.to_bytes().to_vec())
        .unwrap()
        .replace("127.0.0.1:5070", "127.0.0.2:5070");
    let SipMessage::Request(b) = parse(text.as_bytes()).unwrap() else {
        panic!()
    };
    new_server_transaction(&mut layer, base, addr(5070), a);
    new_server_transaction(&mut layer, base, addr(5071), b);
    assert_eq!(layer.len(), 2);
}

#[test]
fn layer_client_matches_by_branch_and_cseq_method() {
    let (base, mut layer) = layer();
    let invite = request("INVITE", "z9hG4bKq");
    let key = layer
        .send_request(base, addr(5080), invite.clone())
        .unwrap();
    assert_eq!(key, TransactionKey::client(&invite).unwrap());
    assert_eq!(layer.poll_transmit().unwrap().destination, addr(5080));
    assert!(matches!(
        layer.send_request(base, addr(5080), invite.clone()),
        Err(TransactionError::Duplicate { .. })
    ));
    assert_eq!(
        layer.send_request(base, addr(5080), request("ACK", "z9hG4bKq")),
        Err(TransactionError::AckIsNotATransaction)
    );
    // Same branch, CSeq method CANCEL: not this transaction.
    let cancel = request("CANCEL", "z9hG4bKq");
    let cancel_ok = reparse_response(&response_to(&cancel, 200, "OK"));
    assert!(matches!(
        layer.handle_response(base, cancel_ok),
        ResponseMatch::Unmatched(_)
    ));
    let ringing = reparse_response(&response_to(&invite, 180, "Ringing").with_to_tag("u"));
    assert_eq!(
        layer.handle_response(base + secs(0.3), ringing),
        ResponseMatch::Matched(key.clone())
    );
    assert!(matches!(
        layer.poll_event(),
        Some((k, TransactionEvent::Response(r))) if k == key && r.code == 180
    ));
    // No retransmission in Proceeding.
    layer.handle_timeout(base + secs(10.0));
    assert!(layer.poll_transmit().is_none());
}

#[test]
fn layer_client_non_invite_timeout_reports_and_forgets() {
    let (base, mut layer) = layer();
    let key = layer
        .send_request(base, addr(5080), request("OPTIONS", "z9hG4bKr"))
        .unwrap();
    let mut sends = 0;
    while let Some(t) = layer.poll_timeout() {
        layer.handle_timeout(t);
        while layer.poll_transmit().is_some() {
            sends += 1;
        }
    }
    assert_eq!(sends, 11, "1 + 10 retransmissions");
    assert_eq!(
        layer.poll_event(),
        Some((key.clone(), TransactionEvent::Timeout))
    );
    assert_eq!(
        layer.poll_event(),
        Some((key.clone(), TransactionEvent::Terminated))
    );
    assert!(!layer.contains(&key));
}

#[test]
fn rfc2543_ack_without_cookie_matches_its_invite() {
    let (base, mut layer) = layer();
    let invite = request("INVITE", "old1");
    let key = new_server_transaction(&mut layer, base, addr(5070), invite.clone());
    layer
        .respond(
            base,
            &key,
            &response_to(&invite, 404, "Not Found").with_to_tag("z"),
        )
        .unwrap();
    // RFC 2543 ACKs may carry another branch; the fallback key ignores it.
    let ack = request("ACK", "old2");
    assert_eq!(
        layer.handle_request(base, addr(5070), ack).unwrap(),
        Incoming::Absorbed { key }
    );
}
