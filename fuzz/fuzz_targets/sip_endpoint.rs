//! The SIP endpoint (transactions, 100/403/404/481/503/400 before any call exists) on a
//! sequence of datagrams: every datagram it sends must be a SIP message it can parse, and
//! timers run to completion without panicking.
//!
//! Input: datagrams separated by NUL bytes (SIP text has none); a datagram's first byte picks the source (odd:
//! an untrusted address) and how far the clock moves before it arrives.
#![no_main]

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use hotdesk_core::sip::endpoint::{Endpoint, EndpointEvent, EndpointSettings};
use hotdesk_core::sip::message::{parse, response_to};
use hotdesk_core::sip::transaction::Timers;
use libfuzzer_sys::fuzz_target;

#[path = "sip_common.rs"]
mod sip_common;
use sip_common::sendable;

fn settings() -> EndpointSettings {
    EndpointSettings {
        agent: "hotdesk-fuzz".into(),
        trusted: vec!["127.0.0.0/8".parse().unwrap()],
        max_calls: 2,
        services: vec!["*88".into(), "*89".into(), "*97".into()],
        retry_after: Duration::from_secs(5),
        timers: Timers::default(),
        max_requests_per_source_s: 1_000_000,
        max_invites_per_source_s: 1_000_000,
        rate_exempt: Vec::new(),
    }
}

fn drain(endpoint: &mut Endpoint, now: Instant) {
    while let Some((_, bytes)) = endpoint.poll_transmit() {
        assert!(
            sendable(&bytes),
            "we sent something we cannot parse: {:?}\n{}",
            parse(&bytes),
            String::from_utf8_lossy(&bytes)
        );
    }
    while let Some(event) = endpoint.poll_event() {
        // Answer what the runtime would answer, so the INVITE server transactions complete.
        match event {
            EndpointEvent::Incoming { key, request, .. } => {
                endpoint.respond(now, &key, &response_to(&request, 486, "Busy Here"));
                if let Some(call_id) = request.call_id() {
                    endpoint.call_ended(call_id);
                }
            }
            EndpointEvent::InDialog { key, request, .. } => {
                endpoint.respond(now, &key, &response_to(&request, 200, "OK"));
            }
            _ => {}
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let mut endpoint = Endpoint::new(settings());
    let mut now = Instant::now();
    let trusted: SocketAddr = "127.0.0.1:5070".parse().unwrap();
    let untrusted: SocketAddr = "192.0.2.9:5060".parse().unwrap();
    for datagram in data.split(|&b| b == 0) {
        let Some(&first) = datagram.first() else {
            continue;
        };
        now += Duration::from_millis(u64::from(first) * 20);
        while let Some(due) = endpoint.poll_timeout().filter(|&t| t <= now) {
            endpoint.handle_timeout(due);
            drain(&mut endpoint, due);
        }
        let source = if first % 2 == 1 { untrusted } else { trusted };
        endpoint.handle_datagram(now, source, datagram);
        drain(&mut endpoint, now);
    }
    // Let every transaction time out (64*T1 and timer K/J) and drain.
    let end = now + Duration::from_secs(64);
    while let Some(due) = endpoint.poll_timeout().filter(|&t| t <= end) {
        endpoint.handle_timeout(due);
        drain(&mut endpoint, due);
    }
});
