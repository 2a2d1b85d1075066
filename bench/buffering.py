"""The per-token cost of stream buffering: StreamHub.publish, in-process, with and without Redis.

    python -m bench.buffering [--tokens 20000] [--streams 1,100]

Each case publishes `tokens` delta events spread over `streams` streams from one event
loop, as running turns do, then waits until Redis has them all (`drain`). Reports the cost
per token of the publish calls alone (what a turn pays inline) and of publish plus the
batched Redis writes (what the process pays in all). Writes bench/results/buffering.json.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time
from typing import Any

import django

from bench import harness

os.environ.update(harness.server_env())
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "nexus.settings")
django.setup()

from django.test import override_settings  # noqa: E402

from chats.streams import StreamHub  # noqa: E402


async def publish_all(tokens: int, streams: int) -> tuple[float, float]:
    hub = StreamHub()
    keys = [f"bench:{time.monotonic_ns()}:{index}" for index in range(streams)]
    for key in keys:
        hub.open(key)
    inline = 0.0
    started = time.perf_counter()
    for index in range(tokens):
        key = keys[index % streams]
        before = time.perf_counter()
        hub.publish(key, "delta", {"content": " word"})
        inline += time.perf_counter() - before
        if index % streams == streams - 1:
            await asyncio.sleep(0)  # the loop runs between tokens, as it does between chunks
    for key in keys:
        hub.publish(key, "done", {"finish_reason": "stop"})
    await asyncio.gather(*(hub.drain(key) for key in keys))
    total = time.perf_counter() - started
    client = hub.redis()
    if client is not None:
        await client.delete(*[f"nexus:stream:{key}" for key in keys])
        await client.aclose()
    return inline, total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tokens", type=int, default=20_000)
    parser.add_argument("--streams", default="1,100")
    args = parser.parse_args()
    runs: list[dict[str, Any]] = []
    for streams in [int(value) for value in args.streams.split(",")]:
        for mirrored in (False, True):
            with override_settings(REDIS_URL=harness.REDIS_URL if mirrored else ""):
                asyncio.run(publish_all(1000, streams))  # warm-up
                inline, total = asyncio.run(publish_all(args.tokens, streams))
            runs.append(
                {
                    "redis": mirrored,
                    "streams": streams,
                    "tokens": args.tokens,
                    "publish_us_per_token": round(inline / args.tokens * 1e6, 2),
                    "all_us_per_token": round(total / args.tokens * 1e6, 2),
                }
            )
    print(
        harness.table(
            ["Redis mirroring", "streams", "tokens", "publish µs/token", "publish + Redis writes µs/token"],
            [
                [
                    "on" if r["redis"] else "off",
                    r["streams"],
                    r["tokens"],
                    r["publish_us_per_token"],
                    r["all_us_per_token"],
                ]
                for r in runs
            ],
        )
    )
    path = harness.write_json("buffering", {"runs": runs})
    print(f"\nwrote {path.relative_to(harness.ROOT)}")


if __name__ == "__main__":
    main()
