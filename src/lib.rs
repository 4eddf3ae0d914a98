//! hotdesk, the server: the tokio shell around the sans-IO core (`hotdesk-core`), the HTTP
//! API, webhook delivery of the store's reports (`hotdesk-store`), the configuration that
//! maps TOML onto every layer's settings, and the command line (`main.rs`, `cli.rs`), which
//! also runs the QA tools (`hotdesk-qa`). See docs/architecture.md.

pub mod api;
pub mod config;
pub mod metrics;
pub mod report;
pub mod server;
pub mod service;
