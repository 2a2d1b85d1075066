"""The one AI turn, shared by every surface (SSE, WebSocket, /v1).

1. prepare (sync, short transactions): authenticate was done by the surface; admit (rate
   limit and quota reservation), resolve the model, build the context, save the user
   message and an empty assistant message marked `streaming`;
2. run (async, no database connection held): stream from llm, publish numbered events to
   the message's stream, whoever is reading;
3. finish (sync, one transaction, in a `finally`): save the reply with its outcome and
   tokens, write the usage record and settle the reservation, whether the turn
   completed, failed midway or was stopped.

The run is a task of its own, not part of any HTTP connection: a client that goes away
does not lose the reply, and `stop` cancels the task from outside.

Its functions, in that order: `turn_prepare` (and `turn_prepare_gateway`) in a thread,
`turn_start` on the event loop (which runs `turn_run`), `turn_finish` in a thread, and
`turn_stop` from anywhere.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts.models import ApiKey, User
from accounts.restrictions import key_model_check
from billing.services import Admission, admission_extend, admission_release, admission_reserve
from chats import branches, journal, runner, selectors, titles
from chats import files as chat_files
from chats.models import Conversation, Message, MessageRole, MessageStatus, Template
from chats.notifications import notify_user
from chats.recovery import outcome_save, streams_repair, sweeper_ensure
from chats.services import conversation_check_idle, conversation_payload, title_from_message
from chats.streams import hub, stream_key_for
from llm import parameters
from llm.selectors import route_get
from llm.services import stream_chat
from llm.tokens import estimate_message_tokens, estimate_request_tokens, estimate_tokens
from llm.types import (
    Capability,
    ChatMessage,
    ChatRequest,
    Finish,
    LLMError,
    ModelTarget,
    ReasoningDelta,
    Route,
    Served,
    TextDelta,
    TextPart,
    ToolCall,
    ToolCallDelta,
    Usage,
)
from llm.types import UnknownModel as UnknownModelError
from nexus.lib import metrics, runtime
from nexus.lib.db_threads import in_thread
from nexus.lib.errors import ApiError
from nexus.lib.maintenance import maintenance_check

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class TurnSpec:
    """What the client asked for; every field but the message is optional."""

    message: str = ""
    conversation_id: int | None = None
    model: str | None = None
    template_id: int | None = None
    system_prompt: str | None = None
    temperature: float | None = None
    top_p: float | None = None
    max_tokens: int | None = None
    # Ids of the caller's files the message attaches (chats.files); None: an edit keeps the
    # edited message's, a regenerated reply answers its message with the files it had.
    attachments: Sequence[int] | None = None


@dataclass(frozen=True, slots=True)
class PreparedTurn:
    user_id: int
    route: Route
    request: ChatRequest
    admission: Admission
    conversation_id: int | None = None
    assistant_message_id: int | None = None
    stream_key: str = ""
    created_conversation: bool = False
    # Parameters the model's provider kind cannot honour, left out of the request (OpenAI's names).
    dropped_params: tuple[str, ...] = ()
    # The ledger's kind of call (billing.models.CallKind): "chat", or "title" for a title.
    kind: str = "chat"
    # The message the reply answers (chats.branches), told to the client in `start`.
    parent_message_id: int | None = None
    # A new conversation of /chat, for the title model to name after its first reply (chats.titles).
    retitle: bool = False


@dataclass
class TurnOutcome:
    """What the run learned, for the finish: text so far, tokens, timings, how it ended."""

    target: ModelTarget
    text: list[str] = field(default_factory=list)
    reasoning: list[str] = field(default_factory=list)
    # The first choice's tool calls by index, put together from their deltas.
    tool_calls: dict[int, dict[str, str]] = field(default_factory=dict)
    usage: Usage | None = None
    finish_reason: str = ""
    # With several choices (`n`), the finish reason of each.
    finish_reasons: dict[int, str] = field(default_factory=dict)
    status: str = MessageStatus.STREAMING
    error: LLMError | None = None
    cached: bool = False
    started: float = field(default_factory=time.monotonic)
    first_token_at: float | None = None
    # Why a reply ended early on Nexus's side: "budget" when the budget could not pay more.
    finish_detail: str = ""


class ModelNotAvailable(ApiError):
    default_code = "model_not_found"
    default_detail = "This model does not exist or is not enabled."


# --- 1. prepare ------------------------------------------------------------------------


def _model_name(spec: TurnSpec, conversation: Conversation | None, template: Template | None) -> str:
    for candidate in (spec.model, conversation and conversation.model, template and template.model):
        if candidate:
            return candidate
    return runtime.default_model()


_WRONG_KIND = {
    "chat": "is an embedding model: it writes no replies. Call it through /v1/embeddings, or "
    "choose a chat model.",
    "embedding": "is a chat model: it makes no embeddings. Call it through /v1/chat/completions, "
    "or choose an embedding model.",
}


def model_route(name: str, *, api_key: ApiKey | None = None, kind: str = "chat") -> Route:
    """The route of the model `name` (or an alias of one) of `kind`, once the caller's key
    may use it: 403 for a model the key may not use, 404 unknown, 400 of the other kind."""
    key_model_check(key=api_key, name=name)
    try:
        route = route_get(name=name)
    except UnknownModelError as exc:
        raise ModelNotAvailable(str(exc), param="model") from None
    if route.primary.kind != kind:
        raise ApiError(f"The model {name} {_WRONG_KIND[kind]}", code="model_not_capable", param="model")
    return route


def _parameters(spec: TurnSpec, *layers: dict[str, Any]) -> dict[str, Any]:
    merged: dict[str, Any] = {}
    for layer in layers:
        merged.update({key: value for key, value in layer.items() if value is not None})
    explicit = {"temperature": spec.temperature, "top_p": spec.top_p, "max_tokens": spec.max_tokens}
    merged.update({key: value for key, value in explicit.items() if value is not None})
    return merged


def _context(
    *, target: ModelTarget, system: str, newest_first: Iterable[Message], max_tokens: int
) -> tuple[ChatMessage, ...]:
    """The newest messages that fit the context window beside the system prompt and the reply.

    `newest_first` is read only as far as the window reaches, so a long conversation costs
    the turn the messages it sends, not all it ever had.
    """
    budget = target.context_window - max_tokens - estimate_tokens(system)
    kept: list[ChatMessage] = []
    vision = "vision" in target.capabilities
    for message in newest_first:
        calls = tuple(
            ToolCall(id=call["id"], name=call["name"], arguments=call["arguments"])
            for call in message.tool_calls or ()
        )
        # Attached files go before the text, and count like any content (chats.files).
        attached = chat_files.message_parts(message=message, vision=vision)
        cost = estimate_tokens(message.content) + sum(estimate_tokens(call.arguments) for call in calls) + 4
        if attached:
            cost += estimate_message_tokens(ChatMessage(role="user", content=attached))
        if budget - cost < 0 and kept:
            break
        budget -= cost
        kept.append(
            ChatMessage(
                role=message.role,  # type: ignore[arg-type]
                content=(*attached, TextPart(message.content)) if attached else message.content,
                tool_calls=calls,
                tool_call_id=message.tool_call_id,
            )
        )
    if budget < 0:
        raise ApiError(
            "The message is too long for this model's context window.", code="context_length", param="message"
        )
    # A tool message names the function it answers (Gemini needs it): the call's name.
    names = {call.id: call.name for message in kept for call in message.tool_calls}
    return tuple(
        replace(message, name=names.get(message.tool_call_id, "")) if message.role == "tool" else message
        for message in reversed(kept)
    )


def _history_newest_first(
    conversation: Conversation | None, *, up_to: int | None = None
) -> Iterator[Message]:
    """The finished messages with text of the branch ending at `up_to` (None: the current
    branch), newest first, fetched as they are read (chats.branches)."""
    if conversation is None:
        return iter(())
    messages = conversation.messages.exclude(status=MessageStatus.STREAMING)
    messages = messages.exclude(content="", tool_calls=[])
    messages = messages.filter(branches.branch_filter(conversation=conversation, leaf_id=up_to))
    fields = ("id", "role", "content", "tool_calls", "tool_call_id")
    return chat_files.with_attachments(messages.order_by("-id").only(*fields)).iterator(chunk_size=64)


def _admit(*, user: User, api_key: ApiKey | None, target: ModelTarget, request: ChatRequest) -> Admission:
    """Rate limit and quota: the most this request can cost is reserved before any upstream call."""
    return admission_reserve(
        user=user,
        api_key=api_key,
        target=target,
        input_tokens=estimate_request_tokens(request),
        max_output_tokens=(request.max_tokens or target.max_output_tokens) * request.choices,
    )


def turn_prepare_gateway(
    *,
    user: User,
    api_key: ApiKey | None,
    model: str,
    request: ChatRequest,
    needs: Mapping[Capability, str] | None = None,
    save: bool = False,
    previous: Message | None = None,
) -> PreparedTurn:
    """A turn of the OpenAI-compatible gateway: the client sends the whole context.

    `needs` are the capabilities the request needs, each with the parameter that needs it:
    a model that lacks one is refused with a 400 naming both. A parameter the model's
    provider kind cannot honour is dropped (PreparedTurn.dropped_params) or, when the model
    says so, refused. Nothing is saved but the usage, unless `save`: then the exchange
    becomes a new conversation of the caller, its reply saved like any other.

    With `previous`, a reply of the caller's (the Responses API's previous_response_id), the
    turn continues its conversation: the context is the conversation up to that reply, then
    the request's messages, which `save` appends there, each following the one before.
    """
    maintenance_check(user=user)
    route = model_route(model, api_key=api_key)
    target = route.primary
    request, dropped = _fit(target, request, needs or {})
    request = replace(
        request, max_tokens=min(request.max_tokens or target.max_output_tokens, target.max_output_tokens)
    )
    new_messages = request.messages
    if previous is not None:
        if save:  # before admission, so that a refused call costs no call of the caller's limit
            conversation_check_idle(conversation_id=previous.conversation_id)
        history = _context(
            target=target,
            system="",
            newest_first=_history_newest_first(previous.conversation, up_to=previous.pk),
            max_tokens=(request.max_tokens or 0) + estimate_request_tokens(request),
        )
        # A function's output names the function it answers (Gemini needs it), maybe from the history.
        names = {call.id: call.name for message in history + new_messages for call in message.tool_calls}
        request = replace(
            request,
            messages=history
            + tuple(
                replace(message, name=message.name or names.get(message.tool_call_id, ""))
                if message.role == "tool"
                else message
                for message in new_messages
            ),
        )
    admission = _admit(user=user, api_key=api_key, target=target, request=request)
    if not save:
        return PreparedTurn(
            user_id=user.pk,
            route=route,
            request=request,
            admission=admission,
            stream_key=f"gateway:{uuid.uuid4().hex}",
            dropped_params=dropped,
        )
    first_user_text = next((m.text for m in new_messages if m.role == MessageRole.USER), "")
    written: list[Message] = []

    def write_exchange() -> tuple[Conversation, bool]:
        if previous is not None:
            conversation = previous.conversation
            conversation_check_idle(conversation_id=conversation.pk, lock=True)
            # A line of messages from before branches becomes one, before the chain grows from it.
            branches.conversation_link(conversation_id=conversation.pk)
        else:
            conversation = Conversation.objects.create(
                owner=user,
                title=title_from_message(first_user_text),
                model=model,
                system_prompt=request.system,
            )
        written.extend(
            Message.objects.bulk_create(
                Message(
                    conversation=conversation,
                    role=message.role,
                    content=message.text,
                    tool_calls=[
                        {"id": call.id, "name": call.name, "arguments": call.arguments}
                        for call in message.tool_calls
                    ],
                    tool_call_id=message.tool_call_id,
                )
                for message in new_messages
                if message.role in MessageRole.values and (message.text or message.tool_calls)
            )
        )
        # The messages are a chain, from the reply continued (if any) to the new reply.
        for parent, message in zip([previous, *written], written, strict=False):
            message.parent = parent
        Message.objects.bulk_update(written, ["parent"])
        return conversation, previous is None

    prepared = _prepared_with_reply(
        user=user,
        route=route,
        request=request,
        admission=admission,
        write=write_exchange,
        answers=lambda: written[-1] if written else previous,
    )
    return replace(prepared, dropped_params=dropped)


_CAPABILITY_NAMES = {
    "vision": "images",
    "tools": "tools",
    "structured_output": "structured output (response_format)",
    "reasoning": "reasoning",
}


def _fit(
    target: ModelTarget, request: ChatRequest, needs: Mapping[Capability, str]
) -> tuple[ChatRequest, tuple[str, ...]]:
    """The request as `target` can take it, and the parameters left out; 400 for what it cannot."""
    for capability, param in parameters.capability_gaps(target, needs):
        raise ApiError(
            f"The model {target.name} does not take {_CAPABILITY_NAMES[capability]}.",
            code="model_not_capable",
            param=param,
        )
    for part, param in needs_parts(request):
        if not parameters.takes_part(target.provider.kind, part):
            raise ApiError(
                f"The model {target.name} does not take {part} input.", code="model_not_capable", param=param
            )
    unsupported = parameters.unsupported_parameters(target, request)
    if unsupported and not target.drop_params:
        names = ", ".join(unsupported)
        raise ApiError(
            f"The model {target.name} does not support {names}.",
            code="unsupported_parameter",
            param=unsupported[0],
        )
    return parameters.without(request, unsupported), tuple(unsupported)


def needs_parts(request: ChatRequest) -> Iterator[tuple[str, str]]:
    """The audio and file parts of a request, with where they are, by kind of part."""
    seen: set[str] = set()
    for index, message in enumerate(request.messages):
        for position, part in enumerate(message.parts):
            kind = parameters.part_kind(part)
            if kind in ("audio", "file") and kind not in seen:
                seen.add(kind)
                yield kind, f"messages[{index}].content[{position}]"


def turn_prepare(
    *,
    user: User,
    api_key: ApiKey | None,
    spec: TurnSpec,
    regenerate: Message | None = None,
    edit: Message | None = None,
) -> PreparedTurn:
    """Validates and admits a turn, and saves the user message and an empty reply.

    A new message follows the leaf of the conversation's current branch (chats.branches).
    With `regenerate`, the turn answers again the message that `regenerate` is (or that it
    answers, for a reply): the new reply is a sibling of the earlier ones. With `edit`, a
    user message, `spec.message` is its new text, saved as a sibling of it and answered;
    nothing is deleted either way.
    """
    maintenance_check(user=user)
    if edit is not None and edit.role != MessageRole.USER:
        raise ApiError("Only your own messages can be edited.", code="not_editable", param="content")
    max_chars = runtime.max_message_chars()
    if regenerate is None and len(spec.message) > max_chars:
        raise ApiError(
            f"The message is longer than {max_chars} characters.",
            code="message_too_large",
            status_code=413,
            param="message",
        )
    conversation: Conversation | None = None
    if regenerate is not None:
        conversation = regenerate.conversation
    elif edit is not None:
        conversation = edit.conversation
    elif spec.conversation_id is not None:
        conversation = selectors.conversation_get(user=user, conversation_id=spec.conversation_id)
    template: Template | None = None
    if spec.template_id is not None:
        template = selectors.template_get(user=user, template_id=spec.template_id)
    elif conversation is not None and conversation.template_id is not None:
        template = Template.objects.filter(pk=conversation.template_id).first()

    if conversation is not None:
        # Before admission, so that a refused click costs no call of the caller's limit.
        conversation_check_idle(conversation_id=conversation.pk)
    route = model_route(_model_name(spec, conversation, template), api_key=api_key)
    target = route.primary
    parameters = _parameters(
        spec, template.parameters if template else {}, conversation.parameters if conversation else {}
    )
    max_tokens = min(int(parameters.get("max_tokens") or target.max_output_tokens), target.max_output_tokens)
    system = next(
        (
            prompt
            for prompt in (
                spec.system_prompt,
                conversation and conversation.system_prompt,
                template and template.system_prompt,
            )
            if prompt
        ),
        "",
    )

    anchor: Message | None = None  # what a regenerated reply answers again
    question: Message | None = None
    if regenerate is not None:
        anchor = branches.answered_message(reply=regenerate)
        history = _history_newest_first(conversation, up_to=anchor.pk)
    else:
        # An edit follows what the edited message followed; a new message, the current leaf.
        follows = (
            branches.parent_of(message=edit)
            if edit is not None
            else branches.leaf_id(conversation=conversation)
        )
        question = Message(
            role=MessageRole.USER,
            content=spec.message,
            parent_id=follows,
            edited_at=timezone.now() if edit is not None else None,
        )
        earlier = _history_newest_first(conversation, up_to=follows) if follows is not None else iter(())
        history = itertools.chain([question], earlier)
    # The files the message carries (the caller's own; images only for a model that reads them),
    # checked before anything is saved or charged.
    attached = chat_files.turn_files(user=user, target=target, ids=spec.attachments, carried=anchor or edit)
    if question is not None:
        chat_files.attach_unsaved(message=question, files=attached)

    request = ChatRequest(
        messages=_context(target=target, system=system, newest_first=history, max_tokens=max_tokens),
        system=system,
        temperature=parameters.get("temperature"),
        top_p=parameters.get("top_p"),
        max_tokens=max_tokens,
    )
    admission = _admit(user=user, api_key=api_key, target=target, request=request)

    def write_question() -> tuple[Conversation, bool]:
        if conversation is None:
            created = Conversation.objects.create(
                owner=user,
                title=title_from_message(spec.message),
                model=route.primary.name,  # the model it started with, shown in lists
                template=template,
                system_prompt=spec.system_prompt or "",
            )
            assert question is not None  # noqa: S101 - only a new message starts a conversation
            question.conversation = created
            question.save(force_insert=True)
            chat_files.attachments_save(message=question)
            return created, True
        conversation_check_idle(conversation_id=conversation.pk, lock=True)
        # A line of messages from before branches becomes one, before a branch grows from it.
        branches.conversation_link(conversation_id=conversation.pk)
        if question is not None:
            question.conversation = conversation
            question.save(force_insert=True)
            chat_files.attachments_save(message=question)
        return conversation, False

    prepared = _prepared_with_reply(
        user=user,
        route=route,
        request=request,
        admission=admission,
        write=write_question,
        answers=lambda: question or anchor,
    )
    if prepared.created_conversation and runtime.title_model():
        prepared = replace(prepared, retitle=True)
    return prepared


def _prepared_with_reply(
    *,
    user: User,
    route: Route,
    request: ChatRequest,
    admission: Admission,
    write: Callable[[], tuple[Conversation, bool]],
    answers: Callable[[], Message | None] | None = None,
) -> PreparedTurn:
    """Runs `write` (the conversation and the caller's side of the turn) and adds the empty
    reply, in one transaction; if anything fails the reservation is given back.

    `answers` names, once `write` ran, the message the reply follows (its parent).
    """
    try:
        with transaction.atomic():
            conversation, created = write()
            parent = answers() if answers is not None else None
            reply = Message.objects.create(
                conversation=conversation,
                parent=parent,
                role=MessageRole.ASSISTANT,
                status=MessageStatus.STREAMING,
                model=route.primary.name,
            )
            conversation.updated_at = timezone.now()
            # The reply is the newest message: the current branch ends there (chats.branches).
            conversation.current_leaf_id = None
            Conversation.objects.filter(pk=conversation.pk).update(
                updated_at=conversation.updated_at, current_leaf=None
            )
            notify_user(
                user_id=user.pk,
                event="conversation.created" if created else "conversation.updated",
                payload=conversation_payload(conversation),
            )
    except IntegrityError as exc:
        admission_release(admission=admission)
        if "chats_msg_one_streaming_per_conversation" in str(exc):
            raise ApiError(
                "A reply in this conversation is still being written: wait for it, or stop it.",
                code="turn_in_progress",
                status_code=409,
            ) from None
        raise
    except BaseException:
        admission_release(admission=admission)
        raise
    return PreparedTurn(
        user_id=user.pk,
        route=route,
        request=request,
        admission=admission,
        conversation_id=conversation.pk,
        assistant_message_id=reply.pk,
        stream_key=stream_key_for(reply.pk),
        created_conversation=created,
        parent_message_id=parent.pk if parent is not None else None,
    )


# --- 2. run ----------------------------------------------------------------------------


def turn_start(prepared: PreparedTurn) -> None:
    """Starts the run as a task of this process's event loop; readers subscribe to its stream."""
    # A reply that is saved can be resumed from any process; the gateway's stateless ones cannot.
    runner.launch(
        prepared.stream_key,
        turn_run(prepared),
        resumable=prepared.assistant_message_id is not None,
        journal_entry=_journal_entry(prepared),
    )


def turn_stop(*, user: User, message_id: int) -> None:
    """Stops the turn writing this message: the reply so far is saved as `stopped`."""
    message = selectors.message_get(user=user, message_id=message_id)
    if message.status != MessageStatus.STREAMING:
        raise ApiError("This reply is not being written.", code="not_streaming", status_code=409)
    if not runner.stop(stream_key_for(message.pk)):
        # No process runs it (one process, no Redis: it died with a restart): close it now.
        streams_repair(message_ids=[message.pk])


async def turn_run(prepared: PreparedTurn) -> None:
    key = prepared.stream_key
    outcome = TurnOutcome(target=prepared.route.primary)
    metrics.ai_call_started()
    hub.publish(
        key,
        "start",
        {
            "conversation_id": prepared.conversation_id,
            "message_id": prepared.assistant_message_id,
            "model": outcome.target.name,
            **({"parent_id": prepared.parent_message_id} if prepared.parent_message_id else {}),
        },
    )
    admission = prepared.admission
    generated = 0  # output tokens so far, estimated: at least one a delta
    events = stream_chat(prepared.route, prepared.request)
    try:
        async for event in events:
            if isinstance(event, TextDelta | ReasoningDelta | ToolCallDelta):
                if outcome.first_token_at is None:
                    outcome.first_token_at = time.monotonic()
                generated += max(
                    1, estimate_tokens(event.arguments if isinstance(event, ToolCallDelta) else event.text)
                )
                if generated >= admission.output_tokens and not outcome.cached:
                    grown = await _reserve_more(admission, outcome.target)
                    if grown is None:  # the budget cannot pay for more: the reply ends here
                        outcome.finish_reason, outcome.finish_detail = "length", "budget"
                        outcome.finish_reasons = {0: "length"}
                        await events.aclose()  # closes the upstream connection now
                        break
                    admission = grown
            if isinstance(event, TextDelta):
                if event.choice == 0:
                    outcome.text.append(event.text)
                hub.publish(key, "delta", _delta_data(event, content=event.text))
            elif isinstance(event, ReasoningDelta):
                if event.choice == 0:
                    outcome.reasoning.append(event.text)
                hub.publish(key, "reasoning", _delta_data(event, content=event.text))
            elif isinstance(event, ToolCallDelta):
                if event.choice == 0:
                    _tool_call_add(outcome.tool_calls, event)
                data = _delta_data(
                    event, index=event.index, id=event.id, name=event.name, arguments=event.arguments
                )
                hub.publish(key, "tool_call", data)
            elif isinstance(event, Usage):
                outcome.usage = event
            elif isinstance(event, Finish):
                outcome.finish_reasons[event.choice] = event.reason
                if event.choice == 0:
                    outcome.finish_reason = event.reason
            elif isinstance(event, Served):
                outcome.target = event.target
                outcome.cached = event.cached
        outcome.status = MessageStatus.COMPLETE
    except LLMError as exc:
        # The provider's own text (redacted) is for this log only; clients get exc.message.
        logger.warning("Turn %s failed upstream: %s %s", key, exc.code, exc.detail or exc.message)
        outcome.status, outcome.error = MessageStatus.FAILED, exc
    except asyncio.CancelledError:
        outcome.status = MessageStatus.STOPPED
        await _finish(prepared, outcome)
        raise
    except Exception:
        logger.exception("Turn %s failed", key)
        outcome.status = MessageStatus.FAILED
        outcome.error = LLMError("upstream_error", "The reply failed unexpectedly.")
    await _finish(prepared, outcome)
    if prepared.retitle and prepared.conversation_id and outcome.status == MessageStatus.COMPLETE:
        titles.title_start(
            user_id=prepared.user_id,
            conversation_id=prepared.conversation_id,
            question=next((m.text for m in reversed(prepared.request.messages) if m.role == "user"), ""),
            answer="".join(outcome.text),
        )


async def _reserve_more(admission: Admission, target: ModelTarget) -> Admission | None:
    """A step more of the reply reserved, or None when the budget (or the database that
    keeps it) cannot pay for it now: a reply is cut rather than let spend unchecked."""
    if admission.output_tokens >= admission.max_output_tokens:
        return admission  # all it may generate is reserved; the router cuts it at its limit
    try:
        return await in_thread(admission_extend)(
            admission=admission, target=target, output_tokens=settings.RESERVE_STEP_TOKENS
        )
    except Exception:
        logger.warning("Could not reserve more for %s; the reply ends here", admission.id, exc_info=True)
        return None


def _tool_call_add(calls: dict[int, dict[str, str]], event: ToolCallDelta) -> None:
    call = calls.setdefault(event.index, {"id": "", "name": "", "arguments": ""})
    call["id"] = call["id"] or event.id or ""
    call["name"] += event.name or ""
    call["arguments"] += event.arguments or ""


def _delta_data(event: TextDelta | ReasoningDelta | ToolCallDelta, **data: Any) -> dict[str, Any]:
    """An event's data; the choice and log probabilities only when there are any."""
    if event.choice:
        data["choice"] = event.choice
    if isinstance(event, TextDelta) and event.logprobs:
        data["logprobs"] = [dict(entry) for entry in event.logprobs]
    return data


async def _finish(prepared: PreparedTurn, outcome: TurnOutcome) -> None:
    usage = _final_usage(prepared, outcome)
    try:
        await in_thread(turn_finish)(prepared=prepared, outcome=outcome, usage=usage)
    except Exception:
        # Journaled before the save was tried: the client may be told the end, and this
        # process's sweeper saves it once PostgreSQL takes it (another process, if this dies).
        logger.exception("Could not save the outcome of turn %s yet; it is journaled", prepared.stream_key)
        sweeper_ensure()
    finally:
        metrics.ai_call_finished(
            user_id=prepared.user_id,
            model=outcome.target.name,
            provider=outcome.target.provider.name,
            outcome=str(outcome.status),
            input_tokens=usage.input_tokens,
            output_tokens=usage.output_tokens,
            seconds=time.monotonic() - outcome.started,
            first_token_seconds=outcome.first_token_at - outcome.started if outcome.first_token_at else None,
            error_code=outcome.error.code if outcome.error else "",
            cached=outcome.cached,
        )
        _publish_end(prepared, outcome, usage)


def _final_usage(prepared: PreparedTurn, outcome: TurnOutcome) -> Usage:
    """The provider's count when it sent one; else what was generated, estimated."""
    if outcome.usage is not None and outcome.status == MessageStatus.COMPLETE:
        return outcome.usage
    text = "".join(outcome.text)
    input_tokens = outcome.usage.input_tokens if outcome.usage else estimate_request_tokens(prepared.request)
    if outcome.usage is not None and outcome.usage.output_tokens:
        return replace(outcome.usage, input_tokens=input_tokens)
    return Usage(
        input_tokens=input_tokens, output_tokens=estimate_tokens(text) if text else 0, estimated=True
    )


def _publish_end(prepared: PreparedTurn, outcome: TurnOutcome, usage: Usage) -> None:
    key = prepared.stream_key
    usage_data = {"input_tokens": usage.input_tokens, "output_tokens": usage.output_tokens}
    if outcome.status == MessageStatus.FAILED and outcome.error is not None:
        error: dict[str, Any] = {"code": outcome.error.code, "message": outcome.error.message}
        if outcome.error.retry_after is not None:
            error["retry_after"] = outcome.error.retry_after
        hub.publish(
            key,
            "error",
            {"message_id": prepared.assistant_message_id, "error": error, "usage": usage_data},
        )
    else:
        done: dict[str, Any] = {
            "message_id": prepared.assistant_message_id,
            "finish_reason": "stopped"
            if outcome.status == MessageStatus.STOPPED
            else outcome.finish_reason or "stop",
            "usage": usage_data,
        }
        if outcome.finish_detail:
            done["finish_detail"] = outcome.finish_detail
        if len(outcome.finish_reasons) > 1:
            done["finish_reasons"] = {
                str(choice): reason for choice, reason in outcome.finish_reasons.items()
            }
        hub.publish(key, "done", done)
    hub.release(key)


# --- 3. finish -------------------------------------------------------------------------


def turn_finish(*, prepared: PreparedTurn, outcome: TurnOutcome, usage: Usage) -> None:
    """Journals the outcome, then saves the reply and its usage in one transaction and
    settles the reservation (chats.recovery.outcome_save); forgets the journal entry once
    committed. If the save fails, the entry stays journaled and this raises."""
    entry = _journal_entry(prepared, outcome=outcome, usage=usage)
    journal.record(entry)
    outcome_save(entry)
    journal.committed(prepared.stream_key)


def _journal_entry(
    prepared: PreparedTurn, *, outcome: TurnOutcome | None = None, usage: Usage | None = None
) -> journal.Entry:
    """The turn as chats.journal keeps it: `running` (enough to charge it if its process
    dies), or `finished` with the whole outcome."""
    entry: journal.Entry = {
        "key": prepared.stream_key,
        "phase": journal.RUNNING,
        "message_id": prepared.assistant_message_id,
        "conversation_id": prepared.conversation_id,
        "admission": journal.admission_dump(prepared.admission),
        "target": journal.target_dump(prepared.route.primary),
        "input_tokens": estimate_request_tokens(prepared.request),
        "started_at": time.time(),
        "kind": prepared.kind,
    }
    if outcome is None or usage is None:
        return entry
    now = time.monotonic()
    return {
        **entry,
        "phase": journal.FINISHED,
        "target": journal.target_dump(outcome.target),
        "text": "".join(outcome.text),
        "reasoning": "".join(outcome.reasoning),
        "tool_calls": [outcome.tool_calls[index] for index in sorted(outcome.tool_calls)],
        "status": str(outcome.status),
        "error_code": outcome.error.code if outcome.error else "",
        "input_tokens": usage.input_tokens,
        "output_tokens": usage.output_tokens,
        "estimated": usage.estimated,
        "cached": outcome.cached,
        # Providers bill nothing for a call they refused (or never answered) before its
        # first token, and a replay from the cache costs nothing.
        "charged": not outcome.cached
        and not (outcome.status == MessageStatus.FAILED and outcome.first_token_at is None),
        "latency_ms": int((now - outcome.started) * 1000),
        "ttft_ms": int((outcome.first_token_at - outcome.started) * 1000) if outcome.first_token_at else None,
    }
