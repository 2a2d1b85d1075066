"""Deterministic, offline token estimates for when a provider does not report usage.

tiktoken would download its encodings at run time, which a self-hosted server cannot count
on. This estimate follows the shape of BPE tokenizers closely enough for accounting: a word is
a token (a long one, one more per four letters past eight), numbers a token per three
digits, every other symbol one, and every CJK character one.
"""

from __future__ import annotations

import json
import math
import re

from llm.types import AudioPart, ChatMessage, ChatRequest, FilePart, ImagePart, TextPart

# CJK ideographs, kana and hangul: BPE vocabularies give them about a token each.
_CJK = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff"
_PIECES = re.compile(rf"[{_CJK}]|[^\W\d_{_CJK}]+|\d+|\S")
_WHOLE_WORD = 8  # a word up to this long is usually one token of its own

# Per-message overhead of chat formats (role markers, separators), as OpenAI documents it.
_PER_MESSAGE = 4
_PER_REPLY = 3
# Providers bill an image by its size: 85 to about 1,600 tokens. A reservation must not
# fall short, so every image is counted as a large one.
_PER_IMAGE = 1_600
# Audio and documents: a token per this many bytes of the decoded data (about what providers
# bill for compressed audio and text-heavy PDFs), and a floor.
_BYTES_PER_TOKEN = 32
_PER_FILE_MINIMUM = 500


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
        total += _PER_MESSAGE + estimate_message_tokens(message)
    for tool in request.tools:
        total += estimate_tokens(f"{tool.name} {tool.description} {json.dumps(dict(tool.parameters))}")
    if request.response_format is not None and request.response_format.schema is not None:
        total += estimate_tokens(json.dumps(dict(request.response_format.schema)))
    return total


def estimate_message_tokens(message: ChatMessage) -> int:
    """Roughly how many tokens one message's content and tool calls are."""
    total = 0
    for part in message.parts:
        if isinstance(part, TextPart):
            total += estimate_tokens(part.text)
        elif isinstance(part, ImagePart):
            total += _PER_IMAGE
        elif isinstance(part, AudioPart | FilePart):
            size = len(part.data) * 3 // 4  # base64
            total += max(_PER_FILE_MINIMUM, size // _BYTES_PER_TOKEN)
    for call in message.tool_calls:
        total += estimate_tokens(f"{call.name} {call.arguments}")
    return total
