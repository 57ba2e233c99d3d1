//! The service's worker thread: the slow steps of bringing a group online
//! (disk lease, ARP probe, adding the address, announcements, the application)
//! and offline, so the service's event loop never blocks on them. Results
//! and events go back through a channel, with a byte on a socket pair to
//! wake the loop's poll. The worker decides nothing: it runs the jobs it is
//! given, in order.

use std::collections::BTreeMap;
use std::io::Write;
use std::net::{Ipv4Addr, TcpListener};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::arp::{self, ProbeOutcome, ProbeTimers};
use crate::emit::Level;
use crate::events::{
    DiskReserved, DiskWriteFailed, Event, EventData, GroupOnline, GroupReason, IpConflict, Source,
};
use crate::lease::{self, Lease};

/// The interface virtual IPs go on.
pub const PUBLIC_IFACE: &str = "public";
/// How often an online group's application writes to its disk.
const DISK_WRITE_EVERY: Duration = Duration::from_millis(200);

/// What the worker needs to know about a group.
#[derive(Debug, Clone)]
pub struct GroupSpec {
    /// Its name.
    pub name: String,
    /// The virtual IP and prefix.
    pub ip: Ipv4Addr,
    /// Its prefix length.
    pub prefix_len: u8,
    /// The application's TCP port.
    pub app_port: u16,
    /// Whether it has a shared disk (lease) in `shared_dir`.
    pub disk: bool,
    /// The shared folder.
    pub shared_dir: PathBuf,
    /// Probe timers, when probing is on.
    pub probe: Option<ProbeTimers>,
    /// Announcements after configuring the address, and their interval.
    pub announce: (u32, Duration),
}

/// A job for the worker.
#[derive(Debug)]
pub enum Job {
    /// Bring a group online here.
    Online(GroupSpec),
    /// Take a group offline here.
    Offline {
        /// The group.
        spec: GroupSpec,
        /// Why (event 1203).
        reason: String,
    },
}

/// What the worker tells the loop.
#[derive(Debug)]
pub enum Report {
    /// Record this event.
    Event(Box<Event>, Level),
    /// The group is online here.
    Online(String),
    /// Bringing it online failed; nothing of it is left here.
    Failed(String),
}

/// Sends reports and wakes the loop.
#[derive(Debug, Clone)]
pub struct Reporter {
    node: String,
    tx: Sender<Report>,
    wake: Arc<UnixStream>,
}

impl Reporter {
    /// Wraps the channel and the waking end of the socket pair.
    pub fn new(node: &str, tx: Sender<Report>, wake: UnixStream) -> Self {
        let _ = wake.set_nonblocking(true);
        Reporter {
            node: node.to_string(),
            tx,
            wake: Arc::new(wake),
        }
    }

    fn send(&self, r: Report) {
        let _ = self.tx.send(r);
        let _ = (&*self.wake).write(&[1]);
    }

    fn event(&self, ev: Event, level: Level) {
        self.send(Report::Event(Box::new(ev), level));
    }

    fn new_event(&self, data: impl Into<EventData>) -> Event {
        Event::now(&self.node, Source::Service, data)
    }

    /// An event saying why `group` went offline or failed to come online.
    fn group_reason(&self, kind: fn(GroupReason) -> EventData, group: &str, reason: &str) -> Event {
        self.new_event(kind(GroupReason {
            group: group.to_string(),
            reason: reason.to_string(),
        }))
    }
}

/// Set once the service is stopping or poisoned: no address is added after
/// that. The loop takes the lock, sets it, then deletes every address.
pub type Abort = Arc<Mutex<bool>>;

struct App {
    stop: Arc<AtomicBool>,
    thread: JoinHandle<()>,
}

