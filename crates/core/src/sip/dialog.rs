//! SIP dialogs (RFC 3261 §12): the peer-to-peer state an INVITE creates, sans-IO.
//!
//! Owns the dialog state of §12.1 (Call-ID, local and remote tags, local and remote CSeq
//! numbers, local and remote URIs, remote target, route set), its creation on either side
//! (§12.1.1 UAS, §12.1.2 UAC, route set reversed for the UAC), the requests sent inside it
//! (§12.2.1.1: Request-URI and Route from the route set with loose routing per §16.12 or strict
//! routing when the first route lacks `lr`; ACK for 2xx with the INVITE's CSeq number per
//! §13.2.2.4), and the checks on requests and responses received inside it (§12.2.2 CSeq order
//! → 500, target refresh, §12.2.1.2 481/408 termination, §13.2.2.4 route set recomputed on the
//! 2xx that confirms an early dialog, §15 BYE).
//!
//! ```text
//!             1xx with To tag            2xx
//!  (INVITE) ----------------> Early ------------> Confirmed
//!      |                        |                    |
//!      |          2xx           | 3xx-6xx            | BYE, 481, 408
//!      +------------------------|--------------------+
//!                               v                    v
//!                           Terminated <-------------+
//! ```
//!
//! Nothing here sends, resolves or times anything: [`Dialog::request`] builds the request and
//! the caller hands it to the transaction layer (or, for an ACK, straight to the transport),
//! at [`Dialog::next_hop`]. Transactions (retransmissions, CANCEL matching) are not here either:
//! a request reaches [`Dialog::handle_request`] once, after its server transaction accepted it.

use bytes::Bytes;

use crate::sip::message::{
    Headers, Method, NameAddr, Request, Response, new_branch, response_to, split_header_list,
};

/// Longest excerpt of offending input quoted in an error: the text may end up in a reason
/// phrase or a log line.
const EXCERPT_MAX: usize = 60;

/// Max-Forwards of the requests we originate (RFC 3261 §8.1.1.6 recommends 70).
const MAX_FORWARDS: &str = "70";

/// CSeq numbers must stay below 2^31 (RFC 3261 §8.1.1.5).
const CSEQ_LIMIT: u32 = 1 << 31;

/// Why a dialog could not be created, or refused a message. [`DialogError::status_code`] gives
/// the response a received request deserves.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DialogError {
    /// A header the dialog needs is absent (a Contact in an INVITE or 2xx, a tag, a CSeq).
    #[error("missing {header}")]
    MissingHeader {
        /// Its name.
        header: &'static str,
    },
    /// A header the dialog needs is present but unusable.
    #[error("bad {header} \"{value}\"")]
    BadHeader {
        /// Its name.
        header: &'static str,
        /// The value (excerpt).
        value: String,
    },
    /// Dialogs are created by INVITE here (§12.1: INVITE is the only RFC 3261 method that does).
    #[error("{method} does not create a dialog")]
    NotInvite {
        /// The method received.
        method: String,
    },
    /// The INVITE already has a To tag: it belongs to a dialog we do not know (§12.2.2: 481).
    #[error("INVITE already carries To tag {tag}")]
    AlreadyInDialog {
        /// The To tag.
        tag: String,
    },
    /// Only 101-299 responses with a To tag create a dialog (§12.1.2).
    #[error("a {code} response does not create a dialog")]
    NotDialogCreating {
        /// The status code.
        code: u16,
    },
    /// The message's Call-ID and tags name another dialog (§12.2.2: 481 for a request).
    #[error("not this dialog (Call-ID {call_id}, tags {local_tag}/{remote_tag})")]
    NotThisDialog {
        /// The message's Call-ID.
        call_id: String,
        /// The tag the message gives for our side.
        local_tag: String,
        /// The tag the message gives for the peer's side.
        remote_tag: String,
    },
    /// The dialog has ended (BYE, or a failure): new requests get 481 (§15.1.2).
    #[error("dialog terminated")]
    Terminated,
    /// The request's CSeq is lower than the last one the peer used (§12.2.2: answer 500).
    #[error("CSeq {cseq} is lower than {remote}")]
    OutOfOrder {
        /// The request's CSeq number.
        cseq: u32,
        /// The remote sequence number of the dialog.
        remote: u32,
    },
    /// An ACK was asked for but we never sent an INVITE in this dialog.
    #[error("no INVITE to acknowledge")]
    NoInviteToAck,
    /// CANCEL is not built from the dialog: it copies the request it cancels (§9.1).
    #[error("{method} cannot be built from dialog state")]
    NotInDialog {
        /// The method asked for.
        method: String,
    },
    /// The local CSeq would reach 2^31 (§8.1.1.5).
    #[error("local CSeq exhausted")]
    CSeqExhausted,
}

