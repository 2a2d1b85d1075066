"""What NextChat (ChatGPTNextWeb/NextChat) sends to an OpenAI-kind endpoint, and how it reads the answer.

Learned from its source, not from traffic: each item names the file and function it comes
from. A request function returns (headers, body) as NextChat builds them; `encode` turns a
body into the bytes its `JSON.stringify` puts on the wire. `read_stream` replays what its
stream reader (fetchEventSource + ChatGPTApi's parseSSE + streamWithThink) makes of a
response, so a test asserts what the NextChat user sees in the chat bubble.

NextChat reaches Nexus in one of two ways:
- browser direct: Settings > Custom Endpoint on, "OpenAI Endpoint" = Nexus's root URL. The
  browser sends `headers()` / `stream_headers()` itself, cross-origin (CORS applies);
- server proxy: NextChat's own server with BASE_URL = Nexus's root URL forwards the
  browser's body with `proxied_headers()`.
Either way the paths are `<root>/v1/chat/completions` and `<root>/dashboard/billing/...`:
NextChat appends "v1/..." itself, so its base URL is Nexus's root, without /v1.
"""

from __future__ import annotations

import json
import math
import re
import struct
from base64 import b64encode
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

Headers = dict[str, str]
Body = dict[str, Any]
Message = dict[str, Any]

# app/constant.ts, OpenaiPath: joined to the base URL by ChatGPTApi.path() (client/platforms/openai.ts).
CHAT_PATH = "/v1/chat/completions"
USAGE_PATH = "/dashboard/billing/usage"
SUBSCRIPTION_PATH = "/dashboard/billing/subscription"

# app/store/config.ts, DEFAULT_CONFIG.modelConfig: what a fresh install sends. The model is
# also app/constant.ts SUMMARIZE_MODEL, which titles and summaries of gpt-* chats use
# (`summary_model`).
DEFAULT_MODEL = "gpt-4o-mini"
MODEL_CONFIG: dict[str, Any] = {
    "temperature": 0.5,
    "top_p": 1,
    "max_tokens": 4000,
    "presence_penalty": 0,
    "frequency_penalty": 0,
    "historyMessageCount": 4,
    "compressMessageLengthThreshold": 1000,
}

# app/locales/en.ts, Store.Prompt (other locales send their own translations).
TOPIC_PROMPT = (
    "Please generate a four to five word title summarizing our conversation without any lead-in, "
    "punctuation, quotation marks, periods, symbols, bold text, or additional text. "
    "Remove enclosing quotation marks."
)
SUMMARIZE_PROMPT = (
    "Summarize the discussion briefly in 200 words or less to use as a prompt for future context."
)


def memory_prompt(summary: str) -> str:
    """app/locales/en.ts Store.Prompt.History: how an earlier summary returns as a system message."""
    return "This is a summary of the chat history as a recap: " + summary


# app/constant.ts VISION_MODEL_REGEXES and EXCLUDE_VISION_MODEL_REGEXES, used by
# app/utils.ts isVisionModel (which also takes the server's VISION_MODELS list first).
_VISION = [
    re.compile(pattern, flags)
    for pattern, flags in (
        (r"vision", 0),
        (r"gpt-4o", 0),
        (r"gpt-4\.1", 0),
        (r"claude.*[34]", 0),
        (r"gemini-1\.5", 0),
        (r"gemini-exp", 0),
        (r"gemini-2\.[05]", 0),
        (r"learnlm", 0),
        (r"qwen-vl", 0),
        (r"qwen2-vl", 0),
        (r"gpt-4-turbo(?!.*preview)", 0),
        (r"^dall-e-3$", 0),
        (r"glm-4v", 0),
        (r"vl", re.IGNORECASE),
        (r"o3", 0),
        (r"o4-mini", 0),
        (r"grok-4", re.IGNORECASE),
        (r"gpt-5", 0),
    )
]
_NOT_VISION = [re.compile(r"claude-3-5-haiku-20241022")]

# app/constant.ts KnowledgeCutOffDate, the entries of the default models' family used here.
_CUTOFF = {"gpt-4o": "2023-10", "gpt-4o-mini": "2023-10", "gpt-4.1": "2024-06", "gpt-4.1-mini": "2024-06"}


