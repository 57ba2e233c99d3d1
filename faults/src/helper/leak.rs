//! The `leak` helper: a process that leaks memory at a steady rate, `--step
//! BYTES` every `--every-ms MS`, and touches every page it takes so the
//! leak is resident, not just reserved. It raises its own `oom_score_adj`
//! to 1000 first, so where a cgroup's OOM killer must choose, it chooses
//! the leaker, not the service it shares the group with.
//!
//! It never frees, never limits itself (the cgroup limit, set before it
//! starts, does) and ends at its deadline like every helper.

use super::Deadline;
use std::time::Duration;

/// Parsed arguments.
#[derive(Debug, PartialEq, Eq)]
struct Args {
    step: usize,
    every: Duration,
}

fn parse(args: &[String]) -> Result<Args, String> {
    let (mut step, mut every) = (None, None);
    let mut it = args.iter();
    while let Some(flag) = it.next() {
        let value = it.next().ok_or_else(|| format!("`{flag}` needs a value"))?;
        let n: u64 = value
            .parse()
            .ok()
            .filter(|n| *n > 0)
            .ok_or_else(|| format!("`{flag} {value}`: must be a positive number"))?;
        match flag.as_str() {
            "--step" => step = Some(n as usize),
            "--every-ms" => every = Some(Duration::from_millis(n)),
            _ => {
                return Err(format!(
                    "unknown argument `{flag}` (known: --step, --every-ms)"
                ))
            }
        }
    }
    Ok(Args {
        step: step.ok_or("`--step BYTES` is required")?,
        every: every.ok_or("`--every-ms MS` is required")?,
    })
}

/// Runs the leaker.
pub(super) fn run(deadline: Deadline, args: &[String]) -> Result<(), String> {
    let args = parse(args)?;
    std::fs::write("/proc/self/oom_score_adj", "1000")
        .map_err(|e| format!("cannot raise /proc/self/oom_score_adj to 1000: {e}"))?;
    let mut kept: Vec<Vec<u8>> = Vec::new();
    let mut next = std::time::Instant::now();
    while !deadline.passed() {
        // Non-zero fill: every page is written, so it is resident.
        kept.push(vec![0xa5u8; args.step]);
        next += args.every;
        std::thread::sleep(next.saturating_duration_since(std::time::Instant::now()));
    }
    std::hint::black_box(&kept);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn needs_step_and_interval() {
        assert_eq!(
            parse(&s(&["--step", "1048576", "--every-ms", "100"])).unwrap(),
            Args {
                step: 1 << 20,
                every: Duration::from_millis(100)
            }
        );
        assert!(parse(&s(&["--step", "1"]))
            .unwrap_err()
            .contains("--every-ms"));
        assert!(parse(&s(&["--step", "0", "--every-ms", "1"]))
            .unwrap_err()
            .contains("positive"));
        assert!(parse(&s(&["--rate", "1"])).unwrap_err().contains("unknown"));
    }
}
