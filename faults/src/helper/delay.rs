//! The `delay` helper: the userspace half of the nfqueue delay (for hosts
//! without netem). It binds NFQUEUE `--queue N` in the namespace it runs
//! in (the node's), holds every packet the fault's nftables rule queues to
//! it for `--delay-us D` after it received it, then gives the ACCEPT
//! verdict, so each packet leaves at least D late, in order. It says
//! `ready` once bound, and when it ends (deadline or SIGTERM) it first
//! accepts whatever it still holds and says `held N released N max M`.
//!
//! The codec is the `nfq` crate's; this only keeps time. It decides
//! nothing about whether the fault took effect: the fault measures probe
//! datagrams and reads the rule's counters.

use std::collections::VecDeque;
use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use super::Deadline;

/// Set by SIGTERM: release everything and end.
static STOP: AtomicBool = AtomicBool::new(false);

extern "C" fn on_term(_: libc::c_int) {
    STOP.store(true, Ordering::SeqCst);
}

/// Parsed arguments.
#[derive(Debug, PartialEq, Eq)]
struct Args {
    queue: u16,
    delay: Duration,
}

fn parse(args: &[String]) -> Result<Args, String> {
    let (mut queue, mut delay) = (None, None);
    let mut it = args.iter();
    while let Some(flag) = it.next() {
        let value = it.next().ok_or_else(|| format!("`{flag}` needs a value"))?;
        let bad = || format!("`{flag} {value}`: not a number");
        match flag.as_str() {
            "--queue" => queue = Some(value.parse::<u16>().map_err(|_| bad())?),
            "--delay-us" => {
                delay = Some(Duration::from_micros(
                    value.parse::<u64>().map_err(|_| bad())?,
                ))
            }
            _ => {
                return Err(format!(
                    "unknown argument `{flag}` (known: --queue, --delay-us)"
                ))
            }
        }
    }
    match (queue, delay) {
        (Some(queue), Some(delay)) => Ok(Args { queue, delay }),
        _ => Err("usage: --queue N --delay-us D".into()),
    }
}

/// The descriptor the next socket(2) of this single-threaded process gets
/// (the lowest free one), so the queue's netlink socket can be polled.
fn next_fd() -> Result<libc::c_int, String> {
    // SAFETY: dup of stderr, closed at once; no memory effects.
    let fd = unsafe { libc::dup(2) };
    if fd < 0 {
        return Err(format!("dup: {}", std::io::Error::last_os_error()));
    }
    // SAFETY: `fd` was just returned by dup and is ours.
    unsafe { libc::close(fd) };
    Ok(fd)
}

/// Whether `fd` is a NETLINK_NETFILTER socket.
fn is_nfnetlink(fd: libc::c_int) -> bool {
    let get = |opt| {
        let mut v: libc::c_int = -1;
        let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
        // SAFETY: `v` and `len` are valid for getsockopt to write an int.
        let rc = unsafe {
            libc::getsockopt(
                fd,
                libc::SOL_SOCKET,
                opt,
                &mut v as *mut libc::c_int as *mut libc::c_void,
                &mut len,
            )
        };
        (rc == 0).then_some(v)
    };
    get(libc::SO_DOMAIN) == Some(libc::AF_NETLINK)
        && get(libc::SO_PROTOCOL) == Some(libc::NETLINK_NETFILTER)
}

/// Runs the delayer; see the module documentation.
pub(super) fn run(deadline: Deadline, args: &[String]) -> Result<(), String> {
    let args = parse(args)?;
    // SAFETY: `on_term` only stores to an atomic, which is signal-safe.
    unsafe { libc::signal(libc::SIGTERM, on_term as *const () as libc::sighandler_t) };
    let fd = next_fd()?;
    let mut queue = nfq::Queue::open().map_err(|e| format!("NFQUEUE socket: {e}"))?;
    if !is_nfnetlink(fd) {
        return Err(format!("fd {fd} is not the NFQUEUE socket"));
    }
    queue
        .bind(args.queue)
        .map_err(|e| format!("cannot bind NFQUEUE {}: {e}", args.queue))?;
    // Only the verdict is needed, not the payload.
    queue
        .set_copy_range(args.queue, 0)
        .map_err(|e| format!("NFQUEUE copy range: {e}"))?;
    let _ = queue.set_queue_max_len(args.queue, 65_536);
    queue.set_nonblocking(true);
    {
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "ready queue {}", args.queue);
        let _ = out.flush();
    }
    let mut held: VecDeque<(Instant, nfq::Message)> = VecDeque::new();
    let (mut total, mut released, mut max) = (0u64, 0u64, 0usize);
    let mut failed = None;
    while !deadline.passed() && !STOP.load(Ordering::SeqCst) {
        // Take everything waiting.
        loop {
            match queue.recv() {
                Ok(msg) => {
                    held.push_back((Instant::now() + args.delay, msg));
                    total += 1;
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => break,
                Err(e) => {
                    failed = Some(format!("NFQUEUE recv: {e}"));
                    break;
                }
            }
        }
        max = max.max(held.len());
        let now = Instant::now();
        while held.front().is_some_and(|(due, _)| *due <= now) {
            if let Some((_, msg)) = held.pop_front() {
                queue
                    .verdict(msg)
                    .map_err(|e| format!("NFQUEUE verdict: {e}"))?;
                released += 1;
            }
        }
        if failed.is_some() {
            break;
        }
        // Sleep until the next packet is due or one arrives.
        let wait = held
            .front()
            .map_or(deadline.left(), |(due, _)| {
                due.saturating_duration_since(now)
            })
            .min(deadline.left())
            .min(Duration::from_millis(100));
        let mut pfd = libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        };
        // Round up so a due packet is not polled for again and again.
        let ms = wait.as_micros().div_ceil(1000) as libc::c_int;
        // SAFETY: one valid pollfd; a signal only interrupts it.
        unsafe { libc::poll(&mut pfd, 1, ms) };
    }
    // Nothing held is lost: what is left goes now.
    while let Some((_, msg)) = held.pop_front() {
        if queue.verdict(msg).is_ok() {
            released += 1;
        }
    }
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "held {total} released {released} max {max}");
    let _ = out.flush();
    match failed {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn parses_queue_and_delay_and_refuses_the_rest() {
        assert_eq!(
            parse(&s(&["--queue", "7", "--delay-us", "100000"])).unwrap(),
            Args {
                queue: 7,
                delay: Duration::from_millis(100)
            }
        );
        assert!(parse(&s(&["--queue", "7"])).unwrap_err().contains("usage"));
        assert!(parse(&s(&["--queue", "70000", "--delay-us", "1"]))
            .unwrap_err()
            .contains("not a number"));
        assert!(parse(&s(&["--jitter", "1"]))
            .unwrap_err()
            .contains("unknown"));
    }

    #[test]
    fn the_next_fd_is_free_and_not_a_netlink_socket() {
        let fd = next_fd().unwrap();
        assert!(fd > 2);
        assert!(!is_nfnetlink(fd));
    }
}
