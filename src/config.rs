//! Server configuration (`contract.md` §2): TOML, every key optional, validated before anything
//! starts. A bad file stops start-up with the file, the key and the reason; secrets come from
//! environment variables named in the file, never from the file itself.

use std::net::{IpAddr, SocketAddr};
use std::ops::RangeInclusive;
use std::path::{Path, PathBuf};

use ipnet::IpNet;
use secrecy::SecretString;
use serde::Deserialize;

use crate::report::SignatureScheme;
use hotdesk_core::identity::Extension;
use hotdesk_core::ivr::{self, FlowSettings, FlowSpec};
pub use hotdesk_core::media::DtmfMode;
use hotdesk_core::sip::sdp::Codec;
use hotdesk_store::directory::{
    Directory, DirectoryError, LockoutPolicy, PEPPER_ENV, Pepper, PinPolicy,
};

/// The whole configuration, with the contract's defaults.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// SIP transport and peers.
    pub sip: SipConfig,
    /// RTP ports, codecs, DTMF paths.
    pub rtp: RtpConfig,
    /// Feature codes and the desk-phone range.
    pub features: FeaturesConfig,
    /// Digit collection.
    pub ivr: IvrConfig,
    /// Lockout of brute-force callers.
    pub security: SecurityConfig,
    /// The HTTP API.
    pub api: ApiConfig,
    /// Reports to the call-control layer.
    pub report: ReportConfig,
    /// The directory store.
    pub store: StoreConfig,
    /// Voice prompts.
    pub prompts: PromptsConfig,
}

/// `[sip]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SipConfig {
    /// UDP listen address.
    pub listen: SocketAddr,
    /// Address advertised in Via/Contact/SDP (default: the listen address).
    pub public_addr: Option<IpAddr>,
    /// Domain for outbound Request-URIs and From.
    pub domain: String,
    /// Where callback INVITEs go (`sip:host[:port]`).
    pub outbound_proxy: Option<String>,
    /// Who may send us INVITEs (CIDR); others get 403.
    pub trusted_sources: Vec<String>,
    /// Digest user for challenges to our INVITEs.
    pub auth_user: Option<String>,
    /// Environment variable holding the digest password.
    pub auth_password_env: String,
    /// Calls at once; past it INVITEs get 503 with Retry-After.
    pub max_calls: usize,
    /// On SIGTERM, how long running calls may go on before hotdesk hangs them up.
    pub drain_timeout_s: u64,
    /// How long an answered INVITE waits for its ACK before the call is dropped and its RTP
    /// port freed (RFC 3261 allows 64·T1 = 32 s; an IVR has nothing to gain from waiting).
    pub ack_timeout_s: u64,
    /// New INVITEs per second taken from one source address; more are dropped unanswered
    /// (Kamailio's pike does the same). In-dialog requests are not counted.
    pub max_invites_per_source_s: u32,
    /// Out-of-dialog requests per second (any method) taken from one source; more are
    /// dropped before they are parsed.
    pub max_requests_per_source_s: u32,
}

impl Default for SipConfig {
    fn default() -> Self {
        SipConfig {
            listen: "0.0.0.0:5060".parse().expect("literal"),
            public_addr: None,
            domain: "localhost".into(),
            outbound_proxy: None,
            trusted_sources: vec!["127.0.0.0/8".into(), "::1/128".into()],
            auth_user: None,
            auth_password_env: "HOTDESK_SIP_PASSWORD".into(),
            max_calls: 500,
            drain_timeout_s: 30,
            ack_timeout_s: 8,
            max_invites_per_source_s: 100,
            max_requests_per_source_s: 200,
        }
    }
}

