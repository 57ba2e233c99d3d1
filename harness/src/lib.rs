//! faultline: a fault-injection test harness for high-availability failover.
//!
//! Data flows one way: suite YAML ([`suite`]) -> validated plan ([`plan`]) ->
//! lab and runner -> trace ([`trace`]) -> checks ([`checks`]) -> reports
//! ([`report`]). See ARCHITECTURE.md at the repository root.
#![deny(missing_docs)]

pub mod duration;
pub mod plan;
pub mod suite;
pub mod checks;
pub mod trace;
pub mod report;
pub mod collector;
pub mod exit;
pub mod lab;
pub mod runner;
pub mod cleanup;
