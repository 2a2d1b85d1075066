"""The errors an AI call meets at admission, in the one error shape (429 with a code)."""

from __future__ import annotations

from nexus.lib.errors import ApiError


class RateLimited(ApiError):
    """Too many AI calls in the current minute; `retry_after` is when the window resets."""

    status_code = 429
    default_code = "rate_limited"
    default_detail = "Too many AI calls this minute. Try again shortly."


class InsufficientQuota(ApiError):
    """The call could cost more than what is left of the monthly budget."""

    status_code = 429
    default_code = "insufficient_quota"
    default_detail = "The monthly budget is used up."


class RateLimitUnavailable(ApiError):
    """The shared counters (Redis) cannot be reached, so no call is let through uncounted."""

    status_code = 503
    default_code = "service_unavailable"
    default_detail = "Rate limits cannot be checked right now. Try again shortly."
