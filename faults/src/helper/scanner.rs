//! The `scanner` helper: an on-access scanner (seed 000's anti-virus). It
//! marks paths with fanotify permission events (FAN_CLASS_CONTENT,
//! FAN_OPEN_PERM; a folder's direct children too) and answers each open
//! only `--hold-ms` after it arrived, so the opener waits inside open(2).
//! Opens of a path under an `--exclude` are allowed at once (the seed's
//! workaround). It ends at its deadline or on SIGTERM, allowing whatever is
//! still pending first.
//!
//! Output, one line each, `NS` its `CLOCK_MONOTONIC` ns: `ready FD` once
//! every mark is in place (FD is its fanotify descriptor, for
//! `/proc/PID/fdinfo/FD`), `held NS PID COMM PATH` when an open arrives
//! (COMM from `/proc/PID/comm`, spaces as `_`), `allow NS PID COMM PATH`
//! when it is answered, `pass NS PID COMM PATH` for an excluded one. It reads only `/proc`: it never opens a marked file itself
//! (it would wait on its own answer).

use std::ffi::CString;
use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::Deadline;
use crate::clock::monotonic_ns;

struct Pending {
    fd: i32,
    pid: i32,
    comm: String,
    path: String,
    due: u64,
}

struct Args {
    hold: Duration,
    marks: Vec<PathBuf>,
    exclude: Vec<PathBuf>,
}

fn parse(args: &[String]) -> Result<Args, String> {
    let mut out = Args {
        hold: Duration::ZERO,
        marks: Vec::new(),
        exclude: Vec::new(),
    };
    let mut it = args.iter();
    while let Some(flag) = it.next() {
        let value = it.next().ok_or_else(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--hold-ms" => {
                out.hold = Duration::from_millis(
                    value
                        .parse()
                        .map_err(|_| format!("bad --hold-ms {value}"))?,
                )
            }
            "--mark" => out.marks.push(value.into()),
            "--exclude" => out.exclude.push(value.into()),
            other => return Err(format!("unknown argument {other}")),
        }
    }
    if out.marks.is_empty() {
        return Err("nothing to mark (--mark PATH)".into());
    }
    Ok(out)
}

fn say(line: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

/// Runs the scanner; see the module documentation.
pub fn run(deadline: Deadline, args: &[String]) -> Result<(), String> {
    let args = parse(args)?;
    let hold_ns = args.hold.as_nanos() as u64;
    // SIGTERM arrives on a descriptor, so pending opens are answered first.
    // SAFETY: plain sigset manipulation on a local set.
    let sfd = unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGTERM);
        libc::sigprocmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
        libc::signalfd(-1, &set, libc::SFD_CLOEXEC | libc::SFD_NONBLOCK)
    };
    if sfd < 0 {
        return Err(format!("signalfd: {}", std::io::Error::last_os_error()));
    }
    // SAFETY: flags only.
    let fan = unsafe {
        libc::fanotify_init(
            libc::FAN_CLASS_CONTENT | libc::FAN_CLOEXEC | libc::FAN_NONBLOCK,
            (libc::O_RDONLY | libc::O_LARGEFILE) as u32,
        )
    };
    if fan < 0 {
        return Err(format!(
            "fanotify_init(FAN_CLASS_CONTENT): {}",
            std::io::Error::last_os_error()
        ));
    }
    for path in &args.marks {
        let mut mask = libc::FAN_OPEN_PERM;
        if path.is_dir() {
            mask |= libc::FAN_EVENT_ON_CHILD;
        }
        let c = CString::new(path.as_os_str().as_bytes()).map_err(|e| e.to_string())?;
        // SAFETY: `fan` is our fanotify descriptor, `c` a valid C string.
        let rc = unsafe {
            libc::fanotify_mark(fan, libc::FAN_MARK_ADD, mask, libc::AT_FDCWD, c.as_ptr())
        };
        if rc != 0 {
            return Err(format!(
                "fanotify_mark {}: {}",
                path.display(),
                std::io::Error::last_os_error()
            ));
        }
    }
    say(&format!("ready {fan}"));
    let mut pending: Vec<Pending> = Vec::new();
    let mut buf = vec![0u8; 8192];
    let mut stop = false;
    while !stop && !deadline.passed() {
        let now = monotonic_ns();
        let next_due = pending.iter().map(|p| p.due).min();
        let until_due = next_due.map_or(u64::MAX, |d| d.saturating_sub(now));
        let wait = deadline.left().as_nanos().min(u128::from(until_due));
        let timeout = (wait / 1_000_000 + 1).min(1000) as i32;
        let mut fds = [
            libc::pollfd {
                fd: fan,
                events: libc::POLLIN,
                revents: 0,
            },
            libc::pollfd {
                fd: sfd,
                events: libc::POLLIN,
                revents: 0,
            },
        ];
        // SAFETY: `fds` is a valid array of two pollfds.
        unsafe { libc::poll(fds.as_mut_ptr(), 2, timeout) };
        if fds[1].revents & libc::POLLIN != 0 {
            stop = true;
        }
        if fds[0].revents & libc::POLLIN != 0 {
            read_events(fan, &mut buf, &args, hold_ns, &mut pending);
        }
        let now = monotonic_ns();
        pending.retain(|p| {
            if p.due <= now {
                answer(fan, p, "allow");
                false
            } else {
                true
            }
        });
    }
    for p in &pending {
        answer(fan, p, "allow");
    }
    Ok(())
}

