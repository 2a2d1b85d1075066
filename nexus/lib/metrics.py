"""Prometheus metrics of this process, and the structured log line of every AI call.

Exposition is per process: each server process serves its own counters at /metrics, and
Prometheus scrapes every process (every replica) and sums them (`sum by (model) (...)`).
That is how a fleet of separate containers has to be scraped anyway, it needs no shared
directory (prometheus_client's multiprocess mode shares one across forked workers of one
host only), and daphne runs one process per server, so no counter is split between
workers. `nexus_active_streams` is likewise what this process is streaming now.

    HTTP:  nexus_http_requests_total{method, route, status}     route: the URL pattern
           nexus_http_request_duration_seconds{method, route}   time to the response's headers
    AI:    nexus_ai_calls_total{model, outcome}                 outcome: complete, failed, stopped
           nexus_ai_tokens_total{model, direction}              direction: input, output
           nexus_ai_time_to_first_token_seconds{model}
           nexus_ai_call_duration_seconds{model}
           nexus_upstream_errors_total{code}                    the LLMError code
           nexus_active_streams

The turn calls `ai_call_started()` when it starts streaming and `ai_call_finished(...)`
once when it ends, whatever the outcome.
"""

from __future__ import annotations

import logging

from prometheus_client import REGISTRY, Counter, Gauge, Histogram
from prometheus_client.exposition import choose_encoder

ai_logger = logging.getLogger("nexus.ai")

_KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})

HTTP_REQUESTS = Counter(
    "nexus_http_requests",
    "HTTP requests answered, by route (URL pattern) and status.",
    ["method", "route", "status"],
)
HTTP_DURATION = Histogram(
    "nexus_http_request_duration_seconds",
    "Time from a request to its response's headers (a stream's start), by route.",
    ["method", "route"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
AI_CALLS = Counter(
    "nexus_ai_calls", "AI calls by the model that served them and their outcome.", ["model", "outcome"]
)
AI_TOKENS = Counter("nexus_ai_tokens", "Tokens of AI calls by model and direction.", ["model", "direction"])
AI_TIME_TO_FIRST_TOKEN = Histogram(
    "nexus_ai_time_to_first_token_seconds",
    "Time from the start of an AI call to its first token.",
    ["model"],
    buckets=(0.1, 0.25, 0.5, 1, 2, 4, 8, 15, 30, 60),
)
AI_DURATION = Histogram(
    "nexus_ai_call_duration_seconds",
    "Time from the start of an AI call to its end, whatever the outcome.",
    ["model"],
    buckets=(0.25, 0.5, 1, 2, 5, 10, 20, 40, 80, 160, 320, 600),
)
UPSTREAM_ERRORS = Counter("nexus_upstream_errors", "AI calls that failed, by error code.", ["code"])
ACTIVE_STREAMS = Gauge("nexus_active_streams", "AI replies this process is streaming now.")


def http_request_observed(*, method: str, route: str, status: int, seconds: float) -> None:
    method = method if method in _KNOWN_METHODS else "OTHER"
    HTTP_REQUESTS.labels(method=method, route=route, status=str(status)).inc()
    HTTP_DURATION.labels(method=method, route=route).observe(seconds)


def ai_call_started() -> None:
    ACTIVE_STREAMS.inc()


def ai_call_finished(
    *,
    user_id: int,
    model: str,
    provider: str,
    outcome: str,
    input_tokens: int,
    output_tokens: int,
    seconds: float,
    first_token_seconds: float | None,
    error_code: str = "",
    cached: bool = False,
) -> None:
    """Counts the call and logs one line about it: ids, figures and codes, never any text."""
    ACTIVE_STREAMS.dec()
    AI_CALLS.labels(model=model, outcome=outcome).inc()
    AI_TOKENS.labels(model=model, direction="input").inc(input_tokens)
    AI_TOKENS.labels(model=model, direction="output").inc(output_tokens)
    AI_DURATION.labels(model=model).observe(seconds)
    if first_token_seconds is not None:
        AI_TIME_TO_FIRST_TOKEN.labels(model=model).observe(first_token_seconds)
    if error_code:
        UPSTREAM_ERRORS.labels(code=error_code).inc()
    ai_logger.info(
        "AI call %s: %s",
        outcome,
        model,
        extra={
            "user_id": user_id,
            "model": model,
            "provider": provider,
            "outcome": outcome,
            "input_tokens": input_tokens,
            "output_tokens": output_tokens,
            "cached": cached,
            "duration_ms": round(seconds * 1000),
            "ttft_ms": None if first_token_seconds is None else round(first_token_seconds * 1000),
            "error_code": error_code or None,
        },
    )


def exposition(*, accept: str = "") -> tuple[bytes, str]:
    """This process's metrics and their content type: the format the scraper's Accept header
    asks for (OpenMetrics, text 1.0.0), else Prometheus's classic text format 0.0.4."""
    encode, content_type = choose_encoder(accept)
    return encode(REGISTRY), content_type
