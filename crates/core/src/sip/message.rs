//! SIP messages: UDP framing, parsing, validation and the builders the transaction and dialog
//! layers need (RFC 3261 §7, §8.1.1, §8.2.6, §9.1, §17.1.1.3, §18.3, §20, §25; RFC 5626 §3.5.1
//! keep-alives).
//!
//! This is the only module that touches `rsip`. rsip 0.4 has no compact header forms, no
//! `tel:` URIs, no extension methods and no framing, and its header tokenizer refuses folded lines
//! and whitespace before the colon, so the framing, header splitting and normalisation are done
//! here and rsip only validates the Request-URI of `sip:`/`sips:` requests. Everything else (Via,
//! name-addr, CSeq) is small enough to read directly, and reading it here keeps a single notion
//! of "valid" for the whole server.
//!
//! Parse before acting: [`parse`] turns a datagram into a typed [`SipMessage`] or a
//! [`ParseError`] whose text is fit for a `400` reason phrase. It never panics on any input
//! (`tests/sip_messages.rs` throws arbitrary and mutated bytes at it).

use std::fmt;

use bytes::Bytes;

/// The RFC 3261 branch prefix (§8.1.1.7): a branch starting with it is unique per transaction.
pub const MAGIC_COOKIE: &str = "z9hG4bK";

/// Longest excerpt of offending input quoted in an error: the text ends up in a reason phrase.
const EXCERPT_MAX: usize = 60;

/// Compact forms (RFC 3261 §7.3.3 and the RFCs that registered the others) and their full names.
const COMPACT: &[(char, &str)] = &[
    ('i', "Call-ID"),
    ('v', "Via"),
    ('f', "From"),
    ('t', "To"),
    ('m', "Contact"),
    ('l', "Content-Length"),
    ('c', "Content-Type"),
    ('k', "Supported"),
    ('s', "Subject"),
    ('e', "Content-Encoding"),
    ('o', "Event"),
    ('r', "Refer-To"),
    ('x', "Session-Expires"),
    ('u', "Allow-Events"),
];

/// Header names we write in their usual spelling whatever case the peer used, so lookups and
/// copies into responses look the same as every other stack's.
const CANONICAL: &[&str] = &[
    "Accept",
    "Allow",
    "Allow-Events",
    "Authorization",
    "Call-ID",
    "Contact",
    "Content-Disposition",
    "Content-Encoding",
    "Content-Length",
    "Content-Type",
    "CSeq",
    "Event",
    "Expires",
    "From",
    "Max-Forwards",
    "P-Asserted-Identity",
    "Proxy-Authenticate",
    "Proxy-Authorization",
    "Record-Route",
    "Refer-To",
    "Require",
    "Retry-After",
    "Route",
    "Session-Expires",
    "Subject",
    "Supported",
    "To",
    "User-Agent",
    "Via",
    "Warning",
    "WWW-Authenticate",
];

/// Why a datagram is not a SIP message we accept. The `Display` text is a short, single-line
/// reason fit for a `400 Bad Request` reason phrase or a `Warning` header.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ParseError {
    /// Nothing at all (a bare CRLF keep-alive is not an error, see [`SipMessage::KeepAlive`]).
    #[error("empty message")]
    Empty,
    /// The start line and headers must be UTF-8 (RFC 3261 §7.3.1: they are text).
    #[error("headers are not UTF-8 (line {line})")]
    NotUtf8 {
        /// 1-based line number of the first bad line.
        line: usize,
    },
    /// The first line is neither a Request-Line nor a Status-Line.
    #[error("bad start line \"{line}\"")]
    BadStartLine {
        /// The line (excerpt).
        line: String,
    },
    /// A protocol version other than SIP/2.0 (answer 505).
    #[error("unsupported version \"{version}\"")]
    BadVersion {
        /// The version token (excerpt).
        version: String,
    },
    /// A status code outside 100..=699.
    #[error("bad status code \"{code}\"")]
    BadStatusCode {
        /// The code token (excerpt).
        code: String,
    },
    /// The method is not an RFC 3261 token.
    #[error("bad method \"{method}\"")]
    BadMethod {
        /// The method (excerpt).
        method: String,
    },
    /// The Request-URI does not parse.
    #[error("bad Request-URI \"{uri}\"")]
    BadRequestUri {
        /// The URI (excerpt).
        uri: String,
    },
    /// A header line without a colon, or with a name that is not a token.
    #[error("malformed header at line {line}")]
    MalformedHeader {
        /// 1-based line number.
        line: usize,
    },
    /// A header RFC 3261 §8.1.1 requires is absent.
    #[error("missing {header}")]
    MissingHeader {
        /// Its full name.
        header: &'static str,
    },
    /// A header is present but its value is unusable.
    #[error("bad {header} \"{value}\"")]
    BadHeader {
        /// Its full name.
        header: &'static str,
        /// The value (excerpt).
        value: String,
    },
    /// A single-valued header appears twice with different values.
    #[error("conflicting {header} headers")]
    DuplicateHeader {
        /// Its full name.
        header: &'static str,
    },
    /// The CSeq method differs from the request method (RFC 3261 §8.1.1.5).
    #[error("CSeq method {cseq} does not match {method}")]
    CSeqMethodMismatch {
        /// The method in the CSeq header.
        cseq: String,
        /// The method in the Request-Line.
        method: String,
    },
    /// The datagram ends before the body Content-Length announces (RFC 3261 §18.3: discard,
    /// or answer 400).
    #[error("Content-Length {declared} exceeds body {actual}")]
    ContentLengthExceedsBody {
        /// The Content-Length value.
        declared: usize,
        /// Bytes actually present after the blank line.
        actual: usize,
    },
}

