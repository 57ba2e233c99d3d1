//! Fault construction: the one place that turns a planned fault into the
//! injector that carries it out in a built lab. It injects nothing itself.

use std::net::SocketAddrV4;

use faultline_faults::fault::Fault;
use faultline_faults::freeze::Freeze;
use faultline_faults::link::LinkDown;

use crate::lab::{node_ip, Lab, CLUSTER_PORT, NETWORKS};
use crate::plan::{FaultKind, FaultPlan, ScenarioPlan};
use crate::spoof::ForgedPoison;

/// The injector of `fault` (number `index` of `plan`) in `lab`, or why it
/// cannot be built.
pub(crate) fn build_fault(
    fault: &FaultPlan,
    index: usize,
    plan: &ScenarioPlan,
    lab: &Lab,
) -> Result<Box<dyn Fault>, String> {
    let lab_node = lab
        .node(&fault.node)
        .ok_or_else(|| format!("fault #{index}: node {} is not in the lab", fault.node))?;
    Ok(match fault.kind {
        FaultKind::Freeze => Box::new(Freeze {
            target: lab_node.service.clone(),
        }),
        FaultKind::ForgedPoison => {
            let node_index = plan
                .nodes
                .iter()
                .position(|n| n.name == fault.node)
                .ok_or_else(|| format!("fault #{index}: node {} is not planned", fault.node))?;
            let Some(client) = &lab.client else {
                return Err("forged_poison needs a cluster (the client namespace)".into());
            };
            Box::new(ForgedPoison {
                from_ns: client.path(),
                target: SocketAddrV4::new(node_ip(NETWORKS[0].2, node_index), CLUSTER_PORT),
                claimed_from: if node_index == 0 { 2 } else { 1 },
                to: node_index as u32 + 1,
            })
        }
        FaultKind::LinkDown => Box::new(LinkDown {
            ns: lab.switch.clone(),
            links: fault
                .networks
                .iter()
                .map(|n| Lab::port(&fault.node, *n))
                .collect(),
        }),
    })
}
