"""OpenAI's Chat Completions request, read into the one turn's ChatRequest.

Everything OpenAI documents is taken: content parts (text, images, audio, files), tools and
the legacy functions, structured output, and every sampling parameter, validated as OpenAI
validates them, so a bad value is a 400 naming it (`param`) before any work. What the model
behind the name can do is decided later, by the turn (chats.turn._fit): this module knows
only the request. System and developer messages keep their place: the leading ones are the
system prompt, the later ones stay in the conversation where they stood.

The readers (`read_*`) validate the Responses API's requests too (chats.responses_request).
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings

from llm.parameters import PARAMETERS
from llm.types import (
    AudioPart,
    Capability,
    ChatMessage,
    ChatRequest,
    ContentPart,
    FilePart,
    ImagePart,
    ResponseFormat,
    TextPart,
    Tool,
    ToolCall,
    ToolChoice,
)
from nexus.lib.errors import ApiError


class InvalidParameter(ApiError):
    default_code = "invalid_request_error"


@dataclass(frozen=True, slots=True)
class CompletionCall:
    """A parsed request: the model's name, the normalized request, and how to answer."""

    model: str
    request: ChatRequest
    stream: bool = False
    include_usage: bool = False
    # The capabilities the request needs, each with the first parameter that needs it.
    needs: Mapping[Capability, str] = field(default_factory=dict)
    # The client used the legacy `functions`: tool calls go back as `function_call`.
    legacy_functions: bool = False


# OpenAI's parameters: llm.parameters' table, and those the table has no row for.
_TOP_LEVEL = {
    "model",
    "messages",
    "stream",
    "stream_options",
    "max_completion_tokens",
    "functions",
    "function_call",
    *PARAMETERS,
}
_SYSTEM_ROLES = {"system", "developer"}
_ROLES = {"system", "developer", "user", "assistant", "tool", "function"}
FUNCTION_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
REASONING_EFFORTS = ("none", "minimal", "low", "medium", "high", "xhigh")
_SERVICE_TIERS = ("auto", "default", "flex", "scale", "priority")
DATA_URL = re.compile(r"^data:([\w.+-]+/[\w.+-]+)?(;[\w-]+=[^;,]*)*;base64,", re.IGNORECASE)


def _invalid(param: str, message: str, code: str = "invalid_value") -> InvalidParameter:
    return InvalidParameter(message, code=code, param=param)


def read_text(value: Any, param: str) -> str:
    if not isinstance(value, str):
        raise _invalid(param, f"{param} must be a string.")
    # PostgreSQL's text cannot hold NUL: refused here as /chat/send refuses it, not a 500 at save.
    if "\x00" in value:
        raise _invalid(param, "Null characters are not allowed.")
    return value