/// `[rtp]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RtpConfig {
    /// Even-start port range, `"20000-29999"`.
    pub port_range: String,
    /// Codec preference order.
    pub codecs: Vec<Codec>,
    /// DTMF paths.
    pub dtmf: DtmfMode,
    /// Networks (CIDR) whose addresses an SDP may name as the caller's media address besides
    /// the address the INVITE came from. Empty: only the signalling source, so that an INVITE
    /// cannot aim the prompts at a third party.
    pub media_sources: Vec<String>,
    /// Stop sending RTP to a caller that has sent none for this long (Asterisk's
    /// `rtptimeout`); sending resumes when its RTP does. 0: never stop.
    pub timeout_s: u64,
}

impl Default for RtpConfig {
    fn default() -> Self {
        RtpConfig {
            port_range: "20000-29999".into(),
            codecs: vec![Codec::Pcmu, Codec::Pcma],
            dtmf: DtmfMode::Auto,
            media_sources: Vec::new(),
            timeout_s: 10,
        }
    }
}

/// `[features]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FeaturesConfig {
    /// Hot-desk login feature code.
    pub login_code: String,
    /// Release feature code.
    pub release_code: String,
    /// Field test: speaks back every key heard.
    pub dtmf_test_code: String,
    /// Extensions of the shared desk phones, `"5400-5499"`.
    pub device_range: String,
    /// More service numbers, each running a flow by name: `"*90" = "some_flow"`.
    pub codes: std::collections::BTreeMap<String, String>,
}

impl Default for FeaturesConfig {
    fn default() -> Self {
        FeaturesConfig {
            login_code: "*88".into(),
            release_code: "*89".into(),
            dtmf_test_code: "*97".into(),
            device_range: "5400-5499".into(),
            codes: Default::default(),
        }
    }
}

/// `[ivr]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct IvrConfig {
    /// Wait for the first key, ms.
    pub first_digit_timeout_ms: u64,
    /// Wait between keys, ms.
    pub inter_digit_timeout_ms: u64,
    /// Ends an entry.
    pub terminator: String,
    /// Failed logins per call before goodbye.
    pub max_attempts: u32,
    /// Prompt language.
    pub language: String,
    /// How long a callback (the portal's *Activate Phone*) rings before it is `no_answer`.
    pub ring_timeout_s: u64,
    /// Longest login or release call, seconds: then the caller hears that the time is up,
    /// goodbye, and the call ends.
    pub max_call_s: u64,
    /// Longest `*97` DTMF test call, seconds.
    pub dtmf_test_max_call_s: u64,
}

impl Default for IvrConfig {
    fn default() -> Self {
        IvrConfig {
            first_digit_timeout_ms: 5000,
            inter_digit_timeout_ms: 3000,
            terminator: "#".into(),
            max_attempts: 3,
            language: "en".into(),
            ring_timeout_s: 30,
            max_call_s: 120,
            dtmf_test_max_call_s: 600,
        }
    }
}

/// `[security]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SecurityConfig {
    /// Failed logins per account ...
    pub lockout_failures: u32,
    /// ... within this window, seconds ...
    pub lockout_window_s: u64,
    /// ... lock it for this long, seconds.
    pub lockout_s: u64,
    /// Failed logins from one source address (any desks, any accounts) ...
    pub source_failures: u32,
    /// ... within this window, seconds ...
    pub source_window_s: u64,
    /// ... block its new calls for this long, seconds (fail2ban over Asterisk's security
    /// events does the same).
    pub source_block_s: u64,
    /// Sources (CIDR) never blocked and not rate-limited per source, e.g. the proxy every call
    /// comes through: its address stands for every phone behind it, so limit sources there
    /// instead (docs/deploy.md).
    pub source_exempt: Vec<String>,
    /// Fewest digits in a PIN.
    pub pin_min_digits: usize,
    /// Refuse PINs that are guessed first: one digit repeated, a run up or down (`1234`,
    /// `9876`), or the user's own extension.
    pub pin_refuse_weak: bool,
}

