//! The RFC 4475 SIP torture messages, byte for byte from the RFC's own archive
//! (`fixtures/sip/rfc4475/`, see its README), each fed to the parser and, as one UDP datagram,
//! to an [`Endpoint`]; every test asserts what RFC 4475 asks of a user agent server for that
//! message (section numbers are RFC 4475's).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use bytes::Bytes;
use hotdesk_core::sip::endpoint::{Endpoint, EndpointEvent, EndpointSettings};
use hotdesk_core::sip::message::{self, Method, ParseError, Request, Response, SipMessage};
use hotdesk_core::sip::transaction::Timers;

/// Where the datagrams come from: a trusted source, so INVITEs reach the number lookup.
const PEER: &str = "192.0.2.1:5060";

/// Every file of the RFC's archive (50: the 49 messages of §3 and `test.dat`).
const ARCHIVE: &[&str] = &[
    "badaspec.dat",
    "badbranch.dat",
    "baddate.dat",
    "baddn.dat",
    "badinv01.dat",
    "badvers.dat",
    "bcast.dat",
    "bext01.dat",
    "bigcode.dat",
    "clerr.dat",
    "cparam01.dat",
    "cparam02.dat",
    "dblreq.dat",
    "esc01.dat",
    "esc02.dat",
    "escnull.dat",
    "escruri.dat",
    "insuf.dat",
    "intmeth.dat",
    "inv2543.dat",
    "invut.dat",
    "longreq.dat",
    "ltgtruri.dat",
    "lwsdisp.dat",
    "lwsruri.dat",
    "lwsstart.dat",
    "mcl01.dat",
    "mismatch01.dat",
    "mismatch02.dat",
    "mpart01.dat",
    "multi01.dat",
    "ncl.dat",
    "noreason.dat",
    "novelsc.dat",
    "quotbal.dat",
    "regaut01.dat",
    "regbadct.dat",
    "regescrt.dat",
    "scalar02.dat",
    "scalarlg.dat",
    "sdp01.dat",
    "semiuri.dat",
    "test.dat",
    "transports.dat",
    "trws.dat",
    "unkscm.dat",
    "unksm2.dat",
    "unreason.dat",
    "wsinv.dat",
    "zeromf.dat",
];

fn fixture(name: &str) -> Vec<u8> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/sip/rfc4475")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn endpoint() -> Endpoint {
    Endpoint::new(EndpointSettings {
        agent: "hotdesk-torture".into(),
        trusted: vec!["192.0.2.0/24".parse().unwrap()],
        max_calls: 10,
        // `user` is the number most of the RFC's INVITEs dial.
        services: vec!["user".into()],
        retry_after: Duration::from_secs(5),
        timers: Timers::default(),
        max_requests_per_source_s: 10_000,
        max_invites_per_source_s: 10_000,
        rate_exempt: Vec::new(),
    })
}

/// One message through the parser and through a fresh endpoint.
struct Run {
    name: &'static str,
    parsed: Result<SipMessage, ParseError>,
    ep: Endpoint,
    now: Instant,
    sent: Vec<(SocketAddr, Bytes)>,
    events: Vec<EndpointEvent>,
}

fn run(name: &'static str) -> Run {
    let mut r = Run {
        name,
        parsed: message::parse(&fixture(name)),
        ep: endpoint(),
        now: Instant::now(),
        sent: Vec::new(),
        events: Vec::new(),
    };
    r.send(&fixture(name));
    r
}

impl Run {
    fn send(&mut self, datagram: &[u8]) {
        self.ep
            .handle_datagram(self.now, PEER.parse().unwrap(), datagram);
        self.sent
            .extend(std::iter::from_fn(|| self.ep.poll_transmit()));
        self.events
            .extend(std::iter::from_fn(|| self.ep.poll_event()));
    }

    fn request(&self) -> &Request {
        match &self.parsed {
            Ok(SipMessage::Request(r)) => r,
            other => panic!("{}: not a request: {other:?}", self.name),
        }
    }

    fn response(&self) -> &Response {
        match &self.parsed {
            Ok(SipMessage::Response(r)) => r,
            other => panic!("{}: not a response: {other:?}", self.name),
        }
    }

    fn error(&self) -> &ParseError {
        match &self.parsed {
            Err(e) => e,
            Ok(m) => panic!("{}: parsed: {m:?}", self.name),
        }
    }

    /// The status line of everything sent, in order; all of it went back to the peer.
    fn status_lines(&self) -> Vec<String> {
        self.sent
            .iter()
            .map(|(to, bytes)| {
                assert_eq!(*to, PEER.parse::<SocketAddr>().unwrap(), "{}", self.name);
                let text = String::from_utf8_lossy(bytes);
                text.split("\r\n").next().unwrap_or_default().to_owned()
            })
            .collect()
    }

