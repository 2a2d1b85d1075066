"""Titles written by a model: after a new conversation's first reply, the operator's
`title_model` (runtime setting; empty keeps the first-words title) names the conversation.

It is an AI call like any other, made in the background once the reply is saved:

1. prepare (in a thread): the model's route, a short request built from the first
   exchange, and an admission charged to the user's budget, but not counted by the
   per-minute limit, which is there for the calls users make;
2. stream (on the loop, no database connection held) through llm.services.stream_chat;
3. save (in a thread, one transaction): the ledger row (kind `title`) settling the
   reservation, and the title, unless the user renamed the conversation meanwhile; every
   open tab hears `conversation.updated`.

Whatever fails (no such model, the budget spent, the provider down) leaves the first-words
title, with a log line; nothing reaches the user as an error.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field

from django.db import transaction

from accounts.models import User
from billing.models import CallKind
from billing.services import Admission, admission_release, admission_reserve, usage_record_create
from chats.models import Conversation, MessageStatus
from chats.notifications import notify_user
from chats.services import conversation_payload, title_from_message
from llm.selectors import route_get
from llm.services import stream_chat
from llm.tokens import estimate_request_tokens, estimate_tokens
from llm.types import (
    ChatMessage,
    ChatRequest,
    LLMError,
    ModelTarget,
    ReasoningDelta,
    Route,
    Served,
    TextDelta,
    UnknownModel,
    Usage,
)
from nexus.lib import runtime
from nexus.lib.db_threads import in_thread
from nexus.lib.errors import ApiError
from nexus.lib.maintenance import maintenance_check

logger = logging.getLogger(__name__)


TITLE_MAX_TOKENS = 32
# The first exchange as the title model reads it: enough to name it, cheap to send.
EXCHANGE_CHARS = 4000
INSTRUCTION = (
    "You name conversations. Answer with a title of at most six words for the conversation "
    "so far, in its language: no quotes, no final period, nothing else."
)

# The background tasks of this process, held so that the loop does not drop them.
_tasks: set[asyncio.Task[None]] = set()


@dataclass(frozen=True, slots=True)
class TitleCall:
    user_id: int
    conversation_id: int
    first_title: str  # the title it had: a title the user gave since is kept
    route: Route
    request: ChatRequest
    admission: Admission


@dataclass
class TitleResult:
    target: ModelTarget
    text: list[str] = field(default_factory=list)
    usage: Usage | None = None
    status: str = MessageStatus.FAILED
    cached: bool = False
    started: float = field(default_factory=time.monotonic)
    first_token_at: float | None = None


def title_start(*, user_id: int, conversation_id: int, question: str, answer: str) -> None:
    """Titles the conversation in the background, on the running loop; returns at once."""
    task = asyncio.get_running_loop().create_task(
        title_write(user_id=user_id, conversation_id=conversation_id, question=question, answer=answer),
        name=f"title:{conversation_id}",
    )
    _tasks.add(task)
    task.add_done_callback(_tasks.discard)


async def title_write(*, user_id: int, conversation_id: int, question: str, answer: str) -> None:
    try:
        call = await in_thread(title_prepare)(
            user_id=user_id, conversation_id=conversation_id, question=question, answer=answer
        )
        if call is None:
            return
        result = await title_generate(call)
        await in_thread(title_save)(call=call, result=result)
    except Exception:
        logger.exception("Could not title conversation %s; its first words stay", conversation_id)


def title_prepare(*, user_id: int, conversation_id: int, question: str, answer: str) -> TitleCall | None:
    """The admitted title call, or None when there is none to make (no title model, no
    such model, maintenance, the budget spent, the conversation gone)."""
    name = runtime.title_model()
    if not name:
        return None
    first_title = Conversation.objects.filter(pk=conversation_id).values_list("title", flat=True).first()
    user = User.objects.filter(pk=user_id, is_active=True).first()
    if first_title is None or user is None:
        return None
    try:
        route = route_get(name=name)
    except UnknownModel:
        logger.warning("The title model %r does not exist or is not enabled; titles stay first words", name)
        return None
    target = route.primary
    request = ChatRequest(
        messages=(
            ChatMessage(role="user", content=question[:EXCHANGE_CHARS]),
            ChatMessage(role="assistant", content=answer[:EXCHANGE_CHARS] or "…"),
            ChatMessage(role="user", content="Write the title of this conversation."),
        ),
        system=INSTRUCTION,
        max_tokens=min(TITLE_MAX_TOKENS, target.max_output_tokens),
    )
    try:
        maintenance_check(user=user)
        admission = admission_reserve(
            user=user,
            api_key=None,
            target=target,
            input_tokens=estimate_request_tokens(request),
            max_output_tokens=request.max_tokens or TITLE_MAX_TOKENS,
            rate_limited=False,
        )
    except ApiError as exc:  # out of budget, or maintenance: the first words stay
        logger.info("No title for conversation %s: %s", conversation_id, exc.message)
        return None
    return TitleCall(
        user_id=user_id,
        conversation_id=conversation_id,
        first_title=first_title,
        route=route,
        request=request,
        admission=admission,
    )


async def title_generate(call: TitleCall) -> TitleResult:
    """The title model's reply; a failure is a `failed` result, never an exception."""
    result = TitleResult(target=call.route.primary)
    try:
        async for event in stream_chat(call.route, call.request):
            if isinstance(event, TextDelta | ReasoningDelta) and result.first_token_at is None:
                result.first_token_at = time.monotonic()
            if isinstance(event, TextDelta) and event.choice == 0:
                result.text.append(event.text)
            elif isinstance(event, Usage):
                result.usage = event
            elif isinstance(event, Served):
                result.target, result.cached = event.target, event.cached
        result.status = MessageStatus.COMPLETE
    except LLMError as exc:
        logger.warning("The title model failed: %s %s", exc.code, exc.detail or exc.message)
    except Exception:
        logger.exception("The title call failed")
    return result


