//! Observers: what the harness sees from outside every node, independent of
//! what the agents report about themselves: ARP on the bridges, which
//! namespaces hold each virtual IP, and a client on the public network.
//!
//! Observers only record and judge nothing (checks do, over the trace). They
//! never change a namespace's configuration. The bridge and address
//! observers send nothing; the client plays a client: it connects to each
//! group's IP and asks ARP who holds it, inside the run's namespaces only.

pub mod addr;
pub mod arp;
pub mod client;
mod worker;

pub use worker::ThreadError;