impl DialogError {
    /// The status code to answer a received request refused with this error, per §12.2.2:
    /// 481 when the dialog does not exist (any more), 500 for an out-of-order CSeq, 400 for a
    /// malformed request. `None` when the error is about something we build, not receive.
    pub fn status_code(&self) -> Option<u16> {
        match self {
            DialogError::NotThisDialog { .. }
            | DialogError::Terminated
            | DialogError::AlreadyInDialog { .. } => Some(481),
            DialogError::OutOfOrder { .. } => Some(500),
            DialogError::MissingHeader { .. } | DialogError::BadHeader { .. } => Some(400),
            DialogError::NotInvite { .. } => Some(405),
            DialogError::NotDialogCreating { .. }
            | DialogError::NoInviteToAck
            | DialogError::NotInDialog { .. }
            | DialogError::CSeqExhausted => None,
        }
    }
}

/// Quotes at most [`EXCERPT_MAX`] characters of untrusted input on one printable line.
fn excerpt(s: &str) -> String {
    let mut out: String = s
        .chars()
        .take(EXCERPT_MAX)
        .map(|c| if c.is_control() || c == '"' { '?' } else { c })
        .collect();
    if s.chars().count() > EXCERPT_MAX {
        out.push_str("...");
    }
    out
}

/// The dialog states of RFC 3261 §12 (early and confirmed, §12.1) plus the end.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DialogState {
    /// Created by a provisional response with a To tag (§12.1).
    Early,
    /// A 2xx was sent or received.
    Confirmed,
    /// BYE sent or received, a failure response ended the early dialog, or a request in it got
    /// 481/408 (§12.2.1.2).
    Terminated,
}

/// A dialog's identity (§12: Call-ID, local tag, remote tag), seen from our side. A peer
/// without tags (RFC 2543) has an empty remote tag (§12.1.1: "considered to have a value of
/// null").
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct DialogId {
    /// Call-ID, compared byte by byte (§8.1.1.4).
    pub call_id: String,
    /// Our tag.
    pub local_tag: String,
    /// The peer's tag.
    pub remote_tag: String,
}

impl DialogId {
    /// The dialog a received request claims to belong to: our tag is its To tag, the peer's
    /// its From tag (§12.2.2). `None` without a Call-ID or To tag (an out-of-dialog request).
    pub fn for_request(request: &Request) -> Option<DialogId> {
        Some(DialogId {
            call_id: request.call_id()?.to_owned(),
            local_tag: request.to_tag()?,
            remote_tag: request.from_tag().unwrap_or_default(),
        })
    }

    /// The dialog a received response belongs to: our tag is its From tag, the peer's its To
    /// tag (§12.1.2). `None` without a Call-ID, From tag or To tag.
    pub fn for_response(response: &Response) -> Option<DialogId> {
        Some(DialogId {
            call_id: response.call_id()?.to_owned(),
            local_tag: response.from_tag()?,
            remote_tag: response.to_tag()?,
        })
    }
}

/// One end of the dialog as From/To name it: display name and URI (the tag is in [`DialogId`]).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Party {
    display: Option<String>,
    uri: String,
}

