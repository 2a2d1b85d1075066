"""Benchmark 1, overhead: time to first token and total time of a 50-token reply.

    python -m bench.overhead [--requests 150] [--token-delay 0.005]

Side by side, at 1 and at 20 concurrent clients: straight to the fake upstream, through
Nexus's POST /chat/send (SSE, JWT), through Nexus's /v1/chat/completions (stream=true,
API key) and through a LiteLLM proxy (one worker, no database), all on the same fake
upstream. Prints p50/p95/p99 and the overhead over the direct call; writes
bench/results/overhead.json.
"""

from __future__ import annotations

import argparse
from typing import Any

from bench import harness, litellm_proxy
from bench.harness import MODEL, CpuMeter, Processes, stage, summary_ms

CHAT_BODY = {
    "model": MODEL,
    "messages": [{"role": "user", "content": "Say fifty words."}],
    "stream": True,
    "stream_options": {"include_usage": True},
}
SEND_BODY = {"message": "Say fifty words.", "model": MODEL}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=150, help="requests per client count and target")
    parser.add_argument("--tokens", type=int, default=50)
    parser.add_argument("--token-delay", type=float, default=0.005, help="fake upstream's seconds per token")
    parser.add_argument("--clients", default="1,20")
    parser.add_argument("--no-litellm", action="store_true")
    args = parser.parse_args()

    procs = Processes()
    with stage("database, fake upstream, Nexus, LiteLLM"):
        harness.database_prepare()
        fake_port, fake = harness.start_fake_upstream(procs)
        seeded = harness.seed(upstream_port=fake_port, users=20)
        nexus_port, nexus = harness.start_nexus(procs)
        servers: dict[str, Any] = {"nexus": nexus}
        if not args.no_litellm:
            litellm_port, litellm, litellm_headers = litellm_proxy.start(procs, upstream_port=fake_port)
            servers["litellm"] = litellm
        harness.configure_fake(fake_port, tokens=args.tokens, token_delay=args.token_delay)

    users = seeded["users"]
    nexus_url = f"http://127.0.0.1:{nexus_port}"
    targets: dict[str, dict[str, Any]] = {
        "direct": {
            "mode": "openai",
            "server": None,
            "body": CHAT_BODY,
            "targets": [{"url": f"http://127.0.0.1:{fake_port}/v1/chat/completions"}],
        },
        "nexus /v1/chat/completions": {
            "mode": "openai",
            "server": "nexus",
            "body": CHAT_BODY,
            "targets": [
                {
                    "url": f"{nexus_url}/v1/chat/completions",
                    "headers": {"Authorization": f"Bearer {u['api_key']}"},
                }
                for u in users
            ],
        },
        "nexus /chat/send": {
            "mode": "sse",
            "server": "nexus",
            "body": SEND_BODY,
            "targets": [
                {"url": f"{nexus_url}/chat/send", "headers": {"Authorization": f"Bearer {u['jwt']}"}}
                for u in users
            ],
        },
    }
    if not args.no_litellm:
        targets["litellm"] = {
            "mode": "openai",
            "server": "litellm",
            "body": CHAT_BODY,
            "targets": [
                {"url": f"http://127.0.0.1:{litellm_port}/v1/chat/completions", "headers": litellm_headers}
            ],
        }

    runs: list[dict[str, Any]] = []
    for clients in [int(value) for value in args.clients.split(",")]:
        per_client = max(5, args.requests // clients)
        for name, target in targets.items():
            spec = {
                "mode": target["mode"],
                "body": target["body"],
                "targets": target["targets"],
                "clients": clients,
            }
            with stage(f"{name}, {clients} client(s)"):
                harness.load({**spec, "requests_per_client": 3})  # warm-up: connections, caches
                groups = {"fake upstream": [fake]}
                if target["server"]:
                    groups["server"] = [servers[target["server"]]]
                with CpuMeter(groups) as meter:
                    outcome = harness.load({**spec, "requests_per_client": per_client})
                cpu = meter.stop()
            results = outcome["results"]
            ok = [r for r in results if not r["error"] and r["ttft"] is not None]
            errors, first_error = harness.errors_of(results)
            runs.append(
                {
                    "target": name,
                    "clients": clients,
                    "requests": len(results),
                    "errors": errors,
                    "first_error": first_error,
                    "tokens_per_reply": round(sum(r["tokens"] for r in ok) / len(ok), 1) if ok else 0,
                    "ttft_ms": summary_ms([r["ttft"] for r in ok]),
                    "total_ms": summary_ms([r["total"] for r in ok]),
                    "cpu": {**cpu, "load generator": {"cpu_percent": outcome["cpu_percent"]}},
                }
            )
    procs.stop_all()

    rows = []
    for run in runs:
        direct = next(r for r in runs if r["target"] == "direct" and r["clients"] == run["clients"])
        over_ttft = {p: round(run["ttft_ms"][p] - direct["ttft_ms"][p], 2) for p in run["ttft_ms"]}
        over_total = {p: round(run["total_ms"][p] - direct["total_ms"][p], 2) for p in run["total_ms"]}
        run["overhead_ttft_ms"], run["overhead_total_ms"] = over_ttft, over_total
        rows.append(
            [
                run["target"],
                run["clients"],
                run["requests"],
                run["errors"],
                "{p50} / {p95} / {p99}".format(**run["ttft_ms"]),
                "—" if run["target"] == "direct" else "{p50} / {p95} / {p99}".format(**over_ttft),
                "{p50} / {p95} / {p99}".format(**run["total_ms"]),
                "—" if run["target"] == "direct" else "{p50} / {p95} / {p99}".format(**over_total),
                run["cpu"].get("server", {}).get("cpu_percent", "—"),
                run["cpu"]["fake upstream"]["cpu_percent"],
                run["cpu"]["load generator"]["cpu_percent"],
            ]
        )
    print()
    print(
        harness.table(
            [
                "path",
                "clients",
                "requests",
                "errors",
                "TTFT ms p50/p95/p99",
                "TTFT overhead",
                "total ms p50/p95/p99",
                "total overhead",
                "server CPU %",
                "upstream CPU %",
                "loadgen CPU %",
            ],
            rows,
        )
    )
    path = harness.write_json(
        "overhead", {"tokens": args.tokens, "token_delay": args.token_delay, "runs": runs}
    )
    print(f"\nwrote {path.relative_to(harness.ROOT)}")


if __name__ == "__main__":
    main()
