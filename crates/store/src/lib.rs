//! hotdesk's store: the directory of users, PIN hashes, logins and lockouts, and the report
//! outbox, with the lockout policy they are kept by.
//!
//! The server, the command line, the API and `replay` hold a [`Store`]; SQLite is the
//! implementation today ([`directory::Directory`]).

pub mod directory;
mod flows;

pub use directory::*;
