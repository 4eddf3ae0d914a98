//! `flow` fixtures for `hotdesk qa`: a whole call replayed (`crate::replay`) against a scratch
//! directory made from the suite's `users.csv`.

use std::path::Path;
use std::sync::Arc;

use crate::fixture::Fixture;
use crate::replay::{self, ReplaySpec};
use hotdesk_core::ivr::FlowContext;
use hotdesk_core::prompts::loader::PromptCache;
use hotdesk_store::directory::{Directory, LockoutPolicy, Pepper, PinPolicy};
use hotdesk_store::{Store, StoreFlows};

/// What a flow fixture is compared on: the keys taken and the outcome, as one string.
pub fn summary(keys: &str, outcome: Option<&str>) -> String {
    let keys = if keys.is_empty() { "-" } else { keys };
    format!("{keys} → {}", outcome.unwrap_or("?"))
}

/// What a flow fixture runs with: `hotdesk serve`'s embedded defaults (the server's config
/// tests check that they agree).
#[derive(Debug, Clone)]
pub struct FlowFixtureEnv {
    /// `features.device_range`.
    pub devices: std::ops::RangeInclusive<u32>,
    /// `[ivr]` timeouts, terminator, attempts.
    pub settings: hotdesk_core::ivr::FlowSettings,
    /// `ivr.language`.
    pub language: String,
    /// `ivr.max_call_s`.
    pub max_call: std::time::Duration,
    /// `prompts.dir`.
    pub prompts: std::path::PathBuf,
}

impl Default for FlowFixtureEnv {
    fn default() -> Self {
        FlowFixtureEnv {
            devices: 5400..=5499,
            settings: hotdesk_core::ivr::FlowSettings::default(),
            language: "en".into(),
            max_call: std::time::Duration::from_secs(120),
            prompts: "prompts".into(),
        }
    }
}

/// Replays `path` as `fixture` says; returns [`summary`] of what happened and the seconds of
/// recording.
pub fn replay_fixture(
    suite: &Path,
    fixture: &Fixture,
    path: &Path,
) -> Result<(String, f64), String> {
    let defaults = FlowFixtureEnv::default();
    let device = fixture
        .device
        .clone()
        .ok_or("a flow fixture needs `device`")?;
    let name = fixture.flow.as_deref().unwrap_or_default();
    let flow = hotdesk_core::ivr::find(name)
        .ok_or_else(|| format!("flow {name:?}: want login, release or callback"))?;
    let spec = ReplaySpec {
        flow,
        ctx: FlowContext {
            is_desk: device
                .parse::<u32>()
                .is_ok_and(|n| defaults.devices.contains(&n))
                && hotdesk_core::identity::Extension::parse(&device).is_ok(),
            device,
            user: fixture.user.clone(),
            settings: defaults.settings.clone(),
        },
        language: defaults.language.clone(),
        max_call: defaults.max_call,
    };
    let media = replay::read_caller(path).map_err(|e| e.to_string())?;
    let seconds = match &media {
        replay::CallerMedia::Audio(s) => s.len() as f64 / 8000.0,
        replay::CallerMedia::Rtp(p) => p.len() as f64 * 0.02,
    };
    let prompts = PromptCache::load_dir(&defaults.prompts).map_err(|e| e.to_string())?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    let transcript = runtime.block_on(async {
        let scratch = tempfile::tempdir().map_err(|e| e.to_string())?;
        let url = format!("sqlite://{}", scratch.path().join("qa.db").display());
        let policy = LockoutPolicy::default();
        // The suite's users are test users whose PINs are keyed in its recordings: the
        // weak-PIN rule is for real accounts, not for them.
        let pins = PinPolicy {
            refuse_weak: false,
            ..PinPolicy::default()
        };
        let directory: Arc<dyn Store> = Arc::new(
            Directory::open_with(&url, Pepper::random(), policy, pins)
                .await
                .map_err(|e| e.to_string())?,
        );
        let users = std::fs::read(suite.join("users.csv"))
            .map_err(|e| format!("{}: {e}", suite.join("users.csv").display()))?;
        directory
            .import_csv(&users)
            .await
            .map_err(|e| e.to_string())?;
        let flows = StoreFlows(directory.clone());
        let t = replay::run(&spec, &media, Arc::new(prompts), &flows)
            .await
            .map_err(|e| e.to_string());
        directory.close().await;
        t
    })?;
    Ok((
        summary(&transcript.digits(), Some(&transcript.outcome)),
        seconds,
    ))
}