impl Party {
    fn from_name_addr(n: NameAddr) -> Party {
        Party {
            display: n.display,
            uri: n.uri,
        }
    }

    /// The From/To value: always name-addr form, so the `;tag=` after `>` can never be read
    /// as a URI parameter (§20.10).
    fn header(&self, tag: &str) -> String {
        let mut out = String::new();
        if let Some(d) = &self.display {
            out.push('"');
            out.push_str(&d.replace('\\', "\\\\").replace('"', "\\\""));
            out.push_str("\" ");
        }
        out.push('<');
        out.push_str(&self.uri);
        out.push('>');
        if !tag.is_empty() {
            out.push_str(";tag=");
            out.push_str(tag);
        }
        out
    }
}

/// One route set entry: the Record-Route value as received (copied into Route unchanged, as
/// §16.12's examples do) and its URI.
#[derive(Debug, Clone, PartialEq, Eq)]
struct RouteEntry {
    raw: String,
    uri: String,
}

impl RouteEntry {
    /// Whether the proxy is a loose router (§16.12, §19.1.1: the `lr` URI parameter).
    fn is_loose(&self) -> bool {
        uri_params(&self.uri).any(|(k, _)| k.eq_ignore_ascii_case("lr"))
    }
}

/// Splits a SIP URI into the part up to the host and port (`sip:user@host:port`), the
/// `;params` text and the `?headers` text. The user part may hold `;` (§19.1.1
/// user-unreserved), so parameters are only looked for after its `@`; the headers start at
/// the first `?`, as [`crate::sip::message::uri_user`] reads them.
fn split_uri(uri: &str) -> (&str, &str, &str) {
    let (before_headers, headers) = uri.split_at(uri.find('?').unwrap_or(uri.len()));
    let host_start = before_headers
        .rfind('@')
        .or_else(|| before_headers.find(':'))
        .map_or(0, |i| i + 1);
    let params_start = before_headers[host_start..]
        .find(';')
        .map_or(before_headers.len(), |i| host_start + i);
    let (base, params) = before_headers.split_at(params_start);
    (base, params, headers)
}

/// The `;name[=value]` parameters of a SIP URI (between the host and any `?headers`).
fn uri_params(uri: &str) -> impl Iterator<Item = (&str, Option<&str>)> {
    let (_, params, _) = split_uri(uri);
    params
        .split(';')
        .filter(|p| !p.trim().is_empty())
        .map(|p| match p.split_once('=') {
            Some((k, v)) => (k.trim(), Some(v.trim())),
            None => (p.trim(), None),
        })
}

/// A route URI as a Request-URI (strict routing, §12.2.1.1): "stripping any parameters that
/// are not allowed in a Request-URI", i.e. `method` and the `?headers` part (§19.1.1 table 1).
fn as_request_uri(uri: &str) -> String {
    let (base, params, _) = split_uri(uri);
    let mut out = base.to_owned();
    for p in params.split(';').filter(|p| !p.trim().is_empty()) {
        let key = p.split('=').next().unwrap_or_default().trim();
        if !key.eq_ignore_ascii_case("method") {
            out.push(';');
            out.push_str(p);
        }
    }
    out
}

/// The route set from a message's Record-Route headers, top first, every entry validated.
fn record_routes(headers: &Headers) -> Result<Vec<RouteEntry>, DialogError> {
    headers
        .get_all("Record-Route")
        .flat_map(split_header_list)
        .map(|raw| match NameAddr::parse(raw) {
            Some(n) => Ok(RouteEntry {
                raw: raw.to_owned(),
                uri: n.uri,
            }),
            None => Err(DialogError::BadHeader {
                header: "Record-Route",
                value: excerpt(raw),
            }),
        })
        .collect()
}