def is_vision_model(model: str, vision_models: Sequence[str] = ()) -> bool:
    """app/utils.ts isVisionModel: by name only; it decides images and max_tokens in the body."""
    if model in vision_models:
        return True
    return not any(p.search(model) for p in _NOT_VISION) and any(p.search(model) for p in _VISION)


def _js_date(moment: datetime) -> str:
    # What JavaScript's Date.prototype.toString() prints, for a UTC browser.
    return moment.strftime("%a %b %d %Y %H:%M:%S GMT%z") + " (Coordinated Universal Time)"


def system_prompt(model: str = DEFAULT_MODEL, now: datetime | None = None) -> str:
    """The system prompt NextChat puts first in every chat with a gpt-*/chatgpt-* model.

    app/store/chat.ts getMessagesWithMemory (enableInjectSystemPrompts, on by default) fills
    app/constant.ts DEFAULT_SYSTEM_TEMPLATE through fillTemplateWith, which appends "\\n{{input}}"
    (here empty) since the template lacks it. Plus the MCP prompt when the server enables MCP.
    """
    moment = now or datetime.now(UTC)
    return (
        "\nYou are ChatGPT, a large language model trained by OpenAI.\n"
        f"Knowledge cutoff: {_CUTOFF.get(model, '2021-09')}\n"
        f"Current model: {model}\n"
        f"Current time: {_js_date(moment)}\n"
        "Latex inline: \\(x^2\\) \n"
        "Latex block: $$e=mc^2$$\n"
        "\n"
    )


def injects_system_prompt(model: str) -> bool:
    # app/store/chat.ts getMessagesWithMemory, shouldInjectSystemPrompts.
    return model.startswith(("gpt-", "chatgpt-"))


# --- headers -----------------------------------------------------------------------------


def headers(api_key: str) -> Headers:
    """app/client/api.ts getHeaders() for the OpenAI provider: every non-streamed call and the balance calls.

    No X-Requested-With, no OpenAI-Organization, no User-Agent of its own (the browser adds
    Origin, User-Agent, Accept-Language, Accept-Encoding). The key is trimmed and sent as Bearer.
    """
    return {
        "Content-Type": "application/json",
        "Accept": "application/json",
        "Authorization": f"Bearer {api_key.strip()}",
    }


def stream_headers(api_key: str) -> Headers:
    """getHeaders() as a streamed call puts them on the wire.

    app/utils/chat.ts streamWithThink hands getHeaders() to @fortaine/fetch-event-source, which
    adds `accept: text/event-stream` because it looks for the lowercase key only; the browser's
    Headers joins the two Accept entries into one line.
    """
    return {**headers(api_key), "Accept": "application/json, text/event-stream"}


def proxied_headers(api_key: str) -> Headers:
    """What Nexus receives when NextChat's server forwards the call (BASE_URL=Nexus).

    app/api/common.ts requestOpenai sets Content-Type, Cache-Control and the browser's
    Authorization (or, with no user key, `Bearer <OPENAI_API_KEY>` from app/api/auth.ts); the
    rest is Node's fetch (undici) defaults. The body is forwarded as a stream (duplex "half"),
    so it arrives chunked, without Content-Length, unless CUSTOM_MODELS is set.
    """
    return {
        "Content-Type": "application/json",
        "Cache-Control": "no-store",
        "Authorization": f"Bearer {api_key.strip()}",
        "accept": "*/*",
        "accept-language": "*",
        "sec-fetch-mode": "cors",
        "user-agent": "node",
        "accept-encoding": "gzip, deflate",
    }


def browser_preflight(origin: str, method: str) -> Headers:
    """The CORS preflight a browser sends before NextChat's call when Nexus is on another origin.

    Content-Type: application/json and Authorization are not CORS-safelisted (Accept is).
    """
    return {
        "Origin": origin,
        "Access-Control-Request-Method": method,
        "Access-Control-Request-Headers": "authorization,content-type",
    }


# --- bodies ------------------------------------------------------------------------------


