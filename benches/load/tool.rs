//! Helper of the load bench (`benches/load/run.sh`), built as the example `load_tool`:
//!
//! - `pcap`: one caller's RTP for sipp's `play_pcap_audio`, made by the project's own writer
//!   (`rtp::dtmf_stream`), laid out as a person keys a login: listens to "enter your
//!   extension", keys the account and `#`, listens to "enter your password", keys the PIN and
//!   `#`, then keeps sending silence while hotdesk reads the login back and hangs up.
//! - `argon2`: what one PIN verification costs with the directory's own hashing (Argon2id,
//!   default parameters, peppered), on one thread and on every core at once.
//! - `store`: how many logins per second the directory itself takes (SQLite file, Argon2id,
//!   one `BEGIN IMMEDIATE` transaction per login), with no calls and no webhook around it:
//!   the ceiling the server's login rate cannot pass on this machine.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use clap::{Parser, Subcommand, ValueEnum};
use hotdesk_core::dsp::g711::Law;
use hotdesk_qa::dtmf_stream::{self, DtmfMode, DtmfStreamSpec, SAMPLES_PER_FRAME};
use hotdesk_store::directory::{
    Directory, LockoutPolicy, LoginAttempt, LoginOutcome, Pepper, Via, hash_pin, verify_pin,
};
use secrecy::SecretString;

#[derive(Parser)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, ValueEnum)]
enum Mode {
    Inband,
    Rfc4733,
    Both,
}

#[derive(Subcommand)]
enum Command {
    /// Writes a login call's pcap and prints its layout as JSON.
    Pcap {
        out: PathBuf,
        #[arg(long)]
        account: String,
        #[arg(long)]
        pin: String,
        #[arg(long, value_enum)]
        mode: Mode,
        /// Silence before the account's first key (the caller listening to the prompt).
        #[arg(long, default_value_t = 3600)]
        lead_ms: u64,
        /// Silence between the account's `#` and the PIN's first key.
        #[arg(long, default_value_t = 3400)]
        between_ms: u64,
        /// Silence after the PIN's `#`: longer than the read-back, so hotdesk hangs up first.
        #[arg(long, default_value_t = 12000)]
        tail_ms: u64,
        /// Key press and the gap between presses.
        #[arg(long, default_value_t = 100)]
        tone_ms: u64,
        #[arg(long, default_value_t = 0)]
        seed: u64,
    },
    /// Times Argon2id PIN verification as the directory does it.
    Argon2 {
        /// Verifications per thread.
        #[arg(long, default_value_t = 20)]
        n: usize,
    },
    /// Logins per second through the directory on a fresh SQLite file in DIR.
    Store {
        dir: PathBuf,
        /// Logins in all.
        #[arg(long, default_value_t = 200)]
        n: usize,
        /// Logins in flight at once (calls waiting for their verdict).
        #[arg(long, default_value_t = 16)]
        concurrency: usize,
        /// Users the logins go round (each at its own desk).
        #[arg(long, default_value_t = 8)]
        users: usize,
    },
}

fn main() -> anyhow::Result<()> {
    // RUST_LOG=sqlx=debug shows the store's statements (the `store` bench's failures).
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(std::io::stderr)
        .init();
    match Cli::parse().command {
        Command::Pcap {
            out,
            account,
            pin,
            mode,
            lead_ms,
            between_ms,
            tail_ms,
            tone_ms,
            seed,
        } => pcap(
            &out,
            &account,
            &pin,
            mode,
            [lead_ms, between_ms, tail_ms, tone_ms].map(Duration::from_millis),
            seed,
        ),
        Command::Argon2 { n } => argon2(n),
        Command::Store {
            dir,
            n,
            concurrency,
            users,
        } => tokio::runtime::Runtime::new()?.block_on(store(&dir, n, concurrency, users)),
    }
}

fn pcap(
    out: &PathBuf,
    account: &str,
    pin: &str,
    mode: Mode,
    [lead, between, tail, tone]: [Duration; 4],
    seed: u64,
) -> anyhow::Result<()> {
    let mode = match mode {
        Mode::Inband => DtmfMode::Inband,
        Mode::Rfc4733 => DtmfMode::Rfc4733,
        Mode::Both => DtmfMode::Both,
    };
    let base = DtmfStreamSpec {
        mode,
        law: Law::Ulaw,
        tone,
        gap: tone,
        seed,
        ..Default::default()
    };
    // The writer spaces keys evenly, and a person pauses between the two entries: two streams
    // joined into one, the second carrying on the first's SSRC, sequence and timestamps.
    let mut call = dtmf_stream::build(&DtmfStreamSpec {
        digits: format!("{account}#"),
        lead,
        tail: between,
        ..base.clone()
    })?;
    let second = dtmf_stream::build(&DtmfStreamSpec {
        digits: format!("{pin}#"),
        lead: Duration::ZERO,
        tail,
        first_sequence: base.first_sequence.wrapping_add(call.packets.len() as u16),
        first_timestamp: base
            .first_timestamp
            .wrapping_add((call.frames * SAMPLES_PER_FRAME as u64) as u32),
        seed: seed.wrapping_add(1),
        ..base.clone()
    })?;
    let offset = call.duration();
    call.packets.extend(second.packets.into_iter().map(|mut p| {
        p.time += offset;
        p
    }));
    call.frames += second.frames;
    let file = std::fs::File::create(out)?;
    call.write_pcap(std::io::BufWriter::new(file))?;
    let keys = account.len() + pin.len() + 2;
    let pin_start = offset;
    let last_key = pin_start + (tone * 2) * (pin.len() as u32);
    println!(
        "{}",
        serde_json::json!({
            "file": out,
            "keys": keys,
            "packets": call.packets.len(),
            "duration_ms": call.duration().as_millis() as u64,
            "pin_start_ms": pin_start.as_millis() as u64,
            "last_key_ms": last_key.as_millis() as u64,
        })
    );
    Ok(())
}