/// The first Contact URI (the remote target), `None` when there is no Contact header.
fn contact_uri(headers: &Headers) -> Result<Option<String>, DialogError> {
    let Some(value) = headers.get("Contact") else {
        return Ok(None);
    };
    let first = split_header_list(value)
        .first()
        .copied()
        .unwrap_or_default();
    match NameAddr::parse(first) {
        Some(n) => Ok(Some(n.uri)),
        // `*` (only valid in REGISTER) or garbage: no target to send to.
        None => Err(DialogError::BadHeader {
            header: "Contact",
            value: excerpt(value),
        }),
    }
}

/// A body whose Content-Type is `application/sdp`, if the message has one.
fn sdp_body(headers: &Headers, body: &Bytes) -> Option<Bytes> {
    let ct = headers.get("Content-Type")?;
    let media = ct.split(';').next().unwrap_or_default().trim();
    (!body.is_empty() && media.eq_ignore_ascii_case("application/sdp")).then(|| body.clone())
}

/// Methods whose requests (and 2xx) replace the remote target: INVITE (§12.2), UPDATE (RFC
/// 3311 §5.2), SUBSCRIBE/NOTIFY (RFC 6665 §4.1.2.2), REFER (RFC 3515). They also carry our
/// Contact so the peer can refresh its own target.
fn is_target_refresh(method: &Method) -> bool {
    matches!(
        method,
        Method::Invite | Method::Update | Method::Subscribe | Method::Notify | Method::Refer
    )
}

/// What an in-dialog request asks for, once [`Dialog::handle_request`] accepted it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum InDialog {
    /// The peer hangs up (§15.1.2): answer 200; the dialog is terminated.
    Bye,
    /// A re-INVITE (hold, resume, new address): the remote target is already updated from its
    /// Contact; `sdp` is the offer, `None` for an offerless re-INVITE (§14.2, the offer goes in
    /// our 2xx).
    ReInvite {
        /// The SDP offer.
        sdp: Option<Bytes>,
    },
    /// INFO (RFC 6086), e.g. `application/dtmf-relay`.
    Info {
        /// The Content-Type, as written.
        content_type: Option<String>,
        /// The body.
        body: Bytes,
    },
    /// The ACK for our 2xx (§13.3.1.4): stop retransmitting it. `sdp` is the answer when our
    /// 2xx carried the offer.
    Ack {
        /// The CSeq number: the INVITE it acknowledges.
        cseq: u32,
        /// The SDP answer, if any.
        sdp: Option<Bytes>,
    },
    /// Any other method (OPTIONS, UPDATE, NOTIFY, REFER, …): the caller decides (e.g. 501).
    Other(Method),
}

/// An RFC 3261 §12 dialog, from our side.
///
/// Created by [`Dialog::uas`] for an INVITE we receive or [`Dialog::uac`] for a response to an
/// INVITE we sent; then [`Dialog::request`] builds what we send in it and
/// [`Dialog::handle_request`] / [`Dialog::handle_response`] check what we receive. Every input
/// is validated before any state changes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dialog {
    id: DialogId,
    state: DialogState,
    local: Party,
    remote: Party,
    local_contact: String,
    /// Last CSeq number we used; `None` until our first request on a UAS dialog (§12.1.1).
    local_seq: Option<u32>,
    /// Last CSeq number the peer used; `None` until its first request on a UAC dialog.
    remote_seq: Option<u32>,
    /// CSeq number of the last INVITE we sent: the ACK for its 2xx reuses it (§13.2.2.4).
    invite_seq: Option<u32>,
    remote_target: String,
    route_set: Vec<RouteEntry>,
    /// UAC dialog whose remote target came from the INVITE's Request-URI because the
    /// provisional response had no Contact; the 2xx must bring one.
    provisional_target: bool,
}

