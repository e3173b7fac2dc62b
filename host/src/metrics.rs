//! A tiny Prometheus registry: labeled counters, gauges and histograms on atomics, rendered in
//! the text exposition format.
//!
//! Invariants: recording never blocks on rendering for long (a read lock to find a series, a
//! write lock only the first time a label set appears); label values come from the daemon's own
//! vocabulary (matched route templates, loaded tool names, fixed reasons), never from raw
//! request data, so the number of series stays bounded.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

/// Job duration buckets (seconds): from a fast fake tool to HexStrike's 300 s cap.
const JOB_DURATION_BUCKETS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0,
];
/// Plugin call buckets (seconds): plan takes tens of microseconds, parse of a big report seconds.
const PLUGIN_CALL_BUCKETS: &[f64] = &[
    0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 30.0,
];

/// Why a request was refused before (or instead of) running a tool.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Rejection {
    UnknownTool,
    InvalidParams,
    PlanRejected,
    BinaryMissing,
    QueueFull,
    ShuttingDown,
    BodyTooLarge,
    MalformedBody,
}

impl Rejection {
    fn as_str(self) -> &'static str {
        match self {
            Rejection::UnknownTool => "unknown_tool",
            Rejection::InvalidParams => "invalid_params",
            Rejection::PlanRejected => "plan_rejected",
            Rejection::BinaryMissing => "binary_missing",
            Rejection::QueueFull => "queue_full",
            Rejection::ShuttingDown => "shutting_down",
            Rejection::BodyTooLarge => "body_too_large",
            Rejection::MalformedBody => "malformed_body",
        }
    }
}

/// A counter family keyed by a label tuple.
struct CounterFamily<K> {
    series: RwLock<BTreeMap<K, Arc<AtomicU64>>>,
}

impl<K: Ord + Clone> CounterFamily<K> {
    fn new() -> Self {
        Self {
            series: RwLock::new(BTreeMap::new()),
        }
    }

    fn inc(&self, key: &K) {
        series_for(&self.series, key, || Arc::new(AtomicU64::new(0)))
            .fetch_add(1, Ordering::Relaxed);
    }

    fn snapshot(&self) -> Vec<(K, u64)> {
        let series = self.series.read().unwrap_or_else(|p| p.into_inner());
        series
            .iter()
            .map(|(k, v)| (k.clone(), v.load(Ordering::Relaxed)))
            .collect()
    }
}

/// Fixed-bucket histogram; sums are kept in microseconds to stay on integer atomics.
struct Histogram {
    bounds: &'static [f64],
    buckets: Vec<AtomicU64>,
    count: AtomicU64,
    sum_micros: AtomicU64,
}

impl Histogram {
    fn new(bounds: &'static [f64]) -> Self {
        Self {
            bounds,
            buckets: bounds.iter().map(|_| AtomicU64::new(0)).collect(),
            count: AtomicU64::new(0),
            sum_micros: AtomicU64::new(0),
        }
    }

    fn observe(&self, elapsed: Duration) {
        let seconds = elapsed.as_secs_f64();
        for (bound, bucket) in self.bounds.iter().zip(&self.buckets) {
            if seconds <= *bound {
                bucket.fetch_add(1, Ordering::Relaxed);
            }
        }
        self.count.fetch_add(1, Ordering::Relaxed);
        let micros = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX);
        self.sum_micros.fetch_add(micros, Ordering::Relaxed);
    }
}

struct HistogramFamily<K> {
    bounds: &'static [f64],
    series: RwLock<BTreeMap<K, Arc<Histogram>>>,
}

impl<K: Ord + Clone> HistogramFamily<K> {
    fn new(bounds: &'static [f64]) -> Self {
        Self {
            bounds,
            series: RwLock::new(BTreeMap::new()),
        }
    }

    fn observe(&self, key: &K, elapsed: Duration) {
        let bounds = self.bounds;
        series_for(&self.series, key, || Arc::new(Histogram::new(bounds))).observe(elapsed);
    }
}

