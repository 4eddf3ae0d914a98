//! hotdesk's store: the directory of users, PIN hashes, logins and lockouts, and the report
//! outbox, with the lockout policy they are kept by.
//!
//! - [`lockout`]: the lockout policy, pure, tested on injected time;
//! - [`store`]: the [`Store`] and [`Outbox`] traits the server, the command line, the API,
//!   delivery and `replay` hold;
//! - [`directory`]: the SQLite implementation (users, PIN hashes, logins, failures, locks,
//!   the report log and outbox), with the semantics every implementation keeps.

pub mod directory;
pub mod error;
mod flows;
pub mod lockout;
pub mod records;
pub mod store;

pub use directory::*;
pub use flows::StoreFlows;
pub use store::{Outbox, Store};