impl Dialog {
    /// The dialog an incoming INVITE creates (§12.1.1), in the Early state until the final
    /// response goes out through [`Dialog::response`].
    ///
    /// Remote target = the INVITE's Contact, route set = its Record-Route entries in order,
    /// remote CSeq = its CSeq, remote tag = its From tag (empty for an RFC 2543 peer), local
    /// URI = its To URI. `local_tag` (see [`crate::sip::message::new_tag`]) and
    /// `local_contact_uri` (a URI such as `sip:hotdesk@192.0.2.10:5060`) are ours.
    pub fn uas(
        invite: &Request,
        local_tag: &str,
        local_contact_uri: &str,
    ) -> Result<Dialog, DialogError> {
        if invite.method != Method::Invite {
            return Err(DialogError::NotInvite {
                method: excerpt(invite.method.as_str()),
            });
        }
        let call_id = invite
            .call_id()
            .ok_or(DialogError::MissingHeader { header: "Call-ID" })?;
        let from = invite
            .from()
            .ok_or(DialogError::MissingHeader { header: "From" })?;
        let to = invite
            .to()
            .ok_or(DialogError::MissingHeader { header: "To" })?;
        if let Some(tag) = &to.tag {
            return Err(DialogError::AlreadyInDialog { tag: excerpt(tag) });
        }
        let cseq = invite
            .cseq()
            .ok_or(DialogError::MissingHeader { header: "CSeq" })?;
        // §8.1.1.8: an INVITE MUST carry a Contact; without it there is nowhere to send BYE.
        let remote_target = contact_uri(&invite.headers)?
            .ok_or(DialogError::MissingHeader { header: "Contact" })?;
        let route_set = record_routes(&invite.headers)?;
        Ok(Dialog {
            id: DialogId {
                call_id: call_id.to_owned(),
                local_tag: local_tag.to_owned(),
                remote_tag: from.tag.clone().unwrap_or_default(),
            },
            state: DialogState::Early,
            local: Party::from_name_addr(to),
            remote: Party::from_name_addr(from),
            local_contact: local_contact_uri.to_owned(),
            local_seq: None,
            remote_seq: Some(cseq.seq),
            invite_seq: None,
            remote_target,
            route_set,
            provisional_target: false,
        })
    }

    /// The dialog a response to our INVITE creates (§12.1.2): Early for 101-199, Confirmed for
    /// 2xx; the response must carry a To tag.
    ///
    /// Route set = the response's Record-Route entries in reverse, remote target = its Contact
    /// (a provisional without one gets the INVITE's Request-URI until the 2xx arrives: real
    /// 180s often omit it), local CSeq = the INVITE's. Each fork's response with another To tag
    /// makes another dialog.
    pub fn uac(invite: &Request, response: &Response) -> Result<Dialog, DialogError> {
        if !(101..=299).contains(&response.code) {
            return Err(DialogError::NotDialogCreating {
                code: response.code,
            });
        }
        let call_id = invite
            .call_id()
            .ok_or(DialogError::MissingHeader { header: "Call-ID" })?;
        let local_tag = invite
            .from_tag()
            .ok_or(DialogError::MissingHeader { header: "From tag" })?;
        let remote_tag = response
            .to_tag()
            .ok_or(DialogError::MissingHeader { header: "To tag" })?;
        let id = DialogId {
            call_id: call_id.to_owned(),
            local_tag,
            remote_tag,
        };
        if DialogId::for_response(response).as_ref() != Some(&id) {
            return Err(not_this(DialogId::for_response(response)));
        }
        let cseq = invite
            .cseq()
            .ok_or(DialogError::MissingHeader { header: "CSeq" })?;
        let local = invite
            .from()
            .ok_or(DialogError::MissingHeader { header: "From" })?;
        let remote = invite
            .to()
            .ok_or(DialogError::MissingHeader { header: "To" })?;
        let local_contact = contact_uri(&invite.headers)?
            .ok_or(DialogError::MissingHeader { header: "Contact" })?;
        let confirmed = response.code >= 200;
        let (remote_target, provisional_target) = match contact_uri(&response.headers)? {
            Some(uri) => (uri, false),
            None if !confirmed => (invite.uri.clone(), true),
            None => return Err(DialogError::MissingHeader { header: "Contact" }),
        };
        let mut route_set = record_routes(&response.headers)?;
        route_set.reverse();
        Ok(Dialog {
            id,
            state: if confirmed {
                DialogState::Confirmed
            } else {
                DialogState::Early
            },
            local: Party::from_name_addr(local),
            remote: Party::from_name_addr(remote),
            local_contact,
            local_seq: Some(cseq.seq),
            remote_seq: None,
            invite_seq: Some(cseq.seq),
            remote_target,
            route_set,
            provisional_target,
        })
    }

