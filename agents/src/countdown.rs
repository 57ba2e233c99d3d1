//! The watchdog's countdown as a pure state machine: messages and timer
//! expiries in, steps out. It does no I/O and reads no clock; the watchdog
//! passes the time of each input and carries out the steps.

use crate::events::RecoveryAction;

/// An armed countdown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Armed {
    /// The monitored service.
    pub service_pid: u32,
    /// `hang_timeout` in milliseconds.
    pub timeout_ms: u32,
    /// What to do when the countdown expires.
    pub action: RecoveryAction,
    /// When it expires (CLOCK_MONOTONIC ns).
    pub deadline: u64,
    /// When the last heartbeat (or the hello) was received.
    pub last_heartbeat: u64,
}

impl Armed {
    fn timeout_ns(&self) -> u64 {
        u64::from(self.timeout_ms) * 1_000_000
    }
}

/// An expiry of the countdown: what the watchdog reports and acts on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hang {
    /// The action to take.
    pub action: RecoveryAction,
    /// The hung service.
    pub service_pid: u32,
    /// `hang_timeout` in milliseconds.
    pub timeout_ms: u32,
    /// When the last heartbeat (or the hello) was received.
    pub last_heartbeat_t: u64,
    /// The deadline that expired.
    pub deadline_t: u64,
    /// How late the watchdog noticed: `now - deadline_t`.
    pub late_ns: u64,
}

/// What the watchdog must do after an input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Nothing changed.
    Nothing,
    /// The countdown was armed for a (new) service: watch its pid.
    Armed(Armed),
    /// A heartbeat reset the countdown.
    Heartbeat,
    /// The countdown was switched off.
    Disarmed,
    /// The countdown expired: take the action. For `Log` the countdown is
    /// re-armed one timeout later; otherwise it is now off.
    Hang(Hang),
}

/// The countdown: off, or armed for one service.
#[derive(Debug, Clone, Default)]
pub struct Countdown {
    armed: Option<Armed>,
}

impl Countdown {
    /// A countdown that is off.
    pub fn new() -> Self {
        Self::default()
    }

    /// The armed state, if any.
    pub fn armed(&self) -> Option<&Armed> {
        self.armed.as_ref()
    }

    /// When the timer must next fire, if armed.
    pub fn deadline(&self) -> Option<u64> {
        self.armed.map(|a| a.deadline)
    }

    /// A service said hello at `now`. `Disabled` (or a zero timeout) leaves
    /// the countdown off: nothing is ever detected.
    pub fn on_hello(
        &mut self,
        service_pid: u32,
        timeout_ms: u32,
        action: RecoveryAction,
        now: u64,
    ) -> Step {
        if action == RecoveryAction::Disabled || timeout_ms == 0 {
            return match self.armed.take() {
                Some(_) => Step::Disarmed,
                None => Step::Nothing,
            };
        }
        let mut a = Armed {
            service_pid,
            timeout_ms,
            action,
            deadline: 0,
            last_heartbeat: now,
        };
        a.deadline = now + a.timeout_ns();
        self.armed = Some(a);
        Step::Armed(a)
    }

    /// A heartbeat from `service_pid` received at `now`.
    pub fn on_heartbeat(&mut self, service_pid: u32, now: u64) -> Step {
        match self.armed.as_mut() {
            Some(a) if a.service_pid == service_pid => {
                a.last_heartbeat = now;
                a.deadline = now + a.timeout_ns();
                Step::Heartbeat
            }
            _ => Step::Nothing,
        }
    }

    /// `service_pid` is stopping cleanly, or has exited: either way the
    /// countdown goes off if it watched that service.
    pub fn on_service_gone(&mut self, service_pid: u32) -> Step {
        match self.armed {
            Some(a) if a.service_pid == service_pid => {
                self.armed = None;
                Step::Disarmed
            }
            _ => Step::Nothing,
        }
    }

