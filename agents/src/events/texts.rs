//! The event-log wording of every event that has a modelled id: its text,
//! its source (the Windows event provider) and its type, as the seeds in
//! `../shared/seeds/` quote them, with the real values filled in. One place,
//! so a run's `events.jsonl` can be compared with the seeds line by line and
//! a suite can pin a text (`events` check, `text:`).
//!
//! Pure functions and constants: no I/O, no decisions.

use super::RecoveryAction;

/// The version our service reports at start ("Cluster Service started -
/// Cluster Node Version ..."). Seed 004 shows `4.3790` (Windows Server 2003,
/// build 3790); we keep the 2003 product version `5.2.3790`, the version of
/// the cluster service whose hang detection (seeds 001, 002) we model. Only
/// the line's shape is compared with the seed.
pub const CLUSTER_NODE_VERSION: &str = "5.2.3790";

/// The image path 4869 names (seed 003 shows it with its backslashes lost:
/// `C:WindowsClusterclussvc.exe`).
pub const CLUSSVC_IMAGE: &str = r"C:\Windows\Cluster\clussvc.exe";

/// Provider of 4869 and 4870 (seed 003).
pub const SOURCE_FAILOVER_CLUSTERING: &str = "Microsoft-Windows-FailoverClustering";
/// Provider of 1228 and 1118 (seeds 002, 004).
pub const SOURCE_CLUSNET: &str = "ClusNet";
/// Provider of 1123, 1122 (seed 004) and of our own cluster events.
pub const SOURCE_CLUSSVC: &str = "ClusSvc";
/// Provider of 7031 (seed 003).
pub const SOURCE_SCM: &str = "Service Control Manager";
/// Provider of 1001 (seed 003).
pub const SOURCE_BUGCHECK: &str = "BugCheck";

/// The event source (provider) the modelled system logs `id` under.
///
/// Seeds: 4869/4870 and 7031, 1001 (seed 003), 1228, 4199 Tcpip, 57 ftdisk,
/// 50 ntfs (seed 002), 1118, 1123, 1122 (seed 004). 1069, 1135, 1177,
/// 1201, 1203, 1205 are ours, logged under ClusSvc like the other cluster
/// service events (KB 892422 lists 1135 and 1177 as ClusSvc events).
pub fn source_of(id: u32) -> Option<&'static str> {
    Some(match id {
        4869 | 4870 => SOURCE_FAILOVER_CLUSTERING,
        1228 | 1118 => SOURCE_CLUSNET,
        7031 => SOURCE_SCM,
        1001 => SOURCE_BUGCHECK,
        4199 => "Tcpip",
        57 => "ftdisk",
        50 => "ntfs",
        1122 | 1123 | 1069 | 1135 | 1177 | 1201 | 1203 | 1205 => SOURCE_CLUSSVC,
        _ => return None,
    })
}

/// 4869 (action 1), seed 003; repeated every timeout while the hang lasts.
pub fn hang_logged(pid: u32, timeout_s: u64) -> String {
    format!(
        "User mode health monitoring has detected that the system is not being responsive. \
         The Failover cluster virtual adapter has lost contact with the '{CLUSSVC_IMAGE}' process \
         with a process ID '{pid}', for '{timeout_s}' seconds. Please use Performance Monitor to \
         evaluate the health of the system and determine which process may be negatively \
         impacting the system."
    )
}

/// 4870 (action 2), seed 003.
pub fn hang_terminating(pid: u32, timeout_s: u64) -> String {
    format!(
        "User mode health monitoring has detected that the system is not being responsive. \
         The Failover cluster virtual adapter has lost contact with the Cluster Server process \
         with a process ID '{pid}', for '{timeout_s}' seconds. Recovery action will be taken."
    )
}

/// The cluster-log line of action 2 (seed 003), `[ERR]`.
pub fn watchdog_terminate_log(pid: u32) -> String {
    format!(
        "Watchdog timer timeout for the client process (ID {pid}) and it will terminate the client process."
    )
}

/// 1228 from ClusNet after a terminate (seed 002).
pub fn clusnet_terminating(timeout_s: u64) -> String {
    format!(
        "ClusNet driver couldn't communicate with the ClusSvc for {timeout_s} seconds, the Cluster service is being terminated."
    )
}

/// 7031 from the Service Control Manager (seed 003).
pub const SERVICE_TERMINATED: &str = "The Cluster Service service terminated unexpectedly.";

