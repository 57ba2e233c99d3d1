//! faultline: a fault-injection test harness for high-availability failover.
//!
//! Data flows one way: suite YAML ([`suite`]) -> validated plan ([`plan`]) ->
//! lab and runner -> trace ([`trace`]) -> checks ([`checks`]) -> reports
//! ([`report`]). See ARCHITECTURE.md at the repository root.
#![deny(missing_docs)]

pub mod bench;
pub mod checks;
pub mod cleanup;
pub mod collector;
pub mod duration;
pub mod exit;
pub mod lab;
pub mod labbench;
pub mod observe;
pub mod plan;
pub mod report;
pub mod runner;
pub mod spoof;
pub mod suite;
pub mod topology;
pub mod trace;