fn argon2(n: usize) -> anyhow::Result<()> {
    let pepper = Pepper::random();
    let pin = SecretString::from("4321");
    let hash = hash_pin(&pepper, &pin)?;
    let once = |k: usize| -> anyhow::Result<Duration> {
        let t = Instant::now();
        for _ in 0..k {
            anyhow::ensure!(verify_pin(&pepper, &pin, &hash)?, "the PIN must verify");
        }
        Ok(t.elapsed())
    };
    once(2)?;
    let single = once(n)?;
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let t = Instant::now();
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads).map(|_| s.spawn(|| once(n))).collect();
        handles
            .into_iter()
            .try_for_each(|h| h.join().expect("no panic").map(drop))
    })?;
    let all = t.elapsed();
    // The directory hashes with the crate's defaults (src/directory/pin.rs).
    let params = argon2::Params::default();
    let per_verify_ms = single.as_secs_f64() * 1000.0 / n as f64;
    println!(
        "{}",
        serde_json::json!({
            "params": format!(
                "argon2id v19 m={}KiB t={} p={} + pepper",
                params.m_cost(),
                params.t_cost(),
                params.p_cost()
            ),
            "verify_ms_one_thread": per_verify_ms,
            "threads": threads,
            "verifies_per_s_all_threads": (threads * n) as f64 / all.as_secs_f64(),
            "verifies_per_s_per_core": 1000.0 / per_verify_ms,
        })
    );
    Ok(())
}

async fn store(
    dir: &std::path::Path,
    n: usize,
    concurrency: usize,
    users: usize,
) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir)?;
    let url = format!("sqlite://{}", dir.join("store-bench.db").display());
    let directory = Directory::open(&url, Pepper::random(), LockoutPolicy::default()).await?;
    let pin = SecretString::from("4321");
    for u in 0..users {
        let ext = (1001 + u).to_string();
        directory.add_user(&ext, None, None).await?;
        directory.set_pin(&ext, &pin).await?;
    }
    let gate = std::sync::Arc::new(tokio::sync::Semaphore::new(concurrency));
    let t = Instant::now();
    let mut tasks = Vec::new();
    for i in 0..n {
        let (directory, pin, gate) = (directory.clone(), pin.clone(), gate.clone());
        tasks.push(tokio::spawn(async move {
            let _slot = gate.acquire_owned().await.expect("never closed");
            let account = (1001 + i % users).to_string();
            // A desk per login, as when every call comes from its own phone.
            let device = (5000 + i % 1000).to_string();
            let call_id = format!("store-bench-{i}");
            let started = Instant::now();
            let outcome = directory
                .login(&LoginAttempt {
                    device,
                    account,
                    pin,
                    via: Via::FeatureCode,
                    call_id: Some(call_id),
                    source: None,
                })
                .await;
            (started.elapsed(), outcome)
        }));
    }
    let (mut latencies, mut errors) = (Vec::new(), std::collections::BTreeMap::new());
    let mut failed_after_ms = Vec::new();
    for task in tasks {
        let (took, outcome) = task.await?;
        let ms = took.as_secs_f64() * 1000.0;
        let error = match outcome {
            Ok(LoginOutcome::Accepted { .. }) => {
                latencies.push(ms);
                continue;
            }
            Ok(other) => format!("{other:?}"),
            Err(e) => e.to_string(),
        };
        *errors.entry(error).or_insert(0usize) += 1;
        // How long a failed login waited tells a busy timeout from a quick refusal.
        failed_after_ms.push(ms.round());
    }
    let failed: usize = errors.values().sum();
    let all = t.elapsed().as_secs_f64();
    latencies.sort_by(f64::total_cmp);
    let at = |q: f64| {
        latencies
            .get(((latencies.len() as f64 - 1.0) * q).round() as usize)
            .copied()
    };
    directory.close().await;
    println!(
        "{}",
        serde_json::json!({
            "logins": n,
            "concurrency": concurrency,
            "failed": failed,
            "errors": errors,
            "failed_after_ms": failed_after_ms,
            "logins_per_s": (n - failed) as f64 / all,
            "latency_ms": {"p50": at(0.5), "p99": at(0.99), "max": at(1.0)},
        })
    );
    Ok(())
}
