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