    /// The status codes sent, read from the status lines (a 400 copies the headers it could
    /// not read, so it need not parse).
    fn codes(&self) -> Vec<u16> {
        self.status_lines()
            .iter()
            .map(|l| {
                l.strip_prefix("SIP/2.0 ")
                    .and_then(|rest| rest.get(..3))
                    .and_then(|code| code.parse().ok())
                    .unwrap_or_else(|| panic!("{}: not a status line: {l:?}", self.name))
            })
            .collect()
    }

    /// The last response sent, parsed.
    fn last_sent(&self) -> Response {
        let (_, bytes) = self.sent.last().expect("something sent");
        match message::parse(bytes) {
            Ok(SipMessage::Response(r)) => r,
            other => panic!("{}: our answer does not parse: {other:?}", self.name),
        }
    }

    /// Nothing sent, nothing for the runtime.
    fn assert_dropped(&self) {
        assert!(self.sent.is_empty(), "{}: sent {:?}", self.name, self.sent);
        assert!(self.events.is_empty(), "{}: {:?}", self.name, self.events);
    }

    /// The only answer is a 400 whose reason phrase and Warning carry `problem`.
    fn assert_400(&self, problem: &str) {
        assert!(
            self.error().to_string().contains(problem),
            "{}: {}",
            self.name,
            self.error()
        );
        let lines = self.status_lines();
        assert_eq!(lines.len(), 1, "{}: {lines:?}", self.name);
        assert!(
            lines[0].starts_with("SIP/2.0 400 Bad Request (") && lines[0].contains(problem),
            "{}: {}",
            self.name,
            lines[0]
        );
        let text = String::from_utf8_lossy(&self.sent[0].1).into_owned();
        assert!(
            text.contains("\r\nWarning: 399 hotdesk-torture \""),
            "{}: {text}",
            self.name
        );
        assert!(self.events.is_empty(), "{}: {:?}", self.name, self.events);
    }

    /// A 100 Trying then one final response with `code`, and no call for the runtime.
    fn assert_invite_refused(&self, code: u16) -> Response {
        assert_eq!(self.codes(), vec![100, code], "{}", self.name);
        assert!(self.events.is_empty(), "{}: {:?}", self.name, self.events);
        assert_eq!(self.ep.calls(), 0, "{}", self.name);
        self.last_sent()
    }

    /// A single final response with `code` (a non-INVITE request), and no event.
    fn assert_answered(&self, code: u16) -> Response {
        assert_eq!(self.codes(), vec![code], "{}", self.name);
        assert!(self.events.is_empty(), "{}: {:?}", self.name, self.events);
        self.last_sent()
    }

    /// The INVITE was answered 100 and handed to the runtime as a new call.
    fn assert_incoming(&self) -> &Request {
        assert_eq!(self.codes(), vec![100], "{}", self.name);
        match &self.events[..] {
            [
                EndpointEvent::Incoming {
                    request, service, ..
                },
            ] => {
                assert_eq!(service, "user", "{}", self.name);
                request
            }
            other => panic!("{}: {other:?}", self.name),
        }
    }
}

/// The 405/501 the endpoint sends for a method it does not serve lists what it does serve.
fn assert_allow(r: &Response) {
    assert_eq!(
        r.headers.get("Allow"),
        Some(hotdesk_core::sip::endpoint::ALLOW),
        "{r:?}"
    );
}

#[test]
fn every_archive_file_is_here_and_asserted_on() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures/sip/rfc4475");
    let mut files: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.ends_with(".dat"))
        .collect();
    files.sort();
    assert_eq!(files, ARCHIVE);
    // A checkout that rewrote line ends would break every message: the RFC's use CRLF.
    let wsinv = fixture("wsinv.dat");
    assert_eq!(wsinv.len(), 1001);
    assert!(
        wsinv.starts_with(
            b"INVITE sip:vivekg@chair-dnrc.example.com;unknownparam SIP/2.0\r\nTO :\r\n"
        )
    );
}

/// RFC 4475 §4: the messages stress points used for attacks. Neither the parser, the 400
/// builder nor the endpoint may panic on any of them, nor on any truncation of one (a datagram
/// cut short by the network).
#[test]
fn nothing_panics_on_any_message_or_truncation() {
    for name in ARCHIVE {
        let data = fixture(name);
        let mut ep = endpoint();
        let now = Instant::now();
        for end in 0..=data.len() {
            let cut = &data[..end];
            if let Err(e) = message::parse(cut) {
                let _ = message::bad_request(cut, &e, "hotdesk-torture");
                assert!(
                    !e.to_string().contains(['\r', '\n']),
                    "{name}[..{end}]: {e}"
                );
            }
            ep.handle_datagram(now, PEER.parse().unwrap(), cut);
            while ep.poll_transmit().is_some() {}
            while ep.poll_event().is_some() {}
        }
    }
}

