//! Entering a network namespace, which moves only the calling thread: the
//! observers' threads, the forged-poison intruder and anything else that
//! must act from inside a node use this, on a thread of their own.
//!
//! It must not create or delete namespaces (that is `faultline_faults::netns`)
//! and must not be called on a thread that has other work afterwards.

use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

/// Opening or entering a network namespace failed.
#[derive(Debug, thiserror::Error)]
pub enum NetnsError {
    /// The namespace file could not be opened.
    #[error("cannot open network namespace {path}")]
    Open {
        /// The namespace file.
        path: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// setns() into the namespace failed.
    #[error("cannot enter network namespace {path}")]
    Enter {
        /// The namespace file.
        path: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
}

/// An open network namespace file, ready to be entered.
#[derive(Debug)]
pub struct Netns {
    file: File,
    path: PathBuf,
}

impl Netns {
    /// Opens the namespace at `path` (e.g. `/run/netns/NAME`, or
    /// `/proc/thread-self/ns/net` for the caller's own).
    pub fn open(path: &Path) -> Result<Netns, NetnsError> {
        let file = File::open(path).map_err(|source| NetnsError::Open {
            path: path.to_path_buf(),
            source,
        })?;
        Ok(Netns {
            file,
            path: path.to_path_buf(),
        })
    }

    /// The calling thread's own namespace, to come back to.
    pub fn current() -> Result<Netns, NetnsError> {
        Netns::open(Path::new("/proc/thread-self/ns/net"))
    }

    /// Moves the calling thread (only) into this namespace.
    pub fn enter(&self) -> Result<(), NetnsError> {
        // SAFETY: setns on a valid namespace descriptor; it changes only the
        // calling thread.
        if unsafe { libc::setns(self.file.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
            return Err(NetnsError::Enter {
                path: self.path.clone(),
                source: io::Error::last_os_error(),
            });
        }
        Ok(())
    }

    /// The namespace file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The open file, e.g. to tell one namespace from another by inode.
    pub fn file(&self) -> &File {
        &self.file
    }
}

/// Opens the namespace at `path` and moves the calling thread into it.
pub fn enter(path: &Path) -> Result<(), NetnsError> {
    Netns::open(path)?.enter()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_namespace_names_its_file() {
        let e = enter(Path::new("/nonexistent/ns")).unwrap_err();
        assert!(matches!(e, NetnsError::Open { .. }));
        assert_eq!(
            e.to_string(),
            "cannot open network namespace /nonexistent/ns"
        );
    }

    #[test]
    fn a_file_that_is_no_namespace_is_refused_on_entry() {
        let f = tempfile::NamedTempFile::new().unwrap();
        let ns = Netns::open(f.path()).unwrap();
        let e = ns.enter().unwrap_err();
        assert!(matches!(e, NetnsError::Enter { .. }), "{e}");
        assert_eq!(ns.path(), f.path());
    }
}
