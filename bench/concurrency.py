"""Benchmark 2, concurrency: 100, 500 and 1,000 simultaneous streams of 100 tokens at 20 ms.

    python -m bench.concurrency [--streams 100,500,1000] [--shards 2]

Every stream starts at once. Side by side: straight to the fake upstream (the baseline of
the gaps: the upstream and the generator have jitter of their own) and through Nexus's
/v1/chat/completions (one daphne process). Reports errors, tokens delivered, the gap
between tokens at p50/p99 and what Nexus adds over 20 ms at p99, CPU and peak memory of
each process group. Writes bench/results/concurrency.json.
"""

from __future__ import annotations

import argparse
from typing import Any

from bench import harness
from bench.harness import MODEL, CpuMeter, Processes, percentile, stage

BODY = {"model": MODEL, "messages": [{"role": "user", "content": "Say a hundred words."}], "stream": True}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--streams", default="100,500,1000")
    parser.add_argument("--tokens", type=int, default=100)
    parser.add_argument("--token-delay", type=float, default=0.02)
    parser.add_argument("--shards", type=int, default=2, help="load-generator processes")
    parser.add_argument("--upstreams", type=int, default=1, help="fake upstream processes")
    args = parser.parse_args()

    procs = Processes()
    with stage("database, fake upstream, Nexus"):
        harness.database_prepare()
        fake_port, fake = harness.start_fake_upstream(procs)
        seeded = harness.seed(upstream_port=fake_port, users=100)
        nexus_port, nexus = harness.start_nexus(procs, DATABASE_POOL_MAX_SIZE="40")
        harness.configure_fake(fake_port, tokens=args.tokens, token_delay=args.token_delay)

    users = seeded["users"]
    paths = {
        "direct": [{"url": f"http://127.0.0.1:{fake_port}/v1/chat/completions"}],
        "nexus /v1/chat/completions": [
            {
                "url": f"http://127.0.0.1:{nexus_port}/v1/chat/completions",
                "headers": {"Authorization": f"Bearer {u['api_key']}"},
            }
            for u in users
        ],
    }
    runs: list[dict[str, Any]] = []
    for streams in [int(value) for value in args.streams.split(",")]:
        for name, targets in paths.items():
            spec = {"mode": "openai", "body": BODY, "targets": targets, "gaps": True, "timeout": 120}
            with stage(f"{name}, {streams} streams"):
                harness.load({**spec, "clients": 10, "requests_per_client": 1})  # warm-up
                groups = {"fake upstream": [fake]}
                if name != "direct":
                    groups["server"] = [nexus]
                with CpuMeter(groups) as meter:
                    outcome = harness.load(
                        {**spec, "clients": streams, "requests_per_client": 1}, shards=args.shards, lead=2.0
                    )
                cpu = meter.stop()
            results = outcome["results"]
            gaps = [gap for result in results for gap in result.get("gaps", ())]
            errors, first_error = harness.errors_of(results)
            runs.append(
                {
                    "path": name,
                    "streams": streams,
                    "errors": errors,
                    "first_error": first_error,
                    "tokens_delivered": sum(r["tokens"] for r in results),
                    "tokens_expected": streams * args.tokens,
                    "gap_ms": {
                        f"p{p}": round(percentile(gaps, p) * 1000, 2) if gaps else None for p in (50, 99)
                    },
                    "ttft_p99_ms": round(
                        percentile([r["ttft"] for r in results if r["ttft"] is not None], 99) * 1000, 1
                    ),
                    "cpu": {**cpu, "load generator": {"cpu_percent": outcome["cpu_percent"]}},
                }
            )
    procs.stop_all()

    rows = []
    for run in runs:
        added = (
            round(run["gap_ms"]["p99"] - args.token_delay * 1000, 2)
            if run["gap_ms"]["p99"] is not None
            else "—"
        )
        run["added_gap_p99_ms"] = added
        server = run["cpu"].get("server", {})
        rows.append(
            [
                run["path"],
                run["streams"],
                run["errors"],
                f"{run['tokens_delivered']}/{run['tokens_expected']}",
                run["gap_ms"]["p50"],
                run["gap_ms"]["p99"],
                added,
                run["ttft_p99_ms"],
                server.get("cpu_percent", "—"),
                server.get("peak_rss_mb", "—"),
                run["cpu"]["fake upstream"]["cpu_percent"],
                run["cpu"]["load generator"]["cpu_percent"],
            ]
        )
    print()
    print(
        harness.table(
            [
                "path",
                "streams",
                "errors",
                "tokens delivered",
                "gap p50 ms",
                "gap p99 ms",
                "added gap p99 ms",
                "TTFT p99 ms",
                "server CPU %",
                "server peak MB",
                "upstream CPU %",
                "loadgen CPU %",
            ],
            rows,
        )
    )
    path = harness.write_json(
        "concurrency", {"tokens": args.tokens, "token_delay": args.token_delay, "runs": runs}
    )
    print(f"\nwrote {path.relative_to(harness.ROOT)}")


if __name__ == "__main__":
    main()
