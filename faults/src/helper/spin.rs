//! The `spin` helper: one busy thread that burns CPU until its deadline,
//! optionally pinned to one CPU (`--cpu N`) and at SCHED_FIFO (`--fifo
//! PRIO`). The cpu fault starts as many as its mode needs.
//!
//! It spins and nothing else: it never sleeps, allocates in its loop or
//! decides anything. Whether it starves anyone is read back by the fault.

use super::Deadline;

/// Parsed arguments.
#[derive(Debug, Default, PartialEq, Eq)]
struct Args {
    fifo: Option<i32>,
    cpu: Option<usize>,
}

fn parse(args: &[String]) -> Result<Args, String> {
    let mut out = Args::default();
    let mut it = args.iter();
    while let Some(flag) = it.next() {
        let value = it.next().ok_or_else(|| format!("`{flag}` needs a value"))?;
        let bad = || format!("`{flag} {value}`: not a number");
        match flag.as_str() {
            "--fifo" => {
                let prio: i32 = value.parse().map_err(|_| bad())?;
                if !(1..=99).contains(&prio) {
                    return Err(format!("`--fifo {prio}`: priority must be 1-99"));
                }
                out.fifo = Some(prio);
            }
            "--cpu" => out.cpu = Some(value.parse().map_err(|_| bad())?),
            _ => return Err(format!("unknown argument `{flag}` (known: --fifo, --cpu)")),
        }
    }
    Ok(out)
}

/// Pins the calling thread to `cpu`.
fn pin(cpu: usize) -> Result<(), String> {
    // SAFETY: a zeroed cpu_set_t is a valid empty set; CPU_SET writes
    // within it for cpu < CPU_SETSIZE, checked first.
    unsafe {
        if cpu >= libc::CPU_SETSIZE as usize {
            return Err(format!("cpu {cpu} is out of range"));
        }
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut set);
        if libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) != 0 {
            return Err(format!(
                "sched_setaffinity(cpu {cpu}): {}",
                std::io::Error::last_os_error()
            ));
        }
    }
    Ok(())
}

/// Runs the spinner.
pub(super) fn run(deadline: Deadline, args: &[String]) -> Result<(), String> {
    let args = parse(args)?;
    if let Some(cpu) = args.cpu {
        pin(cpu)?;
    }
    if let Some(prio) = args.fifo {
        let param = libc::sched_param {
            sched_priority: prio,
        };
        // SAFETY: pid 0 is this process; `param` is a valid sched_param.
        if unsafe { libc::sched_setscheduler(0, libc::SCHED_FIFO, &param) } != 0 {
            return Err(format!(
                "SCHED_FIFO {prio}: {} (does the cgroup have cpu.rt_runtime_us?)",
                std::io::Error::last_os_error()
            ));
        }
    }
    let mut n: u64 = 0;
    loop {
        n = std::hint::black_box(n.wrapping_add(1));
        if n.is_multiple_of(4096) && deadline.passed() {
            return Ok(());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn parses_priority_and_cpu_and_refuses_the_rest() {
        assert_eq!(parse(&s(&[])).unwrap(), Args::default());
        assert_eq!(
            parse(&s(&["--fifo", "10", "--cpu", "1"])).unwrap(),
            Args {
                fifo: Some(10),
                cpu: Some(1)
            }
        );
        assert!(parse(&s(&["--fifo", "0"])).unwrap_err().contains("1-99"));
        assert!(parse(&s(&["--fifo"]))
            .unwrap_err()
            .contains("needs a value"));
        assert!(parse(&s(&["--cpu", "x"]))
            .unwrap_err()
            .contains("not a number"));
        assert!(parse(&s(&["--nice", "1"])).unwrap_err().contains("unknown"));
    }

    #[test]
    fn spins_until_its_deadline() {
        let start = std::time::Instant::now();
        let deadline = Deadline {
            at: start + std::time::Duration::from_millis(50),
        };
        run(deadline, &[]).unwrap();
        assert!(start.elapsed() >= std::time::Duration::from_millis(50));
    }
}