// §3.1.1 Valid messages: parsers must accept them; an endpoint handles them normally.

/// §3.1.1.1: folding all over, LWS around colons, slashes, semicolons and equals, escaped
/// quotes, empty Subject, unknown headers and parameters, leading zeros, mixed compact forms.
#[test]
fn wsinv_short_tortuous_invite() {
    let r = run("wsinv.dat");
    let req = r.request();
    assert_eq!(req.method, Method::Invite);
    assert_eq!(req.uri, "sip:vivekg@chair-dnrc.example.com;unknownparam");
    assert_eq!(req.headers.get("Max-Forwards"), Some("0068"));
    let cseq = req.cseq().unwrap();
    assert_eq!((cseq.seq, cseq.method), (9, Method::Invite));
    let vias = req.vias();
    let read: Vec<(&str, &str, Option<&str>)> = vias
        .iter()
        .map(|v| {
            (
                v.transport.as_str(),
                v.sent_by.as_str(),
                v.branch.as_deref(),
            )
        })
        .collect();
    assert_eq!(
        read,
        [
            ("UDP", "192.0.2.2", Some("390skdjuw")),
            ("TCP", "spindle.example.com", Some("z9hG4bK9ikj8")),
            ("UDP", "192.168.255.111", Some("z9hG4bK30239")),
        ]
    );
    assert_eq!(req.to().unwrap().uri, "sip:vivekg@chair-dnrc.example.com");
    assert_eq!(req.to_tag().as_deref(), Some("1918181833n"));
    assert_eq!(req.from().unwrap().uri, "sip:jdrosen@example.com");
    assert_eq!(req.from_tag().as_deref(), Some("98asjd8"));
    assert_eq!(req.headers.get("Subject"), Some(""));
    assert_eq!(
        req.headers.get("NewFangledHeader"),
        Some("newfangled value continued newfangled value")
    );
    assert_eq!(
        req.headers.get("UnknownHeaderWithUnusualValue"),
        Some(";;,,;;,;")
    );
    assert_eq!(req.body.len(), 150);
    // Well formed, but its To tag names a dialog we never had: 481 (RFC 3261 §12.2.2).
    let answer = r.assert_invite_refused(481);
    assert_eq!(answer.call_id(), Some("wsinv.ndaksdj@192.0.2.1"));
    assert_eq!(answer.vias().len(), 3);
}

/// §3.1.1.2: every token character in method, branch, tags and header names, quoted NUL, BEL
/// and DEL in a display name, UTF-8 values. "Endpoints will generate a 501 listing the methods
/// they understand in an Allow header field."
#[test]
fn intmeth_wide_range_of_valid_characters() {
    let r = run("intmeth.dat");
    let req = r.request();
    let method = "!interesting-Method0123456789_*+`.%indeed'~";
    assert_eq!(req.method, Method::Extension(method.into()));
    assert_eq!(req.cseq().unwrap().method, Method::Extension(method.into()));
    assert_eq!(
        req.uri,
        "sip:1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*:&it+has=1,weird!*pas$wo~d_too.(doesn't-it)@example.com"
    );
    assert_eq!(req.branch().as_deref(), Some("z9hG4bK-.!%66*_+`'~"));
    let to = req.headers.get("To").unwrap();
    assert!(
        to.starts_with("\"BEL:\\\u{7} NUL:\\\u{0} DEL:\\\u{7f}\" <sip:1_unusual"),
        "{to:?}"
    );
    assert_eq!(req.from_tag().as_deref(), Some("_token~1'+`*%!-."));
    assert_eq!(
        req.call_id(),
        Some("intmeth.word%ZK-!.*_+'@word`~)(><:\\/\"][?}{")
    );
    assert_eq!(
        req.headers.get("extensionHeader-!.%*+_`'~"),
        Some("\u{feff}大停電")
    );
    let answer = r.assert_answered(501);
    assert_allow(&answer);
    // The escaped control characters are copied into the answer's To, which still parses.
    assert!(answer.headers.get("To").unwrap().contains("NUL:\\\u{0}"));
}