/// Quote at most [`EXCERPT_MAX`] characters of untrusted input, with control characters
/// replaced, so an error's text stays one printable line.
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

/// A request method (RFC 3261 §7.1, §27.4). Methods are case-sensitive: `invite` is an
/// extension method, not INVITE.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Method {
    /// INVITE.
    Invite,
    /// ACK.
    Ack,
    /// BYE.
    Bye,
    /// CANCEL.
    Cancel,
    /// OPTIONS.
    Options,
    /// REGISTER.
    Register,
    /// INFO (RFC 6086).
    Info,
    /// PRACK (RFC 3262).
    Prack,
    /// UPDATE (RFC 3311).
    Update,
    /// SUBSCRIBE (RFC 6665).
    Subscribe,
    /// NOTIFY (RFC 6665).
    Notify,
    /// REFER (RFC 3515).
    Refer,
    /// MESSAGE (RFC 3428).
    Message,
    /// PUBLISH (RFC 3903).
    Publish,
    /// Any other token: parsed so the server can answer 501/405 instead of 400.
    Extension(String),
}

impl Method {
    /// Reads a method token; `None` when it is not a token.
    pub fn parse(token: &str) -> Option<Method> {
        if token.is_empty() || !token.bytes().all(is_token_byte) {
            return None;
        }
        Some(match token {
            "INVITE" => Method::Invite,
            "ACK" => Method::Ack,
            "BYE" => Method::Bye,
            "CANCEL" => Method::Cancel,
            "OPTIONS" => Method::Options,
            "REGISTER" => Method::Register,
            "INFO" => Method::Info,
            "PRACK" => Method::Prack,
            "UPDATE" => Method::Update,
            "SUBSCRIBE" => Method::Subscribe,
            "NOTIFY" => Method::Notify,
            "REFER" => Method::Refer,
            "MESSAGE" => Method::Message,
            "PUBLISH" => Method::Publish,
            other => Method::Extension(other.to_owned()),
        })
    }

    /// The method as it appears on the wire.
    pub fn as_str(&self) -> &str {
        match self {
            Method::Invite => "INVITE",
            Method::Ack => "ACK",
            Method::Bye => "BYE",
            Method::Cancel => "CANCEL",
            Method::Options => "OPTIONS",
            Method::Register => "REGISTER",
            Method::Info => "INFO",
            Method::Prack => "PRACK",
            Method::Update => "UPDATE",
            Method::Subscribe => "SUBSCRIBE",
            Method::Notify => "NOTIFY",
            Method::Refer => "REFER",
            Method::Message => "MESSAGE",
            Method::Publish => "PUBLISH",
            Method::Extension(s) => s,
        }
    }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// RFC 3261 §25.1 `token` characters.
fn is_token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-.!%*_+`'~".contains(&b)
}

/// One header line, name normalised (compact forms expanded, well-known names in their usual
/// spelling), value with surrounding whitespace removed and folding undone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// Full name.
    pub name: String,
    /// Value.
    pub value: String,
}

/// Full, canonically spelled name for a header name as received.
pub fn normalise_name(name: &str) -> String {
    let mut chars = name.chars();
    if let (Some(c), None) = (chars.next(), chars.next()) {
        let c = c.to_ascii_lowercase();
        if let Some((_, full)) = COMPACT.iter().find(|(k, _)| *k == c) {
            return (*full).to_owned();
        }
    }
    CANONICAL
        .iter()
        .find(|n| n.eq_ignore_ascii_case(name))
        .map(|n| (*n).to_owned())
        .unwrap_or_else(|| name.to_owned())
}

/// An ordered header list with case-insensitive lookup (names are already normalised).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Headers(Vec<Header>);

impl Headers {
    /// First value of `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case(name))
            .map(|h| h.value.as_str())
    }

    /// Every value of `name`, in order (one per header line; comma lists are not split).
    pub fn get_all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.0
            .iter()
            .filter(move |h| h.name.eq_ignore_ascii_case(name))
            .map(|h| h.value.as_str())
    }

    /// Appends a header (the name is normalised).
    pub fn push(&mut self, name: &str, value: &str) {
        self.0.push(Header {
            name: normalise_name(name),
            value: value.trim().to_owned(),
        });
    }

    /// Removes every header called `name`.
    pub fn remove(&mut self, name: &str) {
        self.0.retain(|h| !h.name.eq_ignore_ascii_case(name));
    }

    /// Replaces every `name` header by one with `value`, at the place of the first.
    pub fn set(&mut self, name: &str, value: &str) {
        match self
            .0
            .iter()
            .position(|h| h.name.eq_ignore_ascii_case(name))
        {
            Some(i) => {
                self.0[i].value = value.trim().to_owned();
                let mut seen = 0usize;
                self.0.retain(|h| {
                    if h.name.eq_ignore_ascii_case(name) {
                        seen += 1;
                        seen == 1
                    } else {
                        true
                    }
                });
            }
            None => self.push(name, value),
        }
    }

    /// All headers in order.
    pub fn iter(&self) -> impl Iterator<Item = &Header> {
        self.0.iter()
    }
}

