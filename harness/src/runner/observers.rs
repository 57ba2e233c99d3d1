//! The observers a run starts outside every node (ARP on the bridges, which
//! namespaces hold each virtual IP, the client), their records forwarded
//! into the trace. Only for scenarios with resource groups.

use std::net::SocketAddrV4;
use std::time::Duration;

use crate::lab::{chain, Lab};
use crate::observe::addr::AddrObserver;
use crate::observe::arp::ArpObserver;
use crate::observe::client::Client;
use crate::plan::ScenarioPlan;
use crate::topology::{self, Network, APP_PORT, NETWORKS};
use crate::trace::Record;

/// The observers outside every node, feeding the trace: ARP on the bridges,
/// which namespaces hold each virtual IP, and the client.
pub(super) struct Observers {
    arp: Option<ArpObserver>,
    addr: Option<AddrObserver>,
    clients: Vec<Client>,
}

/// How often the address observer polls every namespace.
const ADDR_INTERVAL: Duration = Duration::from_millis(10);
/// How often the client tries each group, and how long it waits.
const CLIENT_INTERVAL: Duration = Duration::from_millis(100);
const CLIENT_TIMEOUT: Duration = Duration::from_millis(250);

impl Observers {
    pub(super) fn start(
        lab: &Lab,
        plan: &ScenarioPlan,
        tx: &crossbeam_channel::Sender<Record>,
    ) -> Result<Observers, String> {
        let mut o = Observers {
            arp: None,
            addr: None,
            clients: Vec::new(),
        };
        let Some(client_ns) = lab.client.as_ref().filter(|_| !plan.groups.is_empty()) else {
            return Ok(o);
        };
        let bridges = NETWORKS.map(Network::bridge);
        let bridges: Vec<&str> = bridges.iter().map(String::as_str).collect();
        o.arp = Some(
            ArpObserver::start(&lab.switch.path(), &bridges, forward(tx, Record::Arp))
                .map_err(|e| chain(&e))?,
        );
        let nodes = lab
            .nodes
            .iter()
            .map(|n| (n.name.clone(), n.ns.path()))
            .collect();
        o.addr = Some(
            AddrObserver::start(
                nodes,
                lab.vips.clone(),
                ADDR_INTERVAL,
                forward(tx, Record::Addr),
            )
            .map_err(|e| chain(&e))?,
        );
        // One client per group, so that one group's silence does not delay
        // the others' attempts.
        for g in &plan.groups {
            let client = Client::start(
                client_ns.path(),
                vec![(g.name.clone(), SocketAddrV4::new(g.ip, APP_PORT))],
                CLIENT_INTERVAL,
                CLIENT_TIMEOUT,
                Some((Network::Public.name().to_string(), topology::client_ip())),
                forward(tx, Record::Client),
            )
            .map_err(|e| chain(&e))?;
            o.clients.push(client);
        }
        Ok(o)
    }

    /// Stops every observer; before the lab is torn down, since an open
    /// netlink socket keeps its namespace alive.
    pub(super) fn stop(self) {
        for c in self.clients {
            let _ = c.stop();
        }
        if let Some(a) = self.addr {
            let _ = a.stop();
        }
        if let Some(a) = self.arp {
            let _ = a.stop();
        }
    }
}

/// A sender of observer records of type `T` that become trace records.
fn forward<T: Send + 'static>(
    tx: &crossbeam_channel::Sender<Record>,
    wrap: fn(T) -> Record,
) -> crossbeam_channel::Sender<T> {
    let (t_tx, t_rx) = crossbeam_channel::unbounded::<T>();
    let tx = tx.clone();
    std::thread::spawn(move || {
        for item in t_rx {
            if tx.send(wrap(item)).is_err() {
                return;
            }
        }
    });
    t_tx
}
