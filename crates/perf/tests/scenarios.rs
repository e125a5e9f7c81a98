//! The tool against a Warren started in this process: every scenario runs
//! scaled down and its own checks (nothing lost, nothing duplicated) pass,
//! and the stock-client crosscheck agrees on the counts.

use serde_json::Value;
use std::process::Output;
use warren_tests::TestServer;

async fn perf(args: &[&str]) -> (Output, Vec<Value>) {
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_warren-perf"))
        .args(args)
        .output()
        .await
        .expect("warren-perf runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let reports = stdout
        .lines()
        .filter(|l| l.starts_with('{'))
        .map(|l| serde_json::from_str(l).expect("one JSON report per line"))
        .collect();
    (output, reports)
}

fn count(report: &Value, key: &str) -> u64 {
    report[key]
        .as_u64()
        .unwrap_or_else(|| panic!("{key} in {report}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_scenario_runs_clean() {
    let server = TestServer::start().await;
    let url = format!("amqp://guest:guest@{}/%2f", server.addr);
    let pid = std::process::id().to_string();
    let (output, reports) = perf(&[
        "scenario",
        "all",
        "--url",
        &url,
        "--seconds",
        "1",
        "--scale",
        "0.01",
        "--pid",
        &pid,
        "--broker",
        "warren",
    ])
    .await;
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let names: Vec<&str> = reports
        .iter()
        .map(|r| r["scenario"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "throughput",
            "ack",
            "confirm",
            "fanout",
            "topic",
            "many-queues",
            "many-publishers",
            "latency-1k",
            "latency-10k",
            "connections",
            "ttl-dlx",
            "priority",
            "backlog"
        ]
    );
    for report in &reports {
        assert_eq!(count(report, "lost"), 0, "{report}");
        assert_eq!(count(report, "duplicates"), 0, "{report}");
        assert_eq!(report["broker"], "warren");
        if report["scenario"] == "connections" {
            assert_eq!(count(report, "connections"), 50, "{report}");
            assert!(report["rss_per_connection_kib"].is_number(), "{report}");
            continue;
        }
        let published = count(report, "published");
        assert!(published > 0, "{report}");
        let fanout = if report["scenario"] == "fanout" {
            10
        } else {
            1
        };
        assert_eq!(count(report, "deliveries"), published * fanout, "{report}");
        assert!(report["latency_p99_us"].is_number(), "{report}");
        assert!(report["broker_cpu_us_per_msg"].is_number(), "{report}");
    }
    let confirm = &reports[2];
    assert_eq!(count(confirm, "confirmed"), count(confirm, "published"));
    let backlog = &reports[12];
    assert_eq!(count(backlog, "published"), 10_000);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_stock_client_and_the_lean_one_agree() {
    let server = TestServer::start().await;
    let url = format!("amqp://guest:guest@{}/%2f", server.addr);
    let (output, reports) = perf(&["crosscheck", "--url", &url, "--messages", "20000"]).await;
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(reports.len(), 3);
    for report in &reports {
        assert_eq!(count(report, "published"), 20_000, "{report}");
        assert_eq!(count(report, "deliveries"), 20_000, "{report}");
        assert_eq!(count(report, "lost"), 0, "{report}");
    }
}

#[tokio::test]
async fn a_bad_scenario_name_is_an_error() {
    let (output, _) = perf(&["scenario", "nonsense", "--url", "amqp://127.0.0.1:1/%2f"]).await;
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("nonsense"), "{stderr}");
}
