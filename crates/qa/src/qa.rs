//! QA on recordings: fixture manifests (`fixtures/<suite>/manifest.toml`) and the suite runner
//! behind `hotdesk qa`.
//!
//! A suite is a folder with a `manifest.toml` holding one `[[fixture]]` per file. `dtmf`
//! fixtures must decode to exactly `expect`; `talkoff` fixtures must decode to nothing.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use hotdesk_core::audio::{self, AudioError};
use hotdesk_core::dsp::dtmf::{DtmfParams, KeyPress, detect};

pub use crate::fixture::{Fixture, FixtureKind};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Manifest {
    fixture: Vec<Fixture>,
}

/// Why a suite could not be run at all.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum QaError {
    /// The folder cannot be listed.
    #[error("{path}: cannot read folder: {source}")]
    Folder {
        /// The folder.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// No manifest anywhere.
    #[error("{path}: no manifest.toml in this folder or its sub-folders")]
    NoSuites {
        /// The folder.
        path: PathBuf,
    },
    /// A manifest that does not parse.
    #[error("{path}: {message}")]
    Manifest {
        /// The manifest.
        path: PathBuf,
        /// The parser's message (line, column, key).
        message: String,
    },
}

/// The result of one fixture.
#[derive(Debug, Clone, Serialize)]
pub struct FixtureResult {
    /// Suite name (folder).
    pub suite: String,
    /// The fixture as listed.
    pub fixture: Fixture,
    /// Digits decoded (`None` when the file could not be read).
    pub decoded: Option<String>,
    /// The read error, if any.
    pub error: Option<String>,
    /// Seconds of audio.
    pub seconds: f64,
    /// Whether it met its expectation.
    pub passed: bool,
}

/// Finds every suite (a folder with `manifest.toml`) at or one level below `dir`, sorted.
pub fn find_suites(dir: &Path) -> Result<Vec<PathBuf>, QaError> {
    if dir.join("manifest.toml").is_file() {
        return Ok(vec![dir.to_owned()]);
    }
    let entries = std::fs::read_dir(dir).map_err(|source| QaError::Folder {
        path: dir.to_owned(),
        source,
    })?;
    let mut suites: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.join("manifest.toml").is_file())
        .collect();
    suites.sort();
    if suites.is_empty() {
        return Err(QaError::NoSuites {
            path: dir.to_owned(),
        });
    }
    Ok(suites)
}

/// Reads a suite's manifest.
pub fn read_manifest(suite: &Path) -> Result<Vec<Fixture>, QaError> {
    let path = suite.join("manifest.toml");
    let text = std::fs::read_to_string(&path).map_err(|e| QaError::Manifest {
        path: path.clone(),
        message: e.to_string(),
    })?;
    let manifest: Manifest = toml::from_str(&text).map_err(|e| QaError::Manifest {
        path: path.clone(),
        message: e.to_string().trim().replace('\n', " "),
    })?;
    Ok(manifest.fixture)
}

/// Runs one fixture through the detector.
pub fn run_fixture(suite: &Path, fixture: &Fixture, params: &DtmfParams) -> FixtureResult {
    let suite_name = suite
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let path = suite.join(&fixture.file);
    let decoded = match fixture.kind {
        FixtureKind::Flow => crate::qa_flow::replay_fixture(suite, fixture, &path),
        FixtureKind::Rtp => decode_capture(&path),
        FixtureKind::Dtmf | FixtureKind::Talkoff => decode_file(&path, params)
            .map(|(presses, seconds)| (presses.iter().map(|p| p.digit).collect(), seconds))
            .map_err(|e| e.to_string()),
    };
    let (decoded, error, seconds) = match decoded {
        Ok((digits, seconds)) => (Some(digits), None, seconds),
        Err(e) => (None, Some(e), 0.0),
    };
    let passed = decoded.as_deref().is_some_and(|d| meets(fixture, d));
    FixtureResult {
        suite: suite_name,
        fixture: fixture.clone(),
        decoded,
        error,
        seconds,
        passed,
    }
}

/// Exact match, or (with `max_missing`) a subsequence missing at most that many digits.
fn meets(fixture: &Fixture, decoded: &str) -> bool {
    if fixture.kind == FixtureKind::Flow {
        return decoded == crate::qa_flow::summary(&fixture.expect, fixture.outcome.as_deref());
    }
    if fixture.max_missing == 0 {
        return decoded == fixture.expect;
    }
    let s = crate::conformance::score(&fixture.expect, decoded);
    s.extra == 0 && s.missing <= fixture.max_missing
}

