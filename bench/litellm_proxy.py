"""LiteLLM's proxy beside Nexus, in a virtual environment of its own (bench/.venv-litellm).

The proxy's config points at the same fake upstream, as an OpenAI-compatible base URL.
With `database_url`, it also records spend in PostgreSQL, which needs Prisma's generated
client and its query engine (see `db_mode_available`).
"""

from __future__ import annotations

import os
import subprocess
import venv
from pathlib import Path
from typing import Any

import psutil

from bench.harness import MODEL, PG_SERVER, ROOT, Processes, free_port, wait_http

VENV = ROOT / "bench" / ".venv-litellm"
LITELLM = "litellm[proxy]==1.108.7"
PRISMA = "prisma==0.15.0"
MASTER_KEY = "sk-bench-master-key"
DB_NAME = "litellm_bench"


def _bin(name: str) -> Path:
    return VENV / "bin" / name


def ensure_installed() -> None:
    if _bin("litellm").exists():
        return
    print(f"-- installing {LITELLM} into {VENV.relative_to(ROOT)} (once)", flush=True)
    venv.create(VENV, with_pip=True)
    subprocess.run([str(_bin("pip")), "install", "-q", LITELLM], check=True)


def _env(database_url: str | None) -> dict[str, str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("DATABASE_URL", "REDIS_", "VIRTUAL_ENV", "PYTHON"))
    }
    env.update(
        LITELLM_LOCAL_MODEL_COST_MAP="True",  # no download of the price list at start
        LITELLM_LOG="ERROR",
        LITELLM_TELEMETRY="False",
        NO_DOCS="True",
        PATH=f"{VENV / 'bin'}:{env.get('PATH', '')}",
    )
    if database_url:
        env["DATABASE_URL"] = database_url
        env["STORE_MODEL_IN_DB"] = "False"
    return env


def db_mode_available() -> tuple[bool, str]:
    """Whether spend tracking can run: prisma installed and its client generated here."""
    ensure_installed()
    if not _bin("prisma").exists():
        done = subprocess.run([str(_bin("pip")), "install", "-q", PRISMA], capture_output=True, text=True)
        if done.returncode:
            return False, f"pip install {PRISMA} failed: {done.stderr.strip()[-300:]}"
    schema = next(VENV.glob("lib/python*/site-packages/litellm/proxy/schema.prisma"), None)
    if schema is None:
        return False, "litellm's schema.prisma was not found"
    done = subprocess.run(
        [str(_bin("prisma")), "generate", f"--schema={schema}"],
        capture_output=True,
        text=True,
        env=_env(None),
        timeout=300,
    )
    if done.returncode:
        return False, "prisma generate failed: " + (done.stderr or done.stdout).strip()[-400:]
    return True, ""


def _database_create() -> str:
    import psycopg

    with psycopg.connect(f"{PG_SERVER}/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{DB_NAME}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{DB_NAME}"')
    return f"{PG_SERVER}/{DB_NAME}"


def start(
    procs: Processes, *, upstream_port: int, workers: int = 1, spend_db: bool = False, name: str = "litellm"
) -> tuple[int, psutil.Process, dict[str, str]]:
    """Starts the proxy; returns its port, process and the headers a client sends."""
    ensure_installed()
    port = free_port()
    database_url = _database_create() if spend_db else None
    # The proxy refuses to start without a master key; clients send it as their key.
    general: dict[str, Any] = {"master_key": MASTER_KEY}
    if database_url:
        general["database_url"] = database_url
    config = {
        "model_list": [
            {
                "model_name": MODEL,
                "litellm_params": {
                    "model": f"openai/{MODEL}",
                    "api_base": f"http://127.0.0.1:{upstream_port}/v1",
                    "api_key": "sk-fake-bench-0123456789abcdef",
                },
            }
        ],
        "litellm_settings": {"drop_params": True, "telemetry": False},
        "general_settings": general,
    }
    path = ROOT / "bench" / "results" / f"{name}.config.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    import json

    path.write_text(json.dumps(config, indent=2))
    argv = [str(_bin("litellm")), "--config", str(path), "--host", "127.0.0.1", "--port", str(port)]
    if workers > 1:
        argv += ["--num_workers", str(workers)]
    process = procs.start(name, argv, env=_env(database_url))
    wait_http(f"http://127.0.0.1:{port}/health/liveliness", timeout=180, process=process)
    return port, process, {"Authorization": f"Bearer {MASTER_KEY}"}
