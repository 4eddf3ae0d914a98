//! SDP offer/answer for audio calls: RFC 4566 syntax (parsed by the `sdp` crate), RFC 3264
//! negotiation, RFC 4733 `telephone-event`, RFC 3264 §8.4 hold.
//!
//! Real phones send SDP the strict parser refuses (bare LF line ends, no `t=` line, no `s=`
//! line, trailing blanks), so offers are normalised first; what is still malformed is an
//! [`SdpError`] whose text can go into a 488 or 400. Negotiation picks the first codec of our
//! preference list that the offer carries, and `telephone-event` at whatever payload type and
//! clock rate the offer used.

use std::io::Cursor;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use sdp::description::common::{Address, Attribute, ConnectionInformation};
use sdp::description::media::{MediaDescription, MediaName, RangedPort};
use sdp::description::session::{Origin, SessionDescription, TimeDescription, Timing};

/// The G.711 codecs we speak.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Codec {
    /// G.711 µ-law, static payload type 0.
    Pcmu,
    /// G.711 A-law, static payload type 8.
    Pcma,
}

impl Codec {
    /// The static RTP payload type (RFC 3551).
    pub fn static_payload_type(self) -> u8 {
        match self {
            Codec::Pcmu => 0,
            Codec::Pcma => 8,
        }
    }

    /// The rtpmap encoding name.
    pub fn name(self) -> &'static str {
        match self {
            Codec::Pcmu => "PCMU",
            Codec::Pcma => "PCMA",
        }
    }

    fn from_name(name: &str) -> Option<Codec> {
        match name.to_ascii_uppercase().as_str() {
            "PCMU" => Some(Codec::Pcmu),
            "PCMA" => Some(Codec::Pcma),
            _ => None,
        }
    }
}

/// Media direction (RFC 3264 §5.1, §6.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Both ways (the default).
    SendRecv,
    /// The offerer only sends (it puts us on hold, or plays music).
    SendOnly,
    /// The offerer only receives.
    RecvOnly,
    /// No media either way.
    Inactive,
}

impl Direction {
    fn from_attribute(key: &str) -> Option<Direction> {
        match key {
            "sendrecv" => Some(Direction::SendRecv),
            "sendonly" => Some(Direction::SendOnly),
            "recvonly" => Some(Direction::RecvOnly),
            "inactive" => Some(Direction::Inactive),
            _ => None,
        }
    }

    /// The attribute name.
    pub fn attribute(self) -> &'static str {
        match self {
            Direction::SendRecv => "sendrecv",
            Direction::SendOnly => "sendonly",
            Direction::RecvOnly => "recvonly",
            Direction::Inactive => "inactive",
        }
    }

    /// What the answerer says to this offered direction (RFC 3264 §6.1).
    pub fn answer(self) -> Direction {
        match self {
            Direction::SendRecv => Direction::SendRecv,
            Direction::SendOnly => Direction::RecvOnly,
            Direction::RecvOnly => Direction::SendOnly,
            Direction::Inactive => Direction::Inactive,
        }
    }
}

/// `telephone-event` as negotiated: payload type and clock rate (RFC 4733 §7).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TelephoneEvent {
    /// Dynamic payload type.
    pub payload_type: u8,
    /// RTP clock rate of the events, Hz.
    pub clock_rate: u32,
}

/// One payload type of an audio m-line with what the offer said about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Format {
    /// RTP payload type.
    pub payload_type: u8,
    /// Encoding name (from rtpmap, or the static table).
    pub encoding: Option<String>,
    /// Clock rate, Hz.
    pub clock_rate: Option<u32>,
}

/// The audio stream of an offer (or answer), reduced to what a G.711 IVR needs.
#[derive(Debug, Clone, PartialEq)]
pub struct AudioDescription {
    /// Index of the m-line among all m-lines.
    pub index: usize,
    /// Where the peer wants RTP (port 0 means the stream is refused).
    pub remote: SocketAddr,
    /// Payload types in the offerer's order.
    pub formats: Vec<Format>,
    /// `a=ptime`, ms.
    pub ptime: Option<u32>,
    /// Stream direction (media level overrides session level).
    pub direction: Direction,
    /// The transport protocol (`RTP/AVP`, `RTP/SAVP`, …).
    pub protocol: String,
}

