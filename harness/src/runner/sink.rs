//! Where every record of a run goes, in one call: the terminal (live
//! progress), the trace file (one JSON line written per record, so a killed
//! run leaves everything it recorded), and the in-memory trace the checks
//! judge. Records are kept in arrival order; [`crate::trace::Trace::load`]
//! and [`crate::trace::Trace::sort`] order them by time. It decides nothing.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::report::terminal::Terminal;
use crate::trace::{Record, Trace};

/// The consumers of a run's records.
pub(crate) struct Sink<'t> {
    term: &'t mut Terminal,
    file: Option<(PathBuf, File)>,
    /// The first write error, if one: the file stops being written.
    error: Option<String>,
    records: Vec<Record>,
}

impl<'t> Sink<'t> {
    /// A sink that writes the trace to `path` (created or truncated), if any.
    pub(crate) fn new(term: &'t mut Terminal, path: Option<&Path>) -> Result<Self, String> {
        let file = match path {
            Some(p) => Some((
                p.to_path_buf(),
                File::create(p).map_err(|e| format!("cannot write {}: {e}", p.display()))?,
            )),
            None => None,
        };
        Ok(Sink {
            term,
            file,
            error: None,
            records: Vec::new(),
        })
    }

    /// Records `r`: shown, written to the file at once, kept.
    pub(crate) fn push(&mut self, r: Record) {
        self.term.record(&r);
        if let Some((path, f)) = &mut self.file {
            let mut line = serde_json::to_vec(&r).expect("records serialize");
            line.push(b'\n');
            // One write per record: the kernel has it even if we are killed.
            if let Err(e) = f.write_all(&line) {
                self.error = Some(format!("cannot write {}: {e}", path.display()));
                self.file = None;
            }
        }
        self.records.push(r);
    }

    /// The trace, sorted by time, or the error that stopped the file.
    pub(crate) fn finish(self) -> (Trace, Option<String>) {
        let mut trace = Trace {
            records: self.records,
        };
        trace.sort();
        (trace, self.error)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_record_is_in_the_file_as_soon_as_it_is_pushed() {
        let dir = std::env::temp_dir().join(format!("faultline-sink-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("trace.jsonl");
        let mut term = Terminal::new(Box::new(std::io::sink()), false);
        let mut sink = Sink::new(&mut term, Some(&path)).unwrap();
        sink.push(Record::Start { t: 5 });
        sink.push(Record::Settled { t: 3 });
        // Read while the sink is alive, as after a kill -9.
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(
            text,
            "{\"type\":\"start\",\"t\":5}\n{\"type\":\"settled\",\"t\":3}\n"
        );
        let (trace, error) = sink.finish();
        assert_eq!(error, None);
        assert_eq!(
            trace.records,
            vec![Record::Settled { t: 3 }, Record::Start { t: 5 }],
            "the in-memory trace is sorted by time"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_trace_file_in_arrival_order_loads_sorted_by_time_header_first() {
        let dir = std::env::temp_dir().join(format!("faultline-sink-load-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("trace.jsonl");
        let header = crate::trace::Header {
            t: 10,
            version: crate::trace::TRACE_VERSION,
            run_id: "abcdef".into(),
            suite: "s".into(),
            scenario: crate::plan::ScenarioPlan {
                name: "x".into(),
                nodes: Vec::new(),
                faults: Vec::new(),
                checks: Vec::new(),
                expect_fail: Vec::new(),
                duration: std::time::Duration::from_secs(1),
                groups: Vec::new(),
                witness: false,
                failover_window: std::time::Duration::from_secs(1),
            },
            host: "linux".into(),
            topology: Vec::new(),
        };
        let mut term = Terminal::new(Box::new(std::io::sink()), false);
        let mut sink = Sink::new(&mut term, Some(&path)).unwrap();
        sink.push(Record::Header(header.clone()));
        sink.push(Record::Start { t: 30 });
        sink.push(Record::Settled { t: 20 });
        // No end record: the run was killed here.
        let loaded = Trace::load(&path).unwrap();
        assert_eq!(
            loaded.records,
            vec![
                Record::Header(header),
                Record::Settled { t: 20 },
                Record::Start { t: 30 }
            ]
        );
        assert_eq!(loaded.end(), None);
        drop(sink);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn an_unwritable_trace_path_is_an_error_naming_it() {
        let mut term = Terminal::new(Box::new(std::io::sink()), false);
        let err = Sink::new(&mut term, Some(Path::new("/proc/no-such/trace.jsonl")))
            .err()
            .unwrap();
        assert!(err.contains("/proc/no-such/trace.jsonl"), "{err}");
    }
}