    /// Call-ID, local tag, remote tag.
    pub fn id(&self) -> &DialogId {
        &self.id
    }

    /// Early, Confirmed or Terminated.
    pub fn state(&self) -> DialogState {
        self.state
    }

    /// Where in-dialog requests go (§12.1): the peer's latest Contact URI.
    pub fn remote_target(&self) -> &str {
        &self.remote_target
    }

    /// The route set, in the order the Route headers are written (first = next hop).
    pub fn route_set(&self) -> impl Iterator<Item = &str> {
        self.route_set.iter().map(|r| r.raw.as_str())
    }

    /// The URI to resolve and send in-dialog requests to (§8.1.2, §12.2.1.1): the first route
    /// when there is a route set, else the remote target.
    pub fn next_hop(&self) -> &str {
        self.route_set
            .first()
            .map_or(self.remote_target.as_str(), |r| r.uri.as_str())
    }

    /// Last CSeq number we used (`None` on a UAS dialog before our first request).
    pub fn local_seq(&self) -> Option<u32> {
        self.local_seq
    }

    /// Last CSeq number the peer used (`None` on a UAC dialog before its first request).
    pub fn remote_seq(&self) -> Option<u32> {
        self.remote_seq
    }

    /// Our Contact URI.
    pub fn local_contact(&self) -> &str {
        &self.local_contact
    }

    /// Whether a received request belongs to this dialog (§12.2.2: Call-ID, To tag = local,
    /// From tag = remote).
    pub fn matches_request(&self, request: &Request) -> bool {
        DialogId::for_request(request).as_ref() == Some(&self.id)
    }

    /// Whether a received response belongs to this dialog (From tag = local, To tag = remote).
    pub fn matches_response(&self, response: &Response) -> bool {
        DialogId::for_response(response).as_ref() == Some(&self.id)
    }