/// §3.1.1.3: %-escapes in user parts and URI parameters, to be read as the characters they
/// encode.
#[test]
fn esc01_valid_use_of_the_percent_escaping_mechanism() {
    let r = run("esc01.dat");
    let req = r.request();
    assert_eq!(req.request_user().as_deref(), Some("sips:user@example.com"));
    assert_eq!(req.to().unwrap().user().as_deref(), Some("user"));
    assert_eq!(req.from().unwrap().user().as_deref(), Some("I have spaces"));
    assert_eq!(req.call_id(), Some("esc01.239409asdfakjkn23onasd0-3234"));
    assert_eq!(
        req.headers.get("Contact"),
        Some("<sip:cal%6Cer@host5.example.net;%6C%72;n%61me=v%61lue%25%34%31>")
    );
    assert_eq!(req.body.len(), 150);
    // The decoded user is looked up as a number, and nobody answers it.
    r.assert_invite_refused(404);
}

/// §3.1.1.4: escaped NULs in user parts; the AOR must not be cut short at the NUL.
#[test]
fn escnull_escaped_nulls_in_uris() {
    let r = run("escnull.dat");
    let req = r.request();
    assert_eq!(req.method, Method::Register);
    assert_eq!(req.to().unwrap().user().as_deref(), Some("null-\u{0}-null"));
    assert_eq!(req.headers.get_all("Contact").count(), 2);
    // We are not a registrar: 405 (what RFC 4475 §3.3.7 calls appropriate for such endpoints).
    assert_allow(&r.assert_answered(405));
}

/// §3.1.1.5: % is no escape in a method, a display name or a header name. "An endpoint would
/// reject this message with a 501."
#[test]
fn esc02_use_of_percent_when_it_is_not_an_escape() {
    let r = run("esc02.dat");
    let req = r.request();
    assert_eq!(req.method, Method::Extension("RE%47IST%45R".into()));
    assert_eq!(req.to().unwrap().display.as_deref(), Some("%Z%45"));
    // Two Contact values, not three: C%6Fntact is a header of its own.
    assert_eq!(req.headers.get_all("Contact").count(), 2);
    assert_eq!(
        req.headers.get("C%6Fntact"),
        Some("<sip:alias2@host2.example.com>")
    );
    assert_allow(&r.assert_answered(501));
}

/// §3.1.1.6: no LWS between a display-name token and `<`; "elements should accept this".
#[test]
fn lwsdisp_no_lws_between_display_name_and_angle_bracket() {
    let r = run("lwsdisp.dat");
    let from = r.request().from().unwrap();
    assert_eq!(from.display.as_deref(), Some("caller"));
    assert_eq!(from.uri, "sip:caller@example.com");
    assert_eq!(from.tag.as_deref(), Some("323"));
    let answer = r.assert_answered(200);
    assert_eq!(answer.cseq().unwrap().method, Method::Options);
    assert_allow(&answer);
}

/// §3.1.1.7: very long values and 34 Via entries, written with every case and spacing of the
/// Via name.
#[test]
fn longreq_long_values_in_header_fields() {
    let r = run("longreq.dat");
    let req = r.request();
    let vias = req.vias();
    assert_eq!(vias.len(), 34);
    assert_eq!(vias[0].sent_by, "sip33.example.com");
    assert_eq!(vias[33].sent_by, "host.example.com");
    let tag = format!("12{}424", "982".repeat(50));
    assert_eq!(req.from_tag(), Some(tag));
    assert_eq!(
        req.call_id(),
        Some(format!("longreq.one{}longcallid", "really".repeat(20)).as_str())
    );
    assert_eq!(req.body.len(), 150);
    let incoming = r.assert_incoming();
    assert_eq!(incoming.vias().len(), 34);
}

/// §3.1.1.8: a REGISTER with Content-Length 0 followed, in the same datagram, by bytes that
/// look like an INVITE: noise to ignore (RFC 3261 §18.3).
#[test]
fn dblreq_extra_trailing_octets_in_a_udp_datagram() {
    let r = run("dblreq.dat");
    let req = r.request();
    assert_eq!(req.method, Method::Register);
    assert!(req.body.is_empty());
    assert_eq!(
        req.call_id(),
        Some("dblreq.0ha0isndaksdj99sdfafnl3lk233412")
    );
    // One answer, to the REGISTER; no 100 Trying, no call for the INVITE-looking noise.
    let answer = r.assert_answered(405);
    assert_eq!(answer.cseq().unwrap().method, Method::Register);
}

/// §3.1.1.9: "The Request-URI will parse so that the user part is user;par=u@example.net."
#[test]
fn semiuri_semicolon_separated_parameters_in_uri_user_part() {
    let r = run("semiuri.dat");
    assert_eq!(
        r.request().request_user().as_deref(),
        Some("user;par=u@example.net")
    );
    assert_eq!(
        r.request().headers.get("Accept"),
        Some(
            "application/sdp, application/pkcs7-mime, multipart/mixed, multipart/signed, message/sip, message/sipfrag"
        )
    );
    r.assert_answered(200);
}