impl AudioDescription {
    /// True when the offer puts the call on hold: `c=0.0.0.0` (RFC 2543 style) or a direction
    /// in which the peer no longer receives.
    pub fn is_hold(&self) -> bool {
        self.remote.ip().is_unspecified()
            || matches!(self.direction, Direction::SendOnly | Direction::Inactive)
    }
}

/// A parsed session description.
#[derive(Debug, Clone)]
pub struct Offer {
    /// The whole description, as parsed.
    pub session: SessionDescription,
    /// The audio stream we will negotiate.
    pub audio: AudioDescription,
}

/// What was agreed for a call.
#[derive(Debug, Clone, PartialEq)]
pub struct Negotiated {
    /// The voice codec.
    pub codec: Codec,
    /// Its payload type (the offer's, usually the static one).
    pub codec_payload_type: u8,
    /// RFC 4733 events, when both sides have them.
    pub telephone_event: Option<TelephoneEvent>,
    /// Packet time, ms.
    pub ptime: u32,
    /// Our direction in the answer.
    pub direction: Direction,
    /// Where to send RTP.
    pub remote: SocketAddr,
}

/// Why an SDP body was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SdpError {
    /// Not parseable even after normalising (400).
    #[error("malformed SDP: {0}")]
    Malformed(String),
    /// No audio m-line we could use (488).
    #[error("no usable audio stream: {0}")]
    NoAudio(String),
    /// An audio stream, but no codec in common (488).
    #[error("no common codec: offer has {offered}, we speak {ours}")]
    NoCommonCodec {
        /// The offer's formats.
        offered: String,
        /// Our preference list.
        ours: String,
    },
}

/// Line types RFC 4566 defines; anything else is dropped as noise before parsing.
const KNOWN_LINES: &str = "vosiuepcbtrzkam";

/// Rewrites a real-world SDP into the form the strict parser accepts.
fn normalise(text: &str) -> String {
    let mut lines: Vec<String> = text
        .lines()
        .map(|l| l.trim_end().to_string())
        .filter(|l| {
            let b = l.as_bytes();
            b.len() >= 2 && b[1] == b'=' && KNOWN_LINES.contains(b[0] as char)
        })
        .collect();
    let position =
        |lines: &[String], prefix: &str| lines.iter().position(|l| l.starts_with(prefix));
    if position(&lines, "s=").is_none() {
        let at = position(&lines, "o=").map_or(1, |i| i + 1).min(lines.len());
        lines.insert(at, "s=-".into());
    }
    if position(&lines, "t=").is_none() {
        // t= follows the session-level c= and b= lines and precedes everything after them.
        let first_media = position(&lines, "m=").unwrap_or(lines.len());
        let at = lines[..first_media]
            .iter()
            .rposition(|l| {
                ["v=", "o=", "s=", "i=", "u=", "e=", "p=", "c=", "b="]
                    .iter()
                    .any(|p| l.starts_with(p))
            })
            .map_or(first_media, |i| i + 1);
        lines.insert(at, "t=0 0".into());
    }
    let mut out = lines.join("\r\n");
    out.push_str("\r\n");
    out
}

/// Parses an offer (or an answer) and finds its audio stream.
pub fn parse(text: &str) -> Result<Offer, SdpError> {
    let normal = normalise(text);
    let session = SessionDescription::unmarshal(&mut Cursor::new(normal.as_bytes()))
        .map_err(|e| SdpError::Malformed(e.to_string()))?;
    let audio = audio_stream(&session)?;
    Ok(Offer { session, audio })
}

fn connection_ip(c: &Option<ConnectionInformation>) -> Option<IpAddr> {
    c.as_ref()?.address.as_ref()?.address.parse().ok()
}

