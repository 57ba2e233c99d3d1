//! The one clock every record is stamped with: CLOCK_MONOTONIC, in
//! nanoseconds, shared by every process of a run (harness and agents alike)
//! so times taken in different processes compare directly. It lives in
//! `faultline-sys`; this re-export keeps the agent's protocol modules
//! self-contained for the harness.

pub use faultline_sys::clock::monotonic_ns;