/// The bugcheck code and its four parameters as the seeds print them:
/// `0x0000009E (812d5b08, 3c, 0, 0)`-style, lowercase hex without `0x`.
pub fn bugcheck_values(code: u32, params: &[u64; 4]) -> String {
    format!(
        "0x{code:08X} ({:x}, {:x}, {:x}, {:x})",
        params[0], params[1], params[2], params[3]
    )
}

/// 1001, type Information, source BugCheck (seed 003).
pub fn rebooted_from_bugcheck(code: u32, params: &[u64; 4]) -> String {
    format!(
        "The computer has rebooted from a bugcheck.  The bugcheck was {}.",
        bugcheck_values(code, params)
    )
}

/// 1118 from ClusNet (seed 004), exactly.
pub fn terminated_as_requested(node_id: u32) -> String {
    format!("Cluster service was terminated as requested by Node {node_id}.")
}

/// "Cluster Service started - Cluster Node Version ..." (seed 004), `[CS]`.
pub fn service_started() -> String {
    format!("Cluster Service started - Cluster Node Version {CLUSTER_NODE_VERSION}")
}

/// The bugcheck's timeout parameter: Health monitoring timeout in seconds
/// (seed 003), rounded up so that a sub-second test timeout is not 0.
pub fn timeout_seconds(timeout_ms: u32) -> u64 {
    u64::from(timeout_ms).div_ceil(1000)
}

/// The event id an action's detection is logged under, and its text.
pub fn hang_text(action: RecoveryAction, pid: u32, timeout_ms: u32) -> Option<String> {
    let s = timeout_seconds(timeout_ms);
    match action {
        RecoveryAction::Disabled | RecoveryAction::Bugcheck => None,
        RecoveryAction::Log => Some(hang_logged(pid, s)),
        RecoveryAction::Terminate => Some(hang_terminating(pid, s)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn texts_are_the_seeds_with_values_filled_in() {
        assert_eq!(
            hang_terminating(2624, 60),
            "User mode health monitoring has detected that the system is not being responsive. The Failover cluster virtual adapter has lost contact with the Cluster Server process with a process ID '2624', for '60' seconds. Recovery action will be taken."
        );
        assert_eq!(
            hang_logged(7, 60),
            "User mode health monitoring has detected that the system is not being responsive. The Failover cluster virtual adapter has lost contact with the 'C:\\Windows\\Cluster\\clussvc.exe' process with a process ID '7', for '60' seconds. Please use Performance Monitor to evaluate the health of the system and determine which process may be negatively impacting the system."
        );
        assert_eq!(
            clusnet_terminating(60),
            "ClusNet driver couldn't communicate with the ClusSvc for 60 seconds, the Cluster service is being terminated."
        );
        assert_eq!(
            terminated_as_requested(1),
            "Cluster service was terminated as requested by Node 1."
        );
        assert_eq!(
            watchdog_terminate_log(9),
            "Watchdog timer timeout for the client process (ID 9) and it will terminate the client process."
        );
    }

    #[test]
    fn the_bugcheck_of_seed_001_reads_as_the_seed_prints_it() {
        let params = [0x812d_5b08, timeout_seconds(60_000), 0, 0];
        assert_eq!(
            rebooted_from_bugcheck(0x9E, &params),
            "The computer has rebooted from a bugcheck.  The bugcheck was 0x0000009E (812d5b08, 3c, 0, 0)."
        );
    }

    #[test]
    fn the_timeout_parameter_is_whole_seconds_rounded_up() {
        assert_eq!(timeout_seconds(60_000), 60);
        assert_eq!(timeout_seconds(1000), 1);
        assert_eq!(timeout_seconds(1001), 2);
        assert_eq!(timeout_seconds(250), 1);
    }

    #[test]
    fn every_seed_id_has_the_seeds_source() {
        assert_eq!(
            source_of(4870),
            Some("Microsoft-Windows-FailoverClustering")
        );
        assert_eq!(source_of(1228), Some("ClusNet"));
        assert_eq!(source_of(1118), Some("ClusNet"));
        assert_eq!(source_of(1001), Some("BugCheck"));
        assert_eq!(source_of(7031), Some("Service Control Manager"));
        assert_eq!(source_of(1123), Some("ClusSvc"));
        assert_eq!(source_of(4199), Some("Tcpip"));
    }
}