    /// Builds a request inside the dialog (§12.2.1.1) from `sent_by` (our `host:port` for the
    /// Via): Request-URI and Route from the remote target and route set, From/To with the
    /// dialog's URIs and tags, Call-ID, a new Via branch, Max-Forwards, our Contact on
    /// target-refresh methods, and the body with its Content-Type.
    ///
    /// CSeq: one more than the last local number (1 for the first request of a UAS dialog);
    /// for ACK the number of the last INVITE we sent (§13.2.2.4), which the ACK does not
    /// consume. Building a BYE terminates the dialog (§15.1.1); building an INVITE makes it
    /// the one a later ACK acknowledges. CANCEL is refused: use
    /// [`crate::sip::message::cancel_for`] on the request to cancel.
    pub fn request(
        &mut self,
        method: Method,
        sent_by: &str,
        body: Option<(&str, Bytes)>,
    ) -> Result<Request, DialogError> {
        // An ACK may still be owed for a 2xx that crossed our BYE; nothing else is sent in a
        // dialog that has ended.
        if self.state == DialogState::Terminated && method != Method::Ack {
            return Err(DialogError::Terminated);
        }
        let seq = match method {
            Method::Ack => self.invite_seq.ok_or(DialogError::NoInviteToAck)?,
            Method::Cancel => {
                return Err(DialogError::NotInDialog {
                    method: method.to_string(),
                });
            }
            _ => match self.local_seq {
                // §8.1.1.5 lets the first number be anything below 2^31; 1 keeps traces readable.
                None => 1,
                Some(n) if n + 1 < CSEQ_LIMIT => n + 1,
                Some(_) => return Err(DialogError::CSeqExhausted),
            },
        };

        // §12.2.1.1: loose routing keeps the remote target as Request-URI and the whole route
        // set as Route; a strict router (no `lr`) must see itself as Request-URI, with the
        // remote target appended as the last Route so the request still reaches the peer.
        let (uri, routes): (String, Vec<String>) = match self.route_set.first() {
            None => (self.remote_target.clone(), Vec::new()),
            Some(first) if first.is_loose() => (
                self.remote_target.clone(),
                self.route_set.iter().map(|r| r.raw.clone()).collect(),
            ),
            Some(first) => (
                as_request_uri(&first.uri),
                self.route_set[1..]
                    .iter()
                    .map(|r| r.raw.clone())
                    .chain(std::iter::once(format!("<{}>", self.remote_target)))
                    .collect(),
            ),
        };

        let mut request = Request::new(method.clone(), &uri)
            .with_header(
                "Via",
                &format!("SIP/2.0/UDP {sent_by};branch={};rport", new_branch()),
            )
            .with_header("Max-Forwards", MAX_FORWARDS);
        for r in &routes {
            request.headers.push("Route", r);
        }
        request
            .headers
            .push("From", &self.local.header(&self.id.local_tag));
        request
            .headers
            .push("To", &self.remote.header(&self.id.remote_tag));
        request.headers.push("Call-ID", &self.id.call_id);
        request.headers.push("CSeq", &format!("{seq} {method}"));
        if is_target_refresh(&method) {
            request
                .headers
                .push("Contact", &format!("<{}>", self.local_contact));
        }
        if let Some((content_type, bytes)) = body {
            request = request.with_body(content_type, bytes);
        }

        match method {
            Method::Ack => {}
            Method::Invite => {
                self.local_seq = Some(seq);
                self.invite_seq = Some(seq);
            }
            Method::Bye => {
                self.local_seq = Some(seq);
                self.state = DialogState::Terminated;
            }
            _ => self.local_seq = Some(seq),
        }
        Ok(request)
    }

    /// A response to a request of this dialog (§12.1.1, §12.2.2): the request's Via, From, To,
    /// Call-ID and CSeq, our To tag, and for an INVITE's 101-299 our Contact and the request's
    /// Record-Route (so the peer computes the same route set).
    ///
    /// For the INVITE that created the dialog this is also the UAS state change: a 2xx confirms
    /// it, a 300-699 while it is early terminates it.
    pub fn response(&mut self, request: &Request, code: u16, reason: &str) -> Response {
        let mut response = response_to(request, code, reason).with_to_tag(&self.id.local_tag);
        if request.method == Method::Invite && (101..=299).contains(&code) {
            for rr in request.headers.get_all("Record-Route") {
                response.headers.push("Record-Route", rr);
            }
            response
                .headers
                .push("Contact", &format!("<{}>", self.local_contact));
        }
        if request.method == Method::Invite {
            match (self.state, code) {
                (DialogState::Early, 200..=299) => self.state = DialogState::Confirmed,
                (DialogState::Early, 300..) => self.state = DialogState::Terminated,
                _ => {}
            }
        }
        response
    }

