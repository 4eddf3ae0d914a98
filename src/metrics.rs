//! Prometheus metrics (`GET /metrics`, OpenMetrics text via `prometheus-client`): calls,
//! logins, failures, lockouts, releases, digits by source, activations by outcome, detector
//! load, RTP send lateness, and the report queue (its depth is read from the store when
//! scraped).

use std::sync::atomic::AtomicU64;

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

type Labels = Vec<(&'static str, String)>;

/// Upper bounds of the send-lateness buckets, seconds: fine below the 20 ms packet interval,
/// where a paced sender lives (tokio's timer alone adds up to 1 ms), coarse above it, where
/// a caller's jitter buffer starts to run dry.
const SEND_LATENESS_BUCKETS: [f64; 11] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25,
];

/// Every counter and gauge the server keeps. Cheap to share (`Arc`); all updates are atomic.
pub struct Metrics {
    registry: Registry,
    /// Calls set up, by direction (`in`, `out`).
    pub calls: Family<Labels, Counter>,
    /// Calls in progress.
    pub active_calls: Gauge,
    /// Successful logins.
    pub logins: Counter,
    /// Failed login attempts.
    pub login_failures: Counter,
    /// Lockouts imposed (an attempt refused because of one counts too).
    pub lockouts: Counter,
    /// Desks released.
    pub releases: Counter,
    /// Keys taken, by source (`rfc4733`, `info`, `inband`).
    pub digits: Family<Labels, Counter>,
    /// Callback activations by outcome.
    pub activations: Family<Labels, Counter>,
    /// Audio samples run through the in-band detector (rate = detector load).
    pub detector_samples: Counter,
    /// How late each outgoing RTP packet left against its slot on the absolute schedule
    /// (`start + n·ptime`), seconds: the send jitter a caller hears.
    pub rtp_send_lateness: Histogram,
    /// Reports not yet delivered (set when scraped).
    pub report_queue: Gauge,
    /// Milliseconds from a report's creation to its delivery, summed, and how many.
    pub report_latency_ms_sum: Counter<u64, AtomicU64>,
    /// Reports delivered.
    pub reports_delivered: Counter,
    /// SIP datagrams dropped or refused before reaching a call, by reason (`rate`: over the
    /// source's datagram rate; `invite_rate`: over its INVITE rate; `blocked`: INVITE from a
    /// source blocked after failed logins; `not_peer`: a call's request from another host).
    pub sip_refused: Family<Labels, Counter>,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("hotdesk");
        let m = Metrics {
            calls: Family::default(),
            active_calls: Gauge::default(),
            logins: Counter::default(),
            login_failures: Counter::default(),
            lockouts: Counter::default(),
            releases: Counter::default(),
            digits: Family::default(),
            activations: Family::default(),
            detector_samples: Counter::default(),
            rtp_send_lateness: Histogram::new(SEND_LATENESS_BUCKETS),
            report_queue: Gauge::default(),
            report_latency_ms_sum: Counter::default(),
            reports_delivered: Counter::default(),
            sip_refused: Family::default(),
            registry: Registry::default(),
        };
        registry.register("calls", "Calls set up", m.calls.clone());
        registry.register("active_calls", "Calls in progress", m.active_calls.clone());
        registry.register("logins", "Successful hot-desk logins", m.logins.clone());
        registry.register(
            "login_failures",
            "Failed login attempts",
            m.login_failures.clone(),
        );
        registry.register(
            "lockouts",
            "Attempts refused by a lockout",
            m.lockouts.clone(),
        );
        registry.register("releases", "Desks released", m.releases.clone());
        registry.register("digits", "DTMF keys taken, by source", m.digits.clone());
        registry.register(
            "activations",
            "Callback activations by outcome",
            m.activations.clone(),
        );
        registry.register(
            "detector_samples",
            "Samples run through the in-band DTMF detector",
            m.detector_samples.clone(),
        );
        registry.register(
            "rtp_send_lateness_seconds",
            "Lateness of each RTP packet sent against its schedule",
            m.rtp_send_lateness.clone(),
        );
        registry.register(
            "report_queue_depth",
            "Reports waiting for delivery",
            m.report_queue.clone(),
        );
        registry.register(
            "report_delivery_latency_ms_sum",
            "Milliseconds from report to delivery, summed",
            m.report_latency_ms_sum.clone(),
        );
        registry.register(
            "reports_delivered",
            "Reports delivered to the webhook",
            m.reports_delivered.clone(),
        );
        registry.register(
            "sip_refused",
            "SIP datagrams dropped or refused before reaching a call, by reason",
            m.sip_refused.clone(),
        );
        Metrics { registry, ..m }
    }
}

impl Metrics {
    /// One key taken from `source`.
    pub fn digit(&self, source: &str) {
        self.digits
            .get_or_create(&vec![("source", source.to_owned())])
            .inc();
    }

    /// One call set up in `direction` (`in` or `out`).
    pub fn call(&self, direction: &'static str) {
        self.calls
            .get_or_create(&vec![("direction", direction.to_owned())])
            .inc();
    }

    /// One activation ended with `outcome`.
    pub fn activation(&self, outcome: &str) {
        self.activations
            .get_or_create(&vec![("outcome", outcome.to_owned())])
            .inc();
    }

    /// `n` more SIP datagrams refused for `reason`.
    pub fn sip_refused(&self, reason: &'static str, n: u64) {
        if n > 0 {
            self.sip_refused
                .get_or_create(&vec![("reason", reason.to_owned())])
                .inc_by(n);
        }
    }

    /// A delivered report that waited `latency_ms`.
    pub fn delivered(&self, latency_ms: u64) {
        self.reports_delivered.inc();
        self.report_latency_ms_sum.inc_by(latency_ms);
    }

    /// The OpenMetrics text.
    pub fn render(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = encode(&mut out, &self.registry);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_openmetrics_text_with_labels() {
        let m = Metrics::default();
        m.digit("inband");
        m.digit("inband");
        m.logins.inc();
        m.call("in");
        m.rtp_send_lateness.observe(0.0003);
        let text = m.render();
        assert!(
            text.contains("hotdesk_digits_total{source=\"inband\"} 2"),
            "{text}"
        );
        assert!(text.contains("hotdesk_logins_total 1"), "{text}");
        assert!(
            text.contains("hotdesk_calls_total{direction=\"in\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("hotdesk_rtp_send_lateness_seconds_bucket{le=\"0.0005\"} 1"),
            "{text}"
        );
        assert!(text.ends_with("# EOF\n"));
    }
}