/// One Via entry (RFC 3261 §20.42). A header line may hold several, comma-separated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Via {
    /// Transport token, upper-cased (`UDP`, `TCP`, …).
    pub transport: String,
    /// `host[:port]` as written.
    pub sent_by: String,
    /// The `branch` parameter.
    pub branch: Option<String>,
    /// The `received` parameter.
    pub received: Option<String>,
    /// The `rport` parameter: `Some(None)` when present without a value (RFC 3581 request).
    pub rport: Option<Option<String>>,
    /// The entry as written.
    pub raw: String,
}

impl Via {
    /// Parses one via-parm (`SIP/2.0/UDP host:port;branch=…`).
    pub fn parse(raw: &str) -> Option<Via> {
        let raw = raw.trim();
        // sent-protocol is three tokens joined by SLASH, and SLASH = SWS "/" SWS (§25.1), so
        // whitespace may sit around each '/' (RFC 4475 §3.1.1.1: "SIP  /   2.0 /UDP"); LWS then
        // separates the transport from sent-by.
        let (name, rest) = raw.split_once('/')?;
        let (version, rest) = rest.split_once('/')?;
        let rest = rest.trim_start();
        let end = rest.find([' ', '\t']).unwrap_or(rest.len());
        let (transport, rest) = rest.split_at(end);
        let (name, version) = (name.trim(), version.trim());
        if !name.eq_ignore_ascii_case("SIP")
            || version != "2.0"
            || transport.is_empty()
            || !transport.bytes().all(is_token_byte)
        {
            return None;
        }
        let mut params = rest.split(';');
        let sent_by = params.next()?.trim();
        if sent_by.is_empty() || sent_by.contains(char::is_whitespace) {
            return None;
        }
        let mut via = Via {
            transport: transport.to_ascii_uppercase(),
            sent_by: sent_by.to_owned(),
            branch: None,
            received: None,
            rport: None,
            raw: raw.to_owned(),
        };
        for p in params {
            let (k, v) = match p.split_once('=') {
                Some((k, v)) => (k.trim(), Some(v.trim())),
                None => (p.trim(), None),
            };
            if k.eq_ignore_ascii_case("branch") {
                via.branch = v.filter(|v| !v.is_empty()).map(str::to_owned);
            } else if k.eq_ignore_ascii_case("received") {
                via.received = v.map(str::to_owned);
            } else if k.eq_ignore_ascii_case("rport") {
                via.rport = Some(v.map(str::to_owned));
            }
        }
        Some(via)
    }
}

/// A CSeq header (RFC 3261 §20.16).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CSeq {
    /// Sequence number (< 2^31).
    pub seq: u32,
    /// Method.
    pub method: Method,
}

impl CSeq {
    /// Parses `1 INVITE`.
    pub fn parse(value: &str) -> Option<CSeq> {
        let mut it = value.split_whitespace();
        let (num, method) = (it.next()?, it.next()?);
        if it.next().is_some() || num.len() > 10 || !num.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let seq: u32 = num.parse().ok()?;
        if seq >= 1 << 31 {
            return None;
        }
        Some(CSeq {
            seq,
            method: Method::parse(method)?,
        })
    }
}

/// A name-addr or addr-spec with its header parameters (From, To, Contact, P-Asserted-Identity).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NameAddr {
    /// Display name, unquoted.
    pub display: Option<String>,
    /// The URI as written.
    pub uri: String,
    /// The `tag` parameter.
    pub tag: Option<String>,
}

impl NameAddr {
    /// Parses the first entry of a From/To/Contact/P-Asserted-Identity value.
    pub fn parse(value: &str) -> Option<NameAddr> {
        let value = value.trim();
        // Without its closing quote a display name swallows the URI (RFC 4475 §3.1.2.6:
        // `To: "Mr. J. User <sip:j.user@example.com>`); no reading of that is safe.
        if has_open_quote(value) {
            return None;
        }
        let (display, uri, params) = match find_unquoted(value, '<') {
            Some(lt) => {
                let gt = lt + value[lt..].find('>')?;
                let display = value[..lt].trim();
                let display = display
                    .strip_prefix('"')
                    .and_then(|d| d.strip_suffix('"'))
                    .unwrap_or(display);
                let display = (!display.is_empty()).then(|| display.replace("\\\"", "\""));
                (display, &value[lt + 1..gt], &value[gt + 1..])
            }
            None => {
                // addr-spec form: parameters after the URI belong to the header (§20.10).
                let end = value.find([';', ',']).unwrap_or(value.len());
                (None, &value[..end], &value[end..])
            }
        };
        let uri = uri.trim();
        if uri.is_empty() || !uri.contains(':') {
            return None;
        }
        let tag = params.split(';').find_map(|p| {
            let (k, v) = p.split_once('=')?;
            k.trim()
                .eq_ignore_ascii_case("tag")
                .then(|| v.trim().to_owned())
        });
        Some(NameAddr {
            display,
            uri: uri.to_owned(),
            tag: tag.filter(|t| !t.is_empty()),
        })
    }

    /// The user part of the URI, %-decoded (`sip:%2A88@h` → `*88`; `tel:+1555` → `+1555`).
    pub fn user(&self) -> Option<String> {
        uri_user(&self.uri)
    }
}

/// Whether a quoted string in `s` is never closed.
fn has_open_quote(s: &str) -> bool {
    scan_unquoted(s, |_, _| false)
}

/// Calls `visit` with each character outside quoted strings (and its byte index) until it
/// returns true; returns whether the text ended inside a quoted string.
fn scan_unquoted(s: &str, mut visit: impl FnMut(usize, char) -> bool) -> bool {
    let (mut quoted, mut escaped) = (false, false);
    for (i, ch) in s.char_indices() {
        if escaped {
            escaped = false;
        } else if quoted && ch == '\\' {
            escaped = true;
        } else if ch == '"' {
            quoted = !quoted;
        } else if !quoted && visit(i, ch) {
            break;
        }
    }
    quoted
}