/// §3.1.1.10: Via values with every known transport and an unknown one; "parsers must accept
/// this message as well formed".
#[test]
fn transports_varied_and_unknown_transport_types() {
    let r = run("transports.dat");
    let transports: Vec<String> = r
        .request()
        .vias()
        .into_iter()
        .map(|v| v.transport)
        .collect();
    assert_eq!(transports, ["UDP", "SCTP", "TLS", "UNKNOWN", "TCP"]);
    let answer = r.assert_answered(200);
    assert_eq!(answer.vias().len(), 5);
}

/// §3.1.1.11: a multipart body whose binary part holds NUL and bare LF octets; framing must
/// follow Content-Length, not the bytes.
#[test]
fn mpart01_multipart_mime_message() {
    let r = run("mpart01.dat");
    let req = r.request();
    assert_eq!(req.method, Method::Message);
    assert_eq!(req.body.len(), 553);
    assert!(req.body.starts_with(b"--7a9cbec02ceef655\r\n"));
    assert!(req.body.ends_with(b"\r\n--7a9cbec02ceef655--\r\n"));
    assert!(req.body.contains(&0));
    // We take no instant messages.
    assert_allow(&r.assert_answered(405));
}

/// §3.1.1.12: a reason phrase in UTF-8; "a parser must accept this message". It answers
/// nothing we sent, so the endpoint drops it.
#[test]
fn unreason_unusual_reason_phrase() {
    let r = run("unreason.dat");
    let resp = r.response();
    assert_eq!(resp.code, 200);
    assert_eq!(
        resp.reason,
        "= 2**3 * 5**2 но сто девяносто девять - простое"
    );
    assert_eq!(resp.body.len(), 154);
    r.assert_dropped();
}

/// §3.1.1.13: "SIP/2.0 100 " with an empty reason phrase; "a parser must accept this
/// message". It answers nothing we sent, so the endpoint drops it.
#[test]
fn noreason_empty_reason_phrase() {
    let r = run("noreason.dat");
    let resp = r.response();
    assert_eq!((resp.code, resp.reason.as_str()), (100, ""));
    r.assert_dropped();
}

// §3.1.2 Invalid messages.

/// §3.1.2.1: extra `;` and `,` in Via and Contact; "should respond with a 400 Bad Request".
#[test]
fn badinv01_extraneous_header_field_separators() {
    run("badinv01.dat").assert_400("bad Via");
}

/// §3.1.2.2: Content-Length 9999 with a 150-octet body; over UDP, "should respond with a 400".
#[test]
fn clerr_content_length_larger_than_message() {
    let r = run("clerr.dat");
    assert!(matches!(
        r.error(),
        ParseError::ContentLengthExceedsBody { declared: 9999, .. }
    ));
    r.assert_400("Content-Length 9999 exceeds body");
}

/// §3.1.2.3: Content-Length -999; "should respond with an error" and discard the rest.
#[test]
fn ncl_negative_content_length() {
    let r = run("ncl.dat");
    assert!(matches!(
        r.error(),
        ParseError::BadHeader {
            header: "Content-Length",
            ..
        }
    ));
    r.assert_400("bad Content-Length \"-999\"");
}

/// §3.1.2.4: CSeq, Max-Forwards, Expires and a Contact expires out of range; "should respond
/// with a 400 Bad Request due to the CSeq error".
#[test]
fn scalar02_request_scalar_fields_with_overlarge_values() {
    run("scalar02.dat").assert_400("bad CSeq \"36893488147419103232 REGISTER\"");
}

/// §3.1.2.5: a response with an overlarge CSeq: "An element receiving this response will
/// simply discard it."
#[test]
fn scalarlg_response_scalar_fields_with_overlarge_values() {
    let r = run("scalarlg.dat");
    assert!(matches!(
        r.error(),
        ParseError::BadHeader { header: "CSeq", .. }
    ));
    r.assert_dropped();
}

/// §3.1.2.6: `To: "Mr. J. User <sip:j.user@example.com>` never closes its quote; "should
/// return a 400 Bad Request".
#[test]
fn quotbal_unterminated_quoted_string_in_display_name() {
    run("quotbal.dat").assert_400("bad To");
}

/// §3.1.2.7: `INVITE <sip:user@example.com> SIP/2.0`; "reasonable always to reject ... with a
/// 400".
#[test]
fn ltgtruri_angle_brackets_enclosing_request_uri() {
    run("ltgtruri.dat").assert_400("bad Request-URI \"<sip:user@example.com>\"");
}

/// §3.1.2.8: `sip:user@example.com; lr` in the Request-Line; "should respond with a 400".
#[test]
fn lwsruri_malformed_request_uri_with_embedded_lws() {
    run("lwsruri.dat").assert_400("bad start line");
}

