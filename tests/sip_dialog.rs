//! `sip::dialog` (RFC 3261 §12) on real captures from `fixtures/sip/`: UAS dialogs from sipp and
//! baresip INVITEs, a UAC dialog from the sipp UAS's 180/200, route sets from Record-Route
//! (loose and strict routing), CSeq ordering, target refresh, and what every built request
//! looks like on the wire (each one is re-parsed by `sip::message::parse`).

use std::path::PathBuf;

use bytes::Bytes;
use hotdesk_core::sip::dialog::{Dialog, DialogError, DialogId, DialogState, InDialog};
use hotdesk_core::sip::message::{Method, NameAddr, Request, Response, SipMessage, parse};
use proptest::prelude::*;

const LOCAL_TAG: &str = "hd-local-1";
const LOCAL_CONTACT: &str = "sip:hotdesk@127.0.0.1:15960";
const SENT_BY: &str = "127.0.0.1:15960";

fn fixture(name: &str) -> Vec<u8> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/sip")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn parse_req(bytes: &[u8]) -> Request {
    match parse(bytes) {
        Ok(SipMessage::Request(r)) => r,
        other => panic!("not a request: {other:?}"),
    }
}

fn parse_resp(bytes: &[u8]) -> Response {
    match parse(bytes) {
        Ok(SipMessage::Response(r)) => r,
        other => panic!("not a response: {other:?}"),
    }
}

fn req(name: &str) -> Request {
    parse_req(&fixture(name))
}

fn resp(name: &str) -> Response {
    parse_resp(&fixture(name))
}

/// A request we built, through the wire and back: it must be a valid message.
fn wire(r: &Request) -> Request {
    parse_req(&r.to_bytes())
}

/// `r` with extra header lines, re-parsed from its wire form.
fn with_headers(r: &Request, extra: &[(&str, &str)]) -> Request {
    let mut r = r.clone();
    for (n, v) in extra {
        r.headers.push(n, v);
    }
    wire(&r)
}

fn resp_with_headers(r: &Response, extra: &[(&str, &str)]) -> Response {
    let mut r = r.clone();
    for (n, v) in extra {
        r.headers.push(n, v);
    }
    parse_resp(&r.to_bytes())
}

fn header<'a>(r: &'a Request, name: &str) -> &'a str {
    r.headers
        .get(name)
        .unwrap_or_else(|| panic!("no {name} in {r:?}"))
}

fn routes(r: &Request) -> Vec<&str> {
    r.headers.get_all("Route").collect()
}

/// A request baresip would send in the dialog of `baresip_invite.txt` once we answered it.
fn from_baresip(method: Method, cseq: u32, extra: &[(&str, &str)]) -> Request {
    let mut r = Request::new(method.clone(), "sip:hotdesk@127.0.0.1:15960")
        .with_header(
            "Via",
            &format!("SIP/2.0/UDP 127.0.0.1:15991;branch=z9hG4bKbare{cseq};rport"),
        )
        .with_header("Max-Forwards", "70")
        .with_header("To", &format!("<sip:*88@127.0.0.1:15961>;tag={LOCAL_TAG}"))
        .with_header("From", "<sip:5401@127.0.0.1>;tag=38f82b6c934dd0ce")
        .with_header("Call-ID", "094fbcbf2f904824")
        .with_header("CSeq", &format!("{cseq} {method}"));
    for (n, v) in extra {
        r.headers.push(n, v);
    }
    wire(&r)
}

/// A confirmed UAS dialog for the baresip INVITE.
fn baresip_dialog() -> Dialog {
    let invite = req("valid/baresip_invite.txt");
    let mut d = Dialog::uas(&invite, LOCAL_TAG, LOCAL_CONTACT).unwrap();
    let ok = d.response(&invite, 200, "OK");
    assert_eq!(ok.to_tag().as_deref(), Some(LOCAL_TAG));
    assert_eq!(d.state(), DialogState::Confirmed);
    d
}