def read_object(value: Any, param: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise _invalid(param, f"{param} must be an object.")
    return value


def read_number(body: dict[str, Any], name: str, low: float, high: float) -> float | None:
    value = body.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not low <= value <= high:
        raise _invalid(name, f"{name} must be a number from {low:g} to {high:g}.")
    return float(value)


def _integer(body: dict[str, Any], name: str, low: int, high: int) -> int | None:
    value = body.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise _invalid(name, f"{name} must be an integer from {low} to {high}.")
    return value


def read_boolean(body: dict[str, Any], name: str) -> bool | None:
    value = body.get(name)
    if value is not None and not isinstance(value, bool):
        raise _invalid(name, f"{name} must be true or false.")
    return value


def read_choice(body: dict[str, Any], name: str, allowed: tuple[str, ...]) -> str | None:
    value = body.get(name)
    if value is not None and value not in allowed:
        raise _invalid(name, f"{name} must be one of {', '.join(allowed)}.")
    return value


def _bounded_text(body: dict[str, Any], name: str, limit: int) -> str | None:
    value = body.get(name)
    if value is None:
        return None
    text = read_text(value, name)
    if len(text) > limit:
        raise _invalid(name, f"{name} must be at most {limit} characters.")
    return text


# --- content -----------------------------------------------------------------------------


def read_inline_data(url: str, param: str, kind: str) -> str:
    """The base64 payload of a data URL, checked and within MAX_IMAGE_BYTES (413 past it)."""
    match = DATA_URL.match(url)
    if match is None:
        raise _invalid(param, f"The {kind} must be an https URL or a base64 data URL.")
    data = url[match.end() :]
    limit = settings.MAX_IMAGE_BYTES
    if len(data) * 3 // 4 > limit:
        raise ApiError(
            f"The {kind} is larger than {limit} bytes.",
            code=f"{kind}_too_large",
            status_code=413,
            param=param,
        )
    try:
        base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        raise _invalid(param, f"The {kind}'s data is not valid base64.") from None
    return data


def _image(part: dict[str, Any], param: str) -> ImagePart:
    image = part.get("image_url")
    if isinstance(image, str):  # some clients send the URL itself
        image = {"url": image}
    image = read_object(image, f"{param}.image_url")
    url = read_text(image.get("url"), f"{param}.image_url.url")
    detail = image.get("detail") or ""
    if detail not in ("", "auto", "low", "high"):
        raise _invalid(f"{param}.image_url.detail", "detail must be auto, low or high.")
    if url.startswith("data:"):
        match = DATA_URL.match(url)
        if match is not None and not (match.group(1) or "").lower().startswith("image/"):
            raise _invalid(f"{param}.image_url.url", "An inline image must be a data:image/... URL.")
        read_inline_data(url, f"{param}.image_url.url", "image")
    elif not url.startswith(("https://", "http://")):
        raise _invalid(f"{param}.image_url.url", "The image must be an http(s) URL or a base64 data URL.")
    return ImagePart(url=url, detail=detail)


def _audio(part: dict[str, Any], param: str) -> AudioPart:
    audio = read_object(part.get("input_audio"), f"{param}.input_audio")
    audio_format = audio.get("format")
    if audio_format not in ("wav", "mp3"):
        raise _invalid(f"{param}.input_audio.format", "format must be wav or mp3.")
    data = read_text(audio.get("data"), f"{param}.input_audio.data")
    read_inline_data(f"data:audio/{audio_format};base64,{data}", f"{param}.input_audio.data", "audio")
    return AudioPart(data=data, format=audio_format)


def _file(part: dict[str, Any], param: str) -> FilePart:
    file = read_object(part.get("file"), f"{param}.file")
    filename = read_text(file.get("filename") or "", f"{param}.file.filename")
    if file.get("file_id"):
        return FilePart(file_id=read_text(file["file_id"], f"{param}.file.file_id"), filename=filename)
    url = read_text(file.get("file_data"), f"{param}.file.file_data")
    if not url.startswith("data:"):  # OpenAI takes the bare base64 too
        url = "data:application/pdf;base64," + url
    data = read_inline_data(url, f"{param}.file.file_data", "file")
    media_type = (DATA_URL.match(url).group(1) or "application/pdf").lower()  # type: ignore[union-attr]
    return FilePart(data=data, media_type=media_type, filename=filename)


def _parts(value: Any, param: str, *, allowed: tuple[str, ...]) -> str | tuple[ContentPart, ...]:
    """A message's content: a string, or its list of parts (of the types `allowed`)."""
    if isinstance(value, str):
        return read_text(value, param)
    if not isinstance(value, list):
        raise _invalid(param, "content must be a string or a list of content parts.")
    parts: list[ContentPart] = []
    for index, part in enumerate(value):
        where = f"{param}[{index}]"
        kind = part.get("type") if isinstance(part, dict) else None
        if kind not in allowed:
            names = ", ".join(allowed)
            raise _invalid(where, f"This message's content parts must be of type {names}.", "invalid_type")
        assert isinstance(part, dict)  # noqa: S101 - kind came from it
        if kind == "text":
            parts.append(TextPart(read_text(part.get("text"), f"{where}.text")))
        elif kind == "refusal":
            parts.append(TextPart(read_text(part.get("refusal"), f"{where}.refusal")))
        elif kind == "image_url":
            parts.append(_image(part, where))
        elif kind == "input_audio":
            parts.append(_audio(part, where))
        else:
            parts.append(_file(part, where))
    return tuple(parts)


def _tool_calls(value: Any, param: str) -> tuple[ToolCall, ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        raise _invalid(param, "tool_calls must be a list.")
    calls = []
    for index, call in enumerate(value):
        where = f"{param}[{index}]"
        call = read_object(call, where)
        if call.get("type", "function") != "function":
            raise _invalid(f"{where}.type", "Only function tool calls are supported.", "invalid_type")
        function = read_object(call.get("function"), f"{where}.function")
        calls.append(
            ToolCall(
                id=read_text(call.get("id"), f"{where}.id"),
                name=read_text(function.get("name"), f"{where}.function.name"),
                arguments=read_text(function.get("arguments") or "{}", f"{where}.function.arguments"),
            )
        )
    return tuple(calls)


class _Messages:
    """Reads the message list, keeping what later checks need: the tool calls' names and ids."""

    def __init__(self) -> None:
        self.system: list[str] = []
        self.turns: list[ChatMessage] = []
        self.call_names: dict[str, str] = {}
        self.legacy_calls = 0
        self.needs: dict[Capability, str] = {}

    def read(self, messages: Any) -> None:
        if not isinstance(messages, list) or not messages:
            raise _invalid("messages", "messages must be a non-empty list.")
        for index, message in enumerate(messages):
            self.read_one(read_object(message, f"messages[{index}]"), f"messages[{index}]")
        if not any(turn.role != "system" for turn in self.turns):
            raise _invalid("messages", "messages must hold at least one user, assistant or tool message.")

    def read_one(self, message: dict[str, Any], param: str) -> None:
        role = message.get("role")
        if role not in _ROLES:
            raise _invalid(
                f"{param}.role", "role must be system, developer, user, assistant, tool or function."
            )
        content = message.get("content")
        if role in _SYSTEM_ROLES:
            text = _parts(content, f"{param}.content", allowed=("text",))
            text = text if isinstance(text, str) else ChatMessage("system", text).text
            if self.turns:
                self.turns.append(ChatMessage(role="system", content=text))
            else:
                self.system.append(text)
        elif role == "user":
            parts = _parts(content, f"{param}.content", allowed=("text", "image_url", "input_audio", "file"))
            for position, part in enumerate(() if isinstance(parts, str) else parts):
                if isinstance(part, ImagePart):
                    self.needs.setdefault("vision", f"{param}.content[{position}]")
            self.turns.append(ChatMessage(role="user", content=parts))
        elif role == "assistant":
            self.read_assistant(message, param)
        elif role == "tool":
            call_id = read_text(message.get("tool_call_id"), f"{param}.tool_call_id")
            text = _parts(content, f"{param}.content", allowed=("text",))
            self.needs.setdefault("tools", param)
            self.turns.append(
                ChatMessage(
                    role="tool",
                    content=text if isinstance(text, str) else ChatMessage("tool", text).text,
                    tool_call_id=call_id,
                    name=self.call_names.get(call_id, ""),
                )
            )
        else:  # the legacy `function` role answers the latest function_call of that name
            name = read_text(message.get("name"), f"{param}.name")
            self.needs.setdefault("tools", param)
            call_id = next((id_ for id_, n in reversed(self.call_names.items()) if n == name), f"call_{name}")
            self.turns.append(
                ChatMessage(
                    role="tool",
                    content=read_text(content or "", f"{param}.content"),
                    tool_call_id=call_id,
                    name=name,
                )
            )

    def read_assistant(self, message: dict[str, Any], param: str) -> None:
        content = message.get("content")
        text = "" if content is None else _parts(content, f"{param}.content", allowed=("text", "refusal"))
        calls = _tool_calls(message.get("tool_calls"), f"{param}.tool_calls")
        if message.get("function_call") is not None:
            function = read_object(message["function_call"], f"{param}.function_call")
            self.legacy_calls += 1
            calls += (
                ToolCall(
                    id=f"call_legacy_{self.legacy_calls}",
                    name=read_text(function.get("name"), f"{param}.function_call.name"),
                    arguments=read_text(
                        function.get("arguments") or "{}", f"{param}.function_call.arguments"
                    ),
                ),
            )
        if calls:
            self.needs.setdefault("tools", f"{param}.tool_calls")
        for call in calls:
            self.call_names[call.id] = call.name
        joined = text if isinstance(text, str) else ChatMessage("assistant", text).text
        self.turns.append(ChatMessage(role="assistant", content=joined, tool_calls=calls))


# --- tools and formats -------------------------------------------------------------------


def read_function(value: Any, param: str) -> Tool:
    function = read_object(value, param)
    name = read_text(function.get("name"), f"{param}.name")
    if not FUNCTION_NAME.match(name):
        raise _invalid(f"{param}.name", "A function name is 1 to 64 letters, digits, underscores or dashes.")
    schema = function.get("parameters")
    if schema is not None:
        read_object(schema, f"{param}.parameters")
    strict = function.get("strict")
    if strict is not None and not isinstance(strict, bool):
        raise _invalid(f"{param}.strict", "strict must be true or false.")
    return Tool(
        name=name,
        description=read_text(function.get("description") or "", f"{param}.description"),
        parameters=schema or {},
        strict=strict,
    )


def _tools(body: dict[str, Any]) -> tuple[tuple[Tool, ...], bool]:
    """The tools, from `tools` or the legacy `functions`; True when they were `functions`."""
    if body.get("tools") is not None and body.get("functions") is not None:
        raise _invalid("functions", "Send tools or functions, not both.")
    if body.get("functions") is not None:
        functions = body["functions"]
        if not isinstance(functions, list) or not functions:
            raise _invalid("functions", "functions must be a non-empty list.")
        return tuple(read_function(item, f"functions[{index}]") for index, item in enumerate(functions)), True
    tools = body.get("tools")
    if tools is None:
        return (), False
    if not isinstance(tools, list):
        raise _invalid("tools", "tools must be a list.")
    parsed = []
    for index, tool in enumerate(tools):
        tool = read_object(tool, f"tools[{index}]")
        if tool.get("type") != "function":
            raise _invalid(f"tools[{index}].type", "Only function tools are supported.", "invalid_type")
        parsed.append(read_function(tool.get("function"), f"tools[{index}].function"))
    names = [tool.name for tool in parsed]
    if len(set(names)) != len(names):
        raise _invalid("tools", "Each tool must have a name of its own.")
    return tuple(parsed), False


def _tool_choice(body: dict[str, Any], tools: tuple[Tool, ...], legacy: bool) -> ToolChoice | None:
    name = "function_call" if legacy else "tool_choice"
    value = body.get(name)
    if value is None:
        return None
    if value in ("none", "auto") or (value == "required" and not legacy):
        return ToolChoice(mode=value)
    if isinstance(value, dict):
        function = value.get("function") if not legacy else value
        if (legacy or value.get("type") == "function") and isinstance(function, dict):
            chosen = read_text(
                function.get("name"), f"{name}.function.name" if not legacy else f"{name}.name"
            )
            if chosen not in {tool.name for tool in tools}:
                raise _invalid(name, f"{name} names {chosen!r}, which is not one of the tools.")
            return ToolChoice(mode="function", name=chosen)
    allowed = (
        "none, auto or {name}" if legacy else "none, auto, required or {type: function, function: {name}}"
    )
    raise _invalid(name, f"{name} must be {allowed}.")


def _response_format(body: dict[str, Any]) -> ResponseFormat | None:
    value = body.get("response_format")
    if value is None:
        return None
    value = read_object(value, "response_format")
    kind = value.get("type")
    if kind in ("text", "json_object"):
        return ResponseFormat(type=kind)
    if kind != "json_schema":
        raise _invalid("response_format.type", "type must be text, json_object or json_schema.")
    spec = read_object(value.get("json_schema"), "response_format.json_schema")
    name = read_text(spec.get("name"), "response_format.json_schema.name")
    if not FUNCTION_NAME.match(name):
        raise _invalid("response_format.json_schema.name", "The name is 1 to 64 letters, digits, _ or -.")
    schema = spec.get("schema")
    if schema is not None:
        read_object(schema, "response_format.json_schema.schema")
    strict = spec.get("strict")
    if strict is not None and not isinstance(strict, bool):
        raise _invalid("response_format.json_schema.strict", "strict must be true or false.")
    return ResponseFormat(
        type="json_schema",
        name=name,
        schema=schema,
        strict=strict,
        description=read_text(spec.get("description") or "", "response_format.json_schema.description"),
    )


# --- the rest of the parameters ---------------------------------------------------------------


def read_options(body: dict[str, Any]) -> dict[str, Any]:
    """OpenAI's other parameters, validated by OpenAI's rules, by their names."""
    options: dict[str, Any] = {}
    checks: dict[str, Any] = {
        "n": lambda: _integer(body, "n", 1, 128),
        "seed": lambda: _integer(body, "seed", -(2**63), 2**63 - 1),
        "top_k": lambda: _integer(body, "top_k", 0, 2**31 - 1),  # vLLM's, Anthropic's, Gemini's
        "presence_penalty": lambda: read_number(body, "presence_penalty", -2, 2),
        "frequency_penalty": lambda: read_number(body, "frequency_penalty", -2, 2),
        "logprobs": lambda: read_boolean(body, "logprobs"),
        "top_logprobs": lambda: _integer(body, "top_logprobs", 0, 20),
        "reasoning_effort": lambda: read_choice(body, "reasoning_effort", REASONING_EFFORTS),
        "verbosity": lambda: read_choice(body, "verbosity", ("low", "medium", "high")),
        "user": lambda: _bounded_text(body, "user", 256),
        "prompt_cache_key": lambda: _bounded_text(body, "prompt_cache_key", 1024),
        "prompt_cache_retention": lambda: read_choice(body, "prompt_cache_retention", ("in-memory", "24h")),
        "safety_identifier": lambda: _bounded_text(body, "safety_identifier", 256),
        "service_tier": lambda: read_choice(body, "service_tier", _SERVICE_TIERS),
        "store": lambda: read_boolean(body, "store"),
    }
    for name, check in checks.items():
        if (value := check()) is not None:
            options[name] = value
    if "top_logprobs" in options and not options.get("logprobs"):
        raise _invalid("top_logprobs", "top_logprobs needs logprobs: true.")
    if (bias := body.get("logit_bias")) is not None:
        bias = read_object(bias, "logit_bias")
        for token, value in bias.items():
            if not str(token).isdigit() or isinstance(value, bool) or not isinstance(value, int | float):
                raise _invalid("logit_bias", "logit_bias maps token ids to numbers from -100 to 100.")
            if not -100 <= value <= 100:
                raise _invalid("logit_bias", "logit_bias maps token ids to numbers from -100 to 100.")
        options["logit_bias"] = bias
    if (metadata := body.get("metadata")) is not None:
        metadata = read_object(metadata, "metadata")
        if len(metadata) > 16 or not all(
            isinstance(key, str) and isinstance(value, str) and len(key) <= 64 and len(value) <= 512
            for key, value in metadata.items()
        ):
            raise _invalid(
                "metadata", "metadata holds up to 16 strings, keys up to 64 and values up to 512 long."
            )
        options["metadata"] = metadata
    if (modalities := body.get("modalities")) is not None:
        if not isinstance(modalities, list) or not set(modalities) <= {"text", "audio"}:
            raise _invalid("modalities", 'modalities is a list of "text" and "audio".')
        options["modalities"] = modalities
    for name in ("audio", "prediction", "web_search_options"):
        if body.get(name) is not None:
            options[name] = read_object(body[name], name)
    return options


def _stop(body: dict[str, Any]) -> tuple[str, ...]:
    stop = body.get("stop")
    if isinstance(stop, str):
        stop = [stop]
    if stop is not None and (
        not isinstance(stop, list)
        or len(stop) > 4
        or not all(isinstance(item, str) and item for item in stop)
    ):
        raise _invalid("stop", "stop must be a string or a list of up to 4 strings.")
    return tuple(read_text(item, "stop") for item in stop or ())


def read_model_of(body: Any, fields: Collection[str]) -> str:
    """The `model` of an OpenAI request body that has only these fields; a 400 naming what
    is wrong with it (not an object, a field OpenAI does not know, no model)."""
    if not isinstance(body, dict):
        raise _invalid("body", "The request body must be a JSON object.")
    for name in body:
        if name not in fields:
            raise InvalidParameter(
                f"Unrecognized request argument: {name}.", code="unknown_parameter", param=name
            )
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise _invalid("model", "model is required.")
    return model


def parse_completion_request(body: Any) -> CompletionCall:
    """OpenAI's request body as a CompletionCall; a 400 naming what is wrong."""
    model = read_model_of(body, _TOP_LEVEL)
    read_text(model, "model")
    messages = _Messages()
    messages.read(body.get("messages"))

    max_tokens = body.get("max_completion_tokens", body.get("max_tokens"))
    if max_tokens is not None and (
        isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens < 1
    ):
        name = "max_completion_tokens" if "max_completion_tokens" in body else "max_tokens"
        raise _invalid(name, f"{name} must be a positive integer.")
    stream = body.get("stream") or False
    if not isinstance(stream, bool):
        raise _invalid("stream", "stream must be true or false.")
    stream_options = body.get("stream_options") or {}
    if not isinstance(stream_options, dict) or set(stream_options) - {"include_usage", "include_obfuscation"}:
        raise _invalid("stream_options", "stream_options takes include_usage and include_obfuscation.")
    if stream_options and not stream:
        raise _invalid("stream_options", "stream_options is only allowed with stream=true.")

    tools, legacy = _tools(body)
    tool_choice = _tool_choice(body, tools, legacy)
    if tool_choice is not None and tool_choice.mode != "none" and not tools:
        raise _invalid("tool_choice", "tool_choice needs tools.")
    needs = dict(messages.needs)
    if tools:
        needs.setdefault("tools", "functions" if legacy else "tools")
    response_format = _response_format(body)
    if response_format is not None and response_format.type != "text":
        needs.setdefault("structured_output", "response_format")
    parallel = read_boolean(body, "parallel_tool_calls")

    request = ChatRequest(
        messages=tuple(messages.turns),
        system="\n\n".join(messages.system),
        temperature=read_number(body, "temperature", 0, 2),
        top_p=read_number(body, "top_p", 0, 1),
        max_tokens=max_tokens,
        stop=_stop(body),
        tools=tools,
        tool_choice=tool_choice,
        parallel_tool_calls=parallel,
        response_format=None
        if response_format is None or response_format.type == "text"
        else response_format,
        options=read_options(body),
    )
    return CompletionCall(
        model=model,
        request=request,
        stream=stream,
        include_usage=bool(stream_options.get("include_usage")),
        needs=needs,
        legacy_functions=legacy,
    )
