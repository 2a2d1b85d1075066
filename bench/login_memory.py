"""What simultaneous logins cost a server process, with the password-hashing bound off and on.

    python -m bench.login_memory [--logins 20] [--concurrency 2] [--wait 1]

One daphne process per run, production-like (bench.harness), hashing with Django's Argon2 at
its real cost (about 100 MiB per hash in progress). `logins` clients post a wrong password
for unknown emails at the same moment (unknown emails hash like known ones), while /health is
probed every 50 ms. Side by side: PASSWORD_HASH_CONCURRENCY=0 (unbounded, as before issue 17)
and the bound (`--concurrency`, waiting `--wait` s for a slot, then 503 busy). Printed: the
server's RSS before, its peak (VmHWM) during the burst and RSS after, the wall time of the
burst, what the logins got, and /health's latency. Writes bench/results/login_memory.json.
"""

from __future__ import annotations

import argparse
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import psutil

from bench import harness
from bench.harness import Processes, stage


def peak_rss_mib(process: psutil.Process) -> float:
    for line in Path(f"/proc/{process.pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def rss_mib(process: psutil.Process) -> float:
    return float(process.memory_info().rss) / 2**20


def run(procs: Processes, *, logins: int, concurrency: int, wait: float) -> dict[str, Any]:
    port, process = harness.start_nexus(
        procs,
        name=f"nexus-hash-{concurrency}",
        PASSWORD_HASH_CONCURRENCY=str(concurrency),
        PASSWORD_HASH_WAIT=str(wait),
        LOGIN_FAILURES_PER_ADDRESS="1000000",  # the throttle is not what is measured here
    )
    url = f"http://127.0.0.1:{port}"
    with httpx.Client(base_url=url, timeout=120) as client:
        client.post("/auth/login", json={"email": "warmup@example.com", "password": "x"})
        time.sleep(1)
        before, peak_before = rss_mib(process), peak_rss_mib(process)

        health: list[float] = []
        done = threading.Event()

        def probe() -> None:
            with httpx.Client(base_url=url, timeout=120) as prober:
                while not done.is_set():
                    started = time.monotonic()
                    prober.get("/health")
                    health.append(time.monotonic() - started)
                    time.sleep(0.05)

        def login(n: int) -> str:
            try:
                response = client.post(
                    "/auth/login", json={"email": f"nobody{n}@example.com", "password": "guess"}
                )
            except httpx.HTTPError as exc:
                return type(exc).__name__
            return str(response.status_code)

        prober = threading.Thread(target=probe)
        prober.start()
        started = time.monotonic()
        with ThreadPoolExecutor(max_workers=logins) as pool:
            outcomes = Counter(pool.map(login, range(logins)))
        burst = time.monotonic() - started
        done.set()
        prober.join()
        time.sleep(1)
        after, peak = rss_mib(process), peak_rss_mib(process)
    procs.stop(f"nexus-hash-{concurrency}")
    return {
        "concurrency": concurrency,
        "rss_before_mib": round(before, 1),
        "peak_rss_mib": round(peak, 1),
        "peak_growth_mib": round(peak - max(before, peak_before), 1),
        "rss_after_mib": round(after, 1),
        "burst_seconds": round(burst, 2),
        "outcomes": dict(outcomes),
        "health_ms": {**harness.summary_ms(health), "max": round(max(health) * 1000, 1)},
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--logins", type=int, default=20)
    parser.add_argument("--concurrency", type=int, default=2)
    parser.add_argument("--wait", type=float, default=1.0)
    args = parser.parse_args()

    procs = Processes()
    with stage("bench database"):
        harness.database_prepare()
    results = []
    for concurrency in (0, args.concurrency):
        label = "unbounded" if concurrency == 0 else f"bound {concurrency}, wait {args.wait:g} s"
        with stage(f"{args.logins} simultaneous logins, {label}"):
            results.append(run(procs, logins=args.logins, concurrency=concurrency, wait=args.wait))

    rows = [
        [
            "off (unbounded)" if result["concurrency"] == 0 else f"on ({result['concurrency']} at once)",
            result["rss_before_mib"],
            result["peak_rss_mib"],
            result["rss_after_mib"],
            result["burst_seconds"],
            ", ".join(f"{count} x {status}" for status, count in sorted(result["outcomes"].items())),
            result["health_ms"]["p50"],
            result["health_ms"]["max"],
        ]
        for result in results
    ]
    print()
    print(
        harness.table(
            [
                "hashing bound",
                "RSS before MiB",
                "peak RSS MiB",
                "RSS after MiB",
                "burst s",
                "logins got",
                "/health p50 ms",
                "/health max ms",
            ],
            rows,
        )
    )
    path = harness.write_json("login_memory", {"logins": args.logins, "wait": args.wait, "runs": results})
    print(f"\n{path}")


if __name__ == "__main__":
    main()
