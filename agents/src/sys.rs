//! Thin wrappers over the kernel calls the roles need and nix lacks or makes
//! awkward: pidfd, timerfd with absolute deadlines, signalfd, poll,
//! SCHED_FIFO, mlockall, interface flags. Process launch, the subreaper and
//! the clock are `faultline-sys`'s, shared with the harness.
//!
//! Each wrapper makes one call (or a short fixed sequence) and returns an
//! `io::Result`; no policy lives here.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

fn cvt(r: libc::c_int) -> io::Result<libc::c_int> {
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

/// The calling thread's id.
pub fn gettid() -> u32 {
    // SAFETY: gettid takes no arguments and cannot fail.
    unsafe { libc::syscall(libc::SYS_gettid) as u32 }
}

/// `pidfd_open(pid, 0)`: a descriptor that becomes readable when `pid` exits.
pub fn pidfd_open(pid: u32) -> io::Result<OwnedFd> {
    // SAFETY: plain syscall with integer arguments.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid as libc::pid_t, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the kernel returned a new descriptor that we now own.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
}

/// `pidfd_send_signal(fd, sig, NULL, 0)`.
pub fn pidfd_send_signal(fd: &OwnedFd, sig: libc::c_int) -> io::Result<()> {
    // SAFETY: plain syscall; a null siginfo is allowed.
    let r = unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            fd.as_raw_fd(),
            sig,
            std::ptr::null::<libc::siginfo_t>(),
            0,
        )
    };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// A CLOCK_MONOTONIC timerfd armed with absolute deadlines.
#[derive(Debug)]
pub struct Timer(OwnedFd);

impl Timer {
    /// A new, disarmed, non-blocking timer.
    pub fn new() -> io::Result<Self> {
        // SAFETY: plain call with integer flags.
        let fd = cvt(unsafe {
            libc::timerfd_create(
                libc::CLOCK_MONOTONIC,
                libc::TFD_CLOEXEC | libc::TFD_NONBLOCK,
            )
        })?;
        // SAFETY: a new descriptor we own.
        Ok(Timer(unsafe { OwnedFd::from_raw_fd(fd) }))
    }

    /// Arms the timer to fire at `deadline_ns` on CLOCK_MONOTONIC (a deadline
    /// already past fires at once), or disarms it with `None`.
    pub fn set(&self, deadline_ns: Option<u64>) -> io::Result<()> {
        // A zero it_value disarms: an armed deadline is at least 1 ns.
        let ns = deadline_ns.map_or(0, |d| d.max(1));
        let spec = libc::itimerspec {
            it_interval: libc::timespec {
                tv_sec: 0,
                tv_nsec: 0,
            },
            it_value: libc::timespec {
                tv_sec: (ns / 1_000_000_000) as libc::time_t,
                tv_nsec: (ns % 1_000_000_000) as libc::c_long,
            },
        };
        // SAFETY: valid descriptor and pointers to a live itimerspec.
        cvt(unsafe {
            libc::timerfd_settime(
                self.0.as_raw_fd(),
                libc::TFD_TIMER_ABSTIME,
                &spec,
                std::ptr::null_mut(),
            )
        })?;
        Ok(())
    }

    /// Consumes a pending expiry, if any.
    pub fn clear(&self) {
        let mut buf = [0u8; 8];
        // SAFETY: reading 8 bytes into an 8-byte buffer; EAGAIN is fine.
        unsafe { libc::read(self.0.as_raw_fd(), buf.as_mut_ptr().cast(), 8) };
    }

    /// The descriptor, for poll.
    pub fn fd(&self) -> RawFd {
        self.0.as_raw_fd()
    }
}

/// Signals delivered through a descriptor instead of handlers.
#[derive(Debug)]
pub struct SignalFd(OwnedFd);

impl SignalFd {
    /// Blocks `signals` for the (single-threaded) process and returns a
    /// non-blocking signalfd that reports them.
    pub fn block(signals: &[libc::c_int]) -> io::Result<Self> {
        // SAFETY: sigset_t is plain data initialised by sigemptyset.
        unsafe {
            let mut set: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut set);
            for &s in signals {
                libc::sigaddset(&mut set, s);
            }
            cvt(libc::sigprocmask(
                libc::SIG_BLOCK,
                &set,
                std::ptr::null_mut(),
            ))?;
            let fd = cvt(libc::signalfd(
                -1,
                &set,
                libc::SFD_CLOEXEC | libc::SFD_NONBLOCK,
            ))?;
            Ok(SignalFd(OwnedFd::from_raw_fd(fd)))
        }
    }

    /// The next pending signal, if any.
    pub fn next(&self) -> Option<libc::c_int> {
        // SAFETY: signalfd_siginfo is plain data; we read exactly its size.
        unsafe {
            let mut info: libc::signalfd_siginfo = std::mem::zeroed();
            let size = std::mem::size_of::<libc::signalfd_siginfo>();
            let n = libc::read(
                self.0.as_raw_fd(),
                (&mut info as *mut libc::signalfd_siginfo).cast(),
                size,
            );
            (n as usize == size).then_some(info.ssi_signo as libc::c_int)
        }
    }

    /// The descriptor, for poll.
    pub fn fd(&self) -> RawFd {
        self.0.as_raw_fd()
    }
}

