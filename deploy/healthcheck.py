"""The container's health check: GET /health as the proxy would send it, exit 0 when healthy.

It names the first of ALLOWED_HOSTS as the host and says the scheme is https, so neither the
host check nor SECURE_SSL_REDIRECT turns it away.
"""

import os
import sys
import urllib.request

host = (os.environ.get("ALLOWED_HOSTS", "") or "localhost").split(",")[0].strip().lstrip(".")
if host in ("", "*"):
    host = "localhost"
request = urllib.request.Request(
    "http://127.0.0.1:8000/health", headers={"Host": host, "X-Forwarded-Proto": "https"}
)
try:
    with urllib.request.urlopen(request, timeout=3) as response:  # noqa: S310
        sys.exit(0 if response.status == 200 else 1)
except Exception as exc:  # any failure is "unhealthy", with the reason in the container's log
    print(f"unhealthy: {exc}", file=sys.stderr)  # noqa: T201
    sys.exit(1)
