//! A run's ownership of its `--out` scenario folder: an exclusive lock
//! (flock on `.faultline.lock` in the folder) held for the whole run, so two
//! live runs never share one folder, and the folder's previous contents
//! removed once the lock is held, so no run reads what an earlier one left
//! (a stale `hw/bugcheck.marker`). It writes nothing else.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, Write};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

/// The lock file's name inside a scenario folder.
pub const LOCK_FILE: &str = ".faultline.lock";

/// Claiming a scenario folder failed.
#[derive(Debug, thiserror::Error)]
pub enum OutError {
    /// Another live run holds the folder.
    #[error(
        "output folder {path} is in use by another faultline run ({holder}); choose another --out"
    )]
    InUse {
        /// The folder.
        path: PathBuf,
        /// Who holds it, as its lock file says.
        holder: String,
    },
    /// The folder could not be created, locked or cleared.
    #[error("cannot prepare output folder {path}")]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

/// A claimed scenario folder; the lock is released on drop.
#[derive(Debug)]
pub struct OutLock {
    file: File,
    path: PathBuf,
}

impl OutLock {
    /// Says who holds the folder (for the message another run gets).
    pub fn describe(&mut self, who: &str) -> Result<(), OutError> {
        self.file.set_len(0).map_err(io(&self.path))?;
        self.file.rewind().map_err(io(&self.path))?;
        self.file
            .write_all(format!("{who}\n").as_bytes())
            .map_err(io(&self.path))
    }
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> OutError + '_ {
    move |source| OutError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Creates `dir`, locks it for this run (`who` goes into the lock file for
/// the message another run gets), and removes everything else in it.
pub fn claim(dir: &Path, who: &str) -> Result<OutLock, OutError> {
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    let path = dir.join(LOCK_FILE);
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(io(&path))?;
    // SAFETY: flock on a valid, owned descriptor.
    if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
        let e = std::io::Error::last_os_error();
        if e.raw_os_error() == Some(libc::EWOULDBLOCK) {
            let mut holder = String::new();
            let _ = file.read_to_string(&mut holder);
            let holder = holder.trim();
            return Err(OutError::InUse {
                path: dir.to_path_buf(),
                holder: if holder.is_empty() {
                    "unknown".into()
                } else {
                    holder.to_string()
                },
            });
        }
        return Err(io(&path)(e));
    }
    let mut lock = OutLock { file, path };
    lock.describe(who)?;
    for entry in std::fs::read_dir(dir).map_err(io(dir))? {
        let entry = entry.map_err(io(dir))?;
        if entry.file_name() == LOCK_FILE {
            continue;
        }
        let p = entry.path();
        let removed = if entry.file_type().map_err(io(&p))?.is_dir() {
            std::fs::remove_dir_all(&p)
        } else {
            std::fs::remove_file(&p)
        };
        removed.map_err(io(&p))?;
    }
    Ok(lock)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tmp(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("faultline-out-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        d
    }

    #[test]
    fn a_folder_held_by_a_live_run_is_refused_naming_it_and_the_holder() {
        let dir = tmp("held");
        let mut first = claim(&dir, "pid 1").unwrap();
        first.describe("pid 1, run aaaaaa").unwrap();
        let err = claim(&dir, "pid 2").unwrap_err();
        let msg = err.to_string();
        assert!(matches!(err, OutError::InUse { .. }), "{msg}");
        assert!(msg.contains(&dir.display().to_string()), "{msg}");
        assert!(msg.contains("(pid 1, run aaaaaa)"), "{msg}");
        drop(first);
        let again = claim(&dir, "pid 3");
        assert!(again.is_ok(), "released on drop: {again:?}");
        drop(again);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn what_a_previous_run_left_is_removed() {
        let dir = tmp("stale");
        std::fs::create_dir_all(dir.join("nodes/n1/hw")).unwrap();
        std::fs::write(dir.join("nodes/n1/hw/bugcheck.marker"), "x").unwrap();
        std::fs::write(dir.join("trace.jsonl"), "old").unwrap();
        let lock = claim(&dir, "pid 4").unwrap();
        let left: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(left, vec![std::ffi::OsString::from(LOCK_FILE)]);
        drop(lock);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