/// A pollfd waiting for input on `fd` (a negative fd is ignored by poll).
pub fn pollin(fd: RawFd) -> libc::pollfd {
    libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    }
}

/// `poll(fds, timeout_ms)`; an interrupted wait counts as nothing ready.
pub fn poll(fds: &mut [libc::pollfd], timeout_ms: libc::c_int) -> io::Result<usize> {
    // SAFETY: the slice is a valid array of pollfd of the given length.
    let r = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, timeout_ms) };
    if r < 0 {
        let e = io::Error::last_os_error();
        if e.kind() == io::ErrorKind::Interrupted {
            return Ok(0);
        }
        return Err(e);
    }
    Ok(r as usize)
}

/// Whether poll reported `fd` ready (input, hang-up or error).
pub fn ready(p: &libc::pollfd) -> bool {
    p.revents & (libc::POLLIN | libc::POLLHUP | libc::POLLERR) != 0
}

/// Runs the calling process under SCHED_FIFO at `priority`.
pub fn set_fifo(priority: i32) -> io::Result<()> {
    let param = libc::sched_param {
        sched_priority: priority,
    };
    // SAFETY: valid pointer to a live sched_param.
    cvt(unsafe { libc::sched_setscheduler(0, libc::SCHED_FIFO, &param) })?;
    Ok(())
}

/// Whether the calling process runs under SCHED_FIFO, as the kernel says.
pub fn is_fifo() -> bool {
    // SAFETY: sched_getscheduler(0) reads the caller's policy; no pointers.
    unsafe { libc::sched_getscheduler(0) == libc::SCHED_FIFO }
}

/// `mlockall(MCL_CURRENT | MCL_FUTURE)`, only where it cannot later starve
/// the process: as root, or with an unlimited RLIMIT_MEMLOCK. Otherwise a
/// finite limit would make future allocations fail, so it is refused.
pub fn lock_memory() -> io::Result<()> {
    // SAFETY: plain data out-parameter.
    let mut lim: libc::rlimit = unsafe { std::mem::zeroed() };
    // SAFETY: valid pointer.
    cvt(unsafe { libc::getrlimit(libc::RLIMIT_MEMLOCK, &mut lim) })?;
    // SAFETY: no arguments.
    let root = unsafe { libc::geteuid() } == 0;
    if !root && lim.rlim_cur != libc::RLIM_INFINITY {
        return Err(io::Error::other(format!(
            "not root and RLIMIT_MEMLOCK is {} bytes",
            lim.rlim_cur
        )));
    }
    // SAFETY: plain call with integer flags.
    cvt(unsafe { libc::mlockall(libc::MCL_CURRENT | libc::MCL_FUTURE) })?;
    Ok(())
}

/// Takes interface `name` down (clears IFF_UP) in the current network
/// namespace.
pub fn link_down(name: &str) -> io::Result<()> {
    if name.len() >= libc::IFNAMSIZ {
        return Err(io::Error::from(io::ErrorKind::InvalidInput));
    }
    // SAFETY: plain call.
    let sock =
        cvt(unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) })?;
    // SAFETY: a new descriptor we own; closed on drop.
    let sock = unsafe { OwnedFd::from_raw_fd(sock) };
    // SAFETY: ifreq is plain data; the name fits (checked above) and stays
    // NUL-terminated; the ioctls read and write only the flags member.
    unsafe {
        let mut req: libc::ifreq = std::mem::zeroed();
        for (dst, src) in req.ifr_name.iter_mut().zip(name.bytes()) {
            *dst = src as libc::c_char;
        }
        cvt(libc::ioctl(sock.as_raw_fd(), libc::SIOCGIFFLAGS, &mut req))?;
        req.ifr_ifru.ifru_flags &= !(libc::IFF_UP as libc::c_short);
        cvt(libc::ioctl(sock.as_raw_fd(), libc::SIOCSIFFLAGS, &req))?;
    }
    Ok(())
}

/// Sends `sig` to `pid`.
pub fn kill(pid: u32, sig: libc::c_int) -> io::Result<()> {
    // SAFETY: plain call.
    cvt(unsafe { libc::kill(pid as libc::pid_t, sig) })?;
    Ok(())
}
