"""Profiles one Nexus process under the throughput load with py-spy.

    python -m bench.profile [--duration 15] [--clients 32] [--path /v1/chat/completions]

Starts the fake upstream and one daphne, drives one-token replies at it (as
bench.throughput does) while py-spy samples every thread, and writes
bench/results/profile.txt (collapsed stacks) and bench/results/profile.svg (a flame graph).
Prints the calls per second measured while sampling (slower than without py-spy) and the
functions that hold the most samples, by their own time and with what they call.
"""

from __future__ import annotations

import argparse
import collections
import subprocess
import sys
import time
from pathlib import Path

from bench import harness
from bench.harness import MODEL, RESULTS, Processes, stage

BODIES = {
    "/v1/chat/completions": {
        "model": MODEL,
        "messages": [{"role": "user", "content": "One word."}],
        "stream": True,
    },
    "/chat/send": {"message": "One word.", "model": MODEL},
}


def _py_spy() -> str:
    return str(Path(sys.executable).with_name("py-spy"))


def top(collapsed: Path, count: int) -> tuple[list[tuple[str, int]], list[tuple[str, int]], int]:
    own: collections.Counter[str] = collections.Counter()
    inclusive: collections.Counter[str] = collections.Counter()
    total = 0
    for line in collapsed.read_text().splitlines():
        stack, _, samples = line.rpartition(" ")
        n = int(samples)
        frames = stack.split(";")
        total += n
        own[frames[-1]] += n
        for frame in set(frames):
            inclusive[frame] += n
    return own.most_common(count), inclusive.most_common(count), total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--duration", type=float, default=15)
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--path", choices=sorted(BODIES), default="/v1/chat/completions")
    parser.add_argument("--top", type=int, default=40)
    parser.add_argument("--rate", type=int, default=250, help="py-spy samples per second")
    args = parser.parse_args()

    procs = Processes()
    with stage("database, fake upstream, one Nexus"):
        harness.database_prepare()
        fake_port, _ = harness.start_fake_upstream(procs)
        seeded = harness.seed(upstream_port=fake_port, users=100)
        harness.configure_fake(fake_port, tokens=1, token_delay=0)
        port, server = harness.start_nexus(procs)
    key = "api_key" if args.path.startswith("/v1") else "jwt"
    targets = [
        {"url": f"http://127.0.0.1:{port}{args.path}", "headers": {"Authorization": f"Bearer {u[key]}"}}
        for u in seeded["users"]
    ]
    mode = "openai" if args.path.startswith("/v1") else "sse"
    spec = {
        "mode": mode,
        "body": BODIES[args.path],
        "targets": targets,
        "clients": args.clients,
        "timeout": 60,
    }
    harness.load({**spec, "duration": 3})  # warm-up
    collapsed = RESULTS / "profile.txt"
    spy = subprocess.Popen(
        [
            _py_spy(),
            "record",
            "--pid",
            str(server.pid),
            "--rate",
            str(args.rate),
            "--format",
            "raw",
            "--output",
            str(collapsed),
            "--threads",
            "--gil",
            "--nonblocking",
            "--duration",
            str(int(args.duration) + 2),
        ],
        stdout=subprocess.DEVNULL,
    )
    time.sleep(1)
    with stage(f"{args.clients} clients for {args.duration:.0f} s under py-spy"):
        outcome = harness.load({**spec, "duration": args.duration})
    spy.wait()
    ok = [r for r in outcome["results"] if not r["error"]]
    errors = len(outcome["results"]) - len(ok)
    print(f"calls/s under sampling: {len(ok) / outcome['wall']:.1f}, errors: {errors}")
    own, inclusive, total = top(collapsed, args.top)
    print(f"\n{total} samples. Own time:")
    for frame, n in own:
        print(f"{100 * n / total:6.1f}%  {frame}")
    print("\nWith callees:")
    for frame, n in inclusive:
        print(f"{100 * n / total:6.1f}%  {frame}")
    procs.stop_all()


if __name__ == "__main__":
    main()
