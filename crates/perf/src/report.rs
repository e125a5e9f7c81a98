//! What a run found: printed as a table for people and one JSON line for scripts.

use serde::Serialize;

#[derive(Debug, Default, Serialize)]
pub struct Report {
    pub scenario: String,
    pub broker: String,
    pub seconds: f64,
    pub size: usize,
    pub published: u64,
    pub confirmed: u64,
    pub nacked: u64,
    pub deliveries: u64,
    pub lost: u64,
    pub duplicates: u64,
    /// Messages per second.
    pub publish_rate: f64,
    /// Deliveries per second, from the consumers' start to the last delivery.
    pub consume_rate: f64,
    pub latency_p50_us: Option<f64>,
    pub latency_p99_us: Option<f64>,
    pub latency_p999_us: Option<f64>,
    pub latency_max_us: Option<f64>,
    /// Broker CPU (user + system) per delivery, or per publish without consumers.
    pub broker_cpu_us_per_msg: Option<f64>,
    pub broker_cpu_seconds: Option<f64>,
    pub broker_rss_mb: Option<f64>,
    pub broker_peak_rss_mb: Option<f64>,
    pub connections: Option<u64>,
    pub connect_seconds: Option<f64>,
    pub rss_per_connection_kib: Option<f64>,
}

impl Report {
    pub fn print(&self) {
        let mut rows: Vec<(&str, String)> = vec![
            ("scenario", self.scenario.clone()),
            ("broker", self.broker.clone()),
        ];
        let count = |n: u64| format_count(n as f64);
        if self.connections.is_none() {
            rows.push(("published", count(self.published)));
            if self.confirmed + self.nacked > 0 {
                rows.push((
                    "confirmed / nacked",
                    format!("{} / {}", count(self.confirmed), count(self.nacked)),
                ));
            }
            rows.push(("deliveries", count(self.deliveries)));
            rows.push((
                "lost / duplicates",
                format!("{} / {}", self.lost, self.duplicates),
            ));
            rows.push((
                "publish rate",
                format!("{} msg/s", format_count(self.publish_rate)),
            ));
            rows.push((
                "consume rate",
                format!("{} msg/s", format_count(self.consume_rate)),
            ));
        }
        if let (Some(p50), Some(p99), Some(p999)) = (
            self.latency_p50_us,
            self.latency_p99_us,
            self.latency_p999_us,
        ) {
            rows.push((
                "latency p50 / p99 / p99.9",
                format!("{p50:.0} / {p99:.0} / {p999:.0} µs"),
            ));
        }
        if let Some(n) = self.connections {
            rows.push(("connections", count(n)));
            if let Some(s) = self.connect_seconds {
                rows.push(("time to open", format!("{s:.2} s")));
            }
            if let Some(k) = self.rss_per_connection_kib {
                rows.push(("broker RSS per connection", format!("{k:.1} KiB")));
            }
        }
        if let Some(cpu) = self.broker_cpu_us_per_msg {
            rows.push(("broker CPU per message", format!("{cpu:.2} µs")));
        }
        if let (Some(rss), Some(peak)) = (self.broker_rss_mb, self.broker_peak_rss_mb) {
            rows.push((
                "broker RSS (end / peak)",
                format!("{rss:.0} / {peak:.0} MB"),
            ));
        }
        let width = rows.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
        for (k, v) in rows {
            println!("  {k:<width$}  {v}");
        }
        println!("{}", serde_json::to_string(self).expect("plain data"));
    }
}

/// 1234567 → "1.23M".
pub fn format_count(n: f64) -> String {
    match n {
        n if n >= 1e6 => format!("{:.2}M", n / 1e6),
        n if n >= 1e4 => format!("{:.1}k", n / 1e3),
        n => format!("{n:.0}"),
    }
}
