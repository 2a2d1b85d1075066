"""Gemini through the official `google-genai` SDK (not its retired predecessor).

The request: the system prompt goes in `systemInstruction`; assistant turns have the role
`model` and carry their tool calls as `functionCall` parts; tool results go back as
user-role `functionResponse` parts, `{"result": <the result>}`, consecutive ones in one turn.
Gemini has one system instruction only, so a system message that came later in the
conversation becomes a user-role turn "System: <text>" where it stood. Images go inline
(data URLs) or by URL (`fileData`), audio and documents inline. OpenAI's other parameters
map as llm.parameters says for the kind gemini.

The stream: each chunk holds a candidate per alternative reply (its `index` is the choice);
thought parts are reasoning, a function call comes whole and makes one ToolCallDelta. Gemini
finishes STOP after calling functions, which OpenAI's words call tool_calls. Usage comes from
the stream's `usageMetadata`; thinking tokens are billed as output.

Embeddings go through the SDK's `models.embed_content` (Gemini's batchEmbedContents, at most
100 texts a call, so longer lists take several), each text its own content, `dimensions` as
`output_dimensionality`. Gemini embeds text only: token arrays are refused.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import mimetypes
import uuid
from collections.abc import AsyncGenerator, Mapping
from typing import Any
from urllib.parse import urlsplit

import httpx
from google import genai
from google.genai import errors, types

from llm.providers.base import (
    AdapterEvent,
    Embedded,
    Params,
    connection_error,
    embedded,
    finish_reason,
    safe_message,
    ssl_context,
    status_error,
    timeout_error,
)
from llm.types import (
    AudioPart,
    ChatMessage,
    ChatRequest,
    ContentPart,
    EmbeddingRequest,
    FilePart,
    Finish,
    ImagePart,
    LLMError,
    ModelTarget,
    ProviderConfig,
    ReasoningDelta,
    TextDelta,
    ToolCall,
    ToolCallDelta,
    Usage,
)

LATE_SYSTEM_PREFIX = "System: "
# Gemini 3 refuses a replayed function call that lacks the thought signature it was made with.
# Nexus keeps no signatures, so a replayed turn carries the placeholder Google documents for
# history it did not produce (sent as this very text on the wire).
_NO_SIGNATURE = base64.urlsafe_b64decode("skip_thought_signature_validator")
# Gemini 3 thinks at a low or a high level; "none" turns thinking off with a budget of 0.
_THINKING_LEVELS = {
    "minimal": types.ThinkingLevel.LOW,
    "low": types.ThinkingLevel.LOW,
    "medium": types.ThinkingLevel.HIGH,
    "high": types.ThinkingLevel.HIGH,
    "xhigh": types.ThinkingLevel.HIGH,
}
_CALLING_MODES = {
    "auto": types.FunctionCallingConfigMode.AUTO,
    "none": types.FunctionCallingConfigMode.NONE,
    "required": types.FunctionCallingConfigMode.ANY,
    "function": types.FunctionCallingConfigMode.ANY,
}


def client_for(provider: ProviderConfig, http_client: httpx.AsyncClient) -> genai.Client:
    """An SDK client for one call, on our own HTTP client (so closing it closes the connection)."""
    read = max(provider.first_token_timeout, provider.idle_timeout) + 5
    options = types.HttpOptions(
        base_url=provider.base_url or None,
        headers=dict(provider.extra_headers) or None,
        timeout=int(read * 1000),
        # Given clients and TLS context: the SDK would otherwise load the CA bundle three times.
        httpx_async_client=http_client,
        httpx_client=httpx.Client(verify=ssl_context()),
        async_client_args={"ssl": ssl_context()},
    )
    # vertexai=False: never switch to Vertex AI because of a GOOGLE_GENAI_USE_VERTEXAI variable.
    return genai.Client(api_key=provider.api_key or "none", vertexai=False, http_options=options)


# --- The request ---------------------------------------------------------------------


def request_config(target: ModelTarget, request: ChatRequest, params: Params) -> types.GenerateContentConfig:
    config: dict[str, Any] = {
        # Nexus runs no functions itself: the client does, so the SDK must never call them.
        "automatic_function_calling": types.AutomaticFunctionCallingConfig(disable=True),
    }
    if request.system:
        config["system_instruction"] = request.system
    if params.temperature is not None:
        config["temperature"] = params.temperature
    if params.top_p is not None:
        config["top_p"] = params.top_p
    if params.max_tokens is not None:
        config["max_output_tokens"] = params.max_tokens
    if params.stop:
        config["stop_sequences"] = list(params.stop)
    config.update(_option_config(request.options))
    if request.choices > 1:
        config["candidate_count"] = request.choices
    if request.tools:
        config["tools"] = [
            types.Tool(
                function_declarations=[
                    types.FunctionDeclaration(
                        name=tool.name,
                        description=tool.description or None,
                        parameters_json_schema=dict(tool.parameters) or None,
                    )
                    for tool in request.tools
                ]
            )
        ]
        if request.tool_choice is not None:
            choice = request.tool_choice
            config["tool_config"] = types.ToolConfig(
                function_calling_config=types.FunctionCallingConfig(
                    mode=_CALLING_MODES[choice.mode],
                    allowed_function_names=[choice.name] if choice.mode == "function" else None,
                )
            )
    response_format = request.response_format
    if response_format is not None and response_format.type != "text":
        config["response_mime_type"] = "application/json"
        if response_format.type == "json_schema" and response_format.schema:
            config["response_json_schema"] = dict(response_format.schema)
    try:
        # The request's own parameters win over the model's operator-set defaults.
        return types.GenerateContentConfig(**{**params.extra, **config})
    except (ValueError, TypeError) as exc:  # pydantic's ValidationError is a ValueError
        detail = safe_message(str(exc), target.provider.api_key)
        if params.extra:
            names = ", ".join(sorted(params.extra))
            message = f"The default parameters of {target.name} ({names}) are not valid for Gemini: {detail}"
        else:
            message = f"The request's parameters are not valid for Gemini: {detail}"
        raise LLMError("upstream_bad_request", message) from None


def _option_config(options: Mapping[str, Any]) -> dict[str, Any]:
    """OpenAI's options that Gemini takes, under Gemini's names (llm.parameters' table)."""
    config: dict[str, Any] = {
        name: options[name]
        for name in ("seed", "presence_penalty", "frequency_penalty", "top_k")
        if options.get(name) is not None
    }
    if options.get("logprobs") is not None:
        config["response_logprobs"] = bool(options["logprobs"])
    if options.get("top_logprobs") is not None:
        config["logprobs"] = options["top_logprobs"]
    effort = options.get("reasoning_effort")
    if effort == "none":
        config["thinking_config"] = types.ThinkingConfig(thinking_budget=0)
    elif effort in _THINKING_LEVELS:
        # include_thoughts: without it Gemini thinks but streams none of it.
        config["thinking_config"] = types.ThinkingConfig(
            thinking_level=_THINKING_LEVELS[effort], include_thoughts=True
        )
    return config


def request_contents(request: ChatRequest) -> list[types.Content]:
    contents: list[types.Content] = []
    previous = ""
    # Gemini matches a result to its call by the function's name; a client may leave it out.
    names = {call.id: call.name for message in request.messages for call in message.tool_calls}
    for message in request.messages:
        if message.role == "tool":
            part = _function_response(message, message.name or names.get(message.tool_call_id, ""))
            if previous == "tool" and contents[-1].parts is not None:
                # Gemini wants the answers to one turn's calls together, in one content.
                contents[-1].parts.append(part)
            else:
                contents.append(types.Content(role="user", parts=[part]))
        elif message.role == "assistant":
            parts = [types.Part(text=message.text)] if message.text else []
            parts += [
                _function_call(call, signed=position == 0) for position, call in enumerate(message.tool_calls)
            ]
            contents.append(types.Content(role="model", parts=parts or [types.Part(text="")]))
        elif message.role == "system":
            contents.append(
                types.Content(role="user", parts=[types.Part(text=LATE_SYSTEM_PREFIX + message.text)])
            )
        else:
            parts = [_part(part) for part in message.parts]
            contents.append(types.Content(role="user", parts=parts or [types.Part(text="")]))
        previous = message.role
    return contents


def _function_call(call: ToolCall, *, signed: bool) -> types.Part:
    try:
        args = json.loads(call.arguments) if call.arguments.strip() else {}
    except ValueError:
        args = None
    if not isinstance(args, dict):
        raise LLMError(
            "upstream_bad_request",
            f"The arguments of the tool call {call.id or call.name} are not a JSON object, "
            "which Gemini needs.",
        )
    return types.Part(
        function_call=types.FunctionCall(id=call.id or None, name=call.name, args=args),
        thought_signature=_NO_SIGNATURE if signed else None,
    )


def _function_response(message: ChatMessage, name: str) -> types.Part:
    text = message.text
    try:
        result: Any = json.loads(text)
    except ValueError:
        result = text
    return types.Part(
        function_response=types.FunctionResponse(
            id=message.tool_call_id or None, name=name, response={"result": result}
        )
    )


def _part(part: ContentPart) -> types.Part:
    if isinstance(part, ImagePart):
        if part.inline:
            return types.Part(
                inline_data=types.Blob(mime_type=part.media_type, data=_decoded(part.data, "image"))
            )
        return types.Part(file_data=types.FileData(file_uri=part.url, mime_type=_image_type(part.url)))
    if isinstance(part, AudioPart):
        return types.Part(
            inline_data=types.Blob(mime_type=f"audio/{part.format}", data=_decoded(part.data, "audio"))
        )
    if isinstance(part, FilePart):
        if part.file_id:
            raise LLMError(
                "upstream_bad_request",
                "Gemini cannot read OpenAI file ids: send the file's data instead of its file_id.",
            )
        media_type = part.media_type or mimetypes.guess_type(part.filename)[0] or "application/pdf"
        return types.Part(inline_data=types.Blob(mime_type=media_type, data=_decoded(part.data, "file")))
    return types.Part(text=part.text)


def _decoded(data: str, what: str) -> bytes:
    try:
        return base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        raise LLMError("upstream_bad_request", f"The {what}'s data is not valid base64.") from None


def _image_type(url: str) -> str:
    """The media type an image URL's extension names; Gemini needs one, and JPEG is the likeliest."""
    guessed = mimetypes.guess_type(urlsplit(url).path)[0]
    return guessed if guessed is not None and guessed.startswith("image/") else "image/jpeg"


# --- The stream ----------------------------------------------------------------------


async def stream(
    target: ModelTarget, request: ChatRequest, params: Params
) -> AsyncGenerator[AdapterEvent, None]:
    config = request_config(target, request, params)
    contents = request_contents(request)
    usage: Usage | None = None
    reasons: dict[int, str] = {}
    calls: dict[int, int] = {}  # choice -> the function calls it made so far
    http_client = httpx.AsyncClient(verify=ssl_context())
    try:
        client = client_for(target.provider, http_client)
        try:
            chunks = await client.aio.models.generate_content_stream(
                model=target.upstream_name, contents=contents, config=config
            )
        except ValueError as exc:  # the SDK refuses a field the Gemini API does not have
            detail = safe_message(str(exc), target.provider.api_key)
            raise LLMError("upstream_bad_request", f"Gemini cannot take this request: {detail}") from None
        async for chunk in chunks:
            for candidate in chunk.candidates or []:
                choice = candidate.index or 0
                logprobs = _logprobs(candidate.logprobs_result)
                for part in (candidate.content.parts if candidate.content else None) or []:
                    if part.function_call is not None:
                        call = part.function_call
                        index = calls.get(choice, 0)
                        calls[choice] = index + 1
                        yield ToolCallDelta(
                            index=index,
                            id=call.id or f"call_{uuid.uuid4().hex[:24]}",
                            name=call.name or "",
                            arguments=json.dumps(call.args or {}),
                            choice=choice,
                        )
                    elif part.text and part.thought:
                        yield ReasoningDelta(part.text, choice=choice)
                    elif part.text:
                        yield TextDelta(part.text, choice=choice, logprobs=logprobs)
                        logprobs = ()  # a chunk's log probabilities go with its first text
                if candidate.finish_reason:
                    reasons[choice] = str(getattr(candidate.finish_reason, "value", candidate.finish_reason))
            metadata = chunk.usage_metadata
            if metadata is not None and metadata.candidates_token_count is not None:
                usage = Usage(
                    input_tokens=metadata.prompt_token_count or 0,
                    output_tokens=metadata.candidates_token_count + (metadata.thoughts_token_count or 0),
                )
    except errors.APIError as exc:
        raise error_for(target, exc) from None
    except httpx.TimeoutException:
        raise timeout_error(target, "the connection or a read took too long") from None
    except httpx.TransportError as exc:
        raise connection_error(target, exc) from None
    finally:
        # Closes the connection too when the caller stopped early or was cancelled.
        await http_client.aclose()
    if usage is not None:
        yield usage
    for choice in sorted(set(range(request.choices)) | set(reasons) | set(calls)):
        reason = finish_reason(reasons.get(choice))
        if calls.get(choice) and reason == "stop":
            reason = "tool_calls"
        yield Finish(reason, choice=choice)


# --- Embeddings ------------------------------------------------------------------------

# The most texts Gemini's batchEmbedContents takes in one call.
EMBED_BATCH = 100


async def embed(target: ModelTarget, request: EmbeddingRequest) -> Embedded:
    texts = [item for item in request.inputs if isinstance(item, str)]
    if len(texts) != len(request.inputs):
        raise LLMError("upstream_bad_request", "Gemini embeds text only: send strings, not token arrays.")
    config = types.EmbedContentConfig(output_dimensionality=request.dimensions)
    http_client = httpx.AsyncClient(verify=ssl_context())
    try:
        client = client_for(target.provider, http_client)
        # Each text its own content: a list of bare strings would be one content to a
        # multimodal embedding model, and so one vector.
        batches = [
            [
                types.Content(role="user", parts=[types.Part(text=text)])
                for text in texts[start : start + EMBED_BATCH]
            ]
            for start in range(0, len(texts), EMBED_BATCH)
        ]
        calls = [
            asyncio.ensure_future(
                client.aio.models.embed_content(model=target.upstream_name, contents=batch, config=config)
            )
            for batch in batches
        ]
        try:
            responses = await asyncio.gather(*calls)
        finally:
            # One call failed (or this one was cancelled): the others are of no use any more.
            for call in calls:
                call.cancel()
            await asyncio.gather(*calls, return_exceptions=True)
    except errors.APIError as exc:
        raise error_for(target, exc) from None
    except ValueError as exc:  # the SDK refuses a field the Gemini API does not have
        detail = safe_message(str(exc), target.provider.api_key)
        raise LLMError("upstream_bad_request", f"Gemini cannot take this request: {detail}") from None
    except httpx.TimeoutException:
        raise timeout_error(target, "the connection or a read took too long") from None
    except httpx.TransportError as exc:
        raise connection_error(target, exc) from None
    finally:
        await http_client.aclose()
    vectors = [list(item.values or ()) for response in responses for item in response.embeddings or ()]
    result = embedded(target, request, vectors)
    counts = [
        response.usage_metadata.prompt_token_count if response.usage_metadata is not None else None
        for response in responses
    ]
    tokens = sum(count for count in counts if count is not None) if None not in counts else None
    return Embedded(vectors=result.vectors, input_tokens=tokens)


def _logprobs(result: types.LogprobsResult | None) -> tuple[dict[str, Any], ...]:
    """Gemini's log probabilities of a chunk's tokens as OpenAI's entries."""
    if result is None or not result.chosen_candidates:
        return ()
    tops = result.top_candidates or []
    entries = []
    for position, chosen in enumerate(result.chosen_candidates):
        alternatives = (tops[position].candidates if position < len(tops) else None) or []
        entries.append({**_logprob(chosen), "top_logprobs": [_logprob(other) for other in alternatives]})
    return tuple(entries)


def _logprob(candidate: types.LogprobsResultCandidate) -> dict[str, Any]:
    token = candidate.token or ""
    return {"token": token, "logprob": candidate.log_probability or 0.0, "bytes": list(token.encode())}


def error_for(target: ModelTarget, exc: errors.APIError) -> LLMError:
    """The LLMError for an SDK exception; its message never holds the key."""
    message = str(exc.message or exc.status or "")
    status = int(exc.code) if isinstance(exc.code, int) else 500
    # Gemini answers a wrong key with 400 INVALID_ARGUMENT, reason API_KEY_INVALID.
    if status == 400 and ("API_KEY_INVALID" in str(exc.details) or "API key not valid" in message):
        status = 401
    return status_error(target, status, message)
