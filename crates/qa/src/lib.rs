//! hotdesk's QA tools, on the core and the store, never on the server: the synthesised DTMF
//! batteries ([`conformance`]), fixture suites ([`qa`]), whole calls replayed on virtual time
//! from a recording ([`replay`]), packet captures ([`pcap`], [`dtmf_stream`], [`capture`]), the
//! real-world battery ([`realworld`]) and the spectrogram of a call ([`plot`]).

pub mod capture;
pub mod conformance;
pub mod dtmf_stream;
pub mod fixture;
pub mod pcap;
pub mod plot;
pub mod qa;
pub mod qa_flow;
pub mod realworld;
pub mod replay;