/// Byte index of the first `c` outside a quoted string.
fn find_unquoted(s: &str, c: char) -> Option<usize> {
    let mut found = None;
    scan_unquoted(s, |i, ch| {
        found = (ch == c).then_some(i);
        found.is_some()
    });
    found
}

/// Splits a comma-separated header value, leaving commas in quotes and angle brackets alone.
fn split_list(value: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let (mut quoted, mut escaped, mut angle, mut start) = (false, false, false, 0);
    for (i, ch) in value.char_indices() {
        if escaped {
            escaped = false;
            continue;
        }
        match ch {
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            '<' if !quoted => angle = true,
            '>' if !quoted => angle = false,
            ',' if !quoted && !angle => {
                out.push(value[start..i].trim());
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(value[start..].trim());
    out.retain(|s| !s.is_empty());
    out
}

/// Splits a comma-separated header value (Record-Route, Route, Contact) into its entries,
/// leaving commas inside quotes and angle brackets alone: one header line may carry several
/// entries (RFC 3261 §7.3.1), and the dialog layer needs them one by one.
pub fn split_header_list(value: &str) -> Vec<&str> {
    split_list(value)
}

/// The user part of a `sip:`, `sips:` or `tel:` URI, %-decoded (RFC 3261 §19.1.2, §25.1).
pub fn uri_user(uri: &str) -> Option<String> {
    let (scheme, rest) = uri.trim().split_once(':')?;
    let user = if scheme.eq_ignore_ascii_case("tel") {
        rest.split(';').next()?
    } else if scheme.eq_ignore_ascii_case("sip") || scheme.eq_ignore_ascii_case("sips") {
        // The user part ends at the last '@' before any URI headers; it may hold ';' (§19.1.1).
        let rest = rest.split('?').next()?;
        let at = rest.rfind('@')?;
        let userinfo = &rest[..at];
        userinfo.split(':').next()?
    } else {
        return None;
    };
    (!user.is_empty()).then(|| percent_decode(user))
}

/// Decodes `%XX` escapes; a malformed escape is kept literally.
pub fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            let hex = |c: u8| (c as char).to_digit(16);
            if let (Some(h), Some(l)) = (hex(b[i + 1]), hex(b[i + 2])) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Checks a `sip:`/`sips:` Request-URI with rsip; other schemes (`tel:`, `urn:`) only need a
/// scheme (rsip has no `tel:`), and the TU answers 416 if it cannot route them.
fn valid_request_uri(uri: &str) -> bool {
    let Some((scheme, rest)) = uri.split_once(':') else {
        return false;
    };
    // RFC 3986 / RFC 3261 §25.1: a URI is printable ASCII without the delimiters below
    // (rsip lets `>` and quotes through).
    if !uri
        .bytes()
        .all(|b| b.is_ascii_graphic() && !b"<>\"{}|\\^`".contains(&b))
    {
        return false;
    }
    if scheme.is_empty()
        || !scheme.starts_with(|c: char| c.is_ascii_alphabetic())
        || !scheme
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"+-.".contains(&b))
        || rest.is_empty()
    {
        return false;
    }
    if scheme.eq_ignore_ascii_case("sip") || scheme.eq_ignore_ascii_case("sips") {
        // rsip parses `%2A88` (an escaped user) and `;params` fine; what it refuses is not a
        // URI any real peer sends.
        return rsip::Uri::try_from(uri).is_ok();
    }
    true
}

/// What a datagram holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SipMessage {
    /// A request.
    Request(Request),
    /// A response.
    Response(Response),
    /// Only CR/LF: a keep-alive ping or pong (RFC 5626 §3.5.1); nothing to answer on UDP.
    KeepAlive,
}

/// A SIP request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// Method.
    pub method: Method,
    /// Request-URI as written.
    pub uri: String,
    /// Headers.
    pub headers: Headers,
    /// Body (exactly Content-Length bytes once parsed).
    pub body: Bytes,
}

/// A SIP response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// Status code, 100..=699.
    pub code: u16,
    /// Reason phrase.
    pub reason: String,
    /// Headers.
    pub headers: Headers,
    /// Body.
    pub body: Bytes,
}

/// Accessors shared by requests and responses.
macro_rules! common_accessors {
    () => {
        /// The Call-ID.
        pub fn call_id(&self) -> Option<&str> {
            self.headers.get("Call-ID")
        }

        /// The CSeq.
        pub fn cseq(&self) -> Option<CSeq> {
            CSeq::parse(self.headers.get("CSeq")?)
        }

        /// Every Via entry, top first (comma lists split).
        pub fn vias(&self) -> Vec<Via> {
            self.headers
                .get_all("Via")
                .flat_map(split_list)
                .filter_map(Via::parse)
                .collect()
        }

        /// The top Via.
        pub fn top_via(&self) -> Option<Via> {
            self.headers
                .get("Via")
                .and_then(|v| split_list(v).first().copied().and_then(Via::parse))
        }

        /// The top Via's branch.
        pub fn branch(&self) -> Option<String> {
            self.top_via()?.branch
        }

        /// The From header.
        pub fn from(&self) -> Option<NameAddr> {
            NameAddr::parse(self.headers.get("From")?)
        }

        /// The To header.
        pub fn to(&self) -> Option<NameAddr> {
            NameAddr::parse(self.headers.get("To")?)
        }

        /// The From tag.
        pub fn from_tag(&self) -> Option<String> {
            self.from()?.tag
        }

        /// The To tag.
        pub fn to_tag(&self) -> Option<String> {
            self.to()?.tag
        }

        /// Appends a header.
        pub fn with_header(mut self, name: &str, value: &str) -> Self {
            self.headers.push(name, value);
            self
        }

        /// Sets the body and its Content-Type (Content-Length is written on serialisation).
        pub fn with_body(mut self, content_type: &str, body: impl Into<Bytes>) -> Self {
            self.headers.set("Content-Type", content_type);
            self.body = body.into();
            self
        }
    };
}

