//! Launching processes into a node: into cgroups and a network namespace,
//! with a parent-death signal and a new session, without ever waiting for
//! them here. Exits are collected by the single [`Reaper`] thread
//! ([`Spawn::spawn`]), or, in a single-threaded process that reaps its own
//! children (the agent's supervisor), by the caller ([`Spawn::spawn_child`]).
//! A child starts with no signal blocked and SIGPIPE at its default (std
//! resets both before exec; a test guards it), so a spawner's signalfd mask
//! never leaks into it.
//!
//! The code that runs between fork and exec makes only raw,
//! async-signal-safe syscalls on data prepared before the fork. Nothing
//! here may call std's `Child::wait`, `output` or `status`.
//!
//! `PR_SET_PDEATHSIG` fires when the *thread* that forked the child ends,
//! not the process: spawn children that carry a parent-death signal from
//! a long-lived thread.

mod error;
mod reaper;

pub use error::SpawnError;
pub use reaper::{ExitStatus, Reaper};

use std::ffi::{CString, OsStr, OsString};
use std::fs::File;
use std::io::{self, Read};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

/// A process to launch; build it, then call [`Spawn::spawn`].
#[derive(Debug)]
pub struct Spawn {
    /// The program: a path, or a name looked up on `PATH`.
    pub program: PathBuf,
    /// Its arguments.
    pub args: Vec<OsString>,
    /// A network namespace file (`/run/netns/NAME`) to enter.
    pub netns: Option<PathBuf>,
    /// `cgroup.procs` files the child writes `0` to before exec.
    pub cgroup_procs: Vec<PathBuf>,
    /// A signal the child gets when the spawning *thread* ends.
    pub parent_death_signal: Option<i32>,
    /// Start a new session (and process group).
    pub new_session: bool,
    /// Where stdout goes (inherited if unset).
    pub stdout: Option<File>,
    /// Where stderr goes (inherited if unset).
    pub stderr: Option<File>,
    /// Environment variables added to the inherited ones.
    pub env: Vec<(OsString, OsString)>,
}

/// Steps of the child setup, reported through the error pipe.
const STEPS: [&str; 5] = [
    "open cgroup.procs",
    "join cgroup",
    "enter network namespace",
    "set parent death signal",
    "start a new session",
];

impl Spawn {
    /// A launch of `program` with no arguments and no placement.
    pub fn new(program: impl Into<PathBuf>) -> Spawn {
        Spawn {
            program: program.into(),
            args: Vec::new(),
            netns: None,
            cgroup_procs: Vec::new(),
            parent_death_signal: None,
            new_session: false,
            stdout: None,
            stderr: None,
            env: Vec::new(),
        }
    }

    /// Adds an argument.
    pub fn arg(mut self, arg: impl AsRef<OsStr>) -> Spawn {
        self.args.push(arg.as_ref().to_owned());
        self
    }

    /// Adds arguments.
    pub fn args<I: IntoIterator<Item = S>, S: AsRef<OsStr>>(mut self, args: I) -> Spawn {
        self.args
            .extend(args.into_iter().map(|a| a.as_ref().to_owned()));
        self
    }

    /// Enters the network namespace at this file.
    pub fn netns(mut self, path: impl Into<PathBuf>) -> Spawn {
        self.netns = Some(path.into());
        self
    }

    /// Joins the groups of these `cgroup.procs` files.
    pub fn cgroup_procs(mut self, files: Vec<PathBuf>) -> Spawn {
        self.cgroup_procs = files;
        self
    }

    /// Sends `signal` to the child when the spawning thread ends.
    pub fn parent_death_signal(mut self, signal: i32) -> Spawn {
        self.parent_death_signal = Some(signal);
        self
    }

    /// Starts a new session.
    pub fn new_session(mut self) -> Spawn {
        self.new_session = true;
        self
    }

    /// Sends stdout to this file.
    pub fn stdout(mut self, file: File) -> Spawn {
        self.stdout = Some(file);
        self
    }

    /// Sends stderr to this file.
    pub fn stderr(mut self, file: File) -> Spawn {
        self.stderr = Some(file);
        self
    }

    /// Sets an environment variable.
    pub fn env(mut self, key: impl AsRef<OsStr>, value: impl AsRef<OsStr>) -> Spawn {
        self.env
            .push((key.as_ref().to_owned(), value.as_ref().to_owned()));
        self
    }

    /// Launches the process and returns its pid; the [`Reaper`] (started
    /// here if needed) collects its exit.
    pub fn spawn(&self) -> Result<i32, SpawnError> {
        let child = self.launch(self.stdio(&self.stdout)?, self.stdio(&self.stderr)?, true)?;
        Ok(child.id() as i32)
    }

