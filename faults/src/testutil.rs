//! Helpers shared by this crate's tests: unique `fltest-` names.

use std::sync::atomic::{AtomicU32, Ordering};

/// A name unique to this process and call, starting with `fltest-`.
pub fn unique_name(tag: &str) -> String {
    static SEQ: AtomicU32 = AtomicU32::new(0);
    let n = SEQ.fetch_add(1, Ordering::Relaxed);
    let nanos = crate::clock::monotonic_ns() % 1_000_000;
    format!("fltest-{tag}-{}-{nanos}-{n}", std::process::id())
}

/// Whether the tests run as root (root_ tests skip otherwise).
pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}
