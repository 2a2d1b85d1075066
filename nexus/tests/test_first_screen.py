"""The README's first screen works as written: in a fresh copy of the tree with nothing
configured, its *First chat* commands serve Nexus, sign up, stream a reply, make a key and call
/v1 with the OpenAI SDK, and the superuser they create signs in to the console.

The commands are read from the README's fenced blocks, so the README cannot drift from what
works. The copy is what a clone of the working tree would hold (tracked and untracked files,
not the ignored ones), and it reuses this test's own virtualenv instead of installing one: its
`.venv` links to the running interpreter's, and bootstrap's stamp says the requirements are in
(they are, this test runs on them). Everything else is the newcomer's: SQLite, no Redis, the
demo provider, no settings at all.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import httpx
import pytest

from conftest import ROOT, free_port

pytestmark = pytest.mark.live

SUPERUSER = {"email": "admin@example.com", "password": "change-me-please-42"}


def first_chat_blocks(readme: str) -> list[str]:
    """The fenced shell blocks of the README's *First chat* section, in order."""
    section = readme.split("\n## First chat\n", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```sh\n(.*?)```", section, flags=re.DOTALL)


def fresh_copy(destination: Path) -> Path:
    """The files a clone of the working tree would have, copied to `destination`."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        check=True,
        capture_output=True,
    ).stdout.decode()
    for name in filter(None, sorted(set(listed.split("\0")))):
        source = ROOT / name
        if source.is_file():  # a tracked file deleted in the working tree is not copied
            (destination / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, destination / name)
    return destination


def reuse_this_virtualenv(tree: Path) -> None:
    """Gives the copy a `.venv` that is this interpreter's, without touching the original."""
    venv = tree / ".venv"
    venv.mkdir()
    for entry in Path(sys.prefix).iterdir():
        if not entry.name.startswith(".installed-"):
            (venv / entry.name).symlink_to(entry)
    # scripts/bootstrap's stamp: the hash of the requirements files that are installed.
    digest = subprocess.run(
        ["bash", "-c", "cat requirements*.txt | sha256sum | cut -d' ' -f1"],
        cwd=tree,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    (venv / ".installed-requirements.txt").write_text(digest)


def newcomer_environment(port: int) -> dict[str, str]:
    """A shell with nothing of Nexus's configured: no database, no Redis, no settings."""
    kept = {
        name: os.environ[name] for name in ("HOME", "LANG", "LC_ALL", "TMPDIR", "USER") if name in os.environ
    }
    not_our_venv = [
        entry for entry in os.environ["PATH"].split(os.pathsep) if not entry.startswith(sys.prefix)
    ]
    return {**kept, "PATH": os.pathsep.join(not_our_venv), "PORT": str(port)}


def wait_until_serving(process: subprocess.Popen[bytes], log: IO[bytes], url: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            log.seek(0)
            pytest.fail(f"scripts/serve exited:\n{log.read().decode(errors='replace')}")
        try:
            if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    log.seek(0)
    pytest.fail(f"scripts/serve did not serve within {timeout}s:\n{log.read().decode(errors='replace')}")


@pytest.fixture(scope="module")
def newcomer(tmp_path_factory) -> Iterator[dict]:
    """The README's serve command, run in a fresh copy; its server, blocks and output."""
    tree = fresh_copy(tmp_path_factory.mktemp("clone"))
    reuse_this_virtualenv(tree)
    serve, first_chat = first_chat_blocks((tree / "README.md").read_text())
    assert "DJANGO_SUPERUSER_EMAIL=admin@example.com" in serve and "scripts/serve" in serve
    port = free_port()
    env = newcomer_environment(port)
    log = (tree / "serve.log").open("w+b")
    process = subprocess.Popen(
        ["bash", "-euo", "pipefail", "-c", serve],
        cwd=tree,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # its own process group: scripts/serve execs daphne
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_serving(process, log, url, timeout=120)  # ~25 s on an idle machine
        yield {"tree": tree, "env": env, "url": url, "first_chat": first_chat, "log": log}
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
        log.close()


def server_output(newcomer: dict) -> str:
    time.sleep(0.3)  # the last request's line is written just after its response
    newcomer["log"].seek(0)
    return newcomer["log"].read().decode(errors="replace")


def test_the_first_chat_commands_stream_a_reply_and_call_v1_with_the_sdk(newcomer):
    done = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", newcomer["first_chat"]],
        cwd=newcomer["tree"],
        env=newcomer["env"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    registered, stream_and_reply = done.stdout.split("\n", 1)
    assert json.loads(registered)["email"] == "me@example.com"
    events = re.findall(r"^event: (\w+)$", stream_and_reply, flags=re.MULTILINE)
    assert events[0] == "start" and events[-1] == "done" and "delta" in events
    sdk_reply = stream_and_reply.rstrip("\n").rsplit("\n", 1)[-1]
    assert sdk_reply.strip() and not sdk_reply.startswith(("data:", "event:", "id:"))

    log = server_output(newcomer)
    assert len(re.findall(r"nexus\.http: POST /chat/send 200", log)) == 1
    assert len(re.findall(r"nexus\.http: POST /v1/chat/completions 200", log)) == 1


def test_the_superuser_signs_in_to_the_console(newcomer):
    with httpx.Client(base_url=newcomer["url"], timeout=10) as http:
        form = http.get("/admin/login/")
        csrf = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', form.text)
        assert csrf is not None
        signed_in = http.post(
            "/admin/login/?next=/admin/",
            data={
                "csrfmiddlewaretoken": csrf.group(1),
                "username": SUPERUSER["email"],
                "password": SUPERUSER["password"],
                "next": "/admin/",
            },
        )
        assert (signed_in.status_code, signed_in.headers["location"]) == (302, "/admin/")
        console = http.get("/admin/")
    assert console.status_code == 200 and 'id="nexus-dashboard"' in console.text


def test_each_request_is_one_log_line_with_its_request_id(newcomer):
    httpx.get(f"{newcomer['url']}/health", headers={"X-Request-ID": "first-screen-health"}, timeout=10)
    log = server_output(newcomer)
    assert [line for line in log.splitlines() if "first-screen-health" in line] == [
        next(line for line in log.splitlines() if "[first-screen-health] nexus.http: GET /health 200" in line)
    ]
    # daphne's own access-log lines ('127.0.0.1:5000 - - [02/Dec/2026:10:00:00] "GET /health ...')
    assert not re.search(r'\] "(GET|POST|PATCH|DELETE) /', log)
