"""Benchmark 4, reads: /chat/history and /chat/conversations with 1,000,000 messages stored.

    python -m bench.reads [--requests 200]

bench.fill puts the messages in the bench database (once). Then, with one daphne process
and one client, each endpoint is read for a user with 10 conversations and for one with
10,000: the first page (20 conversations; history includes their messages) and, for the
large user, a page deep in the list. Writes bench/results/reads.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import subprocess
import time
from typing import Any

import aiohttp

from bench import harness
from bench.harness import CpuMeter, Processes, stage, summary_ms


async def timed_gets(url: str, token: str, count: int) -> tuple[list[float], int, float]:
    headers = {"Authorization": f"Bearer {token}"}
    times: list[float] = []
    errors = 0
    cpu0 = resource.getrusage(resource.RUSAGE_SELF)
    async with aiohttp.ClientSession() as session:
        for index in range(count + 10):
            started = time.perf_counter()
            async with session.get(url, headers=headers) as response:
                body = await response.read()
            if index >= 10:  # the first ten warm up
                times.append(time.perf_counter() - started)
                errors += response.status != 200 or not body
    cpu1 = resource.getrusage(resource.RUSAGE_SELF)
    cpu = cpu1.ru_utime - cpu0.ru_utime + cpu1.ru_stime - cpu0.ru_stime
    return times, errors, cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--messages", type=int, default=1_000_000)
    args = parser.parse_args()

    procs = Processes()
    with stage(f"database with {args.messages} messages"):
        harness.database_prepare()
        output = subprocess.run(
            [harness.PYTHON, "-m", "bench.fill", "--messages", str(args.messages)],
            cwd=harness.ROOT,
            env=harness.server_env(),
            check=True,
            capture_output=True,
            text=True,
        )
        print(output.stderr.strip())
        tokens = json.loads(output.stdout)
    with stage("Nexus"):
        port, nexus = harness.start_nexus(procs)
    base = f"http://127.0.0.1:{port}"
    cases = [
        ("/chat/history", "10 conversations", "small", "/chat/history"),
        ("/chat/history", "10,000 conversations", "large", "/chat/history"),
        ("/chat/history", "10,000 conversations, page 400", "large", "/chat/history?page=400"),
        ("/chat/conversations", "10 conversations", "small", "/chat/conversations"),
        ("/chat/conversations", "10,000 conversations", "large", "/chat/conversations"),
        ("/chat/conversations", "10,000 conversations, page 400", "large", "/chat/conversations?page=400"),
    ]
    runs: list[dict[str, Any]] = []
    for endpoint, who, user, path in cases:
        with stage(f"{endpoint}, {who}"), CpuMeter({"server": [nexus]}) as meter:
            started = time.perf_counter()
            times, errors, client_cpu = asyncio.run(timed_gets(base + path, tokens[user], args.requests))
            wall = time.perf_counter() - started
        runs.append(
            {
                "endpoint": endpoint,
                "user": who,
                "path": path,
                "requests": len(times),
                "errors": errors,
                "latency_ms": summary_ms(times),
                "cpu": {**meter.stop(), "load generator": {"cpu_percent": round(100 * client_cpu / wall, 1)}},
            }
        )
    procs.stop_all()
    rows = [
        [
            run["endpoint"],
            run["user"],
            run["requests"],
            run["errors"],
            run["latency_ms"]["p50"],
            run["latency_ms"]["p95"],
            run["latency_ms"]["p99"],
            run["cpu"]["server"]["cpu_percent"],
            run["cpu"]["load generator"]["cpu_percent"],
        ]
        for run in runs
    ]
    print()
    print(
        harness.table(
            [
                "endpoint",
                "user",
                "requests",
                "errors",
                "p50 ms",
                "p95 ms",
                "p99 ms",
                "server CPU %",
                "client CPU %",
            ],
            rows,
        )
    )
    written = harness.write_json("reads", {"messages": args.messages, "runs": runs})
    print(f"\nwrote {written.relative_to(harness.ROOT)}")


if __name__ == "__main__":
    main()