fn read_events(fan: i32, buf: &mut [u8], args: &Args, hold_ns: u64, pending: &mut Vec<Pending>) {
    // SAFETY: `buf` is writable for its length.
    let n = unsafe { libc::read(fan, buf.as_mut_ptr().cast(), buf.len()) };
    if n <= 0 {
        return;
    }
    let size = std::mem::size_of::<libc::fanotify_event_metadata>();
    let mut off = 0usize;
    while off + size <= n as usize {
        // SAFETY: the kernel wrote whole metadata records; read_unaligned
        // copes with any alignment of the buffer.
        let meta: libc::fanotify_event_metadata =
            unsafe { std::ptr::read_unaligned(buf[off..].as_ptr().cast()) };
        if (meta.event_len as usize) < size {
            break;
        }
        off += meta.event_len as usize;
        if meta.fd < 0 {
            continue;
        }
        let path = std::fs::read_link(format!("/proc/self/fd/{}", meta.fd))
            .map(|p| p.to_string_lossy().into_owned())
            .unwrap_or_else(|_| "?".into());
        let comm = std::fs::read_to_string(format!("/proc/{}/comm", meta.pid))
            .map(|c| c.trim().replace(' ', "_"))
            .unwrap_or_else(|_| "?".into());
        let now = monotonic_ns();
        let p = Pending {
            fd: meta.fd,
            pid: meta.pid,
            comm,
            path,
            due: now + hold_ns,
        };
        if args
            .exclude
            .iter()
            .any(|x| Path::new(&p.path).starts_with(x))
        {
            answer(fan, &p, "pass");
        } else {
            say(&format!("held {now} {} {} {}", p.pid, p.comm, p.path));
            pending.push(p);
        }
    }
}

fn answer(fan: i32, p: &Pending, word: &str) {
    let response = libc::fanotify_response {
        fd: p.fd,
        response: libc::FAN_ALLOW,
    };
    // SAFETY: writing one response struct to our fanotify descriptor, then
    // closing the event's descriptor, which the kernel gave us.
    unsafe {
        libc::write(
            fan,
            (&response as *const libc::fanotify_response).cast(),
            std::mem::size_of::<libc::fanotify_response>(),
        );
        libc::close(p.fd);
    }
    say(&format!(
        "{word} {} {} {} {}",
        monotonic_ns(),
        p.pid,
        p.comm,
        p.path
    ));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arguments_are_read_and_bad_ones_refused() {
        let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        let a = parse(&s(&[
            "--hold-ms",
            "250",
            "--mark",
            "/a",
            "--exclude",
            "/a/b",
        ]))
        .unwrap();
        assert_eq!(a.hold, Duration::from_millis(250));
        assert_eq!(a.marks, [PathBuf::from("/a")]);
        assert_eq!(a.exclude, [PathBuf::from("/a/b")]);
        assert!(parse(&s(&["--hold-ms", "1"])).is_err());
        assert!(parse(&s(&["--hold-ms", "x", "--mark", "/a"])).is_err());
        assert!(parse(&s(&["--mark"])).is_err());
        assert!(parse(&s(&["--bogus", "1", "--mark", "/a"])).is_err());
    }
}
