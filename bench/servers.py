"""Benchmark: the ASGI server under Nexus, side by side (issue 21, item 4).

    python -m bench.servers [--servers daphne,uvicorn,granian] [--duration 10]

One Nexus process under each server in turn, on the same database, Redis and fake upstream:
daphne as scripts/serve runs it (access log off); uvicorn with uvloop and httptools; granian's
ASGI interface (without lifespan, which Channels' router does not speak). For each: time to
first token of a 20-token /v1/chat/completions stream with 1 and with 20 clients, one-token
calls per second at 50 clients, and whether a /chat/send SSE stream and a WebSocket turn work.
Writes bench/results/servers.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
from typing import Any

import aiohttp

from bench import harness
from bench.harness import MODEL, CpuMeter, Processes, stage, summary_ms

BODY = {"model": MODEL, "messages": [{"role": "user", "content": "Twenty words."}], "stream": True}


def command(server: str, port: int) -> list[str]:
    python, app, host = harness.PYTHON, "nexus.asgi:application", "127.0.0.1"
    if server == "daphne":
        return [python, "-m", "daphne", "--access-log", "/dev/null", "-b", host, "-p", str(port), app]
    if server == "uvicorn":
        return [
            *(python, "-m", "uvicorn", app, "--host", host, "--port", str(port)),
            *("--loop", "uvloop", "--http", "httptools", "--no-access-log", "--lifespan", "off"),
        ]
    if server == "granian":
        return [
            *(python, "-m", "granian", "--interface", "asginl", "--host", host, "--port", str(port)),
            *("--no-access-log", app),
        ]
    raise SystemExit(f"unknown server {server!r}")


async def websocket_turn(url: str, token: str) -> bool:
    """A turn over the WebSocket: `send`, then the events up to `done`."""
    async with aiohttp.ClientSession() as session, session.ws_connect(f"{url}/ws/chat?token={token}") as ws:
        await ws.send_str(json.dumps({"type": "send", "message": "Hi", "model": MODEL}))
        async for message in ws:
            event = json.loads(message.data)
            if event.get("type") in ("done", "error"):
                return bool(event.get("type") == "done")
    return False


async def sse_turn(url: str, token: str) -> bool:
    headers = {"Authorization": f"Bearer {token}"}
    async with (
        aiohttp.ClientSession() as session,
        session.post(f"{url}/chat/send", json={"message": "Hi", "model": MODEL}, headers=headers) as response,
    ):
        return b"event: done" in await response.read()


def measure(
    server: str, port: int, process: Any, fake: Any, fake_port: int, seeded: dict[str, Any], args: Any
) -> dict[str, Any]:
    url = f"http://127.0.0.1:{port}"
    targets = [
        {"url": f"{url}/v1/chat/completions", "headers": {"Authorization": f"Bearer {u['api_key']}"}}
        for u in seeded["users"]
    ]
    groups = {"server": [process], "fake upstream": [fake]}
    row: dict[str, Any] = {"server": server}
    harness.configure_fake(fake_port, tokens=20, token_delay=0.001)
    for clients in (1, 20):
        spec = {"mode": "openai", "body": BODY, "targets": targets, "clients": clients}
        with stage(f"{server}: 20-token streams, {clients} client(s)"):
            harness.load({**spec, "requests_per_client": 3})
            outcome = harness.load({**spec, "requests_per_client": max(5, args.requests // clients)})
        ok = [r for r in outcome["results"] if not r["error"] and r["ttft"] is not None]
        row[f"ttft_{clients}"] = summary_ms([r["ttft"] for r in ok])
        row[f"errors_{clients}"] = harness.errors_of(outcome["results"])[0]
    harness.configure_fake(fake_port, tokens=1, token_delay=0)
    spec = {"mode": "openai", "body": BODY, "targets": targets, "clients": 50, "timeout": 60}
    with stage(f"{server}: one-token calls, 50 clients for {args.duration:.0f} s"):
        harness.load({**spec, "duration": 3})
        with CpuMeter(groups) as meter:
            outcome = harness.load({**spec, "duration": args.duration})
        cpu = meter.stop()
    ok = [r for r in outcome["results"] if not r["error"]]
    row["calls_per_second"] = round(len(ok) / outcome["wall"], 1)
    row["errors_50"] = harness.errors_of(outcome["results"])[0]
    row["server_cpu_percent"] = cpu["server"]["cpu_percent"]
    row["rss_mb"] = round(process.memory_info().rss / 2**20, 1)
    jwt = seeded["users"][0]["jwt"]
    row["sse"] = asyncio.run(sse_turn(url, jwt))
    row["websocket"] = asyncio.run(websocket_turn(url, jwt))
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--servers", default="daphne,uvicorn,granian")
    parser.add_argument("--requests", type=int, default=100, help="streams per client count")
    parser.add_argument("--duration", type=float, default=10)
    args = parser.parse_args()

    procs = Processes()
    with stage("database, fake upstream"):
        harness.database_prepare()
        fake_port, fake = harness.start_fake_upstream(procs)
        seeded = harness.seed(upstream_port=fake_port, users=50)
    rows = []
    for server in args.servers.split(","):
        port = harness.free_port()
        process = procs.start(server, command(server, port), env=harness.server_env())
        harness.wait_http(f"http://127.0.0.1:{port}/health", process=process)
        rows.append(measure(server, port, process, fake, fake_port, seeded, args))
        procs.stop(server)
    procs.stop_all()

    print()
    print(
        harness.table(
            [
                "server",
                "1 client TTFT p50 ms",
                "20 clients TTFT p50 / p99 ms",
                "1-token calls/s, 50 clients",
                "server CPU %",
                "RSS MB",
                "errors",
                "SSE",
                "WebSocket",
            ],
            [
                [
                    row["server"],
                    row["ttft_1"]["p50"],
                    "{p50} / {p99}".format(**row["ttft_20"]),
                    row["calls_per_second"],
                    row["server_cpu_percent"],
                    row["rss_mb"],
                    row["errors_1"] + row["errors_20"] + row["errors_50"],
                    "ok" if row["sse"] else "FAILED",
                    "ok" if row["websocket"] else "FAILED",
                ]
                for row in rows
            ],
        )
    )
    path = harness.write_json("servers", {"runs": rows})
    print(f"\nwrote {path.relative_to(harness.ROOT)}")


if __name__ == "__main__":
    main()
