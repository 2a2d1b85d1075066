"""Deterministic, offline token estimates for when a provider does not report usage.

tiktoken would download its encodings at run time, which a self-hosted server cannot count
on. This estimate follows the shape of BPE tokenizers closely enough for accounting: a word is
a token (a long one, one more per four letters past eight), numbers a token per three
digits, every other symbol one, and every CJK character one.
"""

from __future__ import annotations

import math
import re

from llm.types import ChatRequest

# CJK ideographs, kana and hangul: BPE vocabularies give them about a token each.
_CJK = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff"
_PIECES = re.compile(rf"[{_CJK}]|[^\W\d_{_CJK}]+|\d+|\S")
_WHOLE_WORD = 8  # a word up to this long is usually one token of its own

# Per-message overhead of chat formats (role markers, separators), as OpenAI documents it.
_PER_MESSAGE = 4
_PER_REPLY = 3


def _piece_tokens(piece: str) -> int:
    if piece.isdigit():
        return math.ceil(len(piece) / 3)  # tokenizers split numbers in groups of up to three digits
    if len(piece) > _WHOLE_WORD:
        return 1 + math.ceil((len(piece) - _WHOLE_WORD) / 4)
    return 1


def estimate_tokens(text: str) -> int:
    """Roughly how many tokens `text` is; the same text always gives the same number."""
    return sum(_piece_tokens(piece) for piece in _PIECES.findall(text))


def estimate_request_tokens(request: ChatRequest) -> int:
    """Roughly how many input tokens a chat request costs, with the chat format's overhead."""
    total = _PER_REPLY
    if request.system:
        total += _PER_MESSAGE + estimate_tokens(request.system)
    for message in request.messages:
        total += _PER_MESSAGE + estimate_tokens(message.content)
    return total