    /// Launches the process and returns its pid, for a caller that reaps
    /// its own children (`waitpid`) and runs no [`Reaper`]. Never mix the
    /// two in one process.
    pub fn spawn_child(&self) -> Result<u32, SpawnError> {
        let child = self.launch(self.stdio(&self.stdout)?, self.stdio(&self.stderr)?, false)?;
        Ok(child.id())
    }

    /// The child's end of one output: the file given, or ours.
    fn stdio(&self, file: &Option<File>) -> Result<Stdio, SpawnError> {
        match file {
            None => Ok(Stdio::inherit()),
            Some(f) => f
                .try_clone()
                .map(Stdio::from)
                .map_err(|source| SpawnError::Pipe {
                    program: self.program.clone(),
                    source,
                }),
        }
    }

    /// Forks and execs with the given stdout and stderr; the [`Reaper`] is
    /// told about the child when `reaped`.
    fn launch(&self, stdout: Stdio, stderr: Stdio, reaped: bool) -> Result<Child, SpawnError> {
        let program = resolve(&self.program)?;
        let procs = self
            .cgroup_procs
            .iter()
            .map(|p| cstring(p))
            .collect::<Result<Vec<_>, _>>()?;
        let netns: Option<OwnedFd> = match &self.netns {
            Some(path) => Some(File::open(path).map(OwnedFd::from).map_err(|source| {
                SpawnError::OpenNetns {
                    path: path.clone(),
                    source,
                }
            })?),
            None => None,
        };
        let (err_read, err_write) =
            nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(|e| SpawnError::Pipe {
                program: program.clone(),
                source: e.into(),
            })?;
        let setup = ChildSetup {
            procs,
            netns: netns.as_ref().map(|fd| fd.as_raw_fd()),
            pdeath: self.parent_death_signal,
            parent: std::process::id() as libc::pid_t,
            new_session: self.new_session,
            err_fd: err_write.as_raw_fd(),
        };
        let mut cmd = Command::new(&program);
        cmd.args(&self.args)
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(stderr);
        // SAFETY: the closure only makes async-signal-safe syscalls on
        // memory prepared before the fork (see ChildSetup::run).
        unsafe {
            cmd.pre_exec(move || {
                setup.run();
                Ok(())
            });
        }
        let reaper = reaped.then(|| {
            let reaper = Reaper::global();
            (reaper, reaper.seq())
        });
        let spawned = cmd.spawn();
        drop(err_write);
        drop(netns);
        let child = spawned.map_err(|source| SpawnError::Spawn {
            program: program.clone(),
            source,
        })?;
        if let Some((reaper, seq)) = reaper {
            reaper.forked(child.id() as i32, seq);
        }
        let mut report = [0u8; 12];
        let mut got = 0;
        let mut err_read = File::from(err_read);
        while got < report.len() {
            match err_read.read(&mut report[got..]) {
                Ok(0) => break,
                Ok(n) => got += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => break,
            }
        }
        if got == report.len() {
            let word = |i: usize| {
                i32::from_ne_bytes(report[i * 4..i * 4 + 4].try_into().unwrap_or_default())
            };
            let (step, index, errno) = (word(0) as usize, word(1) as usize, word(2));
            return Err(SpawnError::Setup {
                program,
                step: STEPS.get(step).copied().unwrap_or("prepare the child"),
                path: if step <= 1 {
                    self.cgroup_procs.get(index).cloned()
                } else {
                    self.netns.clone().filter(|_| step == 2)
                },
                source: io::Error::from_raw_os_error(errno),
            });
        }
        Ok(child)
    }
}

/// What the child does between fork and exec, prepared before the fork.
struct ChildSetup {
    procs: Vec<CString>,
    netns: Option<i32>,
    pdeath: Option<i32>,
    parent: libc::pid_t,
    new_session: bool,
    err_fd: i32,
}

impl ChildSetup {
    /// Runs in the forked child: raw syscalls only, no allocation. On a
    /// failure it reports (step, index, errno) on the error pipe and exits.
    fn run(&self) {
        // SAFETY: every call is an async-signal-safe syscall on valid
        // pointers owned by `self`, which outlives the child's use of it.
        unsafe {
            let fail = |step: i32, index: i32| -> ! {
                let errno = *libc::__errno_location();
                let mut buf = [0u8; 12];
                buf[..4].copy_from_slice(&step.to_ne_bytes());
                buf[4..8].copy_from_slice(&index.to_ne_bytes());
                buf[8..].copy_from_slice(&errno.to_ne_bytes());
                libc::write(self.err_fd, buf.as_ptr().cast(), buf.len());
                libc::_exit(127)
            };
            if let Some(sig) = self.pdeath {
                if libc::prctl(libc::PR_SET_PDEATHSIG, sig as libc::c_ulong, 0, 0, 0) != 0 {
                    fail(3, 0);
                }
                if libc::getppid() != self.parent {
                    libc::_exit(127);
                }
            }
            for (i, path) in self.procs.iter().enumerate() {
                let fd = libc::open(path.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC);
                if fd < 0 {
                    fail(0, i as i32);
                }
                if libc::write(fd, b"0".as_ptr().cast(), 1) != 1 {
                    fail(1, i as i32);
                }
                libc::close(fd);
            }
            if let Some(fd) = self.netns {
                if libc::setns(fd, libc::CLONE_NEWNET) != 0 {
                    fail(2, 0);
                }
            }
            if self.new_session && libc::setsid() < 0 {
                fail(4, 0);
            }
        }
    }
}