fn series_for<K: Ord + Clone, V: Clone>(
    family: &RwLock<BTreeMap<K, V>>,
    key: &K,
    create: impl FnOnce() -> V,
) -> V {
    if let Some(found) = family.read().unwrap_or_else(|p| p.into_inner()).get(key) {
        return found.clone();
    }
    family
        .write()
        .unwrap_or_else(|p| p.into_inner())
        .entry(key.clone())
        .or_insert_with(create)
        .clone()
}

/// The daemon's metrics.
pub struct Metrics {
    requests: CounterFamily<(String, String, u16)>,
    rejections: CounterFamily<Rejection>,
    jobs_finished: CounterFamily<(String, &'static str)>,
    job_duration: HistogramFamily<String>,
    plugin_calls: HistogramFamily<(String, &'static str)>,
    jobs_running: AtomicI64,
    jobs_queued: AtomicI64,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        Self {
            requests: CounterFamily::new(),
            rejections: CounterFamily::new(),
            jobs_finished: CounterFamily::new(),
            job_duration: HistogramFamily::new(JOB_DURATION_BUCKETS),
            plugin_calls: HistogramFamily::new(PLUGIN_CALL_BUCKETS),
            jobs_running: AtomicI64::new(0),
            jobs_queued: AtomicI64::new(0),
        }
    }

    /// One HTTP request; `route` is the matched route template (or `unmatched`).
    pub fn record_request(&self, method: &str, route: &str, status: u16) {
        self.requests
            .inc(&(method.to_string(), route.to_string(), status));
    }

    pub fn record_rejection(&self, reason: Rejection) {
        self.rejections.inc(&reason);
    }

    /// One finished job; `ran` is how long its tool ran, `None` when no tool ran (cancelled
    /// while queued, or the sandbox could not start it), which the histogram does not count.
    pub fn record_job(&self, tool: &str, status: &'static str, ran: Option<Duration>) {
        self.jobs_finished.inc(&(tool.to_string(), status));
        if let Some(duration) = ran {
            self.job_duration.observe(&tool.to_string(), duration);
        }
    }

    /// Latency of one plugin call; `call` is `plan` or `parse`.
    pub fn record_plugin_call(&self, tool: &str, call: &'static str, elapsed: Duration) {
        self.plugin_calls
            .observe(&(tool.to_string(), call), elapsed);
    }

    pub fn job_queued(&self) {
        self.jobs_queued.fetch_add(1, Ordering::Relaxed);
    }

    pub fn job_dequeued(&self) {
        self.jobs_queued.fetch_sub(1, Ordering::Relaxed);
    }

    pub fn job_started(&self) {
        self.jobs_running.fetch_add(1, Ordering::Relaxed);
    }

    pub fn job_stopped(&self) {
        self.jobs_running.fetch_sub(1, Ordering::Relaxed);
    }

    /// The registry in Prometheus text exposition format 0.0.4.
    pub fn render(&self) -> String {
        let mut out = String::new();
        header(
            &mut out,
            "toolgate_http_requests_total",
            "counter",
            "HTTP requests by method, matched route and status.",
        );
        for ((method, route, status), value) in self.requests.snapshot() {
            let _ = writeln!(
                out,
                "toolgate_http_requests_total{{method=\"{}\",route=\"{}\",status=\"{status}\"}} {value}",
                escape(&method),
                escape(&route)
            );
        }
        header(
            &mut out,
            "toolgate_rejections_total",
            "counter",
            "Requests refused before running a tool, by reason.",
        );
        for (reason, value) in self.rejections.snapshot() {
            let _ = writeln!(
                out,
                "toolgate_rejections_total{{reason=\"{}\"}} {value}",
                reason.as_str()
            );
        }
        header(
            &mut out,
            "toolgate_jobs_finished_total",
            "counter",
            "Jobs finished, by tool and final status.",
        );
        for ((tool, status), value) in self.jobs_finished.snapshot() {
            let _ = writeln!(
                out,
                "toolgate_jobs_finished_total{{tool=\"{}\",status=\"{status}\"}} {value}",
                escape(&tool)
            );
        }
        header(
            &mut out,
            "toolgate_jobs_running",
            "gauge",
            "Jobs whose tool is running now.",
        );
        let _ = writeln!(
            out,
            "toolgate_jobs_running {}",
            self.jobs_running.load(Ordering::Relaxed)
        );
        header(
            &mut out,
            "toolgate_jobs_queued",
            "gauge",
            "Jobs waiting for a free slot.",
        );
        let _ = writeln!(
            out,
            "toolgate_jobs_queued {}",
            self.jobs_queued.load(Ordering::Relaxed)
        );
        header(
            &mut out,
            "toolgate_job_duration_seconds",
            "histogram",
            "Tool run time, by tool.",
        );
        render_histograms(
            &mut out,
            "toolgate_job_duration_seconds",
            &self.job_duration,
            |tool| format!("tool=\"{}\"", escape(tool)),
        );
        header(
            &mut out,
            "toolgate_plugin_call_duration_seconds",
            "histogram",
            "Plugin call latency, by tool and call (plan, parse).",
        );
        render_histograms(
            &mut out,
            "toolgate_plugin_call_duration_seconds",
            &self.plugin_calls,
            |(tool, call)| format!("tool=\"{}\",call=\"{call}\"", escape(tool)),
        );
        out
    }
}

fn header(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

fn render_histograms<K: Ord + Clone>(
    out: &mut String,
    name: &str,
    family: &HistogramFamily<K>,
    labels: impl Fn(&K) -> String,
) {
    let series = family.series.read().unwrap_or_else(|p| p.into_inner());
    for (key, histogram) in series.iter() {
        let labels = labels(key);
        for (bound, bucket) in histogram.bounds.iter().zip(&histogram.buckets) {
            let _ = writeln!(
                out,
                "{name}_bucket{{{labels},le=\"{bound}\"}} {}",
                bucket.load(Ordering::Relaxed)
            );
        }
        let count = histogram.count.load(Ordering::Relaxed);
        let _ = writeln!(out, "{name}_bucket{{{labels},le=\"+Inf\"}} {count}");
        let sum = histogram.sum_micros.load(Ordering::Relaxed) as f64 / 1e6;
        let _ = writeln!(out, "{name}_sum{{{labels}}} {sum}");
        let _ = writeln!(out, "{name}_count{{{labels}}} {count}");
    }
}

/// Escapes a label value per the exposition format.
fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_family_is_rendered_with_its_type() {
        let metrics = Metrics::new();
        metrics.record_request("POST", "/api/tools/{tool}", 200);
        metrics.record_rejection(Rejection::QueueFull);
        metrics.record_job("terrascan", "succeeded", Some(Duration::from_millis(30)));
        metrics.record_job("terrascan", "cancelled", None);
        metrics.record_plugin_call("terrascan", "plan", Duration::from_micros(40));
        metrics.job_queued();
        let text = metrics.render();
        let table = [
            "# TYPE toolgate_http_requests_total counter",
            "toolgate_http_requests_total{method=\"POST\",route=\"/api/tools/{tool}\",status=\"200\"} 1",
            "toolgate_rejections_total{reason=\"queue_full\"} 1",
            "toolgate_jobs_finished_total{tool=\"terrascan\",status=\"succeeded\"} 1",
            "toolgate_jobs_running 0",
            "toolgate_jobs_queued 1",
            "toolgate_job_duration_seconds_bucket{tool=\"terrascan\",le=\"0.05\"} 1",
            "toolgate_job_duration_seconds_bucket{tool=\"terrascan\",le=\"0.025\"} 0",
            "toolgate_job_duration_seconds_count{tool=\"terrascan\"} 1",
            "toolgate_plugin_call_duration_seconds_bucket{tool=\"terrascan\",call=\"plan\",le=\"+Inf\"} 1",
        ];
        for line in table {
            assert!(
                text.lines().any(|l| l == line),
                "missing {line:?} in\n{text}"
            );
        }
    }

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(escape("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }
}