impl Default for SecurityConfig {
    fn default() -> Self {
        SecurityConfig {
            lockout_failures: 5,
            lockout_window_s: 900,
            lockout_s: 900,
            source_failures: 20,
            source_window_s: 900,
            source_block_s: 900,
            source_exempt: Vec::new(),
            pin_min_digits: 4,
            pin_refuse_weak: true,
        }
    }
}

/// `[api]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ApiConfig {
    /// HTTP listen address.
    pub listen: SocketAddr,
    /// Environment variable with the bearer token (required off loopback).
    pub token_env: String,
    /// Connections open at once; more wait in the kernel's backlog.
    pub max_connections: usize,
    /// How long a client may take to send a request's headers, and how long a kept-alive
    /// connection may wait for its next request, seconds.
    pub header_timeout_s: u64,
}

impl Default for ApiConfig {
    fn default() -> Self {
        ApiConfig {
            listen: "127.0.0.1:8088".parse().expect("literal"),
            token_env: "HOTDESK_API_TOKEN".into(),
            max_connections: 256,
            header_timeout_s: 10,
        }
    }
}

/// `[report]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ReportConfig {
    /// The call-control webhook; none = store only (`GET /v1/events`).
    pub webhook_url: Option<String>,
    /// Environment variable with the HMAC secret.
    pub secret_env: String,
    /// `X-Hotdesk-Signature` scheme: `v1` (`t=UNIX,v1=HMAC(t.body)`, which a receiver can
    /// hold to a time window) or `legacy` (`sha256=HMAC(body)`, replayable; for receivers not
    /// yet updated, and to be removed in the next release).
    pub signature: SignatureScheme,
    /// Delivered reports older than this many days are deleted (undelivered ones never are).
    /// 0: keep them for ever.
    pub retention_days: u32,
}

impl Default for ReportConfig {
    fn default() -> Self {
        ReportConfig {
            webhook_url: None,
            secret_env: "HOTDESK_WEBHOOK_SECRET".into(),
            signature: SignatureScheme::V1,
            retention_days: 90,
        }
    }
}

/// `[store]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StoreConfig {
    /// `sqlite://file` or `postgres://…`.
    pub url: String,
}

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig {
            url: "sqlite://hotdesk.db".into(),
        }
    }
}

/// `[prompts]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PromptsConfig {
    /// Folder with `catalog.toml`.
    pub dir: PathBuf,
}

impl Default for PromptsConfig {
    fn default() -> Self {
        PromptsConfig {
            dir: "prompts".into(),
        }
    }
}

/// Why a configuration was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The file cannot be read.
    #[error("{path}: cannot read: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// Not TOML, an unknown key or a wrong type (the message has line, column and key).
    #[error("{path}: {message}")]
    Parse {
        /// The file.
        path: String,
        /// The parser's message.
        message: String,
    },
    /// A value that parses but makes no sense.
    #[error("{path}: {key}: {reason}")]
    Invalid {
        /// The file.
        path: String,
        /// Dotted key, e.g. `rtp.port_range`.
        key: &'static str,
        /// Why.
        reason: String,
    },
}

/// The configuration after validation, with derived values.
#[derive(Debug, Clone)]
pub struct Validated {
    /// The settings as written (with defaults).
    pub config: Config,
    /// Parsed `sip.trusted_sources`.
    pub trusted: Vec<IpNet>,
    /// Parsed `rtp.media_sources`.
    pub media_sources: Vec<IpNet>,
    /// Parsed `security.source_exempt`.
    pub source_exempt: Vec<IpNet>,
    /// Parsed `rtp.port_range`.
    pub rtp_ports: RangeInclusive<u16>,
    /// Parsed `features.device_range`.
    pub devices: RangeInclusive<u32>,
    /// Service number (`*88` …) → the flow it runs.
    pub codes: std::collections::BTreeMap<String, &'static FlowSpec>,
    /// The digest password from `sip.auth_password_env`, when `sip.auth_user` is set.
    pub sip_password: Option<SecretString>,
}

