"""The load generator: streaming clients in a process of their own, results as JSON.

    python -m bench.loadgen < spec.json > results.json

The spec names the wire format (`sse`: Nexus's /chat/send events; `openai`: chat
completion chunks), the targets (url and headers; client i uses target i mod n), the body,
the number of clients and either `requests_per_client` or `duration` seconds. Every client
starts at `start_at` (a wall-clock time), so several load-generator processes start as one.

Tokens are counted from the raw bytes (no JSON parsing), so the generator stays cheap: one
`event: delta` is one token for `sse`; one non-empty `"content"` is one for `openai`. The
result holds, per request, the time to first token, the total time, the tokens, the gaps
between tokens (when asked) and the error, if any; and the CPU time this process used.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import re
import resource
import sys
import time
from typing import Any

import aiohttp

_OPENAI_TOKEN = re.compile(rb'"content": ?"[^"]')
_SSE_TOKEN = b"event: delta"


def _count(mode: str, block: bytes) -> int:
    if mode == "sse":
        return block.count(_SSE_TOKEN)
    return len(_OPENAI_TOKEN.findall(block))


def _failed(mode: str, block: bytes) -> str | None:
    if mode == "sse":
        if b"event: error" in block:
            return "error event: " + block[block.find(b"event: error") :][:200].decode(errors="replace")
        return None
    if b'"error"' in block:
        return "error chunk: " + block[block.find(b'"error"') :][:200].decode(errors="replace")
    return None


def _ended(mode: str, block: bytes) -> bool:
    if mode == "sse":
        return b"event: done" in block or b"event: error" in block
    return b"[DONE]" in block


async def one_request(
    session: aiohttp.ClientSession, mode: str, target: dict[str, Any], body: dict[str, Any], gaps: bool
) -> dict[str, Any]:
    started = time.perf_counter()
    result: dict[str, Any] = {"ttft": None, "total": None, "tokens": 0, "error": None}
    token_times: list[float] = []
    try:
        async with session.post(target["url"], json=body, headers=target.get("headers", {})) as response:
            if response.status != 200:
                text = (await response.read())[:300].decode(errors="replace")
                result["error"] = f"HTTP {response.status}: {text}"
                result["total"] = time.perf_counter() - started
                return result
            tail = b""
            ended = False
            async for chunk in response.content.iter_any():
                now = time.perf_counter()
                block = tail + chunk
                cut = block.rfind(b"\n\n")
                if cut < 0:
                    tail = block
                    continue
                complete, tail = block[: cut + 2], block[cut + 2 :]
                tokens = _count(mode, complete)
                if tokens:
                    if result["ttft"] is None:
                        result["ttft"] = now - started
                    result["tokens"] += tokens
                    if gaps:
                        token_times.extend([now] * tokens)
                error = _failed(mode, complete)
                if error:
                    result["error"] = error
                if _ended(mode, complete):
                    ended = True
                    break
            if not ended and result["error"] is None:
                result["error"] = "stream ended without its last event"
    except (TimeoutError, aiohttp.ClientError, OSError) as exc:
        result["error"] = f"{type(exc).__name__}: {exc}"
    result["total"] = time.perf_counter() - started
    if gaps and len(token_times) > 1:
        result["gaps"] = [round(b - a, 5) for a, b in itertools.pairwise(token_times)]
    return result


async def client(
    index: int, session: aiohttp.ClientSession, spec: dict[str, Any], out: list[dict[str, Any]]
) -> None:
    targets = spec["targets"]
    target = targets[index % len(targets)]
    mode, body, gaps = spec["mode"], spec["body"], spec.get("gaps", False)
    deadline = time.perf_counter() + spec["duration"] if spec.get("duration") else None
    count = spec.get("requests_per_client", 1_000_000 if deadline else 1)
    for _ in range(count):
        if deadline is not None and time.perf_counter() >= deadline:
            break
        result = await one_request(session, mode, target, body, gaps)
        result["finished_at"] = time.time()
        out.append(result)


async def run(spec: dict[str, Any]) -> dict[str, Any]:
    connector = aiohttp.TCPConnector(limit=0, force_close=False)
    timeout = aiohttp.ClientTimeout(total=spec.get("timeout", 120))
    results: list[dict[str, Any]] = []
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        delay = spec.get("start_at", 0) - time.time()
        if delay > 0:
            await asyncio.sleep(min(delay, 30))
        cpu0 = resource.getrusage(resource.RUSAGE_SELF)
        wall0 = time.perf_counter()
        await asyncio.gather(*(client(index, session, spec, results) for index in range(spec["clients"])))
        wall = time.perf_counter() - wall0
        cpu1 = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (cpu1.ru_utime - cpu0.ru_utime) + (cpu1.ru_stime - cpu0.ru_stime)
    return {"results": results, "wall": wall, "cpu_seconds": cpu}


def main() -> None:
    spec = json.load(sys.stdin)
    json.dump(asyncio.run(run(spec)), sys.stdout)


if __name__ == "__main__":
    main()
