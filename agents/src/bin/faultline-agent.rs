//! `faultline-agent ROLE --node-dir DIR`: one node process of faultline.
//!
//! Exit codes: 0 after a clean stop, 1 when the role failed, 2 on a usage
//! error.

use std::path::PathBuf;
use std::process::ExitCode;

const USAGE: &str = "usage: faultline-agent (supervisor|service|watchdog) --node-dir DIR";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (role, dir) = match args.as_slice() {
        [role, flag, dir] if flag == "--node-dir" => (role.as_str(), PathBuf::from(dir)),
        _ => {
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    let result = match role {
        "supervisor" => faultline_agent::supervisor::run(&dir),
        "service" => faultline_agent::service::run(&dir),
        "watchdog" => faultline_agent::watchdog::run(&dir),
        _ => {
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let mut text = format!("faultline-agent {role}: {e}");
            let mut source = std::error::Error::source(&e);
            while let Some(s) = source {
                text.push_str(&format!(": {s}"));
                source = s.source();
            }
            eprintln!("{text}");
            ExitCode::from(1)
        }
    }
}