fn cstring(path: &Path) -> Result<CString, SpawnError> {
    CString::new(path.as_os_str().as_bytes()).map_err(|_| SpawnError::NulInPath {
        path: path.to_path_buf(),
    })
}

/// Finds the program as exec would, and checks it is an executable file:
/// std waits for a child whose exec failed, which would race the reaper.
fn resolve(program: &Path) -> Result<PathBuf, SpawnError> {
    let candidates: Vec<PathBuf> = if program.as_os_str().as_bytes().contains(&b'/') {
        vec![program.to_path_buf()]
    } else {
        let path = std::env::var_os("PATH").unwrap_or_else(|| {
            "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into()
        });
        std::env::split_paths(&path)
            .map(|dir| dir.join(program))
            .collect()
    };
    let mut found = None;
    for candidate in candidates {
        match std::fs::metadata(&candidate) {
            Ok(meta) if meta.is_file() && meta.permissions().mode() & 0o111 != 0 => {
                return Ok(candidate)
            }
            Ok(_) => found = found.or(Some(candidate)),
            Err(_) => {}
        }
    }
    Err(match found {
        Some(path) => SpawnError::NotExecutable { path },
        None => SpawnError::NotFound {
            program: program.to_path_buf(),
        },
    })
}

/// Makes this process the reaper of orphaned descendants.
pub fn set_child_subreaper() -> Result<(), SpawnError> {
    // SAFETY: prctl with integer arguments has no memory effects.
    if unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) } != 0 {
        return Err(SpawnError::Subreaper {
            source: io::Error::last_os_error(),
        });
    }
    Ok(())
}

/// What a finished command printed, and how it ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Output {
    /// How it ended.
    pub status: ExitStatus,
    /// Its stdout (lossy UTF-8).
    pub stdout: String,
    /// Its stderr (lossy UTF-8).
    pub stderr: String,
}

/// Runs `program` with `args` to the end, capturing stdout and stderr;
/// the exit status comes from the [`Reaper`]. The command runs in its own
/// session: a Ctrl-C at the terminal reaches only the caller, which decides
/// (a lab build or teardown is never cut short by a killed `ip`).
pub fn run(program: &str, args: &[&str]) -> Result<Output, SpawnError> {
    run_spawn(Spawn::new(program).args(args))
}

/// [`run`] inside the network namespace file `netns` (entered by the
/// child before exec, so no `ip netns exec` is needed).
pub fn run_in(netns: &Path, program: &str, args: &[&str]) -> Result<Output, SpawnError> {
    run_spawn(Spawn::new(program).args(args).netns(netns))
}

fn run_spawn(spawn: Spawn) -> Result<Output, SpawnError> {
    let spawn = spawn.new_session();
    let mut child = spawn.launch(Stdio::piped(), Stdio::piped(), true)?;
    let pid = child.id() as i32;
    let exit = Reaper::global().watch(pid);
    let read_err = |source| SpawnError::ReadOutput {
        program: spawn.program.clone(),
        source,
    };
    let stderr_pipe = child.stderr.take();
    let stderr_reader = std::thread::spawn(move || -> io::Result<Vec<u8>> {
        let mut buf = Vec::new();
        if let Some(mut pipe) = stderr_pipe {
            pipe.read_to_end(&mut buf)?;
        }
        Ok(buf)
    });
    let mut stdout = Vec::new();
    if let Some(mut pipe) = child.stdout.take() {
        pipe.read_to_end(&mut stdout).map_err(read_err)?;
    }
    let stderr = stderr_reader
        .join()
        .unwrap_or_else(|_| Ok(Vec::new()))
        .map_err(read_err)?;
    let status = exit.recv().map_err(|_| SpawnError::ReaperLost {
        program: spawn.program.clone(),
        pid,
    })?;
    Ok(Output {
        status,
        stdout: String::from_utf8_lossy(&stdout).into_owned(),
        stderr: String::from_utf8_lossy(&stderr).into_owned(),
    })
}

#[cfg(test)]
mod tests;