#[test]
fn uas_dialog_from_sipp_invite() {
    let invite = req("valid/sipp_uac_invite.txt");
    let mut d = Dialog::uas(&invite, LOCAL_TAG, LOCAL_CONTACT).unwrap();
    assert_eq!(
        d.id(),
        &DialogId {
            call_id: "1-16193@127.0.0.1".into(),
            local_tag: LOCAL_TAG.into(),
            remote_tag: "16193SIPpTag001".into(),
        }
    );
    assert_eq!(d.state(), DialogState::Early);
    assert_eq!(d.remote_target(), "sip:5401@127.0.0.1:15970;transport=UDP");
    assert_eq!(d.route_set().count(), 0);
    assert_eq!(d.remote_seq(), Some(1));
    assert_eq!(d.local_seq(), None);

    // The 180 and 200 carry our tag and Contact; only the 200 confirms.
    let ringing = d.response(&invite, 180, "Ringing");
    assert_eq!(ringing.to_tag().as_deref(), Some(LOCAL_TAG));
    assert_eq!(d.state(), DialogState::Early);
    let ok = d.response(&invite, 200, "OK");
    assert_eq!(
        ok.headers.get("Contact"),
        Some("<sip:hotdesk@127.0.0.1:15960>")
    );
    assert_eq!(d.state(), DialogState::Confirmed);
    // The 200 goes out as a valid message whose tags name this dialog from the peer's side.
    let ok = parse_resp(&ok.to_bytes());
    assert_eq!(ok.from_tag().as_deref(), Some("16193SIPpTag001"));
    assert_eq!(ok.call_id(), Some("1-16193@127.0.0.1"));

    let bye = wire(&d.request(Method::Bye, SENT_BY, None).unwrap());
    assert_eq!(bye.method, Method::Bye);
    assert_eq!(bye.uri, "sip:5401@127.0.0.1:15970;transport=UDP");
    assert!(routes(&bye).is_empty());
    // Our tag goes in From, the caller's in To: the reverse of the INVITE.
    assert_eq!(
        header(&bye, "From"),
        "<sip:*88@127.0.0.1:15960>;tag=hd-local-1"
    );
    assert_eq!(
        header(&bye, "To"),
        "<sip:5401@127.0.0.1:15970>;tag=16193SIPpTag001"
    );
    assert_eq!(bye.call_id(), Some("1-16193@127.0.0.1"));
    // Our first request in a UAS dialog: our own CSeq space, not the caller's.
    assert_eq!(header(&bye, "CSeq"), "1 BYE");
    assert_eq!(header(&bye, "Max-Forwards"), "70");
    let via = bye.top_via().unwrap();
    assert_eq!(via.sent_by, SENT_BY);
    assert_ne!(via.branch, invite.branch());
    assert!(via.branch.unwrap().starts_with("z9hG4bK"));
    // The dialog's own view of a request it sent is from the other side: the peer's match.
    assert_eq!(
        DialogId::for_request(&bye).map(|id| id.local_tag),
        Some("16193SIPpTag001".into())
    );
    assert_eq!(d.state(), DialogState::Terminated);
    assert_eq!(
        d.request(Method::Info, SENT_BY, None),
        Err(DialogError::Terminated)
    );
}

#[test]
fn uas_dialog_from_baresip_invite_and_its_bye() {
    let mut d = baresip_dialog();
    assert_eq!(d.remote_target(), "sip:5401-0x5615b07d9db0@127.0.0.1:15991");
    assert_eq!(d.remote_seq(), Some(49360));

    let bye = from_baresip(Method::Bye, 49361, &[]);
    assert!(d.matches_request(&bye));
    assert_eq!(d.handle_request(&bye), Ok(InDialog::Bye));
    assert_eq!(d.state(), DialogState::Terminated);
    assert_eq!(d.remote_seq(), Some(49361));

    let ok = d.response(&bye, 200, "OK");
    assert_eq!(ok.to_tag().as_deref(), Some(LOCAL_TAG));
    assert_eq!(ok.headers.get("Contact"), None);

    // Anything after the BYE: 481.
    let info = from_baresip(Method::Info, 49362, &[]);
    let err = d.handle_request(&info).unwrap_err();
    assert_eq!(err, DialogError::Terminated);
    assert_eq!(err.status_code(), Some(481));
}