/// §3.1.2.9: two spaces between Request-Line elements; "acceptable to reject this request as
/// malformed".
#[test]
fn lwsstart_multiple_sp_separating_request_line_elements() {
    run("lwsstart.dat").assert_400("bad start line");
}

/// §3.1.2.10: spaces after SIP/2.0 in the Request-Line; "acceptable to reject this request as
/// malformed".
#[test]
fn trws_sp_characters_at_end_of_request_line() {
    run("trws.dat").assert_400("bad start line");
}

/// §3.1.2.11: escaped headers in the Request-URI; "acceptable ... to reject this request with a
/// 400".
#[test]
fn escruri_escaped_headers_in_sip_request_uri() {
    run("escruri.dat").assert_400("bad Request-URI");
}

/// §3.1.2.12: `Date: ... EST`. Rejecting is allowed, "though an element shouldn't do that
/// unless the contents of the Date header field were actually important to its processing":
/// we never read Date, so the call goes ahead.
#[test]
fn baddate_invalid_time_zone_in_date_header_field() {
    let r = run("baddate.dat");
    assert_eq!(
        r.request().headers.get("Date"),
        Some("Fri, 01 Jan 2010 16:00:00 EST")
    );
    r.assert_incoming();
}

/// §3.1.2.13: a Contact with an escaped header outside `<>`. 400 is reasonable; method
/// inspection comes first (RFC 3261 §8.2.1), and we refuse REGISTER whatever its Contact.
#[test]
fn regbadct_failure_to_enclose_name_addr_uri_in_angle_brackets() {
    let r = run("regbadct.dat");
    assert_eq!(r.request().method, Method::Register);
    assert_allow(&r.assert_answered(405));
}

/// §3.1.2.14: `To: "Watson, Thomas" < sip:t.watson@example.org >`. "Parsers receiving this
/// request must not break"; 400 is reasonable and "elements attempting to be liberal may
/// ignore the spaces", which is what we do.
#[test]
fn badaspec_spaces_within_addr_spec() {
    let r = run("badaspec.dat");
    let to = r.request().to().unwrap();
    assert_eq!(to.uri, "sip:t.watson@example.org");
    assert_eq!(to.display.as_deref(), Some("Watson, Thomas"));
    r.assert_answered(200);
}

/// §3.1.2.15: unquoted display names with a comma. 400 is reasonable; "an element may attempt
/// to be liberal in what it receives and infer the missing quotes": we read the display up to
/// `<` and answer. (This file also lacks the blank line that ends the headers.)
#[test]
fn baddn_non_token_characters_in_display_name() {
    let r = run("baddn.dat");
    let from = r.request().from().unwrap();
    assert_eq!(from.display.as_deref(), Some("Bell, Alexander"));
    assert_eq!(from.uri, "sip:a.g.bell@example.com");
    assert_eq!(from.tag.as_deref(), Some("43"));
    r.assert_answered(200);
}

/// §3.1.2.16: `SIP/7.0`; "the element should respond to the request with a 505 Version Not
/// Supported error".
#[test]
fn badvers_unknown_protocol_version() {
    let r = run("badvers.dat");
    assert!(matches!(r.error(), ParseError::BadVersion { version } if version == "SIP/7.0"));
    let lines = r.status_lines();
    assert_eq!(lines.len(), 1);
    assert!(
        lines[0].starts_with("SIP/2.0 505 Version Not Supported") && lines[0].contains("SIP/7.0"),
        "{}",
        lines[0]
    );
    // Addressed with the request's own headers, its SIP/7.0 Via included (§8.2.6.2).
    let text = String::from_utf8_lossy(&r.sent[0].1).into_owned();
    assert!(
        text.contains("\r\nVia: SIP/7.0/UDP c.example.com;branch=z9hG4bKkdjuw\r\n")
            && text.contains("\r\nCall-ID: badvers.31417@c.example.com\r\n"),
        "{text}"
    );
    assert!(r.events.is_empty());
}

/// §3.1.2.17: OPTIONS with `CSeq: 8 INVITE`; "any element receiving this request will respond
/// with a 400 Bad Request".
#[test]
fn mismatch01_start_line_and_cseq_method_mismatch() {
    run("mismatch01.dat").assert_400("CSeq method INVITE does not match OPTIONS");
}

/// §3.1.2.18: NEWMETHOD with `CSeq: 8 INVITE`; 501 is preferred and "a 400 Bad Request is also
/// acceptable": the mismatch is found while parsing, before the method is looked at.
#[test]
fn mismatch02_unknown_method_with_cseq_method_mismatch() {
    run("mismatch02.dat").assert_400("CSeq method INVITE does not match NEWMETHOD");
}

