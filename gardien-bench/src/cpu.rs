//! Where the machine's CPU went during a run, read from `/proc`: the hashing
//! threads, the rest of this process (async runtime, client, SQLite
//! threads), and everything outside it (a PostgreSQL server, the kernel's
//! own threads). The login scenario reports it so that its ratio can be read
//! against the share the hashing threads actually got.

use std::collections::HashMap;

/// CPU time so far, in clock ticks.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    /// Per thread id: (thread name, ticks).
    threads: HashMap<u32, (String, u64)>,
    machine_busy: u64,
    machine_total: u64,
}

/// CPU used between two snapshots, in cores (seconds of CPU per second).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Split {
    pub hashing: f64,
    pub rest_of_process: f64,
    pub outside: f64,
    pub idle: f64,
}

/// Thread names of the hashing pool (`crypto::password`).
const HASHING_THREAD: &str = "argon2-worker";

impl Snapshot {
    /// `None` where `/proc` cannot be read (not Linux).
    pub fn take() -> Option<Snapshot> {
        let mut threads = HashMap::new();
        for entry in std::fs::read_dir("/proc/self/task").ok()?.flatten() {
            let Some(tid) = entry.file_name().to_str().and_then(|t| t.parse().ok()) else {
                continue;
            };
            // A thread may end between the listing and the read.
            if let Some(thread) = std::fs::read_to_string(entry.path().join("stat"))
                .ok()
                .and_then(|stat| parse_thread_stat(&stat))
            {
                threads.insert(tid, thread);
            }
        }
        let (machine_busy, machine_total) =
            parse_machine_stat(&std::fs::read_to_string("/proc/stat").ok()?)?;
        Some(Snapshot {
            threads,
            machine_busy,
            machine_total,
        })
    }

    /// The split since `earlier`. Threads that ended in between are left
    /// out; threads born in between count from zero.
    pub fn since(&self, earlier: &Snapshot) -> Split {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
        let elapsed = self.machine_total.saturating_sub(earlier.machine_total) as f64;
        if elapsed <= 0.0 {
            return Split::default();
        }
        let (mut hashing, mut process) = (0u64, 0u64);
        for (tid, (name, ticks)) in &self.threads {
            let before = earlier.threads.get(tid).map_or(0, |(_, t)| *t);
            let used = ticks.saturating_sub(before);
            process += used;
            if name.starts_with(HASHING_THREAD) {
                hashing += used;
            }
        }
        let busy = self.machine_busy.saturating_sub(earlier.machine_busy);
        // `/proc/stat` counts every core: `elapsed` is cores × the wall time.
        let share = |ticks: u64| ticks as f64 / elapsed * cores;
        Split {
            hashing: share(hashing),
            rest_of_process: share(process - hashing),
            outside: share(busy.saturating_sub(process)),
            idle: share((elapsed as u64).saturating_sub(busy)),
        }
    }
}

impl Split {
    /// The mean of runs of equal length; `None` for none.
    pub fn mean(runs: &[Split]) -> Option<Split> {
        let n = runs.len() as f64;
        let mean = |field: fn(&Split) -> f64| runs.iter().map(field).sum::<f64>() / n;
        (!runs.is_empty()).then(|| Split {
            hashing: mean(|s| s.hashing),
            rest_of_process: mean(|s| s.rest_of_process),
            outside: mean(|s| s.outside),
            idle: mean(|s| s.idle),
        })
    }
}

/// `(name, utime + stime)` from `/proc/<pid>/task/<tid>/stat`. The name is
/// in parentheses and may itself hold spaces or parentheses, so the fields
/// are counted from the last `)`.
fn parse_thread_stat(stat: &str) -> Option<(String, u64)> {
    let open = stat.find('(')?;
    let close = stat.rfind(')')?;
    let name = stat.get(open + 1..close)?.to_string();
    let mut fields = stat.get(close + 1..)?.split_whitespace();
    // After the name: state (field 3) … utime (14), stime (15).
    let utime: u64 = fields.nth(11)?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some((name, utime + stime))
}