impl Request {
    /// A request with no headers yet; add Via, From, To, Call-ID, CSeq, Max-Forwards with
    /// [`Request::with_header`].
    pub fn new(method: Method, uri: &str) -> Request {
        Request {
            method,
            uri: uri.to_owned(),
            headers: Headers::default(),
            body: Bytes::new(),
        }
    }

    common_accessors!();

    /// The Request-URI user, %-decoded (`sip:%2A88@h` → `*88`).
    pub fn request_user(&self) -> Option<String> {
        uri_user(&self.uri)
    }

    /// Who is calling: the P-Asserted-Identity user when present (RFC 3325), else the From user.
    pub fn caller_user(&self) -> Option<String> {
        self.headers
            .get_all("P-Asserted-Identity")
            .flat_map(split_list)
            .filter_map(NameAddr::parse)
            .find_map(|n| n.user())
            .or_else(|| self.from()?.user())
    }

    /// Wire form; Content-Length always written and always right.
    pub fn to_bytes(&self) -> Bytes {
        serialise(
            &format!("{} {} SIP/2.0", self.method, self.uri),
            &self.headers,
            &self.body,
        )
    }
}

impl Response {
    common_accessors!();

    /// Adds a To tag when the To header has none (RFC 3261 §8.2.6.2). A 100 Trying must not
    /// get one; every other response creating or in a dialog must.
    pub fn with_to_tag(mut self, tag: &str) -> Response {
        if let Some(to) = self.headers.get("To")
            && NameAddr::parse(to).is_some_and(|n| n.tag.is_none())
        {
            let value = format!("{to};tag={tag}");
            self.headers.set("To", &value);
        }
        self
    }

    /// Wire form; Content-Length always written and always right.
    pub fn to_bytes(&self) -> Bytes {
        serialise(
            &format!("SIP/2.0 {} {}", self.code, self.reason),
            &self.headers,
            &self.body,
        )
    }
}

fn serialise(start: &str, headers: &Headers, body: &[u8]) -> Bytes {
    let mut out = String::with_capacity(512);
    out.push_str(start);
    out.push_str("\r\n");
    for h in headers.iter() {
        if h.name.eq_ignore_ascii_case("Content-Length") {
            continue;
        }
        out.push_str(&h.name);
        out.push_str(": ");
        out.push_str(&h.value);
        out.push_str("\r\n");
    }
    out.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
    let mut bytes = out.into_bytes();
    bytes.extend_from_slice(body);
    Bytes::from(bytes)
}

/// A response to `request` per RFC 3261 §8.2.6: Via(s) in order, From, To, Call-ID and CSeq
/// copied. Add a To tag with [`Response::with_to_tag`].
pub fn response_to(request: &Request, code: u16, reason: &str) -> Response {
    let mut headers = Headers::default();
    for name in ["Via", "From", "To", "Call-ID", "CSeq"] {
        for v in request.headers.get_all(name) {
            headers.push(name, v);
        }
    }
    Response {
        code,
        reason: reason.replace(['\r', '\n'], " "),
        headers,
        body: Bytes::new(),
    }
}

/// The ACK a client INVITE transaction sends for a 300-699 response (RFC 3261 §17.1.1.3):
/// same Request-URI, Call-ID, From, CSeq number and top Via (so the same branch) as the INVITE,
/// the To of the response, and the INVITE's Route headers.
pub fn ack_for(invite: &Request, response: &Response) -> Request {
    let mut ack = Request::new(Method::Ack, &invite.uri);
    if let Some(via) = invite.headers.get("Via").map(split_list)
        && let Some(top) = via.first()
    {
        ack.headers.push("Via", top);
    }
    for name in ["Max-Forwards", "From"] {
        if let Some(v) = invite.headers.get(name) {
            ack.headers.push(name, v);
        }
    }
    if let Some(to) = response.headers.get("To").or(invite.headers.get("To")) {
        ack.headers.push("To", to);
    }
    if let Some(v) = invite.call_id() {
        ack.headers.push("Call-ID", v);
    }
    if let Some(cseq) = invite.cseq() {
        ack.headers.push("CSeq", &format!("{} ACK", cseq.seq));
    }
    for r in invite.headers.get_all("Route") {
        ack.headers.push("Route", r);
    }
    ack
}

/// The CANCEL for a pending request (RFC 3261 §9.1): same Request-URI, Call-ID, From, To, CSeq
/// number, top Via and Route set.
pub fn cancel_for(request: &Request) -> Request {
    let mut cancel = Request::new(Method::Cancel, &request.uri);
    if let Some(via) = request.headers.get("Via").map(split_list)
        && let Some(top) = via.first()
    {
        cancel.headers.push("Via", top);
    }
    for name in ["Max-Forwards", "From", "To", "Call-ID"] {
        if let Some(v) = request.headers.get(name) {
            cancel.headers.push(name, v);
        }
    }
    if let Some(cseq) = request.cseq() {
        cancel.headers.push("CSeq", &format!("{} CANCEL", cseq.seq));
    }
    for r in request.headers.get_all("Route") {
        cancel.headers.push("Route", r);
    }
    cancel
}