/// §3.1.2.19: status code 4294967301; "an element receiving this response should simply drop
/// it".
#[test]
fn bigcode_overlarge_response_code() {
    let r = run("bigcode.dat");
    assert!(matches!(r.error(), ParseError::BadStatusCode { code } if code == "4294967301"));
    r.assert_dropped();
}

// §3.2 Transaction layer.

/// §3.2.1: `branch=z9hG4bK` with no identifier after the cookie. "A parser must not break";
/// the element may reject it or "fall back to the RFC 2543-style transaction identifier". We
/// fall back: a second request with the same bare branch is a new transaction, not a
/// retransmission of the first.
#[test]
fn badbranch_missing_transaction_identifier() {
    let mut r = run("badbranch.dat");
    assert_eq!(r.request().branch().as_deref(), Some("z9hG4bK"));
    assert_eq!(r.assert_answered(200).cseq().unwrap().seq, 8);
    let next = String::from_utf8(fixture("badbranch.dat"))
        .unwrap()
        .replace("CSeq: 8 OPTIONS", "CSeq: 9 OPTIONS");
    r.send(next.as_bytes());
    assert_eq!(r.codes(), vec![200, 200]);
    assert_eq!(r.last_sent().cseq().unwrap().seq, 9);
    // The first one again is a retransmission: its own answer comes back.
    r.send(&fixture("badbranch.dat"));
    assert_eq!(r.codes(), vec![200, 200, 200]);
    assert_eq!(r.last_sent().cseq().unwrap().seq, 8);
}

// §3.3 Application layer.

/// §3.3.1: no Call-ID, From or To. The element "must not break"; ideally it answers 400, but
/// such a 400 could carry no From, To or Call-ID for the caller to match it with (RFC 3261
/// §8.2.6.2), so we drop the request.
#[test]
fn insuf_missing_required_header_fields() {
    let r = run("insuf.dat");
    assert_eq!(r.error(), &ParseError::MissingHeader { header: "From" });
    r.assert_dropped();
}

/// §3.3.2: `OPTIONS nobodyKnowsThisScheme:totallyopaquecontent`; "a parser must accept this as
/// a well-formed SIP request", and the element "will reject it with a 416".
#[test]
fn unkscm_request_uri_with_unknown_scheme() {
    let r = run("unkscm.dat");
    assert_eq!(
        r.request().uri,
        "nobodyKnowsThisScheme:totallyopaquecontent"
    );
    r.assert_answered(416);
}

/// §3.3.3: `OPTIONS soap.beep://192.0.2.103:3002`; an element that never routes the scheme
/// answers 416.
#[test]
fn novelsc_request_uri_with_known_but_atypical_scheme() {
    let r = run("novelsc.dat");
    assert_eq!(r.request().uri, "soap.beep://192.0.2.103:3002");
    r.assert_answered(416);
}

/// §3.3.4: isbn:, http: and name: URIs in To, From and Contact; "parsers must not fail". A
/// registrar would answer 400; we are none (405).
#[test]
fn unksm2_unknown_uri_schemes_in_header_fields() {
    let r = run("unksm2.dat");
    let req = r.request();
    assert_eq!(req.to().unwrap().uri, "isbn:2983792873");
    assert_eq!(req.from().unwrap().uri, "http://www.example.com");
    assert_allow(&r.assert_answered(405));
}

/// §3.3.5: Require and Proxy-Require of unknown extensions; "any element receiving this request
/// will respond with a 420 Bad Extension response, containing an Unsupported header field
/// listing these features from either the Require or Proxy-Require header field, depending on
/// the role": as a UAS, Require's.
#[test]
fn bext01_proxy_require_and_require() {
    let r = run("bext01.dat");
    let answer = r.assert_answered(420);
    assert_eq!(
        answer.headers.get("Unsupported"),
        Some("nothingSupportsThis, nothingSupportsThisEither")
    );
}

/// §3.3.6: an INVITE whose body is `application/unknownformat`; "an endpoint receiving this
/// request would reject it with a 415", with an Accept of what it takes (RFC 3261 §8.2.3).
#[test]
fn invut_unknown_content_type() {
    let r = run("invut.dat");
    assert_eq!(r.request().body.len(), 40);
    let answer = r.assert_invite_refused(415);
    assert_eq!(answer.headers.get("Accept"), Some("application/sdp"));
}

/// §3.3.7: an Authorization of an unknown scheme; "endpoints choosing not to act as registrars
/// will simply reject the request. A 405 Method Not Allowed is appropriate."
#[test]
fn regaut01_unknown_authorization_scheme() {
    let r = run("regaut01.dat");
    assert_eq!(
        r.request().headers.get("Authorization"),
        Some("NoOneKnowsThisScheme opaque-data=here")
    );
    assert_allow(&r.assert_answered(405));
}