/// Runs jobs until the channel closes.
pub fn run(jobs: Receiver<Job>, rep: Reporter, abort: Abort) {
    let mut apps: BTreeMap<String, App> = BTreeMap::new();
    for job in jobs {
        match job {
            Job::Online(spec) => match online(&spec, &rep, &abort) {
                Ok(app) => {
                    apps.insert(spec.name.clone(), app);
                    // 1201: the id the Windows cluster service logs for a
                    // group brought online; no seed quotes its text, so the
                    // wording is ours.
                    let ev = rep
                        .new_event(GroupOnline {
                            group: spec.name.clone(),
                            ip: spec.ip,
                        })
                        .message(format!("Cluster group '{}' is online.", spec.name));
                    rep.event(ev, Level::Info);
                    rep.send(Report::Online(spec.name));
                }
                Err(reason) => {
                    // 1069: the id the Windows cluster service logs for a
                    // failed resource; no seed quotes its text, so the
                    // wording is ours, with the reason filled in.
                    let ev = rep
                        .group_reason(EventData::GroupOnlineFailed, &spec.name, &reason)
                        .message(format!(
                            "Cluster resource group '{}' failed: {reason}.",
                            spec.name
                        ));
                    rep.event(ev, Level::Err);
                    rep.send(Report::Failed(spec.name));
                }
            },
            Job::Offline { spec, reason } => {
                if let Some(app) = apps.remove(&spec.name) {
                    app.stop.store(true, Ordering::SeqCst);
                    let _ = app.thread.join();
                }
                let _ = ip_addr("del", &spec);
                // 1203: the id the Windows cluster service logs for a group
                // taken offline; no seed quotes its text, so the wording is
                // ours, with the reason filled in.
                let ev = rep
                    .group_reason(EventData::GroupOffline, &spec.name, &reason)
                    .message(format!(
                        "Cluster group '{}' is offline ({reason}).",
                        spec.name
                    ));
                rep.event(ev, Level::Info);
            }
        }
    }
}

fn online(spec: &GroupSpec, rep: &Reporter, abort: &Abort) -> Result<App, String> {
    let lease = if spec.disk {
        let path = lease::lease_path(&spec.shared_dir, &spec.name);
        let l =
            lease::take(&path, &rep.node).map_err(|e| format!("cannot reserve the disk: {e}"))?;
        let ev = rep
            .new_event(DiskReserved {
                group: spec.name.clone(),
                generation: l.generation,
            })
            .message(format!(
                "Disk of group '{}' reserved (generation {}).",
                spec.name, l.generation
            ));
        rep.event(ev, Level::Info);
        Some(l)
    } else {
        None
    };
    if let Some(timers) = &spec.probe {
        match arp::probe(PUBLIC_IFACE, spec.ip, timers) {
            Ok(ProbeOutcome::Free) => {}
            Ok(ProbeOutcome::Conflict { mac, .. }) => {
                let ev = rep
                    .new_event(IpConflict {
                        group: spec.name.clone(),
                        ip: spec.ip,
                        mac: mac.to_string(),
                    })
                    .message(format!(
                        "The system detected an address conflict for IP address {} with the system having network hardware address {mac}.",
                        spec.ip
                    ));
                rep.event(ev, Level::Err);
                return Err("address conflict".into());
            }
            Err(e) => return Err(format!("cannot probe {}: {e}", spec.ip)),
        }
    }
    {
        let aborted = abort.lock().unwrap_or_else(|p| p.into_inner());
        if *aborted {
            return Err("the service is stopping".into());
        }
        ip_addr("add", spec)?;
    }
    let (count, interval) = spec.announce;
    if count > 0 {
        if let Err(e) = arp::announce(PUBLIC_IFACE, spec.ip, count, interval) {
            let _ = ip_addr("del", spec);
            return Err(format!("cannot announce {}: {e}", spec.ip));
        }
    }
    let listener = match TcpListener::bind((spec.ip, spec.app_port)) {
        Ok(l) => l,
        Err(e) => {
            let _ = ip_addr("del", spec);
            return Err(format!("cannot start the application: {e}"));
        }
    };
    let _ = listener.set_nonblocking(true);
    let stop = Arc::new(AtomicBool::new(false));
    let app = AppCtx {
        listener,
        stop: stop.clone(),
        spec: spec.clone(),
        lease,
        rep: rep.clone(),
    };
    let thread = std::thread::spawn(move || app.serve());
    Ok(App { stop, thread })
}