    /// The timer fired; `now` is the time of the wake-up.
    pub fn on_timer(&mut self, now: u64) -> Step {
        let Some(a) = self.armed.as_mut() else {
            return Step::Nothing;
        };
        if now < a.deadline {
            return Step::Nothing;
        }
        let hang = Hang {
            action: a.action,
            service_pid: a.service_pid,
            timeout_ms: a.timeout_ms,
            last_heartbeat_t: a.last_heartbeat,
            deadline_t: a.deadline,
            late_ns: now - a.deadline,
        };
        if a.action == RecoveryAction::Log {
            // Repeat every timeout while the hang lasts; a watchdog that woke
            // more than a timeout late skips the missed repeats.
            let step = a.timeout_ns();
            while a.deadline <= now {
                a.deadline += step;
            }
        } else {
            self.armed = None;
        }
        Step::Hang(hang)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: u64 = 1_000_000;

    fn armed(action: RecoveryAction) -> Countdown {
        let mut c = Countdown::new();
        assert!(matches!(
            c.on_hello(7, 400, action, 1000 * MS),
            Step::Armed(_)
        ));
        c
    }

    #[test]
    fn hello_arms_with_a_deadline_one_timeout_later() {
        let c = armed(RecoveryAction::Terminate);
        assert_eq!(c.deadline(), Some(1400 * MS));
        assert_eq!(c.armed().unwrap().service_pid, 7);
    }

    #[test]
    fn disabled_never_arms_and_never_detects() {
        let mut c = Countdown::new();
        assert_eq!(
            c.on_hello(7, 400, RecoveryAction::Disabled, 0),
            Step::Nothing
        );
        assert_eq!(c.deadline(), None);
        assert_eq!(c.on_heartbeat(7, 100 * MS), Step::Nothing);
        assert_eq!(c.on_timer(10_000 * MS), Step::Nothing);
    }

    #[test]
    fn heartbeats_reset_the_deadline_and_other_pids_are_ignored() {
        let mut c = armed(RecoveryAction::Log);
        assert_eq!(c.on_heartbeat(7, 1300 * MS), Step::Heartbeat);
        assert_eq!(c.deadline(), Some(1700 * MS));
        assert_eq!(c.on_heartbeat(8, 1600 * MS), Step::Nothing);
        assert_eq!(c.deadline(), Some(1700 * MS));
        assert_eq!(c.on_timer(1699 * MS), Step::Nothing, "early wake-up");
    }

    #[test]
    fn log_repeats_every_timeout_while_the_hang_lasts() {
        let mut c = armed(RecoveryAction::Log);
        let Step::Hang(h) = c.on_timer(1401 * MS) else {
            panic!("no hang")
        };
        assert_eq!(h.deadline_t, 1400 * MS);
        assert_eq!(h.late_ns, MS);
        assert_eq!(h.last_heartbeat_t, 1000 * MS);
        assert_eq!(c.deadline(), Some(1800 * MS));
        assert!(matches!(c.on_timer(1800 * MS), Step::Hang(_)));
        assert_eq!(c.deadline(), Some(2200 * MS));
        // Woken very late: one report, the next deadline after now.
        assert!(matches!(c.on_timer(3100 * MS), Step::Hang(_)));
        assert_eq!(c.deadline(), Some(3400 * MS));
        // The service recovers.
        assert_eq!(c.on_heartbeat(7, 3200 * MS), Step::Heartbeat);
        assert_eq!(c.deadline(), Some(3600 * MS));
    }

    #[test]
    fn terminate_and_bugcheck_fire_once_then_disarm() {
        for action in [RecoveryAction::Terminate, RecoveryAction::Bugcheck] {
            let mut c = armed(action);
            let Step::Hang(h) = c.on_timer(1400 * MS) else {
                panic!("no hang")
            };
            assert_eq!(h.action, action);
            assert_eq!(c.deadline(), None);
            assert_eq!(c.on_timer(2000 * MS), Step::Nothing);
        }
    }

    #[test]
    fn stopping_or_exit_of_the_watched_service_disarms() {
        let mut c = armed(RecoveryAction::Bugcheck);
        assert_eq!(c.on_service_gone(8), Step::Nothing, "another pid");
        assert_eq!(c.on_service_gone(7), Step::Disarmed);
        assert_eq!(c.on_timer(5000 * MS), Step::Nothing);
        assert_eq!(c.on_service_gone(7), Step::Nothing);
    }

    #[test]
    fn a_new_hello_rearms_for_the_new_service() {
        let mut c = armed(RecoveryAction::Terminate);
        assert!(matches!(
            c.on_hello(9, 200, RecoveryAction::Log, 2000 * MS),
            Step::Armed(_)
        ));
        assert_eq!(c.deadline(), Some(2200 * MS));
        assert_eq!(c.on_service_gone(7), Step::Nothing, "the old one");
        assert_eq!(
            c.on_hello(9, 200, RecoveryAction::Disabled, 2100 * MS),
            Step::Disarmed
        );
    }
}
