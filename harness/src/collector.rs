//! The trace collector: a unix datagram socket in the run's folder where every
//! agent of every node sends its events. A thread turns each datagram into a
//! trace record and hands it to the runner. It judges nothing.

use std::os::unix::net::UnixDatagram;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use crossbeam_channel::Sender;
use faultline_agent::events::Event;

use crate::trace::Record;

/// A running collector; [`Collector::stop`] ends its thread.
pub struct Collector {
    stop: Arc<AtomicBool>,
    malformed: Arc<AtomicU64>,
    thread: Option<JoinHandle<()>>,
}

impl Collector {
    /// Binds `path` and starts forwarding records to `tx`.
    pub fn start(path: &Path, tx: Sender<Record>) -> std::io::Result<Collector> {
        let _ = std::fs::remove_file(path);
        let sock = UnixDatagram::bind(path)?;
        sock.set_read_timeout(Some(Duration::from_millis(50)))?;
        set_rcvbuf(&sock, 4 << 20);
        let stop = Arc::new(AtomicBool::new(false));
        let malformed = Arc::new(AtomicU64::new(0));
        let (s, m) = (stop.clone(), malformed.clone());
        let thread = std::thread::Builder::new()
            .name("faultline-collector".into())
            .spawn(move || {
                let mut buf = vec![0u8; 64 * 1024];
                loop {
                    match sock.recv(&mut buf) {
                        Ok(n) => match serde_json::from_slice::<Event>(&buf[..n]) {
                            Ok(e) => {
                                if tx.send(Record::Event(e)).is_err() {
                                    return;
                                }
                            }
                            Err(_) => {
                                m.fetch_add(1, Ordering::Relaxed);
                            }
                        },
                        Err(e)
                            if matches!(
                                e.kind(),
                                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                            ) =>
                        {
                            if s.load(Ordering::Relaxed) {
                                return;
                            }
                        }
                        Err(_) => return,
                    }
                }
            })?;
        Ok(Collector {
            stop,
            malformed,
            thread: Some(thread),
        })
    }

    /// Stops the thread once the socket is drained; returns how many
    /// datagrams were not events.
    pub fn stop(mut self) -> u64 {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        self.malformed.load(Ordering::Relaxed)
    }
}

impl Drop for Collector {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

fn set_rcvbuf(sock: &UnixDatagram, bytes: i32) {
    use std::os::fd::AsRawFd;
    // SAFETY: setsockopt on a valid fd with a pointer to a live i32.
    unsafe {
        libc::setsockopt(
            sock.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_RCVBUF,
            (&bytes as *const i32).cast(),
            std::mem::size_of::<i32>() as libc::socklen_t,
        );
    }
}
