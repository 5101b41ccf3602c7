//! Latency percentiles and the process's peak memory.

/// Sorts latencies (ms) ascending, for [`percentile`].
pub(crate) fn sort(latencies: &mut [f64]) {
    latencies.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
}

/// The `p`th percentile of `sorted` latencies (0 when there are none).
pub(crate) fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let idx = ((p / 100.0) * (sorted.len() as f64 - 1.0)).round() as usize;
    sorted[idx.min(sorted.len() - 1)]
}

/// Peak resident set size of this process (kB), from /proc.
pub(crate) fn peak_rss_kb() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
}

/// The number of cores the benchmarks run on.
pub(crate) fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// `x` rounded to `places` decimals, for reports.
pub(crate) fn rounded(x: f64, places: i32) -> f64 {
    let scale = 10f64.powi(places);
    (x * scale).round() / scale
}

/// The `p`th percentile of `sorted` latencies (ms), to two decimals.
pub(crate) fn latency_ms(sorted: &[f64], p: f64) -> f64 {
    rounded(percentile(sorted, p), 2)
}

/// Prints the p50 and p99 of `sorted` latencies (ms) on one line.
pub(crate) fn print_latency(sorted: &[f64]) {
    println!(
        "latency p50 {:.2} ms, p99 {:.2} ms",
        percentile(sorted, 50.0),
        percentile(sorted, 99.0)
    );
}

/// Success when no request failed, else exit status 1.
pub(crate) fn passed(errors: usize) -> std::process::ExitCode {
    if errors == 0 {
        std::process::ExitCode::SUCCESS
    } else {
        std::process::ExitCode::from(1)
    }
}

/// CPU seconds (user + system) used so far by this process's live threads
/// whose names start with one of `prefixes`, from /proc (Linux; 0 elsewhere).
pub(crate) fn threads_cpu_seconds(prefixes: &[&str]) -> f64 {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return 0.0;
    };
    let mut ticks = 0u64;
    for task in tasks.flatten() {
        let Ok(stat) = std::fs::read_to_string(task.path().join("stat")) else {
            continue;
        };
        // "tid (comm) state ... utime stime ...": comm may hold spaces.
        let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else {
            continue;
        };
        let comm = &stat[open + 1..close];
        if !prefixes.iter().any(|p| comm.starts_with(p)) {
            continue;
        }
        let fields: Vec<&str> = stat[close + 1..].split_whitespace().collect();
        // Fields 14 and 15 of the line (utime, stime) are 11 and 12 after comm.
        for i in [11, 12] {
            ticks += fields
                .get(i)
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(0);
        }
    }
    // /proc reports in USER_HZ, 100 on Linux.
    ticks as f64 / 100.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_busy_named_thread_is_counted_and_others_are_not() {
        let t = std::thread::Builder::new()
            .name("cpu-probe-busy".into())
            .spawn(|| {
                let start = std::time::Instant::now();
                let mut x = 0u64;
                while start.elapsed() < std::time::Duration::from_millis(300) {
                    x = x.wrapping_mul(31).wrapping_add(7);
                }
                let (tx, rx) = std::sync::mpsc::channel::<()>();
                // Stay alive until read.
                std::mem::forget(tx);
                let _ = rx.recv_timeout(std::time::Duration::from_millis(500));
                x
            })
            .unwrap();
        std::thread::sleep(std::time::Duration::from_millis(400));
        let busy = threads_cpu_seconds(&["cpu-probe-busy"]);
        assert!(busy >= 0.1, "busy thread counted {busy}");
        assert_eq!(threads_cpu_seconds(&["no-such-thread-name"]), 0.0);
        t.join().unwrap();
    }
}
