//! Fault construction: the one place that turns a planned fault into the
//! injector that carries it out in a built lab, through the fault table
//! (`suite::faults`). It injects nothing itself.

use faultline_faults::fault::Fault;

use crate::lab::Lab;
use crate::plan::{FaultPlan, ScenarioPlan};
use crate::suite::faults::FaultSite;
use crate::topology::NodeIndex;

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
    let node = plan
        .nodes
        .iter()
        .position(|n| n.name == fault.node)
        .and_then(NodeIndex::new)
        .ok_or_else(|| format!("fault #{index}: node {} is not planned", fault.node))?;
    let site = FaultSite {
        node,
        service: &lab_node.service,
        switch: &lab.switch,
        client: lab.client.as_ref().map(|c| c.path()),
        target: lab_node,
        lab,
        helper: std::env::current_exe()
            .map_err(|e| format!("cannot find this binary for fault helpers: {e}"))?,
    };
    fault.build(&site)
}
