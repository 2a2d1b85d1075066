"""What every benchmark shares: the bench database, server processes, CPU meters, tables.

Each benchmark script starts what it needs (daphne, the fake upstream, LiteLLM) through
`Processes`, which stops them all on exit, on Ctrl-C and on SIGTERM. Everything listens on
127.0.0.1 only. The load generator runs as processes of its own (bench.loadgen), so its
CPU is measured apart from the server's.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import platform
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import psutil

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
PYTHON = sys.executable
PG_SERVER = os.environ.get("BENCH_PG", "postgres://postgres@127.0.0.1:5432")
DB_NAME = os.environ.get("BENCH_DB", "nexus_bench")
DATABASE_URL = f"{PG_SERVER}/{DB_NAME}"
REDIS_URL = os.environ.get("BENCH_REDIS", "redis://127.0.0.1:6379/7")
MODEL = "fake-model"


def server_env(**extra: str) -> dict[str, str]:
    """A production-like Nexus: DEBUG off, quiet logs; limits high but still checked."""
    env = dict(os.environ)
    env.update(
        DATABASE_URL=DATABASE_URL,
        REDIS_URL=REDIS_URL,
        DEBUG="false",
        SECRET_KEY="bench-secret-key-not-for-production-0123456789",
        ALLOWED_HOSTS="127.0.0.1,localhost",
        LOG_LEVEL="warning",
        # The rate limit and the quota still run on every call (a Redis INCR, conditional
        # UPDATEs); they are only set high enough never to refuse one.
        AI_CALLS_PER_MINUTE="100000000",
        DEFAULT_MONTHLY_BUDGET="100000000",
        ACCESS_TOKEN_MINUTES="600",
        SEED_DEMO_PROVIDER="false",
        DEFAULT_MODEL=MODEL,
        PYTHONPATH=str(ROOT),
    )
    env.update(extra)
    return env


# --- processes -------------------------------------------------------------------------


class Processes:
    """Child processes that are stopped, with their own children, however the script ends."""

    def __init__(self) -> None:
        self.children: dict[str, subprocess.Popen[bytes]] = {}
        self.logs: list[Any] = []
        atexit.register(self.stop_all)
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, self._on_signal)

    def _on_signal(self, signum: int, frame: Any) -> None:
        self.stop_all()
        raise SystemExit(128 + signum)

    def start(
        self, name: str, argv: Sequence[str], *, env: dict[str, str] | None = None, cwd: Path = ROOT
    ) -> psutil.Process:
        RESULTS.mkdir(parents=True, exist_ok=True)
        log = open(RESULTS / f"{name}.log", "wb")  # noqa: SIM115 (closed in stop_all)
        self.logs.append(log)
        process = subprocess.Popen(
            list(argv), env=env, cwd=cwd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        self.children[name] = process
        return psutil.Process(process.pid)

    def stop(self, name: str) -> None:
        process = self.children.pop(name, None)
        if process is None or process.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=5)

    def stop_all(self) -> None:
        for name in list(self.children):
            self.stop(name)
        for log in self.logs:
            log.close()
        self.logs.clear()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_http(url: str, timeout: float = 60.0, process: psutil.Process | None = None) -> None:
    """Waits until `url` answers at all (any status)."""
    import urllib.error
    import urllib.request

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and (not process.is_running() or process.status() == psutil.STATUS_ZOMBIE):
            raise RuntimeError(f"process {process.pid} exited before {url} answered")
        try:
            urllib.request.urlopen(url, timeout=2)  # noqa: S310 (127.0.0.1 only)
            return
        except urllib.error.HTTPError:
            return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"{url} did not answer within {timeout:.0f} s")


def post_json(url: str, body: dict[str, Any]) -> Any:
    import urllib.request

    request = urllib.request.Request(  # noqa: S310 (127.0.0.1 only)
        url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}, method="POST"
    )
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
        return json.loads(response.read() or b"null")


def start_fake_upstream(procs: Processes, name: str = "fake-upstream") -> tuple[int, psutil.Process]:
    port = free_port()
    process = procs.start(name, [PYTHON, "-m", "fake_upstream", "--port", str(port)], env=server_env())
    wait_http(f"http://127.0.0.1:{port}/_requests", process=process)
    return port, process


def configure_fake(port: int, **knobs: Any) -> None:
    """Knobs of the fake upstream; its record of requests is cleared so it cannot grow."""
    post_json(f"http://127.0.0.1:{port}/_reset", {})
    post_json(f"http://127.0.0.1:{port}/_control", knobs)


def start_nexus(procs: Processes, name: str = "nexus", **env: str) -> tuple[int, psutil.Process]:
    port = free_port()
    process = procs.start(
        name,
        [PYTHON, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port), "nexus.asgi:application"],
        env=server_env(**env),
    )
    wait_http(f"http://127.0.0.1:{port}/health", process=process)
    return port, process


# --- the bench database ----------------------------------------------------------------


def database_prepare(*, fresh: bool = False) -> None:
    """Creates (or, `fresh`, recreates) the bench database, migrates it, empties Redis db."""
    import psycopg

    with psycopg.connect(f"{PG_SERVER}/postgres", autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (DB_NAME,)).fetchone()
        if exists and fresh:
            conn.execute(f'DROP DATABASE "{DB_NAME}" WITH (FORCE)')
            exists = None
        if not exists:
            conn.execute(f'CREATE DATABASE "{DB_NAME}"')
    subprocess.run(
        [PYTHON, "manage.py", "migrate", "--noinput", "-v", "0"], cwd=ROOT, env=server_env(), check=True
    )
    import redis

    redis.Redis.from_url(REDIS_URL).flushdb()


def seed(*, upstream_port: int, users: int, extra: Sequence[str] = ()) -> dict[str, Any]:
    """Runs bench.seed in its own process: the model on the fake upstream, users, keys, tokens."""
    output = subprocess.run(
        [PYTHON, "-m", "bench.seed", "--upstream-port", str(upstream_port), "--users", str(users), *extra],
        cwd=ROOT,
        env=server_env(),
        check=True,
        capture_output=True,
    )
    return json.loads(output.stdout)


# --- measuring -------------------------------------------------------------------------


def _tree(process: psutil.Process) -> list[psutil.Process]:
    try:
        return [process, *process.children(recursive=True)]
    except psutil.NoSuchProcess:
        return []


def _cpu_seconds(processes: list[psutil.Process]) -> float:
    total = 0.0
    for process in processes:
        for member in _tree(process):
            with contextlib.suppress(psutil.NoSuchProcess):
                times = member.cpu_times()
                total += times.user + times.system
    return total


class CpuMeter:
    """CPU (in % of one core) and peak resident memory of groups of processes over a span."""

    def __init__(self, groups: dict[str, list[psutil.Process]], interval: float = 0.1) -> None:
        self.groups = groups
        self.interval = interval
        self.peak_rss: dict[str, int] = dict.fromkeys(groups, 0)
        self._cpu0: dict[str, float] = {}
        self._t0 = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self.result: dict[str, dict[str, float]] = {}

    def _sample(self) -> None:
        while not self._stop.wait(self.interval):
            for name, processes in self.groups.items():
                rss = 0
                for process in processes:
                    for member in _tree(process):
                        with contextlib.suppress(psutil.NoSuchProcess):
                            rss += member.memory_info().rss
                self.peak_rss[name] = max(self.peak_rss[name], rss)

    def add(self, name: str, processes: list[psutil.Process]) -> None:
        """A group that starts after the meter (the load generator): counted from its start."""
        self.groups[name] = processes
        self.peak_rss.setdefault(name, 0)
        self._cpu0[name] = 0.0

    def __enter__(self) -> CpuMeter:
        self._t0 = time.monotonic()
        self._cpu0 = {name: _cpu_seconds(processes) for name, processes in self.groups.items()}
        self._thread.start()
        return self

    def stop(self, final_cpu: dict[str, float] | None = None) -> dict[str, dict[str, float]]:
        """`final_cpu` gives the CPU seconds of groups that have exited (read by their parent)."""
        if self.result:
            return self.result
        wall = time.monotonic() - self._t0
        self._stop.set()
        self._thread.join()
        for name, processes in self.groups.items():
            seconds = (final_cpu or {}).get(name)
            if seconds is None:
                seconds = _cpu_seconds(processes) - self._cpu0.get(name, 0.0)
            self.result[name] = {
                "cpu_percent": round(100 * seconds / wall, 1) if wall else 0.0,
                "peak_rss_mb": round(self.peak_rss[name] / 2**20, 1),
            }
        return self.result

    def __exit__(self, *exc: object) -> None:
        self.stop()


def percentile(values: Sequence[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = (len(ordered) - 1) * p / 100
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def summary_ms(values: Sequence[float]) -> dict[str, float]:
    """p50, p95, p99 of seconds, in milliseconds."""
    return {f"p{p}": round(percentile(values, p) * 1000, 2) for p in (50, 95, 99)}


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A Markdown table, readable in a terminal and pasteable into bench/README.md."""
    cells = [[str(value) for value in row] for row in rows]
    widths = [max(len(header), *(len(row[i]) for row in cells)) for i, header in enumerate(headers)]
    lines = [
        "| " + " | ".join(header.ljust(width) for header, width in zip(headers, widths, strict=True)) + " |",
        "|" + "|".join("-" * (width + 2) for width in widths) + "|",
    ]
    lines += [
        "| " + " | ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)) + " |"
        for row in cells
    ]
    return "\n".join(lines)


