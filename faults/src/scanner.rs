//! The scanner fault: an on-access anti-virus scanner (seed 000). A helper
//! in the node's workload cgroup marks paths of the node with fanotify
//! permission events and answers each open only after `hold`
//! (`helper/scanner.rs`); opens under an excluded path pass at once.
//!
//! Onset is the marks read back from the kernel (`/proc/PID/fdinfo/FD` of
//! the helper's fanotify descriptor lists one `fanotify ino:` line per
//! mark, mask holding FAN_OPEN_PERM). The evidence adds the first open of
//! the service seen held (or passed) within [`SERVICE_WITHIN`]. With
//! `freeze` (scope `node`) the node's whole cgroup subtree is then frozen,
//! watchdog included, as the seed's filter driver stalled the whole
//! machine; onset is then the frozen state read back.
//!
//! Healing thaws first, then stops the helper (it allows every pending
//! open), and the healed evidence lists every open held: which process,
//! which file, for how long. It must never open a marked file itself.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::cgroup::Cgroup;
use crate::clock::monotonic_ns;
use crate::fault::{Fault, FaultError, FaultGuard, Healed, Onset};
use crate::helper::child::HelperChild;

/// How long the helper may take to put its marks in place.
const READY_WITHIN: Duration = Duration::from_secs(5);
/// How long inject waits for the service's first open to reach the scanner.
pub const SERVICE_WITHIN: Duration = Duration::from_secs(1);
/// FAN_OPEN_PERM in an fdinfo mask.
const OPEN_PERM: u64 = 0x0001_0000;
/// How many held opens the healed evidence lists one by one.
const LISTED: usize = 12;

/// Holds opens of `marks` for `hold` each.
#[derive(Debug, Clone)]
pub struct Scanner {
    /// The node's folder: paths in the evidence are relative to it.
    pub root: PathBuf,
    /// Paths to mark (a folder's direct children are marked with it).
    pub marks: Vec<PathBuf>,
    /// Paths whose opens pass at once.
    pub exclude: Vec<PathBuf>,
    /// How long each open is held.
    pub hold: Duration,
    /// The program that runs helpers (`faultline`).
    pub program: PathBuf,
    /// The helper's lifetime (it ends by itself after this).
    pub lifetime: Duration,
    /// The node's namespace file.
    pub netns: PathBuf,
    /// The node's workload cgroup, where the scanner runs.
    pub workload: Cgroup,
    /// The node's service cgroup.
    pub service: Cgroup,
    /// Scope `node`: the node's whole subtree, frozen while the scanner
    /// holds.
    pub freeze: Option<NodeStall>,
}

/// Scope `node`: the node's whole cgroup subtree frozen while the scanner
/// holds (the seed's filter driver spinning in the kernel stalled the
/// machine). A thread held in the scanner's permission wait cannot freeze
/// (the wait is killable, not freezable), so the subtree never reads back
/// frozen as a whole; each part is read back instead: the watchdog and
/// workload groups frozen, and every thread of the service either frozen
/// or held by the scanner (its wait channel).
#[derive(Debug, Clone)]
pub struct NodeStall {
    /// The node's whole subtree: the freeze is written here.
    pub node: Cgroup,
    /// Groups that must read back frozen (watchdog, workload).
    pub parts: Vec<Cgroup>,
    /// The service group: its threads are frozen or held.
    pub service: Cgroup,
}

/// How long the parts of a stalled node may take to read back frozen.
const STALL_WITHIN: Duration = Duration::from_secs(3);

impl NodeStall {
    /// Writes the freezer of the node's subtree (the mechanism the cgroup
    /// module uses: `cgroup.freeze` where it exists, else v1 `freezer.state`).
    fn write(&self, frozen: bool) -> Result<String, String> {
        let dirs = self.node.dirs();
        let (file, value) = if let Some(d) = dirs.iter().find(|d| d.join("cgroup.freeze").exists())
        {
            (d.join("cgroup.freeze"), if frozen { "1" } else { "0" })
        } else if let Some(d) = dirs.iter().find(|d| d.join("freezer.state").exists()) {
            (
                d.join("freezer.state"),
                if frozen { "FROZEN" } else { "THAWED" },
            )
        } else {
            return Err(format!("no freezer for {}", self.node.rel().display()));
        };
        std::fs::write(&file, value)
            .map_err(|e| format!("cannot write {value} to {}: {e}", file.display()))?;
        Ok(format!("{value} written to {}", file.display()))
    }

