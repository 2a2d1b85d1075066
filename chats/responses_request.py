"""OpenAI's Responses API request, read into the one turn's ChatRequest (a CompletionCall).

The Responses API says with items what Chat Completions says with messages: `input` is a
string or a list of messages (with input_text, input_image, input_file and output_text parts),
function_call items (a reply's tool calls) and function_call_output items (their results);
`instructions` is the system prompt, `text.format` the structured output, `reasoning.effort`
the reasoning effort. Everything is validated with chats.completions' readers, as OpenAI
validates it, so a bad value is a 400 naming it (`param`, as the Responses API spells it)
before any work; what the model can do is decided later by the turn, as for Chat Completions.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from chats.completions import (
    DATA_URL,
    FUNCTION_NAME,
    REASONING_EFFORTS,
    CompletionCall,
    InvalidParameter,
    read_boolean,
    read_choice,
    read_function,
    read_inline_data,
    read_number,
    read_object,
    read_options,
    read_text,
)
from llm.types import (
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

# Parameters read here; `stream_options`, `include`, `truncation` and `top_logprobs` are
# accepted for the clients that send them and change nothing.
_TOP_LEVEL = frozenset(
    {
        "model",
        "input",
        "instructions",
        "tools",
        "tool_choice",
        "parallel_tool_calls",
        "text",
        "max_output_tokens",
        "temperature",
        "top_p",
        "reasoning",
        "metadata",
        "user",
        "safety_identifier",
        "prompt_cache_key",
        "prompt_cache_retention",
        "service_tier",
        "store",
        "previous_response_id",
        "stream",
        "stream_options",
        "include",
        "truncation",
        "top_logprobs",
    }
)
# OpenAI's parameters for what Nexus does not do, with the values that ask for nothing.
_UNSUPPORTED: Mapping[str, tuple[Any, ...]] = {
    "background": (None, False),
    "conversation": (None,),
    "prompt": (None,),
    "max_tool_calls": (None,),
    "context_management": (None,),
}
# Chat Completions' options that the Responses API names alike.
_SHARED_OPTIONS = ("metadata", "user", "safety_identifier", "prompt_cache_key", "service_tier")
_ROLES = ("user", "assistant", "system", "developer")
_IMAGE_DETAILS = {"auto": "auto", "low": "low", "high": "high", "original": "high"}


def _invalid(param: str, message: str, code: str = "invalid_value") -> InvalidParameter:
    return InvalidParameter(message, code=code, param=param)


@dataclass(frozen=True, slots=True)
class ResponsesCall:
    """A parsed request: the turn's call, whether to keep it, and what the Response repeats."""

    call: CompletionCall
    store: bool = True
    previous_response_id: str | None = None
    # The request's settings as the Response object echoes them (instructions, tools, ...).
    echo: Mapping[str, Any] | None = None


