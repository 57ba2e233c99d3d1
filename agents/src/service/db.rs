//! The service's access to its configuration database (`state/clusdb`),
//! done the way a process that owns its database does it, so that the
//! faults that hold it really hold the service: it opens the file (an
//! on-access scanner's FAN_OPEN_PERM holds that open), takes a shared
//! `flock` (an exclusive `flock` held by another process blocks it), then a
//! shared open-file-description lock on the whole file (an exclusive OFD or
//! POSIX lock blocks it: the two kinds conflict with each other, `flock` is
//! independent of both), reads it all, and releases both by closing.
//!
//! Only the service uses this: the watchdog and the supervisor must never
//! wait on the database.

use std::fs::File;
use std::io::Read;
use std::os::fd::AsRawFd;
use std::path::Path;

/// Reads the whole database under shared `flock` and OFD locks; the error
/// names the file and the step that failed.
pub fn read_locked(path: &Path) -> Result<Vec<u8>, std::io::Error> {
    let step = |what: &str, e: std::io::Error| {
        std::io::Error::new(e.kind(), format!("cannot {what} {}: {e}", path.display()))
    };
    let mut file = File::open(path).map_err(|e| step("open", e))?;
    let fd = file.as_raw_fd();
    // SAFETY: `fd` is open for the whole call; flock has no memory effects.
    if unsafe { libc::flock(fd, libc::LOCK_SH) } != 0 {
        return Err(step("flock", std::io::Error::last_os_error()));
    }
    // SAFETY: an all-zero flock is a valid value; the fields are set below.
    let mut lock: libc::flock = unsafe { std::mem::zeroed() };
    lock.l_type = libc::F_RDLCK as libc::c_short;
    lock.l_whence = libc::SEEK_SET as libc::c_short;
    lock.l_start = 0;
    lock.l_len = 0;
    // SAFETY: `lock` is a valid flock for F_OFD_SETLKW (l_pid must be 0).
    if unsafe { libc::fcntl(fd, libc::F_OFD_SETLKW, &lock) } != 0 {
        return Err(step("lock (OFD)", std::io::Error::last_os_error()));
    }
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes).map_err(|e| step("read", e))?;
    // Closing the only descriptor of this open file description releases
    // the flock and the OFD lock together.
    drop(file);
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    fn held_for(path: &Path, hold: impl FnOnce(&File) + Send + 'static, release: Duration) {
        let holder = File::options().read(true).write(true).open(path).unwrap();
        hold(&holder);
        let t = Instant::now();
        let releaser = std::thread::spawn(move || {
            std::thread::sleep(release);
            drop(holder);
        });
        assert_eq!(read_locked(path).unwrap(), b"db");
        assert!(t.elapsed() >= release, "{:?}", t.elapsed());
        releaser.join().unwrap();
    }

    #[test]
    fn an_exclusive_lock_of_any_kind_holds_the_reader() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("clusdb");
        std::fs::write(&path, b"db").unwrap();
        assert_eq!(read_locked(&path).unwrap(), b"db");
        let wait = Duration::from_millis(150);
        // flock: independent of fcntl locks, so the reader's flock meets it.
        held_for(
            &path,
            |f| assert_eq!(unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX) }, 0),
            wait,
        );
        for cmd in [libc::F_OFD_SETLK, libc::F_SETLK] {
            held_for(
                &path,
                move |f| {
                    let mut l: libc::flock = unsafe { std::mem::zeroed() };
                    l.l_type = libc::F_WRLCK as libc::c_short;
                    l.l_whence = libc::SEEK_SET as libc::c_short;
                    // An OFD lock conflicts with a POSIX lock even when one
                    // process holds both, so one test process shows it.
                    assert_eq!(unsafe { libc::fcntl(f.as_raw_fd(), cmd, &l) }, 0);
                },
                wait,
            );
        }
    }

    #[test]
    fn a_missing_database_names_the_file_and_step() {
        let err = read_locked(Path::new("/nonexistent/clusdb")).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("cannot open /nonexistent/clusdb"),
            "{err}"
        );
    }
}
