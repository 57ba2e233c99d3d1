//! The `stop` fault's table entry: the node's service stopped cleanly, as
//! an operator stops it (seed 001: the countdown is turned off when the
//! service stops "for any reason"; a stop, unlike a `crash`, is not
//! followed by 7031 or a restart). The mechanism is
//! `faultline_faults::stop`.

use faultline_faults::stop::Stop;

use super::faults::{on_node, FaultDef};
use crate::plan::{FaultKind, FaultSpec};

pub(super) static STOP: FaultDef = FaultDef {
    kind: FaultKind::Stop,
    name: "stop",
    doc: "the node's service is stopped cleanly (SIGTERM): it takes its groups offline \
          and exits 0, the watchdog disarms, and nothing restarts it (no 7031)",
    params: &[],
    needs_cluster: false,
    hangs_service: false,
    requires: &[],
    example: "{ kind: stop, node: n1, at: 1s, for: 1s }",
    parse: |_| Some(FaultSpec::Stop),
    targets: on_node,
    build: |_, site| {
        Ok(Box::new(Stop {
            service: site.service.clone(),
        }))
    },
};
