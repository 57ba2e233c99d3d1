//! The observers a run starts outside every node (ARP on the bridges, which
//! namespaces hold each virtual IP, the client), their records forwarded
//! into the trace, and their health recorded beside them: `observer` up
//! when each starts, down if its thread ends mid-run, down with its figures
//! or its error when the run stops it. Only for scenarios with resource
//! groups. It changes nothing of what they observe.

use std::net::SocketAddrV4;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use faultline_agent::clock::monotonic_ns;

use crate::lab::{chain, Lab};
use crate::observe::addr::{AddrHealth, AddrObserver, AddrStats};
use crate::observe::arp::ArpObserver;
use crate::observe::client::Client;
use crate::plan::ScenarioPlan;
use crate::topology::{self, Network, APP_PORT, NETWORKS};
use crate::trace::{ObserverPhase, ObserverRecord, Record};

/// The observers outside every node, feeding the trace: ARP on the bridges,
/// which namespaces hold each virtual IP, and the client.
pub(super) struct Observers {
    arp: Option<ArpObserver>,
    addr: Option<AddrObserver>,
    clients: Vec<(String, Client)>,
    /// Set before the run stops them: their threads ending is then no news.
    stopping: Arc<AtomicBool>,
}

/// How often the address observer polls every namespace.
const ADDR_INTERVAL: Duration = Duration::from_millis(10);
/// How often the client tries each group, and how long it waits.
const CLIENT_INTERVAL: Duration = Duration::from_millis(100);
const CLIENT_TIMEOUT: Duration = Duration::from_millis(250);

/// An observer's change of state, now.
pub(super) fn observer_record(observer: &str, phase: ObserverPhase, detail: String) -> Record {
    Record::Observer(ObserverRecord {
        t: monotonic_ns(),
        observer: observer.to_string(),
        phase,
        detail,
    })
}

impl Observers {
    /// Starts the observers; each one's `up` record goes to `tx` once it
    /// observes. On error, those already started are stopped.
    pub(super) fn start(
        lab: &Lab,
        plan: &ScenarioPlan,
        tx: &crossbeam_channel::Sender<Record>,
    ) -> Result<Observers, String> {
        let mut o = Observers {
            arp: None,
            addr: None,
            clients: Vec::new(),
            stopping: Arc::new(AtomicBool::new(false)),
        };
        let Some(client_ns) = lab.client.as_ref().filter(|_| !plan.groups.is_empty()) else {
            return Ok(o);
        };
        let up = |name: &str| {
            let _ = tx.send(observer_record(name, ObserverPhase::Up, String::new()));
        };
        let bridges = NETWORKS.map(Network::bridge);
        let bridges: Vec<&str> = bridges.iter().map(String::as_str).collect();
        o.arp = Some(
            ArpObserver::start(
                &lab.switch.path(),
                &bridges,
                o.forward(tx, "arp", |a| Some(Record::Arp(a))),
            )
            .map_err(|e| chain(&e))?,
        );
        up("arp");
        let nodes = lab
            .nodes
            .iter()
            .map(|n| (n.name.clone(), n.ns.path()))
            .collect();
        o.addr = Some(
            AddrObserver::start_reporting(
                nodes,
                lab.vips.clone(),
                ADDR_INTERVAL,
                o.forward(tx, "addr", |a| Some(Record::Addr(a))),
                Some(o.forward(tx, "addr", {
                    let mut spans = AddrSpans::default();
                    move |h| spans.on(h)
                })),
            )
            .map_err(|e| chain(&e))?,
        );
        up("addr");
        // One client per group, so that one group's silence does not delay
        // the others' attempts.
        for g in &plan.groups {
            let name = format!("client:{}", g.name);
            let client = Client::start(
                client_ns.path(),
                vec![(g.name.clone(), SocketAddrV4::new(g.ip, APP_PORT))],
                CLIENT_INTERVAL,
                CLIENT_TIMEOUT,
                Some((Network::Public.name().to_string(), topology::client_ip())),
                o.forward(tx, &name, |c| Some(Record::Client(c))),
            )
            .map_err(|e| chain(&e))?;
            up(&name);
            o.clients.push((name, client));
        }
        Ok(o)
    }

    /// Stops every observer; before the lab is torn down, since an open
    /// netlink socket keeps its namespace alive. Returns each one's `down`
    /// record: its figures, or why it failed.
    pub(super) fn stop(self) -> Vec<Record> {
        self.stopping.store(true, Ordering::SeqCst);
        let mut down = Vec::new();
        let mut record = |name: &str, detail: String| {
            down.push(observer_record(name, ObserverPhase::Down, detail));
        };
        for (name, c) in self.clients {
            let r = c.stop();
            record(&name, ended(r.map(|()| String::new())));
        }
        if let Some(a) = self.addr {
            record("addr", ended(a.stop().map(|s| addr_figures(&s))));
        }
        if let Some(a) = self.arp {
            record("arp", ended(a.stop().map(|()| String::new())));
        }
        down
    }