/// `ip addr add|del IP/prefix dev public`, through netlink (no `ip`
/// process); an address already there (add) or already gone (del) is not
/// an error.
pub fn ip_addr(verb: &str, spec: &GroupSpec) -> Result<(), String> {
    use faultline_sys::error::chain;
    use faultline_sys::rtnl::{Request, Rtnl};
    let fail = |e: &dyn std::error::Error| format!("ip addr {verb} {}: {}", spec.ip, chain(e));
    let mut rtnl = Rtnl::open().map_err(|e| fail(&e))?;
    let index = rtnl.index_of(PUBLIC_IFACE).map_err(|e| fail(&e))?;
    let (req, fine) = match verb {
        "add" => (
            Request::add_addr(index, PUBLIC_IFACE, spec.ip, spec.prefix_len),
            libc::EEXIST,
        ),
        "del" => (
            Request::del_addr(index, PUBLIC_IFACE, spec.ip, spec.prefix_len),
            libc::EADDRNOTAVAIL,
        ),
        _ => return Err(format!("ip addr {verb}: not add or del")),
    };
    match rtnl.exec(req) {
        Err(e) if e.raw_os_error() != Some(fine) => Err(fail(&e)),
        _ => Ok(()),
    }
}

struct AppCtx {
    listener: TcpListener,
    stop: Arc<AtomicBool>,
    spec: GroupSpec,
    lease: Option<Lease>,
    rep: Reporter,
}

impl AppCtx {
    /// Answers each client with the node's name; with a disk, writes a line
    /// every `DISK_WRITE_EVERY` while the lease is still ours.
    fn serve(mut self) {
        let mut next_write = Instant::now();
        let data = lease::data_path(&self.spec.shared_dir, &self.spec.name);
        let lease_file = lease::lease_path(&self.spec.shared_dir, &self.spec.name);
        let mut line = 0u64;
        loop {
            // Stopping flushes what the application still holds: a last
            // write, so an owner whose disk was taken while it hung learns
            // it (57/50) before its group is offline, whichever of the two
            // threads runs first after a thaw.
            let stopping = self.stop.load(Ordering::SeqCst);
            if !stopping {
                if let Ok((mut conn, _)) = self.listener.accept() {
                    let _ = conn.set_nonblocking(false);
                    let _ = conn.write_all(format!("{}\n", self.rep.node).as_bytes());
                }
            }
            let due = stopping || Instant::now() >= next_write;
            if let Some(ours) = self.lease.clone().filter(|_| due) {
                next_write += DISK_WRITE_EVERY;
                match lease::check(&lease_file, &ours) {
                    Ok(()) => {
                        line += 1;
                        let text = format!("{} {} {line}\n", self.rep.node, ours.generation);
                        let _ = std::fs::OpenOptions::new()
                            .create(true)
                            .append(true)
                            .open(&data)
                            .and_then(|mut f| f.write_all(text.as_bytes()));
                    }
                    Err(now) => {
                        self.disk_lost(&ours, now);
                        self.lease = None;
                    }
                }
            }
            if stopping {
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    fn disk_lost(&self, ours: &Lease, now: Option<Lease>) {
        let holder = now.as_ref().map(|l| l.holder.clone()).unwrap_or_default();
        let generation = now.as_ref().map_or(0, |l| l.generation);
        let g = self.spec.name.as_str();
        // The same failure as the modelled system logs it twice: ftdisk 57
        // (the event's own id), then ntfs 50.
        let base = self.rep.new_event(DiskWriteFailed {
            group: g.to_string(),
            generation,
            holder,
            our_generation: ours.generation,
        });
        let ftdisk = base.clone().message(format!(
            "The system failed to flush data to the transaction log of the disk of group '{g}'. Corruption may occur."
        ));
        self.rep.event(ftdisk, Level::Err);
        let mut ntfs = base.message(format!(
            "{{Delayed Write Failed}} Windows was unable to save all the data for the file {}.",
            lease::data_path(&self.spec.shared_dir, g).display()
        ));
        ntfs.id = Some(50);
        self.rep.event(ntfs, Level::Err);
    }
}
