//! The architecture as a test (docs/architecture.md): the sans-IO core has no I/O crate in its
//! dependency tree and reads no clock, opens no socket and spawns no thread in its sources.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The normal (not dev, not build) dependency tree of `hotdesk-core`, crate names only.
fn core_dependencies() -> Vec<String> {
    let out = Command::new(env!("CARGO"))
        .args([
            "tree",
            "--locked",
            "--offline",
            "-p",
            "hotdesk-core",
            "-e",
            "normal",
            "--prefix",
            "none",
            "--format",
            "{p}",
        ])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("cargo tree runs");
    assert!(
        out.status.success(),
        "cargo tree failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_whitespace().next().map(str::to_owned))
        .collect()
}

#[test]
fn the_core_depends_on_no_runtime_store_or_network_crate() {
    let deps = core_dependencies();
    assert!(deps.iter().any(|d| d == "hotdesk-core"), "{deps:?}");
    assert!(deps.iter().any(|d| d == "rsip"), "the tree was read: {deps:?}");
    for banned in [
        "tokio", "sqlx", "axum", "hyper", "reqwest", "mio", "webrtc-util", "rtp",
    ] {
        assert!(
            !deps.iter().any(|d| d == banned),
            "hotdesk-core depends on {banned}"
        );
    }
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

#[test]
fn the_core_reads_no_clock_and_opens_no_socket() {
    let mut files = Vec::new();
    rust_files(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("crates/core/src"),
        &mut files,
    );
    assert!(files.len() > 30, "{} files", files.len());
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        // Unit tests may take a starting instant; the product code may not.
        let product = text.split("#[cfg(test)]").next().unwrap_or_default();
        for banned in [
            "Instant::now()",
            "SystemTime::now()",
            "OffsetDateTime::now_utc()",
            "UdpSocket",
            "TcpStream",
            "TcpListener",
            "std::thread::spawn",
            "thread::sleep",
        ] {
            assert!(
                !product.contains(banned),
                "{} uses {banned}",
                file.display()
            );
        }
    }
}