    /// A sender of observer records of type `T` that become trace records;
    /// when the observer's thread ends before the run stops it, a `down`
    /// record says so.
    fn forward<T: Send + 'static>(
        &self,
        tx: &crossbeam_channel::Sender<Record>,
        name: &str,
        mut wrap: impl FnMut(T) -> Option<Record> + Send + 'static,
    ) -> crossbeam_channel::Sender<T> {
        let (t_tx, t_rx) = crossbeam_channel::unbounded::<T>();
        let tx = tx.clone();
        let stopping = self.stopping.clone();
        let name = name.to_string();
        std::thread::spawn(move || {
            for item in t_rx {
                if let Some(r) = wrap(item) {
                    if tx.send(r).is_err() {
                        return;
                    }
                }
            }
            if !stopping.load(Ordering::SeqCst) {
                let _ = tx.send(observer_record(
                    &name,
                    ObserverPhase::Down,
                    "stopped observing mid-run (its thread ended; the end of the run says why)"
                        .into(),
                ));
            }
        });
        t_tx
    }
}

/// The address observer's own spans: down from the first node whose polls
/// fail (again at each further one, naming it) until every node's polls
/// work again. A node it cannot read means it no longer sees every node.
#[derive(Debug, Default)]
struct AddrSpans {
    failing: std::collections::BTreeSet<String>,
}

impl AddrSpans {
    fn on(&mut self, h: AddrHealth) -> Option<Record> {
        let (phase, detail) = if h.observing {
            self.failing.remove(&h.node);
            if !self.failing.is_empty() {
                return None;
            }
            (
                ObserverPhase::Up,
                format!("node {}: polls work again", h.node),
            )
        } else {
            self.failing.insert(h.node.clone());
            (
                ObserverPhase::Down,
                format!("node {}: polls fail: {}", h.node, h.detail),
            )
        };
        Some(Record::Observer(ObserverRecord {
            t: h.t,
            observer: "addr".into(),
            phase,
            detail,
        }))
    }
}

/// The `down` detail of an observer the run stopped.
fn ended<E: std::error::Error>(r: Result<String, E>) -> String {
    match r {
        Ok(figures) if figures.is_empty() => "the run stopped it".into(),
        Ok(figures) => format!("the run stopped it; {figures}"),
        Err(e) => format!("failed: {}", chain(&e)),
    }
}

fn addr_figures(s: &AddrStats) -> String {
    format!(
        "{} polls, {} overran the {} ms interval, mean {:.2} ms, max {:.2} ms",
        s.rounds,
        s.overruns,
        ADDR_INTERVAL.as_millis(),
        s.mean_round.as_secs_f64() * 1e3,
        s.max_round.as_secs_f64() * 1e3
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn health(t: u64, node: &str, observing: bool) -> AddrHealth {
        AddrHealth {
            t,
            node: node.into(),
            observing,
            detail: if observing {
                String::new()
            } else {
                "dump timed out".into()
            },
        }
    }

    fn phase(r: Option<Record>) -> Option<(u64, ObserverPhase, String)> {
        r.map(|r| match r {
            Record::Observer(o) if o.observer == "addr" => (o.t, o.phase, o.detail),
            other => panic!("{other:?}"),
        })
    }

    #[test]
    fn the_address_observer_is_down_while_any_node_cannot_be_read() {
        let mut spans = AddrSpans::default();
        let (t, p, detail) = phase(spans.on(health(5, "n2", false))).unwrap();
        assert_eq!((t, p), (5, ObserverPhase::Down));
        assert!(
            detail.contains("n2") && detail.contains("dump timed out"),
            "{detail}"
        );
        let (_, p, detail) = phase(spans.on(health(6, "n3", false))).unwrap();
        assert_eq!(p, ObserverPhase::Down);
        assert!(detail.contains("n3"), "{detail}");
        assert_eq!(
            phase(spans.on(health(7, "n2", true))),
            None,
            "n3 is still unread"
        );
        let (t, p, _) = phase(spans.on(health(8, "n3", true))).unwrap();
        assert_eq!((t, p), (8, ObserverPhase::Up));
    }

    #[test]
    fn a_stopped_observer_says_how_it_ended() {
        let ok: Result<String, std::io::Error> = Ok("3 polls".into());
        assert_eq!(ended(ok), "the run stopped it; 3 polls");
        let err: Result<String, std::io::Error> = Err(std::io::Error::other("netlink gone"));
        assert_eq!(ended(err), "failed: netlink gone");
    }

    #[test]
    fn an_observer_thread_that_ends_mid_run_is_recorded_down() {
        let (tx, rx) = crossbeam_channel::unbounded();
        let o = Observers {
            arp: None,
            addr: None,
            clients: Vec::new(),
            stopping: Arc::new(AtomicBool::new(false)),
        };
        let fwd = o.forward(&tx, "addr", |t: u64| Some(Record::Start { t }));
        fwd.send(7).unwrap();
        drop(fwd);
        assert_eq!(rx.recv().unwrap(), Record::Start { t: 7 });
        let Record::Observer(down) = rx.recv().unwrap() else {
            panic!("no down record")
        };
        assert_eq!(down.observer, "addr");
        assert_eq!(down.phase, ObserverPhase::Down);
        // Once the run is stopping, a thread ending is no news.
        o.stopping.store(true, Ordering::SeqCst);
        drop(o.forward(&tx, "arp", |t: u64| Some(Record::Start { t })));
        drop(tx);
        assert!(rx.recv().is_err(), "no down record while stopping");
    }
}