def machine() -> dict[str, Any]:
    memory = psutil.virtual_memory().total
    model = ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return {
        "cpus": os.cpu_count(),
        "cpu_model": model,
        "memory_gb": round(memory / 2**30, 1),
        "python": platform.python_version(),
        "platform": platform.platform(),
    }


def write_json(name: str, data: dict[str, Any]) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    data = {"machine": machine(), "argv": sys.argv, "at": time.strftime("%Y-%m-%dT%H:%M:%S"), **data}
    path.write_text(json.dumps(data, indent=2))
    return path


@contextlib.contextmanager
def stage(title: str) -> Iterator[None]:
    started = time.monotonic()
    print(f"-- {title} ...", flush=True)
    yield
    print(f"   done in {time.monotonic() - started:.1f} s", flush=True)


# --- driving the load generator ---------------------------------------------------------


def load(spec: dict[str, Any], *, shards: int = 1, lead: float = 1.0) -> dict[str, Any]:
    """Runs bench.loadgen in `shards` processes splitting the clients; merges their results.

    Returns the requests' results, the wall time, and the generator's CPU in % of one core.
    """
    shards = max(1, min(shards, spec["clients"]))
    start_at = time.time() + lead
    children = []
    offset = 0
    for index in range(shards):
        clients = spec["clients"] // shards + (1 if index < spec["clients"] % shards else 0)
        targets = spec["targets"]
        rotated = targets[offset % len(targets) :] + targets[: offset % len(targets)]
        shard = {**spec, "clients": clients, "targets": rotated, "start_at": start_at}
        offset += clients
        child = subprocess.Popen(
            [PYTHON, "-m", "bench.loadgen"],
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )
        children.append((child, json.dumps(shard).encode()))
    outputs = []
    try:
        threads = []
        for child, data in children:
            thread = threading.Thread(target=lambda c=child, d=data: outputs.append(c.communicate(d)[0]))
            thread.start()
            threads.append(thread)
        for thread in threads:
            thread.join()
    finally:
        for child, _ in children:
            if child.poll() is None:
                child.kill()
    parts = [json.loads(output) for output in outputs]
    wall = max(part["wall"] for part in parts)
    cpu = sum(part["cpu_seconds"] for part in parts)
    return {
        "results": [result for part in parts for result in part["results"]],
        "wall": wall,
        "cpu_percent": round(100 * cpu / wall, 1) if wall else 0.0,
    }


def errors_of(results: list[dict[str, Any]]) -> tuple[int, str]:
    failed = [result["error"] for result in results if result["error"]]
    return len(failed), (failed[0] if failed else "")