impl Validated {
    /// True when `ip` may send us INVITEs.
    pub fn is_trusted(&self, ip: IpAddr) -> bool {
        self.trusted.iter().any(|net| net.contains(&ip))
    }

    /// True when `extension` is a hot-desk phone: canonical ([`Extension`]) and in
    /// `features.device_range`.
    pub fn is_device(&self, extension: &str) -> bool {
        Extension::parse(extension)
            .is_ok_and(|e| u32::try_from(e.number()).is_ok_and(|n| self.devices.contains(&n)))
    }

    /// The address a login attempt from `ip` is counted under for per-source limits, or
    /// `None` when `ip` is exempt (`security.source_exempt`).
    pub fn limited_source(&self, ip: IpAddr) -> Option<IpAddr> {
        let ip = ip.to_canonical();
        (!self.source_exempt.iter().any(|net| net.contains(&ip))).then_some(ip)
    }

    /// The `[security]` lockout policy.
    pub fn lockout_policy(&self) -> LockoutPolicy {
        let security = &self.config.security;
        LockoutPolicy {
            failures: security.lockout_failures,
            window: std::time::Duration::from_secs(security.lockout_window_s),
            lock: std::time::Duration::from_secs(security.lockout_s),
            device_failures: LockoutPolicy::DEFAULT_DEVICE_FAILURES,
            source_failures: security.source_failures,
            source_window: std::time::Duration::from_secs(security.source_window_s),
            source_block: std::time::Duration::from_secs(security.source_block_s),
        }
    }

    /// The `[security]` PIN policy.
    pub fn pin_policy(&self) -> PinPolicy {
        PinPolicy {
            min_digits: self.config.security.pin_min_digits,
            refuse_weak: self.config.security.pin_refuse_weak,
        }
    }

    /// Opens the store: `store.url`, the pepper from `HOTDESK_PIN_PEPPER` (looked up with
    /// `env`) or the pepper file, and the `[security]` policies.
    pub async fn open_directory(
        &self,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Directory, DirectoryError> {
        let url = &self.config.store.url;
        let pepper = Pepper::resolve(url, env(PEPPER_ENV).as_deref())?;
        Directory::open_with(url, pepper, self.lockout_policy(), self.pin_policy()).await
    }

    /// The longest a call running `flow` may last, seconds.
    pub fn max_call_s(&self, flow: &FlowSpec) -> u64 {
        if flow.secret_keys {
            self.config.ivr.max_call_s
        } else {
            self.config.ivr.dtmf_test_max_call_s
        }
    }

    /// The `[ivr]` settings the flows run with.
    pub fn flow_settings(&self) -> FlowSettings {
        let ivr = &self.config.ivr;
        FlowSettings {
            first_digit_timeout: std::time::Duration::from_millis(ivr.first_digit_timeout_ms),
            inter_digit_timeout: std::time::Duration::from_millis(ivr.inter_digit_timeout_ms),
            terminator: ivr.terminator.chars().next().unwrap_or('#'),
            max_attempts: ivr.max_attempts,
        }
    }

    /// The address to advertise in Via, Contact and SDP.
    pub fn public_ip(&self) -> IpAddr {
        self.config
            .sip
            .public_addr
            .unwrap_or(self.config.sip.listen.ip())
    }
}

impl Config {
    /// Reads and validates a file. `env` looks up environment variables (injected so tests do
    /// not depend on the process environment).
    pub fn load(
        path: &Path,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Validated, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        Self::parse(&text, &path.display().to_string(), env)
    }

    /// Parses and validates TOML text; `origin` names it in errors.
    pub fn parse(
        text: &str,
        origin: &str,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Validated, ConfigError> {
        let config: Config = toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: origin.into(),
            message: e.to_string().trim().replace('\n', " "),
        })?;
        config.validate(origin, env)
    }

    /// The embedded defaults, validated.
    pub fn defaults() -> Validated {
        Config::default()
            .validate("(defaults)", |_| None)
            .expect("the defaults are valid")
    }