fn audio_stream(session: &SessionDescription) -> Result<AudioDescription, SdpError> {
    let session_direction = session
        .attributes
        .iter()
        .find_map(|a| Direction::from_attribute(&a.key));
    let (index, media) = session
        .media_descriptions
        .iter()
        .enumerate()
        .find(|(_, m)| m.media_name.media == "audio" && m.media_name.port.value > 0)
        .ok_or_else(|| SdpError::NoAudio("no audio m-line with a port".into()))?;
    let ip = connection_ip(&media.connection_information)
        .or_else(|| connection_ip(&session.connection_information))
        .ok_or_else(|| SdpError::NoAudio("no usable c= address for the audio stream".into()))?;
    let port = u16::try_from(media.media_name.port.value)
        .map_err(|_| SdpError::Malformed(format!("port {}", media.media_name.port.value)))?;
    let formats = media
        .media_name
        .formats
        .iter()
        .filter_map(|f| f.parse::<u8>().ok())
        .map(|pt| format_of(media, pt))
        .collect();
    let ptime = media
        .attribute("ptime")
        .flatten()
        .and_then(|v| v.trim().parse().ok());
    let direction = media
        .attributes
        .iter()
        .find_map(|a| Direction::from_attribute(&a.key))
        .or(session_direction)
        .unwrap_or(Direction::SendRecv);
    Ok(AudioDescription {
        index,
        remote: SocketAddr::new(ip, port),
        formats,
        ptime,
        direction,
        protocol: media.media_name.protos.join("/"),
    })
}

fn format_of(media: &MediaDescription, payload_type: u8) -> Format {
    let rtpmap = media.attributes.iter().find_map(|a| {
        let value = a.value.as_deref()?;
        let (pt, rest) = value.split_once(' ')?;
        (a.key == "rtpmap" && pt.trim().parse::<u8>().ok()? == payload_type).then_some(rest.trim())
    });
    match rtpmap {
        Some(map) => {
            let mut parts = map.split('/');
            Format {
                payload_type,
                encoding: parts.next().map(str::to_string),
                clock_rate: parts.next().and_then(|r| r.parse().ok()),
            }
        }
        None => {
            let known = match payload_type {
                0 => Some("PCMU"),
                8 => Some("PCMA"),
                _ => None,
            };
            Format {
                payload_type,
                encoding: known.map(str::to_string),
                clock_rate: known.map(|_| 8000),
            }
        }
    }
}

/// RFC 3264 negotiation: our first preferred codec the offer carries, and telephone-event
/// as offered (the 8 kHz one when several are).
pub fn negotiate(offer: &AudioDescription, preferences: &[Codec]) -> Result<Negotiated, SdpError> {
    if !offer.protocol.eq_ignore_ascii_case("RTP/AVP")
        && !offer.protocol.eq_ignore_ascii_case("RTP/AVPF")
    {
        return Err(SdpError::NoAudio(format!(
            "transport {} (only RTP/AVP here; SRTP and WebRTC offers are not served on this path)",
            offer.protocol
        )));
    }
    let g711 = |f: &Format| {
        let codec = Codec::from_name(f.encoding.as_deref()?)?;
        (f.clock_rate.unwrap_or(8000) == 8000).then_some(codec)
    };
    let chosen = preferences.iter().find_map(|&want| {
        offer
            .formats
            .iter()
            .find(|f| g711(f) == Some(want))
            .map(|f| (want, f.payload_type))
    });
    let Some((codec, codec_payload_type)) = chosen else {
        return Err(SdpError::NoCommonCodec {
            offered: describe(&offer.formats),
            ours: preferences
                .iter()
                .map(|c| c.name())
                .collect::<Vec<_>>()
                .join(" "),
        });
    };
    let events: Vec<TelephoneEvent> = offer
        .formats
        .iter()
        .filter(|f| {
            f.encoding
                .as_deref()
                .is_some_and(|e| e.eq_ignore_ascii_case("telephone-event"))
        })
        .map(|f| TelephoneEvent {
            payload_type: f.payload_type,
            clock_rate: f.clock_rate.unwrap_or(8000),
        })
        .collect();
    let telephone_event = events
        .iter()
        .find(|e| e.clock_rate == 8000)
        .or(events.first())
        .copied();
    Ok(Negotiated {
        codec,
        codec_payload_type,
        telephone_event,
        ptime: offer
            .ptime
            .filter(|p| (10..=60).contains(p) && p % 10 == 0)
            .unwrap_or(20),
        direction: offer.direction.answer(),
        remote: offer.remote,
    })
}

