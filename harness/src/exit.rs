//! The exit codes of `faultline`, one per kind of outcome. They are part of
//! the CLI's contract with CI pipelines: never renumber one.

/// Every check came out as expected.
pub const PASS: i32 = 0;
/// Some check failed (or a check expected to fail passed).
pub const CHECK_FAILED: i32 = 1;
/// Invalid input: a malformed suite, an unknown fault, a bad trace file.
pub const INVALID_INPUT: i32 = 2;
/// The host lacks something faultline needs, or the lab could not be built
/// or its nodes did not start.
pub const HOST: i32 = 3;
/// Interrupted by SIGINT / SIGTERM / SIGHUP; the run was torn down.
pub const INTERRUPTED: i32 = 130;
