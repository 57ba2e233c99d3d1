//! The one clock every record is stamped with: CLOCK_MONOTONIC, in nanoseconds.
//!
//! Every process of a run (harness and agents alike) shares it, so times taken
//! in different processes compare directly.

/// Nanoseconds on CLOCK_MONOTONIC.
pub fn monotonic_ns() -> u64 {
    let ts = nix::time::clock_gettime(nix::time::ClockId::CLOCK_MONOTONIC)
        .expect("CLOCK_MONOTONIC is always readable");
    ts.tv_sec() as u64 * 1_000_000_000 + ts.tv_nsec() as u64
}