def encode(body: Body) -> bytes:
    """The body as JavaScript's JSON.stringify writes it: no spaces, non-ASCII as it is."""
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()


def payload(
    messages: Sequence[Message], *, model: str, stream: bool, config: dict[str, Any] | None = None
) -> Body:
    """app/client/platforms/openai.ts ChatGPTApi.chat(): the request body for any chat call.

    modelConfig is the app's config merged with the session's, whatever the caller passed
    (so the summary's attempt to drop max_tokens in app/store/chat.ts has no effect here).
    max_tokens is sent only to vision models, as max(max_tokens, 4000); o1/o3/o4-mini get
    max_completion_tokens and a developer message instead of system messages; gpt-5 gets
    temperature 1 and max_completion_tokens. Plugins add `tools` (`chat_with_plugin`).
    """
    settings = {**MODEL_CONFIG, **(config or {})}
    reasoning = model.startswith(("o1", "o3", "o4-mini"))
    gpt5 = model.startswith("gpt-5")
    vision = is_vision_model(model)
    sent: list[Message] = []
    for message in messages:
        content = message["content"]
        if not vision and not isinstance(content, str):
            # app/utils.ts getMessageTextContent: the first text part only.
            content = next((part.get("text", "") for part in content if part["type"] == "text"), "")
        if not (reasoning and message["role"] == "system"):
            sent.append({"role": message["role"], "content": content})
    body: Body = {
        "messages": sent,
        "stream": stream,
        "model": model,
        "temperature": settings["temperature"] if not reasoning and not gpt5 else 1,
        "presence_penalty": settings["presence_penalty"] if not reasoning else 0,
        "frequency_penalty": settings["frequency_penalty"] if not reasoning else 0,
        "top_p": settings["top_p"] if not reasoning else 1,
    }
    if gpt5:
        body["max_completion_tokens"] = settings["max_tokens"]
    elif reasoning:
        body["messages"].insert(0, {"role": "developer", "content": "Formatting re-enabled"})
        body["max_completion_tokens"] = settings["max_tokens"]
    if vision and not reasoning and not gpt5:
        body["max_tokens"] = max(settings["max_tokens"], 4000)
    return body


def _recent(history: Sequence[Message], count: int) -> list[Message]:
    # app/store/chat.ts getMessagesWithMemory: the last historyMessageCount messages.
    return list(history[max(0, len(history) - count) :])


def _context(model: str, history: Sequence[Message], now: datetime | None, memory: str) -> list[Message]:
    context: list[Message] = []
    if injects_system_prompt(model):
        context.append({"role": "system", "content": system_prompt(model, now)})
    if memory:
        context.append({"role": "system", "content": memory_prompt(memory)})
    return context + _recent(history, MODEL_CONFIG["historyMessageCount"])


def chat_default(
    api_key: str,
    text: str,
    *,
    model: str = DEFAULT_MODEL,
    history: Sequence[Message] = (),
    memory: str = "",
    now: datetime | None = None,
) -> tuple[Headers, Body]:
    """A message typed into a chat with default settings (app/store/chat.ts onUserInput).

    Messages: the injected system prompt, the summary of earlier history if there is one,
    the last 4 messages, the new one (its text through the "{{input}}" template: unchanged).
    Always stream: true; no tools unless the chat's mask enables plugins.
    """
    messages = [*_context(model, history, now, memory), {"role": "user", "content": text}]
    return stream_headers(api_key), payload(messages, model=model, stream=True)


def chat_sliders(
    api_key: str,
    text: str,
    *,
    temperature: float = 1.3,
    top_p: float = 0.8,
    presence_penalty: float = 0.5,
    frequency_penalty: float = 0.6,
    max_tokens: int = 8000,
    model: str = DEFAULT_MODEL,
) -> tuple[Headers, Body]:
    """The same with the sliders of the chat's model settings moved (app/components/model-config.tsx)."""
    config = {
        "temperature": temperature,
        "top_p": top_p,
        "presence_penalty": presence_penalty,
        "frequency_penalty": frequency_penalty,
        "max_tokens": max_tokens,
    }
    messages = [*_context(model, (), None, ""), {"role": "user", "content": text}]
    return stream_headers(api_key), payload(messages, model=model, stream=True, config=config)