/// A new branch: the magic cookie and 64 random bits.
pub fn new_branch() -> String {
    format!("{MAGIC_COOKIE}{:016x}", rand::random::<u64>())
}

/// A new tag (RFC 3261 §19.3: at least 32 random bits).
pub fn new_tag() -> String {
    format!("{:016x}", rand::random::<u64>())
}

/// A datagram split into start line, header lines and body, before any validation.
struct Framed<'a> {
    start: &'a str,
    headers: Headers,
    body: &'a [u8],
}

/// §25.1: a header holds no control characters but HTAB, except escaped in a quoted string
/// (`quoted-pair = "\\" (%x00-09 / %x0B-0C / %x0E-7F)`): RFC 4475 §3.1.1.2 puts `\` BEL, `\` NUL
/// and `\` DEL in a display name.
fn has_stray_control(line: &str) -> bool {
    let (mut quoted, mut escaped) = (false, false);
    for c in line.chars() {
        if escaped {
            escaped = false;
            if c == '\r' || c == '\n' || (c.is_control() && !c.is_ascii()) {
                return true;
            }
        } else if c.is_control() && c != '\t' {
            return true;
        } else if c == '"' {
            quoted = !quoted;
        } else if c == '\\' && quoted {
            escaped = true;
        }
    }
    false
}

/// Splits the datagram (RFC 3261 §7, §7.3.1 folding, §7.5 leading CRLFs, §18.3 framing).
fn frame(datagram: &[u8]) -> Result<Framed<'_>, ParseError> {
    // §7.5: CRLFs before the start line are ignored (and a datagram of only CRLFs is a
    // keep-alive, handled by the caller).
    let skip = datagram
        .iter()
        .position(|b| *b != b'\r' && *b != b'\n')
        .ok_or(ParseError::Empty)?;
    let data = &datagram[skip..];

    let mut lines: Vec<&str> = Vec::new();
    let mut pos = 0;
    let mut body_start = None;
    while pos < data.len() {
        let (line, next) = match data[pos..].iter().position(|b| *b == b'\n') {
            Some(n) => (&data[pos..pos + n], pos + n + 1),
            None => (&data[pos..], data.len()),
        };
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() {
            body_start = Some(next);
            break;
        }
        let text = std::str::from_utf8(line).map_err(|_| ParseError::NotUtf8 {
            line: lines.len() + 1,
        })?;
        lines.push(text);
        pos = next;
    }
    // No blank line: headers run to the end and there is no body (lenient, as most stacks).
    let body = body_start.map_or(&data[data.len()..], |s| &data[s..]);

    let (start, header_lines) = lines.split_first().ok_or(ParseError::Empty)?;
    // No quoted strings in a start line, so no quoted-pair either.
    if start.chars().any(|c| c.is_control() && c != '\t') {
        return Err(ParseError::MalformedHeader { line: 1 });
    }
    let mut unfolded: Vec<(usize, String)> = Vec::new();
    for (i, line) in header_lines.iter().enumerate() {
        let number = i + 2;
        if line.starts_with([' ', '\t']) {
            // §7.3.1: a line starting with whitespace continues the previous header.
            match unfolded.last_mut() {
                Some((_, prev)) => {
                    prev.push(' ');
                    prev.push_str(line.trim());
                }
                None => return Err(ParseError::MalformedHeader { line: number }),
            }
        } else {
            unfolded.push((number, (*line).to_owned()));
        }
    }
    let mut headers = Headers::default();
    for (number, line) in unfolded {
        // After unfolding, so a quoted string folded across lines is read whole.
        if has_stray_control(&line) {
            return Err(ParseError::MalformedHeader { line: number });
        }
        let (name, value) = line
            .split_once(':')
            .ok_or(ParseError::MalformedHeader { line: number })?;
        let name = name.trim_end_matches([' ', '\t']);
        if name.is_empty() || !name.bytes().all(is_token_byte) {
            return Err(ParseError::MalformedHeader { line: number });
        }
        headers.push(name, value);
    }
    Ok(Framed {
        start,
        headers,
        body,
    })
}

/// The Call-ID of a datagram, found without parsing it: the value of the first `Call-ID` (or
/// compact `i`) header line before the blank line. For deciding cheaply whether a datagram
/// belongs to a call that exists; the datagram is parsed properly afterwards if it is kept.
pub fn peek_call_id(datagram: &[u8]) -> Option<&str> {
    let head = datagram
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map_or(datagram, |end| &datagram[..end]);
    head.split(|&b| b == b'\n').skip(1).find_map(|line| {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let colon = line.iter().position(|&b| b == b':')?;
        let name = line[..colon].trim_ascii();
        (name.eq_ignore_ascii_case(b"call-id") || name.eq_ignore_ascii_case(b"i"))
            .then(|| std::str::from_utf8(line[colon + 1..].trim_ascii()).ok())
            .flatten()
    })
}

