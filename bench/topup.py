"""Benchmark: what growing a call's reservation as its reply streams costs.

    python -m bench.topup [--requests 25] [--tokens 512] [--clients 4]

A reply is held to what its budget can pay by counting its tokens as they stream (an
estimate per delta) and reserving a step more whenever they reach what is reserved (one
transaction on PostgreSQL per step). Side by side, on one daphne process with the fake
upstream sending 512-token replies (the bench model's maximum output) at once over /chat/send:

- whole: everything the reply may generate reserved up front (as before: no step is taken);
- default: RESERVE_OUTPUT_TOKENS=4096, RESERVE_STEP_TOKENS=1024 (no step for these replies);
- small steps: 256 and 256, so each reply takes one step.

Prints the server's CPU per call and per token, and the estimate's own cost per delta.
"""

from __future__ import annotations

import argparse
import os
import timeit
from typing import Any

from bench import harness
from bench.harness import MODEL, CpuMeter, Processes, stage

CONFIGS = {
    "whole (as before)": {"RESERVE_OUTPUT_TOKENS": "1000000", "RESERVE_STEP_TOKENS": "1000000"},
    "default (4096 + 1024 steps)": {},
    "small steps (256 + 256)": {"RESERVE_OUTPUT_TOKENS": "256", "RESERVE_STEP_TOKENS": "256"},
}


def estimate_per_delta_us() -> float:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "nexus.settings")
    from llm.tokens import estimate_tokens

    deltas = [" word", " the", " tokenizer", " 2026", ",", " 中文"] * 1000
    seconds = timeit.timeit(lambda: [max(1, estimate_tokens(delta)) for delta in deltas], number=20)
    return seconds / (20 * len(deltas)) * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=25, help="requests per client")
    parser.add_argument("--tokens", type=int, default=512)
    parser.add_argument("--clients", type=int, default=4)
    args = parser.parse_args()

    procs = Processes()
    rows: list[list[Any]] = []
    with stage("database, fake upstream"):
        harness.database_prepare()
        fake_port, _fake = harness.start_fake_upstream(procs)
        seeded = harness.seed(upstream_port=fake_port, users=args.clients)
        harness.configure_fake(fake_port, tokens=args.tokens, token_delay=0)
    try:
        for name, env in CONFIGS.items():
            with stage(name):
                port, nexus = harness.start_nexus(procs, name=name, **env)
                spec = {
                    "mode": "sse",
                    "body": {"message": "Talk at length.", "model": MODEL},
                    "targets": [
                        {
                            "url": f"http://127.0.0.1:{port}/chat/send",
                            "headers": {"Authorization": f"Bearer {user['jwt']}"},
                        }
                        for user in seeded["users"]
                    ],
                    "clients": args.clients,
                }
                harness.load({**spec, "requests_per_client": 2})  # warm-up
                with CpuMeter({"server": [nexus]}) as meter:
                    outcome = harness.load({**spec, "requests_per_client": args.requests})
                cpu = meter.stop()["server"]["cpu_percent"] / 100 * outcome["wall"]
                results = outcome["results"]
                errors, first_error = harness.errors_of(results)
                calls = len(results) - errors
                tokens = sum(result["tokens"] for result in results if not result["error"])
                rows.append(
                    [
                        name,
                        calls,
                        errors,
                        round(tokens / calls) if calls else 0,
                        round(1000 * cpu / calls, 1) if calls else "—",
                        round(1e6 * cpu / tokens, 1) if tokens else "—",
                    ]
                )
                if first_error:
                    print(f"  first error: {first_error}")
                harness.configure_fake(fake_port, tokens=args.tokens, token_delay=0)
    finally:
        procs.stop_all()
    headers = ["reservation", "calls", "errors", "tokens/call", "server CPU ms/call", "server CPU µs/token"]
    print(harness.table(headers, rows))
    print(f"the token estimate alone: {estimate_per_delta_us():.2f} µs per delta")


if __name__ == "__main__":
    main()