def image_message(text: str, data_urls: Sequence[str]) -> Message:
    """app/store/chat.ts onUserInput with attachImages: the raw text part (if any), then up to 3 images.

    The images are JPEG data URLs: app/utils/chat.ts uploadImage -> compressImage draws the
    upload on a canvas and takes toDataURL("image/jpeg", 0.9), smaller steps until < 256 KB
    (or, with the service worker, a /api/cache URL that preProcessImageContent ->
    cacheImageToBase64Image turns into the same JPEG data URL before sending).
    """
    text_part = [{"type": "text", "text": text}] if text else []
    return {
        "role": "user",
        "content": text_part + [{"type": "image_url", "image_url": {"url": url}} for url in data_urls],
    }


def chat_with_image(
    api_key: str, text: str, data_urls: Sequence[str], *, model: str = DEFAULT_MODEL
) -> tuple[Headers, Body]:
    """A message with uploaded images to a vision model; a non-vision model would get the text only."""
    messages = [*_context(model, (), None, ""), image_message(text, data_urls)]
    return stream_headers(api_key), payload(messages, model=model, stream=True)


def topic_request(
    api_key: str, history: Sequence[Message], *, model: str = DEFAULT_MODEL
) -> tuple[Headers, Body]:
    """The chat title, asked after the first reply (app/store/chat.ts summarizeSession).

    Sent when the topic is still "New Conversation" and the chat holds ~50 tokens: the last 4
    messages, no system prompt, then the instruction as a *user* message; stream: false, so
    plain fetch with getHeaders() and the reply read from choices[0].message.content. The
    model is `summary_model`'s: gpt-4o-mini for a gpt-* chat when the model list has it.
    """
    messages = [
        *_recent(history, MODEL_CONFIG["historyMessageCount"]),
        {"role": "user", "content": TOPIC_PROMPT},
    ]
    return headers(api_key), payload(messages, model=model, stream=False)


def summarize_request(
    api_key: str, history: Sequence[Message], *, memory: str = "", model: str = DEFAULT_MODEL
) -> tuple[Headers, Body]:
    """The history compression ("memory"), app/store/chat.ts summarizeSession.

    Sent after a reply once the history since the last summary passes
    compressMessageLengthThreshold (1000 estimated tokens, `should_summarize`): the previous
    summary as a leading system message (if any), the history, then the instruction as a
    *system* message last. No injected system prompt. stream: true; tools too if the mask
    has plugins.
    """
    leading = [{"role": "system", "content": memory_prompt(memory)}] if memory else []
    messages = [*leading, *history, {"role": "system", "content": SUMMARIZE_PROMPT}]
    return stream_headers(api_key), payload(messages, model=model, stream=True)


def estimate_tokens(text: str) -> float:
    """app/utils/token.ts estimateTokenLength: letters a quarter, other ASCII a half, the rest 1.5."""
    total = 0.0
    for char in text:
        code = ord(char)
        total += (0.25 if 65 <= code <= 122 else 0.5) if code < 128 else 1.5
    return total


def should_summarize(history: Sequence[Message]) -> bool:
    # app/store/chat.ts summarizeSession: countMessages(...) > compressMessageLengthThreshold.
    def text(message: Message) -> str:
        content = message["content"]
        if isinstance(content, str):
            return content
        return next((part.get("text", "") for part in content if part["type"] == "text"), "")

    return sum(estimate_tokens(text(m)) for m in history) > MODEL_CONFIG["compressMessageLengthThreshold"]


# --- plugins (tools) ---------------------------------------------------------------------

# A plugin's operation as app/store/plugin.ts FunctionToolService.add turns it into a tool:
# {"type": "function", "function": {name (operationId, else METHOD_path), description,
# parameters}}, its query parameters folded into `parameters`. Default masks have no
# plugins (app/store/mask.ts createEmptyMask: plugin: []), so `tools` is then left out.
WEATHER_TOOL: dict[str, Any] = {
    "type": "function",
    "function": {
        "name": "getCurrentWeather",
        "description": "Current weather of a city",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string", "description": "City name"}},
            "required": ["city"],
        },
    },
}