    /// Checks and applies a request received in this dialog (§12.2.2), after its server
    /// transaction accepted it.
    ///
    /// Refused (state unchanged), answer with [`DialogError::status_code`]: another dialog or
    /// a terminated one (481), a CSeq lower than the peer's last (500), a re-INVITE with an
    /// unusable Contact (400). Accepted: the remote CSeq advances (ACK and CANCEL reuse their
    /// INVITE's number and are not counted), a target refresh replaces the remote target, BYE
    /// terminates the dialog.
    pub fn handle_request(&mut self, request: &Request) -> Result<InDialog, DialogError> {
        if !self.matches_request(request) {
            return Err(not_this(DialogId::for_request(request)));
        }
        // An ACK can still arrive after a BYE crossed it; it changes nothing, so let it through.
        if self.state == DialogState::Terminated && request.method != Method::Ack {
            return Err(DialogError::Terminated);
        }
        let cseq = request
            .cseq()
            .ok_or(DialogError::MissingHeader { header: "CSeq" })?
            .seq;
        let counted = !matches!(request.method, Method::Ack | Method::Cancel);
        if counted
            && let Some(remote) = self.remote_seq
            && cseq < remote
        {
            // §12.2.2 only refuses lower numbers; an equal one is a retransmission the
            // transaction layer absorbs before it gets here.
            return Err(DialogError::OutOfOrder { cseq, remote });
        }
        let new_target = if is_target_refresh(&request.method) {
            contact_uri(&request.headers)?
        } else {
            None
        };

        // Everything checked: apply.
        if counted {
            self.remote_seq = Some(cseq);
        }
        if let Some(target) = new_target {
            self.remote_target = target;
        }
        Ok(match &request.method {
            Method::Bye => {
                self.state = DialogState::Terminated;
                InDialog::Bye
            }
            Method::Invite => InDialog::ReInvite {
                sdp: sdp_body(&request.headers, &request.body),
            },
            Method::Info => InDialog::Info {
                content_type: request.headers.get("Content-Type").map(str::to_owned),
                body: request.body.clone(),
            },
            Method::Ack => InDialog::Ack {
                cseq,
                sdp: sdp_body(&request.headers, &request.body),
            },
            other => InDialog::Other(other.clone()),
        })
    }

    /// Applies a response to a request we sent in this dialog (or to the INVITE that created
    /// it), after its client transaction passed it up.
    ///
    /// A 2xx to an INVITE confirms an early dialog and recomputes its route set and remote
    /// target from the 2xx (§13.2.2.4); on a confirmed dialog it is a target refresh, which
    /// replaces the remote target only (§12.2.1.2). A 300-699 to the INVITE of an early
    /// dialog terminates it (§13.2.2.3); a 481 or 408 to any request terminates the dialog
    /// (§12.2.1.2); a 2xx to BYE leaves it terminated. A provisional changes nothing.
    pub fn handle_response(&mut self, response: &Response) -> Result<(), DialogError> {
        if !self.matches_response(response) {
            return Err(not_this(DialogId::for_response(response)));
        }
        let cseq = response
            .cseq()
            .ok_or(DialogError::MissingHeader { header: "CSeq" })?;
        let code = response.code;
        if self.state == DialogState::Terminated {
            return Ok(());
        }
        if matches!(code, 408 | 481) {
            self.state = DialogState::Terminated;
            return Ok(());
        }
        if cseq.method != Method::Invite {
            return Ok(());
        }
        match (self.state, code) {
            (DialogState::Early, 200..=299) => {
                let target = contact_uri(&response.headers)?;
                let mut route_set = record_routes(&response.headers)?;
                route_set.reverse();
                match target {
                    Some(t) => {
                        self.remote_target = t;
                        self.provisional_target = false;
                    }
                    None if self.provisional_target => {
                        return Err(DialogError::MissingHeader { header: "Contact" });
                    }
                    None => {}
                }
                self.route_set = route_set;
                self.state = DialogState::Confirmed;
            }
            (DialogState::Early, 300..) => self.state = DialogState::Terminated,
            (DialogState::Confirmed, 200..=299) => {
                if let Some(t) = contact_uri(&response.headers)? {
                    self.remote_target = t;
                }
            }
            _ => {}
        }
        Ok(())
    }
}

/// The error for a message that names another dialog (or none).
fn not_this(id: Option<DialogId>) -> DialogError {
    let id = id.unwrap_or(DialogId {
        call_id: String::new(),
        local_tag: String::new(),
        remote_tag: String::new(),
    });
    DialogError::NotThisDialog {
        call_id: excerpt(&id.call_id),
        local_tag: excerpt(&id.local_tag),
        remote_tag: excerpt(&id.remote_tag),
    }
}