#[test]
fn record_routed_invite_gives_loose_route_set_in_order() {
    let invite = with_headers(
        &req("valid/sipp_uac_invite.txt"),
        &[
            (
                "Record-Route",
                "<sip:p1.example.net;lr>, <sip:p2.example.net:5070;lr;transport=udp>",
            ),
            ("Record-Route", "<sip:10.0.0.3;lr>"),
        ],
    );
    let mut d = Dialog::uas(&invite, LOCAL_TAG, LOCAL_CONTACT).unwrap();
    assert_eq!(
        d.route_set().collect::<Vec<_>>(),
        [
            "<sip:p1.example.net;lr>",
            "<sip:p2.example.net:5070;lr;transport=udp>",
            "<sip:10.0.0.3;lr>"
        ]
    );
    assert_eq!(d.next_hop(), "sip:p1.example.net;lr");

    // §12.1.1: the dialog-creating response copies Record-Route so the caller gets it too.
    let ok = d.response(&invite, 200, "OK");
    assert_eq!(
        ok.headers.get_all("Record-Route").collect::<Vec<_>>(),
        invite.headers.get_all("Record-Route").collect::<Vec<_>>()
    );

    let bye = wire(&d.request(Method::Bye, SENT_BY, None).unwrap());
    assert_eq!(bye.uri, "sip:5401@127.0.0.1:15970;transport=UDP");
    assert_eq!(
        routes(&bye),
        [
            "<sip:p1.example.net;lr>",
            "<sip:p2.example.net:5070;lr;transport=udp>",
            "<sip:10.0.0.3;lr>"
        ]
    );
    assert_eq!(
        header(&bye, "To"),
        "<sip:5401@127.0.0.1:15970>;tag=16193SIPpTag001"
    );
}

#[test]
fn strict_router_first_goes_in_the_request_uri() {
    let invite = with_headers(
        &req("valid/sipp_uac_invite.txt"),
        &[(
            "Record-Route",
            "<sip:strict.example.net;transport=udp;method=INVITE>, <sip:p2.example.net;lr>",
        )],
    );
    let mut d = Dialog::uas(&invite, LOCAL_TAG, LOCAL_CONTACT).unwrap();
    d.response(&invite, 200, "OK");
    let bye = wire(&d.request(Method::Bye, SENT_BY, None).unwrap());
    // §12.2.1.1: the strict router is the Request-URI (minus `method`), the rest of the route
    // set follows, then the remote target as the last Route.
    assert_eq!(bye.uri, "sip:strict.example.net;transport=udp");
    assert_eq!(
        routes(&bye),
        [
            "<sip:p2.example.net;lr>",
            "<sip:5401@127.0.0.1:15970;transport=UDP>"
        ]
    );
    assert_eq!(
        d.next_hop(),
        "sip:strict.example.net;transport=udp;method=INVITE"
    );
}

#[test]
fn lr_is_read_from_the_uri_parameters_not_the_user_part() {
    // A user part may hold ';' (§19.1.1): `;lr` there does not make the router loose.
    let invite = with_headers(
        &req("valid/sipp_uac_invite.txt"),
        &[(
            "Record-Route",
            "<sip:svc;lr@strict.example.net;transport=udp>",
        )],
    );
    let mut d = Dialog::uas(&invite, LOCAL_TAG, LOCAL_CONTACT).unwrap();
    d.response(&invite, 200, "OK");
    let bye = wire(&d.request(Method::Bye, SENT_BY, None).unwrap());
    assert_eq!(bye.uri, "sip:svc;lr@strict.example.net;transport=udp");
    assert_eq!(routes(&bye), ["<sip:5401@127.0.0.1:15970;transport=UDP>"]);
}

#[test]
fn lower_cseq_is_refused_with_500_and_changes_nothing() {
    let mut d = baresip_dialog();
    let info = from_baresip(Method::Info, 49365, &[]);
    assert!(matches!(d.handle_request(&info), Ok(InDialog::Info { .. })));
    assert_eq!(d.remote_seq(), Some(49365));

    let stale = from_baresip(Method::Bye, 49362, &[]);
    let err = d.handle_request(&stale).unwrap_err();
    assert_eq!(
        err,
        DialogError::OutOfOrder {
            cseq: 49362,
            remote: 49365
        }
    );
    assert_eq!(err.status_code(), Some(500));
    assert_eq!(d.remote_seq(), Some(49365));
    assert_eq!(d.state(), DialogState::Confirmed);

    // Lower than the INVITE itself is refused too.
    let older = from_baresip(Method::Info, 1, &[]);
    assert!(matches!(
        d.handle_request(&older),
        Err(DialogError::OutOfOrder { cseq: 1, .. })
    ));
}