def chat_with_plugin(api_key: str, text: str, *, model: str = DEFAULT_MODEL) -> tuple[Headers, Body]:
    """A message in a chat whose mask enables a plugin: app/utils/chat.ts streamWithThink chatApi()."""
    headers_, body = chat_default(api_key, text, model=model)
    return headers_, {**body, "tools": [WEATHER_TOOL]}


def plugin_followup(
    api_key: str, first: Body, tool_calls: Sequence[dict[str, Any]], results: Sequence[str]
) -> tuple[Headers, Body]:
    """The call NextChat makes after running the tools (streamWithThink finish -> processToolMessage).

    The first body's messages, then {"role": "assistant", "tool_calls": [...]} with no
    `content` key at all, then one {"name", "role": "tool", "content", "tool_call_id"} per
    call; the same tools again.
    """
    answers = [
        {"name": call["function"]["name"], "role": "tool", "content": result, "tool_call_id": call["id"]}
        for call, result in zip(tool_calls, results, strict=True)
    ]
    messages = [*first["messages"], {"role": "assistant", "tool_calls": list(tool_calls)}, *answers]
    return stream_headers(api_key), {**first, "messages": messages}


# --- the balance (Settings > "Check") -------------------------------------------------------


def billing_usage(api_key: str, today: date) -> tuple[Headers, str]:
    """ChatGPTApi.usage(): GET usage from the 1st of the month to tomorrow; headers and path.

    NextChat shows `Math.round(total_usage) / 100` as dollars used: total_usage is in cents.
    A 401 shows "Unauthorized"; any other non-200 of either call, "Failed to query usage".
    Through NextChat's server the query string is lost on the way (`forwarded_url`).
    """
    start, end = today.replace(day=1), today + timedelta(days=1)
    return headers(api_key), f"{USAGE_PATH}?start_date={start:%Y-%m-%d}&end_date={end:%Y-%m-%d}"


def billing_subscription(api_key: str) -> tuple[Headers, str]:
    """ChatGPTApi.usage(), fetched beside usage: only `hard_limit_usd` is read, shown as the total."""
    return headers(api_key), SUBSCRIPTION_PATH


def balance_query_shown(env: dict[str, str]) -> bool:
    """app/config/server.ts hideBalanceQuery = !ENABLE_BALANCE_QUERY: Settings shows "Check" only then."""
    return bool(env.get("ENABLE_BALANCE_QUERY"))


def balance_shown(usage: dict[str, Any], subscription: dict[str, Any]) -> tuple[float | None, float | None]:
    """(used, total) in dollars as ChatGPTApi.usage() computes them from the two answers."""
    used = usage.get("total_usage")
    total = subscription.get("hard_limit_usd")
    return (
        _js_round(used) / 100 if used else used,
        _js_round(total * 100) / 100 if total else total,
    )


def _js_round(number: float) -> int:
    # JavaScript's Math.round: halves go up (Python's round() goes to the even neighbour).
    return math.floor(number + 0.5)


# --- NextChat's server: its environment, its model list, its proxy ---------------------------
# app/config/server.ts reads the environment once; the browser gets customModels and
# defaultModel from /api/config (app/store/access.ts fetch), and calls Nexus through the
# server's /api/openai/... routes, which forward to BASE_URL (app/api/openai.ts, common.ts).

SUMMARIZE_MODEL = "gpt-4o-mini"  # app/constant.ts, with the two below
GEMINI_SUMMARIZE_MODEL = "gemini-pro"
DEEPSEEK_SUMMARIZE_MODEL = "deepseek-chat"

# A few of app/constant.ts DEFAULT_MODELS (about 240 of every provider; each OpenAI model is
# listed again for Azure): (name, provider id, provider name), enough to see what `-all` does.
BUILT_IN_MODELS = (
    *((name, "openai", "OpenAI") for name in ("gpt-4o-mini", "gpt-4o", "gpt-4.1", "gpt-5", "o3")),
    *((name, "azure", "Azure") for name in ("gpt-4o-mini", "gpt-4o", "gpt-4.1", "gpt-5", "o3")),
    ("gemini-2.0-flash", "google", "Google"),
    ("claude-3-5-haiku-20241022", "anthropic", "Anthropic"),
    ("deepseek-chat", "deepseek", "DeepSeek"),
)