    /// The service's threads: `(frozen, held, other wait channels)`.
    fn service_threads(&self) -> (usize, usize, Vec<String>) {
        let (mut frozen, mut held, mut other) = (0, 0, Vec::new());
        for pid in self.service.pids().unwrap_or_default() {
            let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
                continue;
            };
            for task in tasks.flatten() {
                let wchan = std::fs::read_to_string(task.path().join("wchan"))
                    .unwrap_or_default()
                    .trim()
                    .to_string();
                // v2 frozen tasks wait in the freezer trap inside
                // get_signal (do_freezer_trap is inlined); v1 ones in
                // __refrigerator.
                if wchan.contains("freezer")
                    || wchan.contains("refrigerator")
                    || wchan == "get_signal"
                {
                    frozen += 1;
                } else if wchan.contains("fanotify") || wchan.contains("fsnotify") {
                    held += 1;
                } else {
                    other.push(format!("{}:{}", task.file_name().to_string_lossy(), wchan));
                }
            }
        }
        (frozen, held, other)
    }

    /// Freezes the subtree and reads every part back.
    pub fn freeze(&self) -> Result<String, String> {
        let written = self.write(true)?;
        let until = std::time::Instant::now() + STALL_WITHIN;
        loop {
            let parts_frozen = self.parts.iter().all(|p| p.is_frozen().unwrap_or(false));
            let (frozen, held, other) = self.service_threads();
            if parts_frozen && other.is_empty() {
                let parts: Vec<String> = self
                    .parts
                    .iter()
                    .map(|p| p.rel().display().to_string())
                    .collect();
                return Ok(format!(
                    "node stalled: {written}; {} read back frozen; service threads: \
                     {frozen} frozen, {held} held by the scanner",
                    parts.join(", ")
                ));
            }
            if std::time::Instant::now() >= until {
                return Err(format!(
                    "node not stalled within {STALL_WITHIN:?}: parts frozen {parts_frozen}, \
                     service threads running: {}",
                    other.join(", ")
                ));
            }
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    /// Thaws the subtree and reads the parts back thawed.
    pub fn thaw(&self) -> Result<String, String> {
        let written = self.write(false)?;
        let until = std::time::Instant::now() + STALL_WITHIN;
        while self.parts.iter().any(|p| p.is_frozen().unwrap_or(true)) {
            if std::time::Instant::now() >= until {
                return Err(format!(
                    "node still frozen {STALL_WITHIN:?} after {written}"
                ));
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        Ok(format!("node thawed: {written}, parts read back thawed"))
    }
}

/// One line of the helper: `WORD NS PID COMM PATH`.
fn event(line: &str) -> Option<(&str, u64, i32, &str, &str)> {
    let mut w = line.splitn(5, ' ');
    let word = w.next()?;
    let ns = w.next()?.parse().ok()?;
    let pid = w.next()?.parse().ok()?;
    Some((word, ns, pid, w.next()?, w.next()?))
}

/// The FAN_OPEN_PERM marks an fdinfo text lists.
pub fn perm_marks(fdinfo: &str) -> usize {
    fdinfo
        .lines()
        .filter(|l| l.starts_with("fanotify ino:"))
        .filter(|l| {
            l.split_whitespace()
                .find_map(|w| w.strip_prefix("mask:"))
                .and_then(|m| u64::from_str_radix(m, 16).ok())
                .is_some_and(|m| m & OPEN_PERM != 0)
        })
        .count()
}

impl Scanner {
    fn rel(&self, path: &str) -> String {
        Path::new(path)
            .strip_prefix(&self.root)
            .map(|p| p.display().to_string())
            .unwrap_or_else(|_| path.to_string())
    }

    fn fail(&self, found: String) -> FaultError {
        FaultError::NotInEffect {
            fault: self.describe(),
            found,
        }
    }
}

impl Fault for Scanner {
    fn describe(&self) -> String {
        let marks: Vec<String> = self
            .marks
            .iter()
            .map(|m| self.rel(&m.to_string_lossy()))
            .collect();
        format!(
            "scanner holding opens of {} for {:?}{}",
            marks.join(", "),
            self.hold,
            if self.freeze.is_some() {
                ", node frozen"
            } else {
                ""
            }
        )
    }

    fn inject(&self) -> Result<Box<dyn FaultGuard>, FaultError> {
        let requested_ns = monotonic_ns();
        let helper_err = |source| FaultError::Helper {
            fault: self.describe(),
            source,
        };
        let mut args = vec!["--hold-ms".to_string(), self.hold.as_millis().to_string()];
        for m in &self.marks {
            args.extend(["--mark".into(), m.display().to_string()]);
        }
        for x in &self.exclude {
            args.extend(["--exclude".into(), x.display().to_string()]);
        }
        let spawn = crate::helper::command(&self.program, "scanner", self.lifetime, &args)
            .netns(&self.netns)
            .cgroup_procs(self.workload.procs_files())
            // Gone with the harness at once; its own deadline covers the rest.
            .parent_death_signal(libc::SIGKILL);
        let mut child = HelperChild::start(spawn).map_err(helper_err)?;
        let (_, ready) = child
            .expect(READY_WITHIN, "ready FD", |(_, l)| l.starts_with("ready "))
            .map_err(helper_err)?;
        let fd = ready.trim_start_matches("ready ").trim().to_string();
        let fdinfo_path = format!("/proc/{}/fdinfo/{fd}", child.pid);
        let fdinfo = std::fs::read_to_string(&fdinfo_path).unwrap_or_default();
        let marks = perm_marks(&fdinfo);
        if marks != self.marks.len() {
            child.stop(libc::SIGKILL, Duration::from_secs(1));
            return Err(self.fail(format!(
                "{marks} FAN_OPEN_PERM mark(s) in {fdinfo_path}, {} asked: {}",
                self.marks.len(),
                fdinfo.trim()
            )));
        }
        let mut confirmed_ns = monotonic_ns();
        let mut evidence = format!(
            "scanner pid {}: {marks} FAN_OPEN_PERM mark(s) in {fdinfo_path}",
            child.pid
        );
        let service = &self.service;
        let seen = child
            .wait_for(SERVICE_WITHIN, "an open by the service", |(_, l)| {
                event(l).is_some_and(|(w, _, pid, _, _)| {
                    (w == "held" || w == "pass")
                        && service.pids().unwrap_or_default().contains(&pid)
                })
            })
            .map_err(helper_err)?;
        match seen.as_ref().and_then(|(_, l)| event(l)) {
            Some(("held", _, pid, comm, path)) => evidence.push_str(&format!(
                "; service pid {pid} ({comm}) held in open of {}",
                self.rel(path)
            )),
            Some((_, _, pid, _, path)) => evidence.push_str(&format!(
                "; service pid {pid}'s open of {} passed at once (excluded)",
                self.rel(path)
            )),
            None => evidence.push_str(&format!(
                "; no open by the service within {SERVICE_WITHIN:?}"
            )),
        }
        if let Some(stall) = &self.freeze {
            match stall.freeze() {
                Ok(frozen) => {
                    confirmed_ns = monotonic_ns();
                    evidence.push_str(&format!("; {frozen}"));
                }
                Err(e) => {
                    let undo = stall.thaw();
                    child.stop(libc::SIGTERM, Duration::from_secs(1));
                    return Err(match undo {
                        Ok(_) => self.fail(e),
                        Err(undo) => FaultError::InjectUndo {
                            fault: self.describe(),
                            undo,
                            source: Box::new(self.fail(e)),
                        },
                    });
                }
            }
        }
        Ok(Box::new(ScannerGuard {
            scanner: self.clone(),
            child,
            onset: Onset {
                requested_ns,
                confirmed_ns,
                evidence,
            },
            healed: false,
        }))
    }
}

/// A scanner in place; thawed and stopped on heal or drop.
#[derive(Debug)]
struct ScannerGuard {
    scanner: Scanner,
    child: HelperChild,
    onset: Onset,
    healed: bool,
}

impl ScannerGuard {
    /// Every held open, from the helper's lines: `pid (comm) path held_ms`.
    fn held_opens(&self, healed_ns: u64) -> (Vec<String>, usize) {
        let mut opens = Vec::new();
        let mut passed = 0;
        for (_, line) in &self.child.said {
            match event(line) {
                Some(("held", t, pid, comm, path)) => {
                    let end = self
                        .child
                        .said
                        .iter()
                        .filter_map(|(_, l)| event(l))
                        .find(|(w, at, p, _, q)| {
                            *w == "allow" && *p == pid && *q == path && *at >= t
                        })
                        .map_or(healed_ns, |(_, at, ..)| at);
                    opens.push(format!(
                        "pid {pid} ({comm}) {} {:.0} ms",
                        self.scanner.rel(path),
                        end.saturating_sub(t) as f64 / 1e6
                    ));
                }
                Some(("pass", ..)) => passed += 1,
                _ => {}
            }
        }
        (opens, passed)
    }
}

impl FaultGuard for ScannerGuard {
    fn onset(&self) -> &Onset {
        &self.onset
    }

    fn heal(mut self: Box<Self>) -> Result<Healed, FaultError> {
        let requested_ns = monotonic_ns();
        self.healed = true;
        let mut evidence = String::new();
        if let Some(stall) = &self.scanner.freeze {
            let thawed = stall.thaw().map_err(|found| FaultError::NotInEffect {
                fault: self.scanner.describe(),
                found,
            })?;
            evidence.push_str(&format!("{thawed}; "));
        }
        let pid = self.child.pid;
        let Some(status) = self.child.stop(libc::SIGTERM, Duration::from_secs(2)) else {
            return Err(FaultError::NotInEffect {
                fault: self.scanner.describe(),
                found: format!("scanner pid {pid} still alive after SIGKILL"),
            });
        };
        let confirmed_ns = monotonic_ns();
        let (opens, passed) = self.held_opens(confirmed_ns);
        evidence.push_str(&format!(
            "scanner pid {pid} ended ({status}), its marks gone with it; {} open(s) held",
            opens.len()
        ));
        if !opens.is_empty() {
            let listed: Vec<&str> = opens.iter().take(LISTED).map(String::as_str).collect();
            evidence.push_str(&format!(": {}", listed.join("; ")));
            if opens.len() > LISTED {
                evidence.push_str(&format!("; and {} more", opens.len() - LISTED));
            }
        }
        if passed > 0 {
            evidence.push_str(&format!("; {passed} excluded open(s) passed at once"));
        }
        Ok(Healed {
            requested_ns,
            confirmed_ns,
            evidence,
        })
    }
}

impl Drop for ScannerGuard {
    fn drop(&mut self) {
        if !self.healed {
            if let Some(stall) = &self.scanner.freeze {
                let _ = stall.thaw();
            }
            self.child.stop(libc::SIGKILL, Duration::from_secs(1));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn marks_are_counted_from_fdinfo() {
        let info = "pos:\t0\nflags:\t02000000\nmnt_id:\t15\nino:\t1057\n\
            fanotify flags:10 event-flags:8000\n\
            fanotify ino:2a sdev:800001 mflags:0 mask:8010000 ignored_mask:0 fhandle-bytes:8 fhandle-type:1 f_handle:2a000000\n\
            fanotify ino:2b sdev:800001 mflags:0 mask:2 ignored_mask:0\n";
        assert_eq!(perm_marks(info), 1);
        assert_eq!(perm_marks(""), 0);
    }

    #[test]
    fn helper_lines_are_read() {
        assert_eq!(
            event("held 12 34 exe /n/state/clusdb"),
            Some(("held", 12, 34, "exe", "/n/state/clusdb"))
        );
        assert_eq!(event("ready 5"), None);
    }
}