def title_clean(text: str) -> str:
    """The title in a model's answer: its first line, without quotes, a label or a final period."""
    line = next((line.strip() for line in text.splitlines() if line.strip()), "")
    for label in ("title:", "Title:", "TITLE:"):
        line = line.removeprefix(label).strip()
    line = line.strip("\"'`*#“”«»「」 ").rstrip(".").strip()
    return title_from_message(line) if line else ""


def title_save(*, call: TitleCall, result: TitleResult) -> str:
    """Records the call in the ledger and, if it answered, retitles the conversation; the title in force."""
    text = "".join(result.text)
    usage = result.usage
    if usage is None or result.status != MessageStatus.COMPLETE:
        usage = Usage(
            input_tokens=usage.input_tokens if usage else estimate_request_tokens(call.request),
            output_tokens=estimate_tokens(text) if text else 0,
            estimated=True,
        )
    title = title_clean(text) if result.status == MessageStatus.COMPLETE else ""
    try:
        with transaction.atomic():
            usage_record_create(
                admission=call.admission,
                target=result.target,
                input_tokens=usage.input_tokens,
                output_tokens=usage.output_tokens,
                estimated=usage.estimated,
                cached=result.cached,
                outcome=result.status,
                latency_ms=int((time.monotonic() - result.started) * 1000),
                ttft_ms=int((result.first_token_at - result.started) * 1000)
                if result.first_token_at
                else None,
                # Providers bill nothing for a call refused before its first token.
                charged=not result.cached and result.first_token_at is not None,
                kind=CallKind.TITLE,
            )
            if not title or title == call.first_title:
                return call.first_title
            renamed = Conversation.objects.filter(pk=call.conversation_id, title=call.first_title).update(
                title=title
            )
            if not renamed:  # renamed by the user meanwhile, or deleted
                return call.first_title
            conversation = Conversation.objects.get(pk=call.conversation_id)
            notify_user(
                user_id=call.user_id, event="conversation.updated", payload=conversation_payload(conversation)
            )
            return title
    except Exception:
        admission_release(admission=call.admission)
        raise
