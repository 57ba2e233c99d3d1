//! A group's shared disk, modelled as a lease file in the cluster's shared
//! folder: `<group>.lease` holds `{generation, holder}`. Taking the disk
//! (the SCSI reservation of the modelled system) writes generation + 1 with
//! this node as holder, atomically (write a temporary file, then rename);
//! it fences the previous holder, whose next check finds the lease no
//! longer its own (its writes then fail: 57, then 50).
//!
//! Only file I/O on the shared folder; no events, no decisions.

use std::io;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// The content of a lease file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lease {
    /// Grows by one with each reservation.
    pub generation: u64,
    /// The node (by name) that took it.
    pub holder: String,
}

/// The lease file of `group` in `shared_dir`.
pub fn lease_path(shared_dir: &Path, group: &str) -> PathBuf {
    shared_dir.join(format!("{group}.lease"))
}

/// The data file of `group` in `shared_dir`: what its application writes.
pub fn data_path(shared_dir: &Path, group: &str) -> PathBuf {
    shared_dir.join(format!("{group}.data"))
}

/// Reads a lease; `None` when nobody ever took it.
pub fn read(path: &Path) -> io::Result<Option<Lease>> {
    match std::fs::read(path) {
        Ok(b) => serde_json::from_slice(&b)
            .map(Some)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// Takes the lease for `holder`: the next generation, written atomically.
/// Returns the lease now held.
pub fn take(path: &Path, holder: &str) -> io::Result<Lease> {
    let generation = read(path)?.map_or(0, |l| l.generation) + 1;
    let lease = Lease {
        generation,
        holder: holder.to_string(),
    };
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(format!(".{holder}.{}.tmp", std::process::id()));
    let tmp = PathBuf::from(tmp);
    let bytes = serde_json::to_vec(&lease).map_err(io::Error::other)?;
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, path)?;
    Ok(lease)
}

/// Whether `ours` is still the lease on disk; `Err(current)` names who
/// holds it now (`None`: the file is gone or unreadable).
pub fn check(path: &Path, ours: &Lease) -> Result<(), Option<Lease>> {
    match read(path) {
        Ok(Some(l)) if &l == ours => Ok(()),
        Ok(other) => Err(other),
        Err(_) => Err(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_take_bumps_the_generation_and_fences_the_previous_holder() {
        let dir = tempfile::tempdir().unwrap();
        let p = lease_path(dir.path(), "sql");
        assert_eq!(read(&p).unwrap(), None);
        let a = take(&p, "n1").unwrap();
        assert_eq!(a.generation, 1);
        assert_eq!(check(&p, &a), Ok(()));
        let b = take(&p, "n2").unwrap();
        assert_eq!(
            b,
            Lease {
                generation: 2,
                holder: "n2".into()
            }
        );
        assert_eq!(check(&p, &a), Err(Some(b.clone())));
        assert_eq!(check(&p, &b), Ok(()));
        // The same node taking it again is a new reservation too.
        let c = take(&p, "n2").unwrap();
        assert_eq!(c.generation, 3);
        assert!(check(&p, &b).is_err());
        // No temporary file is left behind.
        let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(names.len(), 1);
        std::fs::remove_file(&p).unwrap();
        assert_eq!(check(&p, &c), Err(None));
    }

    #[test]
    fn a_garbled_lease_is_an_error_not_generation_zero() {
        let dir = tempfile::tempdir().unwrap();
        let p = lease_path(dir.path(), "sql");
        std::fs::write(&p, b"garbage").unwrap();
        assert!(take(&p, "n1").is_err());
        assert_eq!(data_path(dir.path(), "sql"), dir.path().join("sql.data"));
    }
}