#[test]
fn reinvite_refreshes_the_remote_target() {
    let mut d = baresip_dialog();
    let hold = "v=0\r\no=- 1 2 IN IP4 10.1.2.3\r\ns=-\r\nc=IN IP4 10.1.2.3\r\nt=0 0\r\n\
                m=audio 17044 RTP/AVP 0 101\r\na=sendonly\r\n";
    let reinvite = wire(
        &from_baresip(
            Method::Invite,
            49361,
            &[("Contact", "<sip:5401-0x5615b07d9db0@10.1.2.3:5070>")],
        )
        .with_body("application/sdp", Bytes::from_static(hold.as_bytes())),
    );
    match d.handle_request(&reinvite).unwrap() {
        InDialog::ReInvite { sdp: Some(sdp) } => assert_eq!(&sdp[..], hold.as_bytes()),
        other => panic!("{other:?}"),
    }
    assert_eq!(d.remote_target(), "sip:5401-0x5615b07d9db0@10.1.2.3:5070");
    // The 2xx to a re-INVITE carries our Contact (§13.3.1.4) and the dialog stays confirmed.
    let ok = d.response(&reinvite, 200, "OK");
    assert!(ok.headers.get("Contact").is_some());
    assert_eq!(d.state(), DialogState::Confirmed);

    // Its ACK neither advances the remote CSeq nor trips the order check.
    let ack = from_baresip(Method::Ack, 49361, &[]);
    assert_eq!(
        d.handle_request(&ack),
        Ok(InDialog::Ack {
            cseq: 49361,
            sdp: None
        })
    );

    let bye = wire(&d.request(Method::Bye, SENT_BY, None).unwrap());
    assert_eq!(bye.uri, "sip:5401-0x5615b07d9db0@10.1.2.3:5070");
}

#[test]
fn offerless_reinvite_and_info_are_classified() {
    let mut d = baresip_dialog();
    let reinvite = from_baresip(Method::Invite, 49361, &[]);
    assert_eq!(
        d.handle_request(&reinvite),
        Ok(InDialog::ReInvite { sdp: None })
    );
    // No Contact in the re-INVITE: the target stays.
    assert_eq!(d.remote_target(), "sip:5401-0x5615b07d9db0@127.0.0.1:15991");

    let relay = "Signal=5\r\nDuration=160\r\n";
    let info = wire(&from_baresip(Method::Info, 49362, &[]).with_body(
        "application/dtmf-relay",
        Bytes::from_static(relay.as_bytes()),
    ));
    assert_eq!(
        d.handle_request(&info),
        Ok(InDialog::Info {
            content_type: Some("application/dtmf-relay".into()),
            body: Bytes::from_static(relay.as_bytes()),
        })
    );
    let options = from_baresip(Method::Options, 49363, &[]);
    assert_eq!(
        d.handle_request(&options),
        Ok(InDialog::Other(Method::Options))
    );
}

#[test]
fn requests_of_other_dialogs_get_481() {
    let mut d = baresip_dialog();
    let mut wrong_tag = from_baresip(Method::Bye, 49361, &[]);
    wrong_tag
        .headers
        .set("To", "<sip:*88@127.0.0.1:15961>;tag=someone-else");
    let err = d.handle_request(&wrong_tag).unwrap_err();
    assert!(matches!(err, DialogError::NotThisDialog { .. }), "{err}");
    assert_eq!(err.status_code(), Some(481));

    let mut wrong_call = from_baresip(Method::Bye, 49361, &[]);
    wrong_call.headers.set("Call-ID", "other-call");
    assert!(!d.matches_request(&wrong_call));
    assert_eq!(d.state(), DialogState::Confirmed);
}