/// `(busy, total)` ticks over every core from the `cpu` line of `/proc/stat`:
/// user nice system idle iowait irq softirq steal …; idle and iowait are not busy.
fn parse_machine_stat(stat: &str) -> Option<(u64, u64)> {
    let line = stat.lines().find(|l| l.starts_with("cpu "))?;
    let values: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .take(8)
        .map(|v| v.parse().ok())
        .collect::<Option<_>>()?;
    let [user, nice, system, idle, iowait, irq, softirq, steal] = values[..] else {
        return None;
    };
    let busy = user + nice + system + irq + softirq + steal;
    Some((busy, busy + idle + iowait))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_thread_name_with_spaces_and_parentheses_is_read_whole() {
        let stat = "4242 (a (b) c) S 1 2 3 4 5 6 7 8 9 10 120 30 0 0 20 0 1 0";
        assert_eq!(parse_thread_stat(stat), Some(("a (b) c".into(), 150)));
        assert_eq!(parse_thread_stat("4242 (short) S 1 2"), None);
    }

    #[test]
    fn the_machine_line_splits_busy_from_idle() {
        let stat = "cpu  100 5 20 800 10 1 2 3 0 0\ncpu0 50 2 10 400 5 0 1 1 0 0\n";
        assert_eq!(parse_machine_stat(stat), Some((131, 941)));
        assert_eq!(parse_machine_stat("cpu0 1 2 3\n"), None);
    }

    #[test]
    fn the_split_divides_the_machine_between_hashing_the_process_and_the_rest() {
        let thread = |name: &str, ticks| (name.to_string(), ticks);
        let earlier = Snapshot {
            threads: HashMap::from([
                (1, thread("argon2-worker-0", 100)),
                (2, thread("tokio-runtime-w", 50)),
                (3, thread("ended", 70)),
            ]),
            machine_busy: 1_000,
            machine_total: 2_000,
        };
        let later = Snapshot {
            threads: HashMap::from([
                (1, thread("argon2-worker-0", 260)),
                (2, thread("tokio-runtime-w", 60)),
                (4, thread("born", 10)),
            ]),
            machine_busy: 1_190,
            machine_total: 2_200,
        };
        let split = later.since(&earlier);
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
        let expect = |ticks: f64| ticks / 200.0 * cores;
        assert!((split.hashing - expect(160.0)).abs() < 1e-9);
        assert!((split.rest_of_process - expect(20.0)).abs() < 1e-9);
        assert!((split.outside - expect(10.0)).abs() < 1e-9);
        assert!((split.idle - expect(10.0)).abs() < 1e-9);
        let sum = split.hashing + split.rest_of_process + split.outside + split.idle;
        assert!((sum - cores).abs() < 1e-9);
    }

    #[test]
    fn the_mean_of_runs_is_taken_field_by_field() {
        let run = |hashing, rest_of_process, outside, idle| Split {
            hashing,
            rest_of_process,
            outside,
            idle,
        };
        let mean = Split::mean(&[run(1.6, 0.3, 0.1, 0.0), run(1.8, 0.1, 0.0, 0.1)]);
        let mean = mean.expect("two runs have a mean");
        assert!((mean.hashing - 1.7).abs() < 1e-9);
        assert!((mean.rest_of_process - 0.2).abs() < 1e-9);
        assert!((mean.outside - 0.05).abs() < 1e-9);
        assert!((mean.idle - 0.05).abs() < 1e-9);
        assert_eq!(Split::mean(&[]), None);
    }

    #[test]
    fn this_process_shows_up_on_linux() {
        if cfg!(target_os = "linux") {
            let snapshot = Snapshot::take().expect("/proc is readable on Linux");
            assert!(!snapshot.threads.is_empty());
            assert!(snapshot.machine_total >= snapshot.machine_busy);
        }
    }
}
