//! Where the hashing threads run: the lowest scheduling priority, and one
//! thread per allowed CPU.

/// The lowest CPU priority for the calling hashing thread: Linux's
/// `SCHED_IDLE`, which any other runnable thread preempts at once on waking
/// (nice 19 alone lets a hash finish its time slice first, a few
/// milliseconds that showed in the isolation benchmark's p99), else nice 19.
/// A failure only costs isolation, so it is logged, not fatal.
pub(super) fn lower_priority() {
    #[cfg(target_os = "linux")]
    {
        use thread_priority::{
            set_thread_priority_and_policy, thread_native_id, NormalThreadSchedulePolicy,
            ThreadPriority, ThreadSchedulePolicy,
        };
        let idle = set_thread_priority_and_policy(
            thread_native_id(),
            ThreadPriority::Min,
            ThreadSchedulePolicy::Normal(NormalThreadSchedulePolicy::Idle),
        );
        if let Err(error) = idle {
            tracing::debug!(?error, "SCHED_IDLE refused; nice 19 instead");
            let thread = rustix::thread::gettid();
            if let Err(error) = rustix::process::setpriority_process(Some(thread), 19) {
                tracing::warn!(%error, "cannot lower the hashing thread's priority");
            }
        }
    }
}

/// The CPUs this process may run on, in order; empty if unknown.
pub(super) fn allowed_cpus() -> Vec<usize> {
    #[cfg(target_os = "linux")]
    {
        use rustix::thread::{sched_getaffinity, CpuSet};
        if let Ok(set) = sched_getaffinity(None) {
            return (0..CpuSet::MAX_CPU)
                .filter(|&cpu| set.is_set(cpu))
                .collect();
        }
    }
    Vec::new()
}

/// The CPU each worker keeps to, when there are at least as many workers as
/// CPUs (the default: one per core): worker `i` on the `i`-th CPU, round
/// the list again if there are more. Left to the scheduler, two hashing
/// threads (which run at the lowest priority) sometimes queued on one core
/// while the other sat idle: 2–3% of the machine on PostgreSQL login
/// floods. With fewer workers than CPUs nothing is pinned, so that a busy
/// core never holds a hash that an idle one could run.
pub(super) fn placement(allowed: &[usize], workers: usize) -> Vec<Option<usize>> {
    if allowed.len() < 2 || workers < allowed.len() {
        return vec![None; workers];
    }
    (0..workers)
        .map(|index| Some(allowed[index % allowed.len()]))
        .collect()
}

/// Keeps the calling hashing thread on `cpu`; a failure costs only speed.
pub(super) fn pin_to(cpu: usize) {
    #[cfg(target_os = "linux")]
    {
        use rustix::thread::{sched_setaffinity, CpuSet};
        let mut set = CpuSet::new();
        set.set(cpu);
        if let Err(error) = sched_setaffinity(None, &set) {
            tracing::debug!(%error, cpu, "cannot keep the hashing thread on one CPU");
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = cpu;
}