#[test]
fn uas_refuses_what_it_cannot_build_a_dialog_from() {
    let invite = req("valid/sipp_uac_invite.txt");
    let mut no_contact = invite.clone();
    no_contact.headers.remove("Contact");
    let err = Dialog::uas(&no_contact, LOCAL_TAG, LOCAL_CONTACT).unwrap_err();
    assert_eq!(err, DialogError::MissingHeader { header: "Contact" });
    assert_eq!(err.status_code(), Some(400));

    let mut star = invite.clone();
    star.headers.set("Contact", "*");
    assert!(matches!(
        Dialog::uas(&star, LOCAL_TAG, LOCAL_CONTACT),
        Err(DialogError::BadHeader {
            header: "Contact",
            ..
        })
    ));

    let bad_rr = with_headers(&invite, &[("Record-Route", "garbage")]);
    assert!(matches!(
        Dialog::uas(&bad_rr, LOCAL_TAG, LOCAL_CONTACT),
        Err(DialogError::BadHeader {
            header: "Record-Route",
            ..
        })
    ));

    let mut tagged = invite.clone();
    tagged
        .headers
        .set("To", "<sip:*88@127.0.0.1:15960>;tag=stale");
    assert_eq!(
        Dialog::uas(&tagged, LOCAL_TAG, LOCAL_CONTACT)
            .unwrap_err()
            .status_code(),
        Some(481)
    );
}

#[test]
fn rfc2543_caller_without_from_tag() {
    let mut invite = req("valid/sipp_uac_invite.txt");
    invite.headers.set("From", "<sip:5401@127.0.0.1:15970>");
    let mut d = Dialog::uas(&invite, LOCAL_TAG, LOCAL_CONTACT).unwrap();
    assert_eq!(d.id().remote_tag, "");
    d.response(&invite, 200, "OK");
    let bye = wire(&d.request(Method::Bye, SENT_BY, None).unwrap());
    assert_eq!(header(&bye, "To"), "<sip:5401@127.0.0.1:15970>");
}

/// Our INVITE as sipp's UAS saw it, and its 200 with two loose routers recorded.
fn uac_pair() -> (Request, Response) {
    let invite = req("valid/sipp_uac_invite.txt");
    let ok = resp_with_headers(
        &resp("valid/sipp_uas_200.txt"),
        &[
            ("Record-Route", "<sip:edge.example.net;lr>"),
            ("Record-Route", "<sip:core.example.net;lr>"),
        ],
    );
    (invite, ok)
}

#[test]
fn uac_dialog_from_invite_and_record_routed_200() {
    let (invite, ok) = uac_pair();
    let mut d = Dialog::uac(&invite, &ok).unwrap();
    assert_eq!(d.state(), DialogState::Confirmed);
    assert_eq!(
        d.id(),
        &DialogId {
            call_id: "1-16193@127.0.0.1".into(),
            local_tag: "16193SIPpTag001".into(),
            remote_tag: "16332SIPpTag011".into(),
        }
    );
    assert!(d.matches_response(&ok));
    assert_eq!(d.remote_target(), "sip:phone@127.0.0.1:15980;transport=UDP");
    // §12.1.2: the UAC reverses Record-Route.
    assert_eq!(
        d.route_set().collect::<Vec<_>>(),
        ["<sip:core.example.net;lr>", "<sip:edge.example.net;lr>"]
    );
    assert_eq!(d.local_seq(), Some(1));
    assert_eq!(d.local_contact(), "sip:5401@127.0.0.1:15970;transport=UDP");

    // §13.2.2.4: the ACK for the 2xx has the INVITE's CSeq number, a branch of its own, and
    // the dialog's Request-URI and Route.
    let ack = wire(&d.request(Method::Ack, SENT_BY, None).unwrap());
    assert_eq!(header(&ack, "CSeq"), "1 ACK");
    assert_eq!(ack.uri, "sip:phone@127.0.0.1:15980;transport=UDP");
    assert_eq!(
        routes(&ack),
        ["<sip:core.example.net;lr>", "<sip:edge.example.net;lr>"]
    );
    assert_ne!(ack.branch(), invite.branch());
    assert_eq!(
        header(&ack, "From"),
        "<sip:5401@127.0.0.1:15970>;tag=16193SIPpTag001"
    );
    assert_eq!(
        header(&ack, "To"),
        "<sip:*88@127.0.0.1:15960>;tag=16332SIPpTag011"
    );
    assert_eq!(d.local_seq(), Some(1));

    let bye = wire(&d.request(Method::Bye, SENT_BY, None).unwrap());
    assert_eq!(header(&bye, "CSeq"), "2 BYE");
    assert_eq!(bye.uri, "sip:phone@127.0.0.1:15980;transport=UDP");
    assert_eq!(d.next_hop(), "sip:core.example.net;lr");
    assert_eq!(d.state(), DialogState::Terminated);
    // The 200 to our BYE still matches and keeps it terminated.
    let bye_ok = hotdesk_core::sip::message::response_to(&bye, 200, "OK");
    assert_eq!(d.handle_response(&bye_ok), Ok(()));
    assert_eq!(d.state(), DialogState::Terminated);
}