class _Input:
    """Reads `input` (a string or a list of items) into messages, as Chat Completions has them."""

    def __init__(self) -> None:
        self.system: list[str] = []
        self.turns: list[ChatMessage] = []
        self.call_names: dict[str, str] = {}
        self.needs: dict[Capability, str] = {}

    def read(self, value: Any) -> None:
        if isinstance(value, str):
            self.turns.append(ChatMessage(role="user", content=read_text(value, "input")))
            return
        if not isinstance(value, list) or not value:
            raise _invalid("input", "input must be a string or a non-empty list of items.")
        for index, item in enumerate(value):
            where = f"input[{index}]"
            item = read_object(item, where)
            kind = item.get("type", "message")
            if kind == "message":
                self.message(item, where)
            elif kind == "function_call":
                self.function_call(item, where)
            elif kind == "function_call_output":
                self.function_call_output(item, where)
            elif kind == "reasoning" or (
                kind == "item_reference" and str(item.get("id", "")).startswith("rs_")
            ):
                continue  # a model's reasoning is its own: no provider takes it back as input
            else:
                raise _invalid(
                    f"{where}.type",
                    f"Input items of type {kind!r} are not supported: send messages, function_call "
                    "and function_call_output items, or continue with previous_response_id.",
                    "invalid_type",
                )
        if not any(turn.role != "system" for turn in self.turns):
            raise _invalid("input", "input must hold at least one user, assistant or function call item.")

    def message(self, item: dict[str, Any], where: str) -> None:
        role = item.get("role")
        if role not in _ROLES:
            raise _invalid(f"{where}.role", "role must be user, assistant, system or developer.")
        content = item.get("content")
        if role in ("system", "developer"):
            text = _joined(self.parts(content, f"{where}.content", allowed=("input_text",)))
            if self.turns:  # a late instruction stays where it stood
                self.turns.append(ChatMessage(role="system", content=text))
            else:
                self.system.append(text)
        elif role == "user":
            allowed = ("input_text", "input_image", "input_file")
            self.turns.append(
                ChatMessage(role="user", content=self.parts(content, f"{where}.content", allowed=allowed))
            )
        else:
            allowed = ("output_text", "refusal", "input_text")
            text = _joined(self.parts(content, f"{where}.content", allowed=allowed))
            self.turns.append(ChatMessage(role="assistant", content=text))

    def parts(self, value: Any, param: str, *, allowed: tuple[str, ...]) -> str | tuple[ContentPart, ...]:
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
                raise _invalid(
                    where, f"This message's content parts must be of type {names}.", "invalid_type"
                )
            assert isinstance(part, dict)  # noqa: S101 - kind came from it
            if kind in ("input_text", "output_text"):
                parts.append(TextPart(read_text(part.get("text"), f"{where}.text")))
            elif kind == "refusal":
                parts.append(TextPart(read_text(part.get("refusal"), f"{where}.refusal")))
            elif kind == "input_image":
                parts.append(self.image(part, where))
            else:
                parts.append(_file(part, where))
        return tuple(parts)

    def image(self, part: dict[str, Any], where: str) -> ImagePart:
        if part.get("image_url") is None:
            name = "file_id" if part.get("file_id") is not None else "image_url"
            raise _invalid(
                f"{where}.{name}", "Send the image in image_url, as an https URL or a base64 data URL."
            )
        url = read_text(part["image_url"], f"{where}.image_url")
        detail = part.get("detail") or "auto"
        if not isinstance(detail, str) or detail not in _IMAGE_DETAILS:
            raise _invalid(f"{where}.detail", "detail must be auto, low, high or original.")
        if url.startswith("data:"):
            match = DATA_URL.match(url)
            if match is not None and not (match.group(1) or "").lower().startswith("image/"):
                raise _invalid(f"{where}.image_url", "An inline image must be a data:image/... URL.")
            read_inline_data(url, f"{where}.image_url", "image")
        elif not url.startswith("https://"):
            raise _invalid(f"{where}.image_url", "The image must be an https URL or a base64 data URL.")
        self.needs.setdefault("vision", where)
        return ImagePart(url=url, detail=_IMAGE_DETAILS[detail])

    def function_call(self, item: dict[str, Any], where: str) -> None:
        call = ToolCall(
            id=read_text(item.get("call_id"), f"{where}.call_id"),
            name=read_text(item.get("name"), f"{where}.name"),
            arguments=read_text(item.get("arguments") or "{}", f"{where}.arguments"),
        )
        self.call_names[call.id] = call.name
        self.needs.setdefault("tools", where)
        last = self.turns[-1] if self.turns else None
        if last is not None and last.role == "assistant":  # the reply's text and its calls: one message
            self.turns[-1] = replace(last, tool_calls=(*last.tool_calls, call))
        else:
            self.turns.append(ChatMessage(role="assistant", tool_calls=(call,)))

    def function_call_output(self, item: dict[str, Any], where: str) -> None:
        call_id = read_text(item.get("call_id"), f"{where}.call_id")
        output = _joined(
            self.parts(item.get("output"), f"{where}.output", allowed=("input_text", "output_text"))
        )
        self.needs.setdefault("tools", where)
        self.turns.append(
            ChatMessage(
                role="tool", content=output, tool_call_id=call_id, name=self.call_names.get(call_id, "")
            )
        )


def _joined(content: str | tuple[ContentPart, ...]) -> str:
    return content if isinstance(content, str) else ChatMessage(role="user", content=content).text


def _file(part: dict[str, Any], where: str) -> FilePart:
    if part.get("file_data") is None:
        name = next((name for name in ("file_id", "file_url") if part.get(name) is not None), "file_data")
        raise _invalid(
            f"{where}.{name}", "Send the file inline in file_data, as base64 or a base64 data URL."
        )
    filename = read_text(part.get("filename") or "", f"{where}.filename")
    url = read_text(part["file_data"], f"{where}.file_data")
    if not url.startswith("data:"):  # OpenAI takes the bare base64 too
        url = "data:application/pdf;base64," + url
    data = read_inline_data(url, f"{where}.file_data", "file")
    match = DATA_URL.match(url)
    media_type = ((match.group(1) if match else None) or "application/pdf").lower()
    return FilePart(data=data, media_type=media_type, filename=filename)