/// Parses one UDP datagram into a validated message. Never panics.
///
/// Checks: start line, SIP/2.0, the §8.1.1 mandatory headers (Via, From, To, Call-ID, CSeq and,
/// in requests, Max-Forwards), CSeq syntax and method, Content-Length against the bytes present
/// (longer → error; shorter → the extra bytes are dropped, §18.3), Request-URI syntax.
pub fn parse(datagram: &[u8]) -> Result<SipMessage, ParseError> {
    if datagram.is_empty() {
        return Err(ParseError::Empty);
    }
    if datagram.iter().all(|b| *b == b'\r' || *b == b'\n') {
        return Ok(SipMessage::KeepAlive);
    }
    let framed = frame(datagram)?;
    let body = check_body(&framed.headers, framed.body)?;
    let start = framed.start;

    if start.starts_with("SIP/") {
        // Status-Line: SIP-Version SP Status-Code SP Reason-Phrase
        let mut parts = start.splitn(3, ' ');
        let version = parts.next().unwrap_or_default();
        if !version.eq_ignore_ascii_case("SIP/2.0") {
            return Err(ParseError::BadVersion {
                version: excerpt(version),
            });
        }
        let code_text = parts.next().unwrap_or_default();
        let code = match code_text.parse::<u16>() {
            Ok(c) if code_text.len() == 3 && (100..=699).contains(&c) => c,
            _ => {
                return Err(ParseError::BadStatusCode {
                    code: excerpt(code_text),
                });
            }
        };
        let reason = parts.next().unwrap_or_default().to_owned();
        let response = Response {
            code,
            reason,
            headers: framed.headers,
            body,
        };
        check_common(&response.headers)?;
        return Ok(SipMessage::Response(response));
    }

    // Request-Line: Method SP Request-URI SP SIP-Version (exactly single spaces, §7.1)
    let parts: Vec<&str> = start.split(' ').collect();
    let [method, uri, version] = parts[..] else {
        return Err(ParseError::BadStartLine {
            line: excerpt(start),
        });
    };
    let method = Method::parse(method).ok_or_else(|| ParseError::BadMethod {
        method: excerpt(method),
    })?;
    if !version.eq_ignore_ascii_case("SIP/2.0") {
        return Err(
            if version.starts_with("SIP/") || version.starts_with("sip/") {
                ParseError::BadVersion {
                    version: excerpt(version),
                }
            } else {
                ParseError::BadStartLine {
                    line: excerpt(start),
                }
            },
        );
    }
    if !valid_request_uri(uri) {
        return Err(ParseError::BadRequestUri { uri: excerpt(uri) });
    }
    let request = Request {
        method,
        uri: uri.to_owned(),
        headers: framed.headers,
        body,
    };
    let cseq = check_common(&request.headers)?;
    if cseq.method != request.method {
        return Err(ParseError::CSeqMethodMismatch {
            cseq: excerpt(cseq.method.as_str()),
            method: excerpt(request.method.as_str()),
        });
    }
    let mf = request
        .headers
        .get("Max-Forwards")
        .ok_or(ParseError::MissingHeader {
            header: "Max-Forwards",
        })?;
    // 1*DIGIT: leading zeros are legal (RFC 4475 §3.1.1.1 sends "0068") and do not count.
    if mf.is_empty()
        || !mf.bytes().all(|b| b.is_ascii_digit())
        || mf.trim_start_matches('0').len() > 3
    {
        return Err(ParseError::BadHeader {
            header: "Max-Forwards",
            value: excerpt(mf),
        });
    }
    Ok(SipMessage::Request(request))
}

/// Applies Content-Length to the bytes after the blank line.
fn check_body(headers: &Headers, body: &[u8]) -> Result<Bytes, ParseError> {
    let mut declared: Option<usize> = None;
    for v in headers.get_all("Content-Length") {
        let n = (!v.is_empty() && v.len() <= 9 && v.bytes().all(|b| b.is_ascii_digit()))
            .then(|| v.parse::<usize>().ok())
            .flatten()
            .ok_or_else(|| ParseError::BadHeader {
                header: "Content-Length",
                value: excerpt(v),
            })?;
        if declared.is_some_and(|d| d != n) {
            return Err(ParseError::DuplicateHeader {
                header: "Content-Length",
            });
        }
        declared = Some(n);
    }
    match declared {
        // §18.3: over UDP a missing Content-Length means the body runs to the datagram's end.
        None => Ok(Bytes::copy_from_slice(body)),
        Some(n) if n > body.len() => Err(ParseError::ContentLengthExceedsBody {
            declared: n,
            actual: body.len(),
        }),
        Some(n) => Ok(Bytes::copy_from_slice(&body[..n])),
    }
}

/// The §8.1.1 headers both requests and responses carry; returns the CSeq.
fn check_common(headers: &Headers) -> Result<CSeq, ParseError> {
    let vias: Vec<&str> = headers.get_all("Via").flat_map(split_list).collect();
    if vias.is_empty() {
        return Err(ParseError::MissingHeader { header: "Via" });
    }
    for v in &vias {
        if Via::parse(v).is_none() {
            return Err(ParseError::BadHeader {
                header: "Via",
                value: excerpt(v),
            });
        }
    }
    for header in ["From", "To"] {
        let v = headers
            .get(header)
            .ok_or(ParseError::MissingHeader { header })?;
        if NameAddr::parse(v).is_none() {
            return Err(ParseError::BadHeader {
                header,
                value: excerpt(v),
            });
        }
    }
    let call_id = headers
        .get("Call-ID")
        .ok_or(ParseError::MissingHeader { header: "Call-ID" })?;
    if call_id.is_empty() || call_id.contains(char::is_whitespace) {
        return Err(ParseError::BadHeader {
            header: "Call-ID",
            value: excerpt(call_id),
        });
    }
    for header in ["Call-ID", "CSeq", "From", "To"] {
        let mut values = headers.get_all(header);
        let first = values.next();
        if values.any(|v| Some(v) != first) {
            return Err(ParseError::DuplicateHeader { header });
        }
    }
    let cseq = headers
        .get("CSeq")
        .ok_or(ParseError::MissingHeader { header: "CSeq" })?;
    CSeq::parse(cseq).ok_or_else(|| ParseError::BadHeader {
        header: "CSeq",
        value: excerpt(cseq),
    })
}