#[test]
fn uac_early_dialog_confirmed_by_200_recomputes_route_set() {
    let invite = req("valid/sipp_uac_invite.txt");
    let ringing = resp_with_headers(
        &resp("valid/sipp_uas_180.txt"),
        &[("Record-Route", "<sip:early.example.net;lr>")],
    );
    let mut d = Dialog::uac(&invite, &ringing).unwrap();
    assert_eq!(d.state(), DialogState::Early);
    assert_eq!(
        d.route_set().collect::<Vec<_>>(),
        ["<sip:early.example.net;lr>"]
    );

    // Another fork answering: a different To tag is a different dialog.
    let mut fork = ringing.clone();
    fork.headers
        .set("To", "<sip:*88@127.0.0.1:15980>;tag=other-fork");
    assert!(matches!(
        d.handle_response(&fork),
        Err(DialogError::NotThisDialog { .. })
    ));

    let (_, ok) = uac_pair();
    d.handle_response(&ok).unwrap();
    assert_eq!(d.state(), DialogState::Confirmed);
    assert_eq!(
        d.route_set().collect::<Vec<_>>(),
        ["<sip:core.example.net;lr>", "<sip:edge.example.net;lr>"]
    );
}

#[test]
fn uac_provisional_without_contact_waits_for_the_2xx_target() {
    let invite = req("valid/sipp_uac_invite.txt");
    let mut ringing = resp("valid/sipp_uas_180.txt");
    ringing.headers.remove("Contact");
    let mut d = Dialog::uac(&invite, &ringing).unwrap();
    assert_eq!(d.remote_target(), invite.uri);
    d.handle_response(&resp("valid/sipp_uas_200.txt")).unwrap();
    assert_eq!(d.remote_target(), "sip:phone@127.0.0.1:15980;transport=UDP");
}

#[test]
fn uac_early_dialog_ends_on_failure() {
    let invite = req("valid/sipp_uac_invite.txt");
    let mut d = Dialog::uac(&invite, &resp("valid/sipp_uas_180.txt")).unwrap();
    let mut busy = resp("valid/sipp_uas_180.txt");
    busy.code = 486;
    busy.reason = "Busy Here".into();
    d.handle_response(&busy).unwrap();
    assert_eq!(d.state(), DialogState::Terminated);
}

#[test]
fn uac_refuses_responses_that_make_no_dialog() {
    let invite = req("valid/sipp_uac_invite.txt");
    let mut trying = resp("valid/sipp_uas_100.txt");
    assert_eq!(
        Dialog::uac(&invite, &trying).unwrap_err(),
        DialogError::NotDialogCreating { code: 100 }
    );
    trying.code = 183;
    trying.headers.set("To", "<sip:*88@127.0.0.1:15980>");
    assert_eq!(
        Dialog::uac(&invite, &trying).unwrap_err(),
        DialogError::MissingHeader { header: "To tag" }
    );
    let mut no_contact = resp("valid/sipp_uas_200.txt");
    no_contact.headers.remove("Contact");
    assert_eq!(
        Dialog::uac(&invite, &no_contact).unwrap_err(),
        DialogError::MissingHeader { header: "Contact" }
    );
}

