"""The client's address, as far as the configured proxies can vouch for it.

    client_address(request)   "203.0.113.9", or None when there is no valid address

With `TRUSTED_PROXY_COUNT = 0` (the default) the address is the socket's peer: nothing a
client sends can change it. With N trusted proxies in front of Nexus, each of them appends
the address it saw to X-Forwarded-For, so the Nth entry from the right was written by the
outermost trusted proxy: it is the address that proxy was reached from. Everything left of it
came from the client and is never believed; the leftmost value in particular is whatever an
attacker typed. A request with fewer entries than N did not pass every proxy (it reached a
server directly), so its socket's address is used instead.

Throttles and the audit trail read the address here, and only here, so a forged header can
neither dodge a throttle nor put a false address into the audit log. The ASGI server must not
rewrite the address from headers itself (daphne without --proxy-headers).
"""

from __future__ import annotations

import ipaddress
from typing import Any

from django.conf import settings


def _valid(address: str) -> str | None:
    try:
        return str(ipaddress.ip_address(address.strip()))
    except ValueError:
        return None


def forwarded_address(*, remote_addr: str, forwarded_for: str, trusted_proxies: int) -> str | None:
    """The address `trusted_proxies` proxies vouch for (the pure rule, for tests and callers
    that hold the raw values rather than a request)."""
    if trusted_proxies <= 0:
        return _valid(remote_addr)
    hops = [hop.strip() for hop in forwarded_for.split(",") if hop.strip()]
    if len(hops) < trusted_proxies:
        return _valid(remote_addr)
    return _valid(hops[-trusted_proxies])


def client_address(request: Any) -> str | None:
    """The client's address of a Django or DRF request (anything with a META mapping)."""
    meta = request.META
    return forwarded_address(
        remote_addr=str(meta.get("REMOTE_ADDR") or ""),
        forwarded_for=str(meta.get("HTTP_X_FORWARDED_FOR") or ""),
        trusted_proxies=int(getattr(settings, "TRUSTED_PROXY_COUNT", 0)),
    )