/// A `400 Bad Request` for a datagram [`parse`] refused, when enough of it is readable to
/// address one (a request, not ACK, with Via, From, To, Call-ID and CSeq lines): the reason
/// phrase and a `Warning: 399` carry the parse error. A version other than SIP/2.0 gets
/// `505 Version Not Supported` instead (§21.5.6, RFC 4475 §3.1.2.16). `None` means: drop it
/// silently.
pub fn bad_request(datagram: &[u8], error: &ParseError, agent: &str) -> Option<Response> {
    let framed = frame(datagram).ok()?;
    if framed.start.starts_with("SIP/") || framed.start.starts_with("ACK ") {
        return None;
    }
    // Every Via is copied; of a header that must appear once but came twice (the error may
    // be just that), the first value, so that the answer itself is well-formed (found by the
    // `sip_message` fuzzer: both Call-IDs were echoed).
    // An empty value (or only commas) addresses nothing, as if the header were missing.
    let meaningful = |v: &&str| v.split(',').any(|part| !part.trim().is_empty());
    let present = |h| framed.headers.get(h).filter(meaningful);
    present("Via")?;
    let mut headers = Headers::default();
    for v in framed.headers.get_all("Via").filter(meaningful) {
        headers.push("Via", v);
    }
    for h in ["From", "To", "Call-ID", "CSeq"] {
        headers.push(h, present(h)?);
    }
    let (code, reason) = match error {
        ParseError::BadVersion { .. } => (505, format!("Version Not Supported ({error})")),
        _ => (400, format!("Bad Request ({error})")),
    };
    let request = Request {
        method: Method::Extension("UNKNOWN".into()),
        uri: String::new(),
        headers,
        body: Bytes::new(),
    };
    // The warn-text is a quoted-string (RFC 3261 §20.43): the error's own quotes are escaped.
    let text = error.to_string().replace('\\', "\\\\").replace('"', "\\\"");
    let warning = format!("399 {agent} \"{text}\"");
    Some(response_to(&request, code, &reason).with_header("Warning", &warning))
}

#[cfg(test)]
mod tests {
    use super::*;

    const INVITE: &str = "INVITE sip:%2A88@10.0.0.1 SIP/2.0\r\n\
        v: SIP/2.0/UDP 10.0.0.2:5060;branch=z9hG4bK1,SIP/2.0/UDP 10.0.0.3;branch=z9hG4bK2\r\n\
        f: \"Desk, 5401\" <sip:5401@10.0.0.2>;tag=abc\r\n\
        t: <sip:*88@10.0.0.1>\r\n\
        i: call-1\r\n\
        CSeq: 7 INVITE\r\n\
        Max-Forwards: 70\r\n\
        l: 4\r\n\r\nbodyEXTRA";

    fn request(text: &str) -> Request {
        match parse(text.as_bytes()) {
            Ok(SipMessage::Request(r)) => r,
            other => panic!("not a request: {other:?}"),
        }
    }

    #[test]
    fn compact_forms_and_framing() {
        let r = request(INVITE);
        assert_eq!(r.call_id(), Some("call-1"));
        assert_eq!(&r.body[..], b"body");
        assert_eq!(r.vias().len(), 2);
        assert_eq!(r.branch().as_deref(), Some("z9hG4bK1"));
        assert_eq!(r.from_tag().as_deref(), Some("abc"));
        assert_eq!(r.from().unwrap().display.as_deref(), Some("Desk, 5401"));
        assert_eq!(r.request_user().as_deref(), Some("*88"));
        assert_eq!(r.caller_user().as_deref(), Some("5401"));
    }

    #[test]
    fn response_copies_and_tags() {
        let r = request(INVITE);
        let resp = response_to(&r, 200, "OK").with_to_tag("xyz");
        assert_eq!(resp.to_tag().as_deref(), Some("xyz"));
        assert_eq!(resp.vias().len(), 2);
        let again = match parse(&resp.to_bytes()).unwrap() {
            SipMessage::Response(r) => r,
            _ => panic!(),
        };
        assert_eq!(again.cseq().unwrap().seq, 7);
        assert_eq!(again.call_id(), Some("call-1"));
        // A second tag is never added.
        assert_eq!(again.with_to_tag("other").to_tag().as_deref(), Some("xyz"));
    }

    #[test]
    fn percent_decoding() {
        assert_eq!(percent_decode("%2A88"), "*88");
        assert_eq!(percent_decode("%2a%"), "*%");
        assert_eq!(percent_decode("%G1"), "%G1");
        assert_eq!(
            uri_user("tel:+15551234;phone-context=x").unwrap(),
            "+15551234"
        );
        assert_eq!(uri_user("sip:host.example"), None);
    }

    #[test]
    fn errors_are_one_line() {
        let e = parse(b"INVITE sip:a@b SIP/2.0\r\nVia: \r\n\r\n").unwrap_err();
        assert!(!e.to_string().contains(['\r', '\n']), "{e}");
        let long = format!("BAD\u{7}{}", "x".repeat(500));
        let e = parse(long.as_bytes()).unwrap_err();
        assert!(e.to_string().len() < 120, "{e}");
    }
}