def _tools(body: dict[str, Any]) -> tuple[tuple[Tool, ...], list[dict[str, Any]]]:
    """The function tools, and as the Response echoes them; other kinds of tool are a 400."""
    tools = body.get("tools")
    if tools is None:
        return (), []
    if not isinstance(tools, list):
        raise _invalid("tools", "tools must be a list.")
    items = [read_object(tool, f"tools[{index}]") for index, tool in enumerate(tools)]
    others = [(index, tool.get("type")) for index, tool in enumerate(items) if tool.get("type") != "function"]
    if others:
        kinds = ", ".join(sorted({str(kind) for _, kind in others}))
        raise _invalid(
            f"tools[{others[0][0]}].type",
            f"Nexus takes function tools only, not {kinds}.",
            "invalid_type",
        )
    parsed = tuple(read_function(tool, f"tools[{index}]") for index, tool in enumerate(items))
    names = [tool.name for tool in parsed]
    if len(set(names)) != len(names):
        raise _invalid("tools", "Each tool must have a name of its own.")
    echoed = [
        {
            "type": "function",
            "name": tool.name,
            "description": tool.description or None,
            "parameters": dict(tool.parameters) or None,
            "strict": tool.strict,
        }
        for tool in parsed
    ]
    return parsed, echoed


def _tool_choice(body: dict[str, Any], tools: tuple[Tool, ...]) -> ToolChoice | None:
    value = body.get("tool_choice")
    if value is None or (value in ("auto", "none") and not tools):
        return None  # clients send the default with no tools too
    if value in ("auto", "none", "required"):
        choice = ToolChoice(mode=value)
    elif isinstance(value, dict) and value.get("type") == "function":
        name = read_text(value.get("name"), "tool_choice.name")
        if name not in {tool.name for tool in tools}:
            raise _invalid("tool_choice", f"tool_choice names {name!r}, which is not one of the tools.")
        choice = ToolChoice(mode="function", name=name)
    else:
        raise _invalid("tool_choice", "tool_choice must be auto, none, required or {type: function, name}.")
    if not tools:
        raise _invalid("tool_choice", "tool_choice needs tools.")
    return choice


def _text_format(body: dict[str, Any]) -> tuple[ResponseFormat | None, dict[str, Any]]:
    """`text.format` as the request's ResponseFormat (None for plain text), and `text` echoed."""
    text = body.get("text")
    if text is None:
        return None, {"format": {"type": "text"}, "verbosity": "medium"}
    text = read_object(text, "text")
    verbosity = text.get("verbosity")
    if verbosity is not None and verbosity not in ("low", "medium", "high"):
        raise _invalid("text.verbosity", "verbosity must be low, medium or high.")
    echoed = {"format": {"type": "text"}, "verbosity": verbosity or "medium"}
    if text.get("format") is None:
        return None, echoed
    value = read_object(text["format"], "text.format")
    echoed["format"] = value
    kind = value.get("type")
    if kind == "text":
        return None, echoed
    if kind == "json_object":
        return ResponseFormat(type="json_object"), echoed
    if kind != "json_schema":
        raise _invalid("text.format.type", "type must be text, json_object or json_schema.")
    name = read_text(value.get("name"), "text.format.name")
    if not FUNCTION_NAME.match(name):
        raise _invalid("text.format.name", "The name is 1 to 64 letters, digits, _ or -.")
    schema = read_object(value.get("schema"), "text.format.schema")
    strict = value.get("strict")
    if strict is not None and not isinstance(strict, bool):
        raise _invalid("text.format.strict", "strict must be true or false.")
    return (
        ResponseFormat(
            type="json_schema",
            name=name,
            schema=schema,
            strict=strict,
            description=read_text(value.get("description") or "", "text.format.description"),
        ),
        echoed,
    )


def _reasoning(body: dict[str, Any]) -> dict[str, Any]:
    reasoning = read_object(body.get("reasoning") or {}, "reasoning")
    effort = reasoning.get("effort")
    if effort is not None and effort not in REASONING_EFFORTS:
        raise _invalid("reasoning.effort", f"effort must be one of {', '.join(REASONING_EFFORTS)}.")
    summary = reasoning.get("summary", reasoning.get("generate_summary"))
    if summary is not None and summary not in ("auto", "concise", "detailed"):
        raise _invalid("reasoning.summary", "summary must be auto, concise or detailed.")
    return {"effort": effort, "summary": summary}


def _positive_integer(body: dict[str, Any], name: str, low: int = 1, high: int | None = None) -> int | None:
    value = body.get(name)
    if value is None:
        return None
    if (
        isinstance(value, bool)
        or not isinstance(value, int)
        or value < low
        or (high is not None and value > high)
    ):
        bounds = f"from {low} to {high}" if high is not None else f"of at least {low}"
        raise _invalid(name, f"{name} must be an integer {bounds}.")
    return value