/// §3.3.8: two Call-ID, To, From, Max-Forwards and CSeq values; "would respond with a 400".
#[test]
fn multi01_multiple_values_in_single_value_required_fields() {
    let r = run("multi01.dat");
    assert_eq!(
        r.error(),
        &ParseError::DuplicateHeader { header: "Call-ID" }
    );
    r.assert_400("conflicting Call-ID headers");
}

/// §3.3.9: Content-Length 13 and 5; "should respond with an error" and discard the datagram.
#[test]
fn mcl01_multiple_content_length_values() {
    run("mcl01.dat").assert_400("conflicting Content-Length headers");
}

/// §3.3.10: a 200 whose second Via is 255.255.255.255; well formed ("parsers must not fail"),
/// and "an endpoint receiving this message should simply discard it".
#[test]
fn bcast_200_ok_with_broadcast_via() {
    let r = run("bcast.dat");
    let vias = r.response().vias();
    assert_eq!(vias[1].sent_by, "255.255.255.255");
    r.assert_dropped();
}

/// §3.3.11: Max-Forwards 0; "an endpoint should process the request as if the Max-Forwards
/// field value were still positive".
#[test]
fn zeromf_max_forwards_of_zero() {
    let r = run("zeromf.dat");
    assert_eq!(r.request().headers.get("Max-Forwards"), Some("0"));
    assert_allow(&r.assert_answered(200));
}

/// §3.3.12: a contact-param after an unbracketed Contact URI. Well formed; we are no registrar.
#[test]
fn cparam01_register_with_a_contact_header_parameter() {
    let r = run("cparam01.dat");
    assert_eq!(
        r.request().headers.get("Contact"),
        Some("sip:+19725552222@gw1.example.net;unknownparam")
    );
    assert_allow(&r.assert_answered(405));
}

/// §3.3.13: a url-parameter inside `<>`. Well formed; we are no registrar.
#[test]
fn cparam02_register_with_a_url_parameter() {
    let r = run("cparam02.dat");
    assert_eq!(
        r.request().headers.get("Contact"),
        Some("<sip:+19725552222@gw1.example.net;unknownparam>")
    );
    assert_allow(&r.assert_answered(405));
}

/// §3.3.14: an escaped Route header in a bracketed Contact URI (compact `M:`). Well formed; we
/// are no registrar.
#[test]
fn regescrt_register_with_a_url_escaped_header() {
    let r = run("regescrt.dat");
    assert_eq!(
        r.request().headers.get("Contact"),
        Some("<sip:user@example.com?Route=%3Csip:sip.example.com%3E>")
    );
    assert_allow(&r.assert_answered(405));
}

/// §3.3.15: `Accept: text/nobodyKnowsThis` on an INVITE, so our answer may not carry SDP; "could
/// respond with a 406 Not Acceptable, with a Warning/399".
#[test]
fn sdp01_unacceptable_accept_offering() {
    let r = run("sdp01.dat");
    let answer = r.assert_invite_refused(406);
    let warning = answer.headers.get("Warning").unwrap();
    assert!(warning.starts_with("399 hotdesk-torture \""), "{warning}");
}

// §3.4 Backward compatibility.

/// §3.4.1: RFC 2543 syntax (no branch, no From tag, no Content-Length, no Max-Forwards), which
/// elements "that want to maintain backwards compatibility" should accept. We hold to RFC 3261
/// §8.1.1.6 (a UAC must send Max-Forwards) and answer 400 naming the missing header; the body
/// without Content-Length and the missing branch alone would have been fine.
#[test]
fn inv2543_invite_with_rfc_2543_syntax() {
    let r = run("inv2543.dat");
    assert_eq!(
        r.error(),
        &ParseError::MissingHeader {
            header: "Max-Forwards"
        }
    );
    r.assert_400("missing Max-Forwards");
    let with_max_forwards = String::from_utf8(fixture("inv2543.dat")).unwrap().replace(
        "CSeq: 56 INVITE\r\n",
        "CSeq: 56 INVITE\r\nMax-Forwards: 70\r\n",
    );
    match message::parse(with_max_forwards.as_bytes()) {
        Ok(SipMessage::Request(req)) => {
            assert_eq!(req.branch(), None);
            assert_eq!(req.from_tag(), None);
            assert!(req.body.ends_with(b"\r\nm=audio 49217 RTP/AVP 0\r\n"));
        }
        other => panic!("{other:?}"),
    }
}

/// In the archive but in no section of the RFC: a Request-Line without SIP-Version, no Via and
/// a header line without a colon. Nothing to answer it with: dropped.
#[test]
fn test_dat_unreferenced_garbage() {
    let r = run("test.dat");
    assert!(matches!(r.error(), ParseError::MalformedHeader { .. }));
    r.assert_dropped();
}