#[test]
fn reinvite_we_send_counts_cseq_and_its_ack_reuses_it() {
    let mut d = baresip_dialog();
    // A UAS dialog has sent no INVITE: nothing to ACK.
    assert_eq!(
        d.request(Method::Ack, SENT_BY, None),
        Err(DialogError::NoInviteToAck)
    );
    let offer = Bytes::from_static(b"v=0\r\n");
    let reinvite = wire(
        &d.request(
            Method::Invite,
            SENT_BY,
            Some(("application/sdp", offer.clone())),
        )
        .unwrap(),
    );
    assert_eq!(header(&reinvite, "CSeq"), "1 INVITE");
    assert_eq!(
        header(&reinvite, "Contact"),
        "<sip:hotdesk@127.0.0.1:15960>"
    );
    assert_eq!(header(&reinvite, "Content-Type"), "application/sdp");
    assert_eq!(reinvite.body, offer);
    let info = wire(&d.request(Method::Info, SENT_BY, None).unwrap());
    assert_eq!(header(&info, "CSeq"), "2 INFO");
    assert_eq!(info.headers.get("Contact"), None);

    // The peer's 200 to our re-INVITE (a target refresh) moves its target.
    let mut ok = hotdesk_core::sip::message::response_to(&reinvite, 200, "OK");
    ok.headers.push("Contact", "<sip:5401@10.9.9.9:5062>");
    d.handle_response(&ok).unwrap();
    assert_eq!(d.remote_target(), "sip:5401@10.9.9.9:5062");
    let ack = wire(&d.request(Method::Ack, SENT_BY, None).unwrap());
    assert_eq!(header(&ack, "CSeq"), "1 ACK");
    assert_eq!(ack.uri, "sip:5401@10.9.9.9:5062");
    assert_eq!(
        d.request(Method::Cancel, SENT_BY, None),
        Err(DialogError::NotInDialog {
            method: "CANCEL".into()
        })
    );
}

#[test]
fn in_dialog_481_or_408_ends_the_dialog() {
    for code in [481, 408] {
        let mut d = baresip_dialog();
        let info = d.request(Method::Info, SENT_BY, None).unwrap();
        let r = hotdesk_core::sip::message::response_to(&info, code, "x");
        d.handle_response(&r).unwrap();
        assert_eq!(d.state(), DialogState::Terminated, "{code}");
    }
}

#[test]
fn display_names_survive_into_from_and_to() {
    let mut invite = req("valid/sipp_uac_invite.txt");
    invite.headers.set(
        "From",
        "\"Desk \\\"5401\\\"\" <sip:5401@127.0.0.1:15970>;tag=abc",
    );
    let mut d = Dialog::uas(&invite, LOCAL_TAG, LOCAL_CONTACT).unwrap();
    d.response(&invite, 200, "OK");
    let bye = wire(&d.request(Method::Bye, SENT_BY, None).unwrap());
    let to = NameAddr::parse(header(&bye, "To")).unwrap();
    assert_eq!(to.display.as_deref(), Some("Desk \"5401\""));
    assert_eq!(to.tag.as_deref(), Some("abc"));
}

proptest! {
    /// Any CSeq sequence: the remote number never goes down, a lower number is exactly the
    /// one refused, and nothing panics.
    #[test]
    fn remote_cseq_never_decreases(seqs in proptest::collection::vec(0u32..100_000, 1..30)) {
        let mut d = baresip_dialog();
        for s in seqs {
            let before = d.remote_seq().unwrap();
            let r = d.handle_request(&from_baresip(Method::Info, s, &[]));
            prop_assert_eq!(r.is_err(), s < before);
            prop_assert!(d.remote_seq().unwrap() >= before);
        }
    }

    /// Arbitrary Contact and Record-Route values never panic dialog creation or use.
    #[test]
    fn hostile_headers_never_panic(contact in "\\PC{0,40}", rr in "\\PC{0,40}") {
        let mut invite = req("valid/sipp_uac_invite.txt");
        invite.headers.set("Contact", &contact);
        invite.headers.set("Record-Route", &rr);
        if let Ok(mut d) = Dialog::uas(&invite, LOCAL_TAG, LOCAL_CONTACT) {
            d.response(&invite, 200, "OK");
            let _ = d.request(Method::Bye, SENT_BY, None);
        }
        // Well-formed name-addr around arbitrary URI text reaches the route parsing.
        let mut routed = req("valid/sipp_uac_invite.txt");
        routed.headers.set("Record-Route", &format!("<sip:{rr}>"));
        if let Ok(mut d) = Dialog::uas(&routed, LOCAL_TAG, LOCAL_CONTACT) {
            let _ = d.request(Method::Bye, SENT_BY, None);
            let _ = d.next_hop();
        }
        let mut ok = resp("valid/sipp_uas_200.txt");
        ok.headers.set("Contact", &contact);
        ok.headers.set("Record-Route", &rr);
        if let Ok(mut d) = Dialog::uac(&req("valid/sipp_uac_invite.txt"), &ok) {
            let _ = d.request(Method::Ack, SENT_BY, None);
            let _ = d.handle_response(&ok);
        }
    }
}
