"""The fake upstream answers the official SDKs, streaming or not, and records what it received."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import tempfile

import anthropic
import httpx
import openai
import pytest
from google import genai
from google.genai import types

from conftest import ROOT, free_port, wait_for_port


def test_it_answers_non_streaming_calls_of_every_sdk(fake_upstream):
    fake_upstream.configure(reply="Plain and whole.")
    url = fake_upstream.url

    async def call_each() -> list[str]:
        async with openai.AsyncOpenAI(api_key="k", base_url=f"{url}/v1", max_retries=0) as client:
            chat = await client.chat.completions.create(
                model="m", messages=[{"role": "user", "content": "hi"}]
            )
        async with openai.AsyncAzureOpenAI(
            api_key="k", azure_endpoint=url, api_version="2024-10-21", max_retries=0
        ) as azure:
            deployment = await azure.chat.completions.create(
                model="dep", messages=[{"role": "user", "content": "hi"}]
            )
        async with anthropic.AsyncAnthropic(api_key="k", base_url=url, max_retries=0) as claude:
            message = await claude.messages.create(
                model="m", max_tokens=10, messages=[{"role": "user", "content": "hi"}]
            )
        gemini = genai.Client(api_key="k", http_options=types.HttpOptions(base_url=url))
        content = await gemini.aio.models.generate_content(model="g", contents="hi")
        await gemini.aio.aclose()
        assert chat.usage is not None and chat.usage.completion_tokens == 3
        assert message.usage.output_tokens == 3
        assert content.usage_metadata is not None and content.usage_metadata.candidates_token_count == 3
        return [
            chat.choices[0].message.content or "",
            deployment.choices[0].message.content or "",
            message.content[0].text,  # type: ignore[union-attr]
            content.text or "",
        ]

    assert asyncio.run(call_each()) == ["Plain and whole."] * 4
    assert [request["stream"] for request in fake_upstream.requests()] == [False] * 4


def test_knobs_can_come_per_request_in_headers(fake_upstream):
    response = httpx.post(
        f"{fake_upstream.url}/v1/chat/completions",
        json={"model": "m", "messages": [{"role": "user", "content": "hi"}]},
        headers={"x-fake-error-status": "429", "x-fake-retry-after": "2"},
    )

    assert response.status_code == 429
    assert response.headers["retry-after"] == "2"
    assert response.json()["error"]["code"] == "rate_limit_exceeded"


def test_an_unknown_knob_is_refused(fake_upstream):
    response = httpx.post(f"{fake_upstream.url}/_control", json={"temperature": 2})

    assert response.status_code == 400
    assert "temperature" in response.json()["error"]["message"]


def test_it_records_path_query_headers_and_body(fake_upstream):
    httpx.post(
        f"{fake_upstream.url}/openai/deployments/dep/chat/completions?api-version=2024-10-21",
        json={"messages": [{"role": "user", "content": "hi"}]},
        headers={"api-key": "az"},
    )

    [request] = fake_upstream.requests()
    assert request["protocol"] == "azure_openai"
    assert request["path"] == "/openai/deployments/dep/chat/completions"
    assert request["query"] == {"api-version": "2024-10-21"}
    assert request["headers"]["api-key"] == "az"
    assert request["body"] == {"messages": [{"role": "user", "content": "hi"}]}
    assert request["model"] == "dep"


@pytest.mark.parametrize("command", [["-m", "fake_upstream"], ["manage.py", "fake_upstream"]])
def test_it_runs_on_its_own_on_the_port_given(command):
    port = free_port()
    log = tempfile.TemporaryFile()  # noqa: SIM115 (closed below)
    process = subprocess.Popen(
        [sys.executable, *command, "--port", str(port)], cwd=ROOT, env=os.environ, stdout=log, stderr=log
    )
    try:
        wait_for_port(port, process, log)
        assert httpx.get(f"http://127.0.0.1:{port}/_health").json() == {"status": "ok"}
    finally:
        process.terminate()
        process.wait(timeout=10)
        log.close()