@dataclass
class ListedModel:
    """A row of NextChat's model table: the picker shows the available ones."""

    name: str
    display_name: str
    available: bool
    provider_id: str
    provider_name: str


def model_provider(text: str) -> tuple[str, str | None]:
    """app/utils/model.ts getModelProvider: "name@Provider", split at the last @."""
    name, at, provider = text.rpartition("@")
    return (name, provider) if at else (text, None)


def model_table(custom_models: str) -> dict[str, ListedModel]:
    """app/utils/model.ts collectModelTable(DEFAULT_MODELS, customModels), keyed "name@providerid".

    `-all`/`+all` switch every built-in model; `+name@Provider` switches those whose provider
    id is literally "Provider" (ids are lowercase, so `@OpenAI` matches none) and otherwise
    adds a model under a custom provider whose id is the lowercase name: `gpt-4o-mini@openai`
    again, now available. `=Display` names it in the picker only.
    """
    table = {
        f"{name}@{provider_id}": ListedModel(name, name, True, provider_id, provider_name)
        for name, provider_id, provider_name in BUILT_IN_MODELS
    }
    for entry in filter(None, custom_models.split(",")):
        available = not entry.startswith("-")
        name, _, display = (entry[1:] if entry[:1] in "+-" else entry).partition("=")
        if name == "all":
            for model in table.values():
                model.available = available
            continue
        wanted, wanted_provider = model_provider(name)
        found = 0
        for full_name, model in table.items():
            listed, provider_id = model_provider(full_name)
            if listed == wanted and wanted_provider in (None, provider_id):
                found += 1
                model.available = available
                model.display_name = display or model.display_name
        if not found:
            provider = wanted_provider or wanted
            table[f"{wanted}@{provider.lower()}"] = ListedModel(
                wanted, display or wanted, available, provider.lower(), provider
            )
    return table


def picker(custom_models: str) -> list[str]:
    """The models a NextChat user can choose from (app/components/chat.tsx, available ones)."""
    return [model.name for model in model_table(custom_models).values() if model.available]


def default_model(env: dict[str, str]) -> tuple[str, str]:
    """(model, providerName) of a new chat: DEFAULT_MODEL split by getModelProvider, else
    app/store/config.ts DEFAULT_CONFIG (gpt-4o-mini, OpenAI)."""
    if not env.get("DEFAULT_MODEL"):
        return DEFAULT_MODEL, "OpenAI"
    model, provider = model_provider(env["DEFAULT_MODEL"])
    return model, provider or ""


def summary_model(
    env: dict[str, str], model: str, provider_name: str, compress: tuple[str, str] | None = None
) -> tuple[str, str]:
    """(model, providerName) of a chat's title and summary calls: app/store/chat.ts summarizeSession.

    Settings > Summary Model (`compress`: compressModel, compressProviderName) if the user
    set one; else getSummarizeModel: a gpt-*/chatgpt-* chat uses gpt-4o-mini if the model
    list has it available, a gemini-* chat Google's gemini-pro, a deepseek-* chat DeepSeek's
    deepseek-chat (other providers' endpoints, not Nexus), any other chat its own model.
    """
    if compress is not None:
        return compress
    if model.startswith(("gpt", "chatgpt")):
        # The user's own Custom Models (empty by default) joined with the server's.
        listed = model_table(",".join(["", env.get("CUSTOM_MODELS", "")])).values()
        found = next((m for m in listed if m.name == SUMMARIZE_MODEL and m.available), None)
        if found is not None:
            return found.name, found.provider_name
    if model.startswith("gemini"):
        return GEMINI_SUMMARIZE_MODEL, "Google"
    if model.startswith("deepseek-"):
        return DEEPSEEK_SUMMARIZE_MODEL, "DeepSeek"
    return model, provider_name


