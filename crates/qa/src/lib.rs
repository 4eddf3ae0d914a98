//! hotdesk's QA tools, on the core and the store, never on the server: the synthesised DTMF
//! batteries ([`conformance`]), fixture suites ([`qa`]), whole calls replayed on virtual time
//! from a recording ([`replay`]), and packet captures ([`pcap`], [`dtmf_stream`], [`capture`]).

pub mod capture;
pub mod conformance;
pub mod dtmf_stream;
pub mod fixture;
pub mod pcap;
pub mod qa;
pub mod qa_flow;
pub mod replay;
