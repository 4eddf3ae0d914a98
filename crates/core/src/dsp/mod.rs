//! Signal processing: G.711 companding, the in-band DTMF receiver and a test-tone generator.
//!
//! Everything here is pure computation on sample buffers: no I/O, no clocks. Sample indices
//! are the only notion of time.

pub mod dtmf;
pub mod g711;
pub mod tone;