def server_refuses(env: dict[str, str], model: str) -> bool:
    """Whether NextChat's server answers a call itself with 403 "you are not allowed to use
    <model> model" instead of forwarding it: app/api/common.ts requestOpenai, with
    CUSTOM_MODELS set, and app/utils/model.ts isModelNotavailableInServer."""
    custom_models = env.get("CUSTOM_MODELS", "")
    if not custom_models:
        return False
    table = model_table(custom_models)
    for provider in ("OpenAI", "Azure", model):
        listed = table.get(f"{model}@{provider.lower()}")
        if listed is not None and listed.available:
            return False
    return True


def forwarded_url(env: dict[str, str], browser_path: str) -> str:
    """Where NextChat's server sends a browser call to /api/openai/<path>: BASE_URL joined to the
    path *without its query string* (requestOpenai reads req.nextUrl.pathname only)."""
    base = env["BASE_URL"]
    base = base if base.startswith("http") else "https://" + base
    return base.rstrip("/") + "/" + browser_path.partition("?")[0].lstrip("/")


ACCESS_CODE_PREFIX = "nk-"  # app/constant.ts


def access_code(code: str) -> str:
    """What the browser sends as its key (getHeaders) when the user typed the access code
    (Settings > Access Code, the server's CODE) and no API key of their own."""
    return ACCESS_CODE_PREFIX + code


def forwarded_key(env: dict[str, str], browser_headers: Headers) -> str:
    """The key Nexus sees (app/api/auth.ts parseApiKey, auth): a key the user typed in
    Settings > API Key is forwarded as it is; an access code is swapped for the server's
    OPENAI_API_KEY, which every such visitor then shares."""
    token = browser_headers.get("Authorization", "").strip().replace("Bearer ", "").strip()
    return env["OPENAI_API_KEY"] if not token or token.startswith(ACCESS_CODE_PREFIX) else token


# --- an upload -----------------------------------------------------------------------------


def _segment(marker: int, payload_: bytes) -> bytes:
    return bytes([0xFF, marker]) + struct.pack(">H", len(payload_) + 2) + payload_