/// Loads a file and returns its key presses and length in seconds.
pub fn decode_file(path: &Path, params: &DtmfParams) -> Result<(Vec<KeyPress>, f64), AudioError> {
    let audio = audio::load(path)?;
    Ok((detect(&audio.samples, params), audio.seconds()))
}

/// Reads a packet capture and returns the digits of its RFC 4733 events (any dynamic payload
/// type, 8 kHz event clock, one receiver per SSRC) and the seconds it spans.
pub fn decode_capture(path: &Path) -> Result<(String, f64), String> {
    let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let capture = crate::pcap::read(&bytes).map_err(|e| e.to_string())?;
    let packets = capture.rtp();
    let seconds = match (packets.first(), packets.last()) {
        (Some(a), Some(b)) => b.time.saturating_sub(a.time).as_secs_f64(),
        _ => 0.0,
    };
    // The instant is only the origin of the capture's virtual clock.
    let digits = crate::capture::capture_digits(std::time::Instant::now(), &packets, None, 8000)
        .map_err(|e| e.to_string())?;
    Ok((digits.iter().map(|d| d.digit).collect(), seconds))
}

/// Runs every suite under `dir`.
pub fn run(dir: &Path, params: &DtmfParams) -> Result<Vec<FixtureResult>, QaError> {
    let mut results = Vec::new();
    for suite in find_suites(dir)? {
        for fixture in read_manifest(&suite)? {
            results.push(run_fixture(&suite, &fixture, params));
        }
    }
    Ok(results)
}

/// Talk-off totals: (false digits, seconds of material).
pub fn talkoff_totals(results: &[FixtureResult]) -> (usize, f64) {
    results
        .iter()
        .filter(|r| r.fixture.kind == FixtureKind::Talkoff)
        .fold((0, 0.0), |(n, s), r| {
            (
                n + r.decoded.as_ref().map_or(0, |d| d.chars().count()),
                s + r.seconds,
            )
        })
}

/// The readable pass/fail table.
pub fn render_table(results: &[FixtureResult]) -> String {
    let mut out = String::new();
    let width = results
        .iter()
        .map(|r| r.suite.len() + r.fixture.file.len() + 1)
        .max()
        .unwrap_or(10);
    out.push_str(&format!(
        "{:<width$}  {:<8}  {:<18}  {:<18}  result\n",
        "fixture", "kind", "expected", "decoded"
    ));
    for r in results {
        let name = format!("{}/{}", r.suite, r.fixture.file);
        let kind = match r.fixture.kind {
            FixtureKind::Dtmf => "dtmf",
            FixtureKind::Talkoff => "talkoff",
            FixtureKind::Rtp => "rtp",
            FixtureKind::Flow => "flow",
        };
        let expected = match (r.fixture.expect.is_empty(), r.fixture.max_missing) {
            _ if r.fixture.kind == FixtureKind::Flow => {
                crate::qa_flow::summary(&r.fixture.expect, r.fixture.outcome.as_deref())
            }
            (true, _) => "-".to_string(),
            (false, 0) => r.fixture.expect.clone(),
            (false, n) => format!("{} (-{n} ok)", r.fixture.expect),
        };
        let decoded = match (&r.decoded, &r.error) {
            (Some(d), _) if d.is_empty() => "-".to_string(),
            (Some(d), _) => d.clone(),
            (None, Some(e)) => format!("error: {e}"),
            (None, None) => "?".into(),
        };
        let verdict = if r.passed { "PASS" } else { "FAIL" };
        out.push_str(&format!(
            "{name:<width$}  {kind:<8}  {expected:<18}  {decoded:<18}  {verdict}\n"
        ));
    }
    let passed = results.iter().filter(|r| r.passed).count();
    let (false_digits, seconds) = talkoff_totals(results);
    out.push_str(&format!(
        "\n{passed} passed, {} failed\ntalk-off: {false_digits} false digits in {:.1} min of material ({:.1} per hour)\n",
        results.len() - passed,
        seconds / 60.0,
        if seconds > 0.0 {
            false_digits as f64 * 3600.0 / seconds
        } else {
            0.0
        }
    ));
    out
}