    fn validate(
        self,
        origin: &str,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Validated, ConfigError> {
        let bad = |key: &'static str, reason: String| ConfigError::Invalid {
            path: origin.into(),
            key,
            reason,
        };
        let nets = |key: &'static str, list: &[String]| {
            list.iter()
                .map(|s| {
                    s.parse::<IpNet>()
                        .or_else(|_| s.parse::<IpAddr>().map(IpNet::from))
                        .map_err(|_| bad(key, format!("{s:?} is not an address or CIDR block")))
                })
                .collect::<Result<Vec<_>, _>>()
        };
        let trusted = nets("sip.trusted_sources", &self.sip.trusted_sources)?;
        let media_sources = nets("rtp.media_sources", &self.rtp.media_sources)?;
        let source_exempt = nets("security.source_exempt", &self.security.source_exempt)?;
        if self.sip.max_calls == 0 {
            return Err(bad("sip.max_calls", "must be at least 1".into()));
        }
        if let Some(proxy) = &self.sip.outbound_proxy
            && !proxy.starts_with("sip:")
        {
            return Err(bad(
                "sip.outbound_proxy",
                format!("{proxy:?} is not a sip: URI"),
            ));
        }
        let rtp_ports = range::<u16>(&self.rtp.port_range)
            .filter(|r| *r.start() >= 1024 && r.end() - r.start() >= 1)
            .ok_or_else(|| {
                bad(
                    "rtp.port_range",
                    format!(
                        "{:?}: want \"LOW-HIGH\" with 1024 ≤ LOW < HIGH ≤ 65535",
                        self.rtp.port_range
                    ),
                )
            })?;
        if self.rtp.codecs.is_empty() {
            return Err(bad("rtp.codecs", "name at least one of PCMU, PCMA".into()));
        }
        let devices = range::<u32>(&self.features.device_range).ok_or_else(|| {
            bad(
                "features.device_range",
                format!(
                    "{:?}: want \"LOW-HIGH\" extensions",
                    self.features.device_range
                ),
            )
        })?;
        let codes = [
            ("features.login_code", &self.features.login_code),
            ("features.release_code", &self.features.release_code),
            ("features.dtmf_test_code", &self.features.dtmf_test_code),
        ];
        for (key, code) in codes {
            let valid = code.len() >= 2
                && code.starts_with('*')
                && code[1..].chars().all(|c| c.is_ascii_digit());
            if !valid {
                return Err(bad(key, format!("{code:?}: want a star code like *88")));
            }
        }
        if codes[0].1 == codes[1].1 || codes[0].1 == codes[2].1 || codes[1].1 == codes[2].1 {
            return Err(bad("features", "the feature codes must differ".into()));
        }
        let mut flows = std::collections::BTreeMap::new();
        for ((_, code), name) in codes.iter().zip(["login", "release", "dtmf_test"]) {
            flows.insert((*code).clone(), ivr::find(name).expect("a built-in flow"));
        }
        for (code, name) in &self.features.codes {
            let valid = code.len() >= 2
                && code.starts_with('*')
                && code[1..].chars().all(|c| c.is_ascii_digit());
            if !valid {
                return Err(bad(
                    "features.codes",
                    format!("{code:?}: want a star code like *90"),
                ));
            }
            let spec = ivr::find(name).ok_or_else(|| {
                let known: Vec<&str> = ivr::FLOWS.iter().map(|f| f.name).collect();
                bad(
                    "features.codes",
                    format!(
                        "{code:?} = {name:?}: no such flow (flows: {})",
                        known.join(", ")
                    ),
                )
            })?;
            if flows.insert(code.clone(), spec).is_some() {
                return Err(bad("features.codes", format!("{code:?} is used twice")));
            }
        }
        let ivr = &self.ivr;
        if !(500..=60_000).contains(&ivr.first_digit_timeout_ms) {
            return Err(bad(
                "ivr.first_digit_timeout_ms",
                "must be within 500..=60000".into(),
            ));
        }
        if !(500..=60_000).contains(&ivr.inter_digit_timeout_ms) {
            return Err(bad(
                "ivr.inter_digit_timeout_ms",
                "must be within 500..=60000".into(),
            ));
        }
        if !matches!(ivr.terminator.as_str(), "#" | "*") {
            return Err(bad(
                "ivr.terminator",
                format!("{:?}: want \"#\" or \"*\"", ivr.terminator),
            ));
        }
        if !(1..=10).contains(&ivr.max_attempts) {
            return Err(bad("ivr.max_attempts", "must be within 1..=10".into()));
        }
        let sec = &self.security;
        if sec.lockout_failures == 0 || sec.lockout_window_s == 0 || sec.lockout_s == 0 {
            return Err(bad(
                "security",
                "lockout_failures, lockout_window_s and lockout_s must be positive".into(),
            ));
        }
        if sec.source_failures == 0 || sec.source_window_s == 0 || sec.source_block_s == 0 {
            return Err(bad(
                "security",
                "source_failures, source_window_s and source_block_s must be positive".into(),
            ));
        }
        if !(4..=10).contains(&sec.pin_min_digits) {
            return Err(bad(
                "security.pin_min_digits",
                "must be within 4..=10".into(),
            ));
        }
        if !(10..=86_400).contains(&self.ivr.max_call_s) {
            return Err(bad("ivr.max_call_s", "must be within 10..=86400".into()));
        }
        if !(10..=86_400).contains(&self.ivr.dtmf_test_max_call_s) {
            return Err(bad(
                "ivr.dtmf_test_max_call_s",
                "must be within 10..=86400".into(),
            ));
        }
        if !(1..=32).contains(&self.sip.ack_timeout_s) {
            return Err(bad("sip.ack_timeout_s", "must be within 1..=32".into()));
        }
        if self.sip.max_invites_per_source_s == 0 || self.sip.max_requests_per_source_s == 0 {
            return Err(bad(
                "sip",
                "max_invites_per_source_s and max_requests_per_source_s must be positive".into(),
            ));
        }
        if self.api.max_connections == 0 || self.api.header_timeout_s == 0 {
            return Err(bad(
                "api",
                "max_connections and header_timeout_s must be positive".into(),
            ));
        }
        if !(1..=600).contains(&self.ivr.ring_timeout_s) {
            return Err(bad("ivr.ring_timeout_s", "must be within 1..=600".into()));
        }
        if !self.api.listen.ip().is_loopback()
            && env(&self.api.token_env).is_none_or(|t| t.is_empty())
        {
            return Err(bad(
                "api.listen",
                format!(
                    "{} is not loopback, so a bearer token is required: set {}",
                    self.api.listen, self.api.token_env
                ),
            ));
        }
        if self.report.webhook_url.is_some()
            && env(&self.report.secret_env).is_none_or(|t| t.is_empty())
        {
            return Err(bad(
                "report.webhook_url",
                format!(
                    "a webhook needs a signing secret: set {}",
                    self.report.secret_env
                ),
            ));
        }
        if !(self.store.url.starts_with("sqlite:") || self.store.url.starts_with("postgres")) {
            return Err(bad(
                "store.url",
                format!("{:?}: want sqlite://FILE or postgres://…", self.store.url),
            ));
        }
        let sip_password = match &self.sip.auth_user {
            None => None,
            Some(_) => Some(
                env(&self.sip.auth_password_env)
                    .filter(|p| !p.is_empty())
                    .map(SecretString::from)
                    .ok_or_else(|| {
                        bad(
                            "sip.auth_user",
                            format!(
                                "digest credentials need a password: set {}",
                                self.sip.auth_password_env
                            ),
                        )
                    })?,
            ),
        };
        Ok(Validated {
            config: self,
            trusted,
            media_sources,
            source_exempt,
            rtp_ports,
            devices,
            codes: flows,
            sip_password,
        })
    }
}