def tiny_jpeg(rgb: tuple[int, int, int] = (230, 90, 20), size: int = 16) -> bytes:
    """A real baseline JFIF JPEG of one colour, `size` pixels square (a multiple of 8).

    Written here rather than shipped: one 8x8 block per component per MCU, no chroma
    subsampling; a flat block has only a DC coefficient, so two tiny Huffman tables do.
    """
    red, green, blue = rgb
    levels = [
        round(0.299 * red + 0.587 * green + 0.114 * blue) - 128,
        round(128 - 0.168736 * red - 0.331264 * green + 0.5 * blue) - 128,
        round(128 + 0.5 * red - 0.418688 * green - 0.081312 * blue) - 128,
    ]
    # With every quantizer at 8 a flat block's quantized DC is its level; later blocks differ by 0.
    diffs = levels + [0, 0, 0] * ((size // 8) ** 2 - 1)
    categories = sorted({abs(diff).bit_length() for diff in diffs})
    bits: list[int] = []

    def put(value: int, length: int) -> None:
        bits.extend((value >> (length - 1 - i)) & 1 for i in range(length))

    for diff in diffs:
        category = abs(diff).bit_length()
        put(categories.index(category), 3)  # 3-bit codes: never the all-ones code JPEG forbids
        if category:
            put(diff if diff > 0 else diff + (1 << category) - 1, category)
        put(0, 1)  # end of block: every AC coefficient is zero
    bits.extend([1] * (-len(bits) % 8))
    scan = bytearray()
    for start in range(0, len(bits), 8):
        byte = int("".join(map(str, bits[start : start + 8])), 2)
        scan += bytes([byte, 0]) if byte == 0xFF else bytes([byte])
    components = b"".join(bytes([index + 1, 0x11, 0]) for index in range(3))
    return b"".join(
        [
            b"\xff\xd8",
            _segment(0xE0, b"JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00"),
            _segment(0xDB, b"\x00" + bytes([8] * 64)),
            _segment(0xC0, struct.pack(">BHHB", 8, size, size, 3) + components),
            _segment(
                0xC4,
                b"\x00"
                + bytes([0, 0, len(categories)] + [0] * 13)
                + bytes(categories)
                + b"\x10"
                + bytes([1] + [0] * 15)
                + b"\x00",
            ),
            _segment(0xDA, b"\x03" + b"".join(bytes([index + 1, 0]) for index in range(3)) + b"\x00\x3f\x00"),
            bytes(scan),
            b"\xff\xd9",
        ]
    )


def jpeg_data_url(image: bytes | None = None) -> str:
    """An upload as compressImage hands it over: canvas.toDataURL("image/jpeg", ...)."""
    return "data:image/jpeg;base64," + b64encode(image or tiny_jpeg()).decode()


# --- reading the answer --------------------------------------------------------------------


@dataclass
class Seen:
    """What the NextChat user gets from one streamed call."""

    text: str = ""  # the bubble's text, reasoning quoted with "> " as NextChat does
    tool_calls: list[dict[str, Any]] = field(default_factory=list)  # runTools, as it would run them
    done: bool = False  # a `data: [DONE]` event arrived
    error: str = ""  # shown instead of a reply when the response is not a 200 event stream


def _js_concat(left: Any, right: Any) -> str:
    # JavaScript's `+=` on strings: a missing value becomes "undefined" in the text.
    def text(value: Any) -> str:
        return "undefined" if value is None else str(value)

    return text(left) + text(right)


def _events(lines: Iterable[str]) -> Iterable[str]:
    # @fortaine/fetch-event-source getLines/getMessages: data lines joined by "\n", one
    # optional space after the colon dropped; an event leaves only at a blank line.
    data: list[str] | None = None
    for line in lines:
        if line == "":
            if data is not None:
                yield "\n".join(data)
            data = None
            continue
        name, _, value = line.partition(":")
        if name == "data":
            data = (data or []) + [value[1:] if value.startswith(" ") else value]


def read_stream(status: int, content_type: str, lines: Iterable[str]) -> Seen:
    """What app/utils/chat.ts streamWithThink and openai.ts parseSSE show for a response.

    onopen: text/plain is shown as the reply; anything but a 200 text/event-stream is shown as
    an error (the JSON body pretty-printed). onmessage: [DONE] ends; each chunk's
    choices[0].delta gives reasoning_content (quoted), content, and tool_calls[0] (a new call
    when it has an `id`, else arguments appended to the last one). An error object in the
    stream has no choices and shows nothing.
    """
    seen = Seen()
    if content_type.startswith("text/plain"):
        seen.text = "\n".join(lines)
        return seen
    if status != 200 or not content_type.startswith("text/event-stream"):
        seen.error = "\n".join(lines)
        return seen
    thinking = False
    last_thinking = False
    for data in _events(lines):
        if data == "[DONE]":
            seen.done = True
            break
        if not data.strip():
            continue
        chunk = json.loads(data)
        choices = chunk.get("choices") or []
        if not choices:
            continue
        delta = choices[0].get("delta") or {}
        calls = delta.get("tool_calls") or []
        if calls:
            call = calls[0]
            function = call.get("function") or {}
            if call.get("id"):
                seen.tool_calls.append(
                    {
                        "id": call["id"],
                        "type": call.get("type"),
                        "function": {"name": function.get("name"), "arguments": function.get("arguments")},
                    }
                )
            else:
                last = seen.tool_calls[-1]["function"]
                last["arguments"] = _js_concat(last["arguments"], function.get("arguments"))
        reasoning, content = delta.get("reasoning_content"), delta.get("content")
        if reasoning:
            piece, is_thinking = reasoning, True
        elif content:
            piece, is_thinking = content, False
        else:
            continue
        changed = is_thinking != last_thinking
        last_thinking = is_thinking
        if is_thinking:
            if not thinking or changed:
                thinking = True
                seen.text += ("\n" if seen.text else "") + "> " + piece
            else:
                seen.text += "\n\n> ".join(piece.split("\n\n"))
        elif thinking or changed:
            thinking = False
            seen.text += "\n\n" + piece
        else:
            seen.text += piece
    return seen