def _options(body: dict[str, Any], reasoning: dict[str, Any], verbosity: str) -> dict[str, Any]:
    """The ChatRequest options: those Chat Completions names alike, reasoning and verbosity."""
    shared = {name: body[name] for name in _SHARED_OPTIONS if name in body}
    retention = body.get("prompt_cache_retention")
    if retention is not None:
        # The Responses API spells it in_memory, Chat Completions in-memory.
        shared["prompt_cache_retention"] = "in-memory" if retention == "in_memory" else retention
    options = read_options(shared)
    if reasoning["effort"] is not None:
        options["reasoning_effort"] = reasoning["effort"]
    if body.get("text") is not None and verbosity != "medium":
        options["verbosity"] = verbosity
    return options


def parse_responses_request(body: Any) -> ResponsesCall:
    """OpenAI's Responses request body as a ResponsesCall; a 400 naming what is wrong."""
    if not isinstance(body, dict):
        raise _invalid("body", "The request body must be a JSON object.")
    for name, value in body.items():
        if name in _UNSUPPORTED:
            if value not in _UNSUPPORTED[name]:
                raise InvalidParameter(
                    f"{name} is not supported by Nexus's Responses API.",
                    code="unsupported_parameter",
                    param=name,
                )
        elif name not in _TOP_LEVEL:
            raise InvalidParameter(
                f"Unrecognized request argument: {name}.", code="unknown_parameter", param=name
            )
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise _invalid("model", "model is required.")
    read_text(model, "model")
    instructions = body.get("instructions")
    if instructions is not None:
        read_text(instructions, "instructions")
    items = _Input()
    items.read(body.get("input"))

    stream = read_boolean(body, "stream") or False
    stream_options = body.get("stream_options")
    if stream_options is not None and (
        not isinstance(stream_options, dict) or set(stream_options) - {"include_obfuscation"}
    ):
        raise _invalid("stream_options", "stream_options takes include_obfuscation.")
    include = body.get("include")
    if include is not None and (
        not isinstance(include, list) or not all(isinstance(x, str) for x in include)
    ):
        raise _invalid("include", "include must be a list of strings.")
    truncation = read_choice(body, "truncation", ("auto", "disabled"))
    top_logprobs = _positive_integer(body, "top_logprobs", 0, 20)
    max_output_tokens = _positive_integer(body, "max_output_tokens")
    store = read_boolean(body, "store")
    store = True if store is None else store
    previous = body.get("previous_response_id")
    if previous is not None:
        previous = read_text(previous, "previous_response_id")

    tools, echoed_tools = _tools(body)
    tool_choice = _tool_choice(body, tools)
    response_format, echoed_text = _text_format(body)
    reasoning = _reasoning(body)
    parallel = read_boolean(body, "parallel_tool_calls")
    temperature = read_number(body, "temperature", 0, 2)
    top_p = read_number(body, "top_p", 0, 1)
    options = _options(body, reasoning, echoed_text["verbosity"])

    needs = dict(items.needs)
    if tools:
        needs.setdefault("tools", "tools")
    if response_format is not None:
        needs.setdefault("structured_output", "text.format")
    request = ChatRequest(
        messages=tuple(items.turns),
        system="\n\n".join([*([instructions] if instructions else []), *items.system]),
        temperature=temperature,
        top_p=top_p,
        max_tokens=max_output_tokens,
        tools=tools,
        tool_choice=tool_choice,
        parallel_tool_calls=parallel,
        response_format=response_format,
        options=options,
    )
    echo = {
        "instructions": instructions,
        "max_output_tokens": max_output_tokens,
        "max_tool_calls": None,
        "metadata": options.get("metadata") or {},
        "parallel_tool_calls": True if parallel is None else parallel,
        "previous_response_id": previous,
        "reasoning": reasoning,
        "store": store,
        "temperature": 1.0 if temperature is None else temperature,
        "text": echoed_text,
        "tool_choice": body.get("tool_choice") if tools and body.get("tool_choice") is not None else "auto",
        "tools": echoed_tools,
        "top_logprobs": top_logprobs or 0,
        "top_p": 1.0 if top_p is None else top_p,
        "truncation": truncation or "disabled",
        "user": options.get("user"),
        "safety_identifier": options.get("safety_identifier"),
        "prompt_cache_key": options.get("prompt_cache_key"),
        "service_tier": options.get("service_tier") or "default",
        "background": False,
    }
    call = CompletionCall(model=model, request=request, stream=stream, needs=needs)
    return ResponsesCall(call=call, store=store, previous_response_id=previous, echo=echo)
