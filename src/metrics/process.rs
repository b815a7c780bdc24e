//! The process's own metrics, read from `/proc/self` at each scrape (Linux
//! only; elsewhere they are left out): resident memory, CPU time and open
//! file descriptors, under the names Prometheus client libraries use.

/// Describes the process metrics (once, with the recorder).
pub(super) fn describe() {
    metrics::describe_gauge!(
        "process_resident_memory_bytes",
        metrics::Unit::Bytes,
        "Resident memory of the process."
    );
    metrics::describe_counter!(
        "process_cpu_seconds_total",
        metrics::Unit::Seconds,
        "User and system CPU time of the process, in whole seconds."
    );
    metrics::describe_gauge!(
        "process_open_fds",
        "File descriptors the process holds open."
    );
}

/// Reads and records them; what cannot be read is left as it was.
#[cfg(target_os = "linux")]
pub(super) fn sample() {
    if let Some(bytes) = resident_bytes() {
        metrics::gauge!("process_resident_memory_bytes").set(bytes as f64);
    }
    if let Some(seconds) = cpu_seconds() {
        metrics::counter!("process_cpu_seconds_total").absolute(seconds);
    }
    if let Ok(fds) = std::fs::read_dir("/proc/self/fd") {
        // The folder's own descriptor, open while it is read, is left out.
        let open = fds.count().saturating_sub(1);
        metrics::gauge!("process_open_fds").set(open as f64);
    }
}

#[cfg(not(target_os = "linux"))]
pub(super) fn sample() {}

/// `VmRSS` of `/proc/self/status`, in bytes.
#[cfg(target_os = "linux")]
fn resident_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|line| line.starts_with("VmRSS:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// `utime` + `stime` of `/proc/self/stat`, in whole seconds.
#[cfg(target_os = "linux")]
fn cpu_seconds() -> Option<u64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // The command name (field 2) may hold spaces and parentheses: the
    // fields are counted from the last `)`.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    // utime and stime are fields 14 and 15; fields[0] is field 3.
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    let per_second = rustix::param::clock_ticks_per_second();
    (per_second > 0).then(|| ticks / per_second)
}
