"""Memory a server process keeps per finished turn: the stream events held after the reply.

    python -m bench.turn_memory [--turns 1000] [--warmup 500] [--tokens 500] [--clients 4]

One daphne process per path, configured as users run Nexus (PostgreSQL, Redis, the
production-like environment of bench.harness). The fake upstream sends replies of `tokens`
words at once. After `warmup` turns (the process's caches and allocator arenas fill up over
the first few hundred) its resident memory (RSS) is read, `turns` turns are run to their end
by `clients` concurrent clients, and RSS is read again a second later: the growth divided by
the turns is what each finished turn leaves behind (what Python's allocator keeps counts
too, as it does for users). Side by side: the gateway
(`/v1/chat/completions`, streamed and not; nobody can resume its turns) and `/chat/send`
(resumable; its events stay in this process for STREAM_MEMORY_SECONDS, in Redis for
STREAM_BUFFER_SECONDS). Writes bench/results/turn_memory.json.
"""

from __future__ import annotations

import argparse
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import psutil

from bench import harness
from bench.harness import MODEL, Processes, stage

PROMPT = [{"role": "user", "content": "Tell me a long story."}]
PATHS: list[tuple[str, str, dict[str, Any], str]] = [
    (
        "/v1/chat/completions, stream",
        "/v1/chat/completions",
        {"model": MODEL, "messages": PROMPT, "stream": True},
        "api_key",
    ),
    (
        "/v1/chat/completions, not streamed",
        "/v1/chat/completions",
        {"model": MODEL, "messages": PROMPT},
        "api_key",
    ),
    ("/chat/send (resumable)", "/chat/send", {"message": "Tell me a long story.", "model": MODEL}, "jwt"),
]


def run_turns(url: str, body: dict[str, Any], token: str, turns: int, clients: int) -> int:
    """Runs `turns` turns to their end; returns how many failed."""
    headers = {"Authorization": f"Bearer {token}"}

    def one(_: int) -> bool:
        with httpx.Client(timeout=60) as client:
            response = client.post(url, json=body, headers=headers)
            return response.status_code == 200 and b"error" not in response.content[-400:]

    with ThreadPoolExecutor(clients) as pool:
        return sum(1 for ok in pool.map(one, range(turns)) if not ok)


def rss_mib(process: psutil.Process) -> float:
    return process.memory_info().rss / 2**20


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--turns", type=int, default=1000)
    parser.add_argument("--warmup", type=int, default=500)
    parser.add_argument("--tokens", type=int, default=500)
    parser.add_argument("--clients", type=int, default=4)
    args = parser.parse_args()

    procs = Processes()
    with stage("database, fake upstream"):
        harness.database_prepare()
        fake_port, _ = harness.start_fake_upstream(procs)
        user = harness.seed(upstream_port=fake_port, users=1)["users"][0]
        harness.configure_fake(fake_port, tokens=args.tokens, token_delay=0)
    runs = []
    for index, (name, path, body, credential) in enumerate(PATHS):
        port, process = harness.start_nexus(procs, name=f"nexus-{index}")
        url = f"http://127.0.0.1:{port}{path}"
        with stage(f"{name}: {args.turns} turns of {args.tokens} tokens"):
            run_turns(url, body, user[credential], args.warmup, args.clients)
            time.sleep(1)
            before = rss_mib(process)
            started = time.monotonic()
            errors = run_turns(url, body, user[credential], args.turns, args.clients)
            wall = time.monotonic() - started
            time.sleep(1)
            after = rss_mib(process)
        procs.stop(f"nexus-{index}")
        runs.append(
            {
                "path": name,
                "turns": args.turns,
                "warmup": args.warmup,
                "tokens": args.tokens,
                "errors": errors,
                "turns_per_second": round(args.turns / wall, 1),
                "rss_before_mib": round(before, 1),
                "rss_after_mib": round(after, 1),
                "kib_per_turn": round((after - before) * 1024 / args.turns, 1),
            }
        )
    procs.stop_all()
    print()
    print(
        harness.table(
            [
                "path",
                "turns",
                "tokens",
                "errors",
                "turns/s",
                "RSS before MiB",
                "RSS after MiB",
                "KiB per finished turn",
            ],
            [
                [
                    r["path"],
                    r["turns"],
                    r["tokens"],
                    r["errors"],
                    r["turns_per_second"],
                    r["rss_before_mib"],
                    r["rss_after_mib"],
                    r["kib_per_turn"],
                ]
                for r in runs
            ],
        )
    )
    written = harness.write_json("turn_memory", {"runs": runs})
    print(f"\nwrote {written.relative_to(harness.ROOT)}")


if __name__ == "__main__":
    main()