fn range<T: std::str::FromStr + PartialOrd>(text: &str) -> Option<RangeInclusive<T>> {
    let (low, high) = text.split_once('-')?;
    let (low, high) = (low.trim().parse().ok()?, high.trim().parse().ok()?);
    (low <= high).then_some(low..=high)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_env(_: &str) -> Option<String> {
        None
    }

    #[test]
    fn empty_file_gives_the_contract_defaults() {
        let v = Config::parse("", "t.toml", no_env).unwrap();
        assert_eq!(v.config.sip.listen, "0.0.0.0:5060".parse().unwrap());
        assert_eq!(v.config.api.listen, "127.0.0.1:8088".parse().unwrap());
        assert_eq!(v.rtp_ports, 20000..=29999);
        assert!(v.is_device("5401") && !v.is_device("1001") && !v.is_device("54x1"));
        assert!(v.is_trusted("127.0.0.1".parse().unwrap()));
        assert!(!v.is_trusted("192.0.2.1".parse().unwrap()));
        assert_eq!(v.config.rtp.codecs, vec![Codec::Pcmu, Codec::Pcma]);
    }

    #[test]
    fn unknown_key_names_the_key_and_line() {
        let e = Config::parse(
            "[sip]\nlisten = \"0.0.0.0:5060\"\nlistne = 1\n",
            "bad.toml",
            no_env,
        )
        .unwrap_err()
        .to_string();
        assert!(e.starts_with("bad.toml: "), "{e}");
        assert!(e.contains("listne") && e.contains("line 3"), "{e}");
    }

    #[test]
    fn wrong_type_and_bad_values_are_refused() {
        let cases = [
            ("[ivr]\nmax_attempts = \"three\"\n", "max_attempts"),
            ("[rtp]\nport_range = \"30000-20000\"\n", "rtp.port_range"),
            ("[rtp]\ncodecs = [\"G729\"]\n", "G729"),
            ("[features]\nlogin_code = \"88\"\n", "features.login_code"),
            ("[features]\nrelease_code = \"*88\"\n", "must differ"),
            (
                "[sip]\ntrusted_sources = [\"10.0.0.0/33\"]\n",
                "sip.trusted_sources",
            ),
            ("[api]\nlisten = \"0.0.0.0:8088\"\n", "HOTDESK_API_TOKEN"),
            (
                "[report]\nwebhook_url = \"http://127.0.0.1:9000/h\"\n",
                "HOTDESK_WEBHOOK_SECRET",
            ),
            ("[store]\nurl = \"mysql://x\"\n", "store.url"),
        ];
        for (text, needle) in cases {
            let e = Config::parse(text, "c.toml", no_env)
                .unwrap_err()
                .to_string();
            assert!(e.contains(needle), "{text:?} gave {e}");
        }
    }

    #[test]
    fn secrets_come_from_the_environment() {
        let env = |name: &str| (name == "HOTDESK_API_TOKEN").then(|| "s3cret".to_string());
        let v = Config::parse("[api]\nlisten = \"0.0.0.0:8088\"\n", "c.toml", env);
        assert!(v.is_ok());
    }

    #[test]
    fn digest_password_is_required_with_a_user_and_never_printed() {
        let text = "[sip]\nauth_user = \"hotdesk\"\n";
        let err = Config::parse(text, "c.toml", no_env)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("sip.auth_user") && err.contains("HOTDESK_SIP_PASSWORD"),
            "{err}"
        );
        let env = |name: &str| (name == "HOTDESK_SIP_PASSWORD").then(|| "pa55word".to_string());
        let v = Config::parse(text, "c.toml", env).unwrap();
        assert!(v.sip_password.is_some());
        assert!(!format!("{v:?}").contains("pa55word"));
        assert!(
            Config::parse("", "c.toml", env)
                .unwrap()
                .sip_password
                .is_none()
        );
    }
}
