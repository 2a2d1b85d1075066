"""Inputs the surfaces' tests share."""

from __future__ import annotations

import base64

# A 1x1 PNG, base64, as NextChat and the SDKs inline uploads.
PIXEL = base64.b64encode(
    bytes.fromhex(
        "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
        "1f15c4890000000d49444154789c6360f8ffff3f0005fe02fea7d69d6a0000000049454e44ae426082"
    )
).decode()
