#!/usr/bin/env python3
"""Medians per scenario and broker from warren-perf JSON lines, and the ratio
Warren/RabbitMQ per figure, as a Markdown table."""
import json
import statistics
import sys
from collections import defaultdict

FIGURES = [
    ("publish_rate", "publish msg/s", "{:,.0f}"),
    ("consume_rate", "deliveries/s", "{:,.0f}"),
    ("broker_cpu_us_per_msg", "broker CPU µs/msg", "{:.2f}"),
    ("latency_p50_us", "p50 µs", "{:,.0f}"),
    ("latency_p99_us", "p99 µs", "{:,.0f}"),
    ("latency_p999_us", "p99.9 µs", "{:,.0f}"),
    ("broker_peak_rss_mb", "peak RSS MB", "{:,.0f}"),
    ("rss_per_connection_kib", "RSS/connection KiB", "{:.1f}"),
    ("connect_seconds", "time to open s", "{:.2f}"),
    ("lost", "lost", "{:.0f}"),
    ("duplicates", "duplicates", "{:.0f}"),
]


def main(path):
    runs = defaultdict(list)
    order = []
    with open(path) as f:
        for line in f:
            r = json.loads(line)
            if r["scenario"] not in order:
                order.append(r["scenario"])
            runs[(r["scenario"], r["broker"])].append(r)
    print("| scenario | figure | Warren | RabbitMQ | Warren/RabbitMQ | runs |")
    print("|---|---|---:|---:|---:|---|")
    for s in order:
        w, r = runs.get((s, "warren"), []), runs.get((s, "rabbitmq"), [])
        for key, label, fmt in FIGURES:
            wv = [x[key] for x in w if x.get(key) is not None]
            rv = [x[key] for x in r if x.get(key) is not None]
            if not wv and not rv:
                continue
            if key in ("publish_rate", "consume_rate") and not any(wv + rv):
                continue
            wm = statistics.median(wv) if wv else None
            rm = statistics.median(rv) if rv else None
            ratio = f"{wm / rm:.2f}" if wm is not None and rm else ""
            cell = lambda v: fmt.format(v) if v is not None else "–"
            print(f"| {s} | {label} | {cell(wm)} | {cell(rm)} | {ratio} | {len(wv)}+{len(rv)} |")


if __name__ == "__main__":
    main(sys.argv[1])
