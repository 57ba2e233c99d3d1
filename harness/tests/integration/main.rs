//! End-to-end tests of the `faultline` binary. Tests named `root_*` build
//! real labs (namespaces, cgroups, processes) and need root; nextest runs
//! them one at a time (.config/nextest.toml).

mod cli;
mod report_html;
mod root_arp;
mod root_bench;
mod root_faults_net;
mod root_faults_res;
mod root_faults_svc;
mod root_lab;
mod root_observe;
mod root_runs;
mod root_scale;
mod suites;
mod support;
