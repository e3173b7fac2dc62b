//! The plugin author's kit behind `toolgate plugin new|check|parse`: scaffold a plugin crate from
//! the template, judge a built component without a daemon, and run a plugin's `parse` on
//! captured output.
//!
//! Invariants: nothing here runs a tool or starts a server; `check` and `parse` load plugins in
//! memory (no cache, no data directory), so they can be pointed at any file an author built.

pub mod check;
pub mod parse_run;
pub mod scaffold;

pub use check::{CheckReport, check_plugin};
pub use parse_run::{ParseRunError, captured_outcome};
pub use scaffold::{ScaffoldError, scaffold};
