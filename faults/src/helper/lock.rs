//! The `lock` helper: opens a file and takes an exclusive lock on it
//! (`--kind flock|ofd|posix`), waiting for it if another process holds one,
//! says `ready FD` once it holds it, and keeps it until its deadline or
//! until it is killed (the kernel releases the lock with the process).

use std::io::Write;
use std::os::fd::AsRawFd;

use super::Deadline;

/// Runs the lock holder; see the module documentation.
pub fn run(deadline: Deadline, args: &[String]) -> Result<(), String> {
    let (Some(flag), Some(kind), Some(fflag), Some(path)) =
        (args.first(), args.get(1), args.get(2), args.get(3))
    else {
        return Err("usage: --kind flock|ofd|posix --file PATH".into());
    };
    if flag != "--kind" || fflag != "--file" || args.len() != 4 {
        return Err("usage: --kind flock|ofd|posix --file PATH".into());
    }
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .map_err(|e| format!("cannot open {path}: {e}"))?;
    let fd = file.as_raw_fd();
    let rc = match kind.as_str() {
        // SAFETY: `fd` is open; flock has no memory effects.
        "flock" => unsafe { libc::flock(fd, libc::LOCK_EX) },
        "ofd" | "posix" => {
            // SAFETY: an all-zero flock is valid; the fields are set below.
            let mut l: libc::flock = unsafe { std::mem::zeroed() };
            l.l_type = libc::F_WRLCK as libc::c_short;
            l.l_whence = libc::SEEK_SET as libc::c_short;
            let cmd = if kind == "ofd" {
                libc::F_OFD_SETLKW
            } else {
                libc::F_SETLKW
            };
            // SAFETY: `l` is a valid flock (l_pid 0, as OFD locks need).
            unsafe { libc::fcntl(fd, cmd, &l) }
        }
        other => return Err(format!("unknown lock kind {other}")),
    };
    if rc != 0 {
        return Err(format!(
            "cannot lock {path} ({kind}): {}",
            std::io::Error::last_os_error()
        ));
    }
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "ready {fd}");
    let _ = out.flush();
    drop(out);
    std::thread::sleep(deadline.left());
    drop(file);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    #[test]
    fn bad_arguments_are_refused_before_anything_is_opened() {
        let d = Deadline { at: Instant::now() };
        let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        assert!(run(d, &s(&[])).is_err());
        assert!(run(d, &s(&["--kind", "flock", "--file"])).is_err());
        let e = run(d, &s(&["--kind", "bogus", "--file", "/dev/null"])).unwrap_err();
        assert!(e.contains("bogus") || e.contains("cannot open"), "{e}");
    }
}