fn describe(formats: &[Format]) -> String {
    formats
        .iter()
        .map(|f| match (&f.encoding, f.clock_rate) {
            (Some(e), Some(r)) => format!("{}={e}/{r}", f.payload_type),
            (Some(e), None) => format!("{}={e}", f.payload_type),
            _ => f.payload_type.to_string(),
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// Identifies our side of a session: where we receive RTP and the o= line's numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Local {
    /// Our RTP address as advertised (public address and port).
    pub rtp: SocketAddr,
    /// o= session id.
    pub session_id: u64,
    /// o= version, incremented on every new description in the dialog.
    pub session_version: u64,
}

fn connection(ip: IpAddr) -> ConnectionInformation {
    ConnectionInformation {
        network_type: "IN".into(),
        address_type: if ip.is_ipv4() { "IP4" } else { "IP6" }.into(),
        address: Some(Address {
            address: ip.to_string(),
            ttl: None,
            range: None,
        }),
    }
}

fn attribute(key: &str, value: Option<String>) -> Attribute {
    Attribute {
        key: key.into(),
        value,
    }
}

fn session_skeleton(local: &Local) -> SessionDescription {
    let ip = local.rtp.ip();
    SessionDescription {
        version: 0,
        origin: Origin {
            username: "hotdesk".into(),
            session_id: local.session_id,
            session_version: local.session_version,
            network_type: "IN".into(),
            address_type: if ip.is_ipv4() { "IP4" } else { "IP6" }.into(),
            unicast_address: ip.to_string(),
        },
        session_name: "hotdesk".into(),
        connection_information: Some(connection(ip)),
        time_descriptions: vec![TimeDescription {
            timing: Timing {
                start_time: 0,
                stop_time: 0,
            },
            repeat_times: vec![],
        }],
        ..Default::default()
    }
}

fn audio_media(port: u16, formats: Vec<String>, attributes: Vec<Attribute>) -> MediaDescription {
    MediaDescription {
        media_name: MediaName {
            media: "audio".into(),
            port: RangedPort {
                value: port as isize,
                range: None,
            },
            protos: vec!["RTP".into(), "AVP".into()],
            formats,
        },
        media_title: None,
        connection_information: None,
        bandwidth: vec![],
        encryption_key: None,
        attributes,
    }
}

fn payload_attributes(
    codec: Codec,
    codec_pt: u8,
    event: Option<TelephoneEvent>,
    ptime: u32,
    direction: Direction,
) -> (Vec<String>, Vec<Attribute>) {
    let mut formats = vec![codec_pt.to_string()];
    let mut attributes = vec![attribute(
        "rtpmap",
        Some(format!("{codec_pt} {}/8000", codec.name())),
    )];
    if let Some(e) = event {
        formats.push(e.payload_type.to_string());
        attributes.push(attribute(
            "rtpmap",
            Some(format!(
                "{} telephone-event/{}",
                e.payload_type, e.clock_rate
            )),
        ));
        attributes.push(attribute("fmtp", Some(format!("{} 0-16", e.payload_type))));
    }
    attributes.push(attribute("ptime", Some(ptime.to_string())));
    attributes.push(attribute(direction.attribute(), None));
    (formats, attributes)
}

/// The SDP answer to `offer` (RFC 3264 §6): our negotiated audio stream in the offer's audio
/// m-line position, every other m-line refused with port 0.
pub fn answer(offer: &Offer, negotiated: &Negotiated, local: &Local) -> String {
    let mut session = session_skeleton(local);
    for (i, media) in offer.session.media_descriptions.iter().enumerate() {
        if i == offer.audio.index {
            let (formats, attributes) = payload_attributes(
                negotiated.codec,
                negotiated.codec_payload_type,
                negotiated.telephone_event,
                negotiated.ptime,
                negotiated.direction,
            );
            session
                .media_descriptions
                .push(audio_media(local.rtp.port(), formats, attributes));
        } else {
            let mut refused = media.clone();
            refused.media_name.port = RangedPort {
                value: 0,
                range: None,
            };
            refused.attributes.clear();
            refused.media_name.formats.truncate(1);
            session.media_descriptions.push(refused);
        }
    }
    session.marshal()
}

/// An offer for an outbound (callback) call: our codecs in preference order and
/// telephone-event at `event_payload_type`/8000.
pub fn offer(preferences: &[Codec], event_payload_type: u8, ptime: u32, local: &Local) -> String {
    let mut session = session_skeleton(local);
    let mut formats: Vec<String> = preferences
        .iter()
        .map(|c| c.static_payload_type().to_string())
        .collect();
    let mut attributes: Vec<Attribute> = preferences
        .iter()
        .map(|c| {
            attribute(
                "rtpmap",
                Some(format!("{} {}/8000", c.static_payload_type(), c.name())),
            )
        })
        .collect();
    formats.push(event_payload_type.to_string());
    attributes.push(attribute(
        "rtpmap",
        Some(format!("{event_payload_type} telephone-event/8000")),
    ));
    attributes.push(attribute(
        "fmtp",
        Some(format!("{event_payload_type} 0-16")),
    ));
    attributes.push(attribute("ptime", Some(ptime.to_string())));
    attributes.push(attribute("sendrecv", None));
    session
        .media_descriptions
        .push(audio_media(local.rtp.port(), formats, attributes));
    session.marshal()
}

/// An unspecified address, for tests and for `c=` lines of streams on hold.
pub const UNSPECIFIED: IpAddr = IpAddr::V4(Ipv4Addr::UNSPECIFIED);

#[cfg(test)]
mod tests {
    use super::*;

    const SIPP: &str = "v=0\no=user1 53655765 2353687637 IN IP4 127.0.0.1\ns=-\nc=IN IP4 127.0.0.1\nt=0 0\nm=audio 6000 RTP/AVP 0 8 101\na=rtpmap:0 PCMU/8000\na=rtpmap:8 PCMA/8000\na=rtpmap:101 telephone-event/8000\na=fmtp:101 0-15\n";

    fn local() -> Local {
        Local {
            rtp: "192.0.2.10:20000".parse().unwrap(),
            session_id: 42,
            session_version: 1,
        }
    }

    #[test]
    fn negotiates_our_preference_and_their_event_type() {
        let offer = parse(SIPP).unwrap();
        let n = negotiate(&offer.audio, &[Codec::Pcma, Codec::Pcmu]).unwrap();
        assert_eq!(n.codec, Codec::Pcma);
        assert_eq!(n.codec_payload_type, 8);
        assert_eq!(
            n.telephone_event,
            Some(TelephoneEvent {
                payload_type: 101,
                clock_rate: 8000
            })
        );
        assert_eq!(n.ptime, 20);
        assert_eq!(n.remote, "127.0.0.1:6000".parse().unwrap());
    }

    #[test]
    fn answer_round_trips_through_the_parser() {
        let offer = parse(SIPP).unwrap();
        let n = negotiate(&offer.audio, &[Codec::Pcmu]).unwrap();
        let text = answer(&offer, &n, &local());
        let back = parse(&text).unwrap();
        assert_eq!(back.audio.remote, local().rtp);
        let again = negotiate(&back.audio, &[Codec::Pcmu, Codec::Pcma]).unwrap();
        assert_eq!(again.codec, Codec::Pcmu);
        assert_eq!(again.telephone_event.map(|e| e.payload_type), Some(101));
        assert!(text.contains("a=sendrecv"), "{text}");
    }

    #[test]
    fn no_common_codec_names_both_sides() {
        let g729 = SIPP.replace("RTP/AVP 0 8 101", "RTP/AVP 18 101").replace(
            "a=rtpmap:0 PCMU/8000\na=rtpmap:8 PCMA/8000\n",
            "a=rtpmap:18 G729/8000\n",
        );
        let offer = parse(&g729).unwrap();
        let e = negotiate(&offer.audio, &[Codec::Pcmu, Codec::Pcma]).unwrap_err();
        assert_eq!(
            e.to_string(),
            "no common codec: offer has 18=G729/8000 101=telephone-event/8000, we speak PCMU PCMA"
        );
    }

    #[test]
    fn missing_t_and_s_lines_are_tolerated() {
        let sloppy = SIPP.replace("s=-\n", "").replace("t=0 0\n", "");
        assert!(parse(&sloppy).is_ok());
    }

    #[test]
    fn hold_and_direction() {
        let hold = SIPP.replace("c=IN IP4 127.0.0.1", "c=IN IP4 0.0.0.0");
        assert!(parse(&hold).unwrap().audio.is_hold());
        let sendonly = format!("{SIPP}a=sendonly\n");
        let offer = parse(&sendonly).unwrap();
        assert!(offer.audio.is_hold());
        let n = negotiate(&offer.audio, &[Codec::Pcmu]).unwrap();
        assert_eq!(n.direction, Direction::RecvOnly);
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        for text in ["", "hello", "v=0\nm=audio x RTP/AVP 0\n", "v=0\no=a\n"] {
            assert!(parse(text).is_err(), "{text:?}");
        }
    }
}
