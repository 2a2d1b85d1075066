"""Benchmark 3, throughput: full-pipeline AI calls per second with one-token replies.

    python -m bench.throughput [--duration 15] [--clients 64]

A full-pipeline call is /v1/chat/completions with stream=true on an API key: key
authentication, the rate limit (a Redis counter; the limit is set high but checked), the
quota reservation and its settlement, the stream, and the usage record in PostgreSQL.
Side by side: Nexus on 1 and on 2 daphne processes (clients spread over both, as a load
balancer would), and a LiteLLM proxy with 1 and 2 workers, with its spend tracking on
PostgreSQL when Prisma's engines can be had here (else without, labelled so). Writes
bench/results/throughput.json.
"""

from __future__ import annotations

import argparse
from typing import Any

from bench import harness, litellm_proxy
from bench.harness import MODEL, CpuMeter, Processes, stage, summary_ms

BODY = {"model": MODEL, "messages": [{"role": "user", "content": "One word."}], "stream": True}


def measure(
    name: str,
    targets: list[dict[str, Any]],
    groups: dict[str, list[Any]],
    args: argparse.Namespace,
) -> dict[str, Any]:
    spec = {"mode": "openai", "body": BODY, "targets": targets, "clients": args.clients, "timeout": 60}
    with stage(f"{name}: {args.clients} clients for {args.duration:.0f} s"):
        harness.load({**spec, "duration": 3})  # warm-up
        with CpuMeter(groups) as meter:
            outcome = harness.load({**spec, "duration": args.duration}, shards=args.shards)
        cpu = meter.stop()
    results = outcome["results"]
    ok = [r for r in results if not r["error"]]
    errors, first_error = harness.errors_of(results)
    return {
        "path": name,
        "calls": len(ok),
        "errors": errors,
        "first_error": first_error,
        "calls_per_second": round(len(ok) / outcome["wall"], 1),
        "latency_ms": summary_ms([r["total"] for r in ok]),
        "cpu": {**cpu, "load generator": {"cpu_percent": outcome["cpu_percent"]}},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--duration", type=float, default=15)
    parser.add_argument("--clients", type=int, default=64)
    parser.add_argument("--shards", type=int, default=1, help="load-generator processes")
    parser.add_argument("--no-litellm", action="store_true")
    args = parser.parse_args()

    procs = Processes()
    with stage("database, fake upstream"):
        harness.database_prepare()
        fake_port, fake = harness.start_fake_upstream(procs)
        seeded = harness.seed(upstream_port=fake_port, users=100)
        harness.configure_fake(fake_port, tokens=1, token_delay=0)
    users = seeded["users"]
    runs = []
    for count in (1, 2):
        ports, servers = [], []
        for index in range(count):
            port, process = harness.start_nexus(procs, name=f"nexus-{index}")
            ports.append(port)
            servers.append(process)
        targets = [
            {
                "url": f"http://127.0.0.1:{ports[i % count]}/v1/chat/completions",
                "headers": {"Authorization": f"Bearer {u['api_key']}"},
            }
            for i, u in enumerate(users)
        ]
        runs.append(
            measure(
                f"nexus, {count} process{'es' if count > 1 else ''}",
                targets,
                {"server": servers, "fake upstream": [fake]},
                args,
            )
        )
        for index in range(count):
            procs.stop(f"nexus-{index}")

    db_note = ""
    if not args.no_litellm:
        spend_db, db_note = litellm_proxy.db_mode_available()
        label = "spend on PostgreSQL" if spend_db else "NO spend tracking (no database)"
        for workers in (1, 2):
            port, process, headers = litellm_proxy.start(
                procs, upstream_port=fake_port, workers=workers, spend_db=spend_db, name=f"litellm-{workers}"
            )
            target = {"url": f"http://127.0.0.1:{port}/v1/chat/completions", "headers": headers}
            runs.append(
                measure(
                    f"litellm, {workers} worker{'s' if workers > 1 else ''}, {label}",
                    [target],
                    {"server": [process], "fake upstream": [fake]},
                    args,
                )
            )
            procs.stop(f"litellm-{workers}")
    procs.stop_all()

    rows = [
        [
            run["path"],
            run["calls_per_second"],
            run["calls"],
            run["errors"],
            "{p50} / {p95} / {p99}".format(**run["latency_ms"]),
            run["cpu"]["server"]["cpu_percent"],
            run["cpu"]["fake upstream"]["cpu_percent"],
            run["cpu"]["load generator"]["cpu_percent"],
        ]
        for run in runs
    ]
    print()
    print(
        harness.table(
            [
                "server",
                "calls/s",
                "calls",
                "errors",
                "latency ms p50/p95/p99",
                "server CPU %",
                "upstream CPU %",
                "loadgen CPU %",
            ],
            rows,
        )
    )
    if db_note:
        print(f"\nLiteLLM ran without its database: {db_note}")
    path = harness.write_json(
        "throughput",
        {"clients": args.clients, "duration": args.duration, "litellm_db_note": db_note, "runs": runs},
    )
    print(f"\nwrote {path.relative_to(harness.ROOT)}")


if __name__ == "__main__":
    main()
