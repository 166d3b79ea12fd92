"""The one confirmation path: every change that may need a human's yes goes through ``question`` and ``run_or_store``.

A service plans a change (a ``Change``: the exact summary a human confirms, whether it needs confirming, and the
result fields known before it runs); the tool's confirmation resolver returns ``question(ctx, planning)``, and the
tool's body hands the same change to ``run_or_store`` with the function that applies it. Then there are two paths,
and no third:

1. The client declared form elicitation: the resolver's ``Elicit`` carries the summary (which names the change
   exactly, e.g. with a fingerprint of the SQL) and the SDK asks the human. On the 2026-07-28 protocol the question
   rides the retried call and is matched by its exact text, so summaries are deterministic: an answer cannot be
   reused for a different change.
2. Otherwise ``run_or_store`` stores the call (tool, arguments, the summary, the MCP session: ``server.state.pending``)
   and answers ``confirmation_required`` with an id; ``confirm_operation(id)`` takes it (once, before it expires, from
   the session that stored it) and ``replay``s the call: the tool plans the same change again, on the state as it is
   now, and ``run_or_store`` applies it only if its summary is still exactly the one the human confirmed. Nothing
   re-sent by the model runs, and a stored operation is plain data (any replica can replay it).

Words are not enough: a renamed table answers to the confirmed name. So a change is also bound to its objects
(``Change.binding``: identity and size of each, ``server.state.binding``), read when the human is asked and shown
with the summary. Before the change runs they are read again, and any material difference refuses it: nothing runs,
and the tool must be called again to ask about the objects as they are now. On path 1 the question carries the
objects, so on the 2026-07-28 protocol a retried call whose objects changed asks a new question; within one call
(earlier protocols) the objects read when asking are compared before applying.

Who may confirm: a stored operation belongs to the MCP session that stored it (``session_id``: streamable HTTP's
``Mcp-Session-Id``, an SSE connection). Where the protocol has no session (stdio and in-process clients: one client
per server; the 2026-07-28 protocol over HTTP, where every request is its own exchange) it belongs to the tenant
(its Neon API key, behind the server's bearer token), and its id, an unguessable secret given only to the caller
that stored it, is the capability: any caller of that tenant who holds the id can confirm it. The 2026-07-28
protocol binds only what rides a call: an elicitation's answer is sealed into ``requestState`` with the call's tool
and arguments (and the authenticated principal, with OAuth); a later ``confirm_operation`` call carries nothing
that ties it to the call that stored the operation.

Some changes need confirming only by what they do, which is known once they ran: a write that touched a whole table
(``server.sql.effects``). Its apply rolls it back and raises ``NeedsConfirmation`` with the change to ask about (its
summary states the measured effect); nobody can be asked within that call any more, so it is stored (path 2). When it
is replayed, planning alone says no confirmation is needed: the change is applied with the confirmed summary in its
``Confirmed``, and its service measures again and applies it only if that gives the same summary (a replayed change
that needs no confirmation would run anyway if called afresh).
"""

from __future__ import annotations

import datetime as dt
import functools
import typing
from collections.abc import Awaitable, Callable, Mapping
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from mcp.server.mcpserver import (
    AcceptedElicitation,
    CancelledElicitation,
    Context,
    DeclinedElicitation,
    Elicit,
    ElicitationResult,
    Resolve,
)
from mcp_types import CallToolResult, TextContent
from pydantic import BaseModel, Field

from ..errors import ConfirmationError, NeedsConfirmation, NeonMCPError
from ..state.audit import NOT_NEEDED, Confirmed
from ..state.binding import Binding, describe, differences, from_json, to_json
from ..state.pending import PendingOperation
from .context import Ctx, services, session_id
from .fence import fence

__all__ = [
    "Apply",
    "Call",
    "Change",
    "ConfirmAnswer",
    "Confirmation",
    "NotAsked",
    "Question",
    "Replayed",
    "can_elicit",
    "current_call",
    "question",
    "replay",
    "resolved_parameters",
    "run_or_store",
]


class ConfirmAnswer(BaseModel):
    """The form the human answers."""

    confirm: bool = Field(title="Run it", description="Tick to run exactly the operation described above.")


class Confirmation(BaseModel):
    """The fields every confirmed tool's result has (a tool's output model adds its own)."""

    status: Literal["ok", "confirmation_required", "declined"]
    operation_id: str | None = Field(default=None, description="pass to confirm_operation to run it")
    summary: str | None = Field(default=None, description="what would run, for the human to confirm")
    expires_at: str | None = Field(default=None, description="when operation_id expires")


class Change(Protocol):
    """A checked change that has not run yet."""

    @property
    def summary(self) -> str:
        """What the human confirms: the same text every time the same change is planned (no clock, no random)."""
        ...

    @property
    def needs_confirmation(self) -> bool: ...

    def preview(self) -> Mapping[str, Any]:
        """The result's structured fields known before it runs (what the change is about)."""
        ...

    async def binding(self) -> Binding:
        """The objects it will touch, as they are now (identity and size); read when the human is asked and again
        before it runs. Raises ``NeonMCPError`` when they cannot be read."""
        ...


Apply = Callable[[Confirmed], Awaitable[CallToolResult]]
"""Applies a change; receives how it was confirmed (for the audit log)."""


@dataclass(frozen=True, slots=True)
class NotAsked:
    """The resolver did not ask: no confirmation was needed, the client cannot be asked, or planning failed."""

    reason: Literal["not-needed", "no-elicitation", "not-planned"]


Question = Elicit[ConfirmAnswer] | NotAsked


@dataclass(frozen=True, slots=True)
class Replayed:
    """What ``confirm_operation`` passes a tool as its confirmation: the human confirmed ``operation``, stored from an
    earlier call of the same tool with the same arguments, which the tool has just planned again."""

    operation: PendingOperation


@dataclass(frozen=True, slots=True)
class Call:
    """The tool call in flight: its name and the arguments the caller gave (what a stored operation replays)."""

    tool: str
    arguments: dict[str, Any]


current_call: ContextVar[Call | None] = ContextVar("neon_mcp_call", default=None)
"""Set by the tool boundary (``server.mcp.tooling``) for the duration of each call."""

_asked: ContextVar[tuple[str, Binding] | None] = ContextVar("neon_mcp_asked", default=None)
"""The summary and objects the human is being asked about in this call (set by ``question``, which the SDK runs in
the call's own task before the body)."""


@functools.cache
def resolved_parameters(fn: Callable[..., Any]) -> frozenset[str]:
    """The parameters of a tool that its resolvers fill in (``Annotated[…, Resolve(…)]``), not the caller."""
    hints = typing.get_type_hints(fn, include_extras=True)
    return frozenset(
        name
        for name, hint in hints.items()
        if any(isinstance(extra, Resolve) for extra in getattr(hint, "__metadata__", ()))
    )


def can_elicit(ctx: Context[Any, Any]) -> bool:
    """Whether the client declared form elicitation (a human can be asked through it)."""
    capabilities = ctx.client_capabilities
    elicitation = capabilities.elicitation if capabilities is not None else None
    # A bare ``elicitation: {}`` (before modes existed) means form support; URL-only does not.
    return elicitation is not None and (elicitation.form is not None or elicitation.url is None)


async def question(ctx: Ctx, planning: Awaitable[Change]) -> Question:
    """What every confirmed tool's resolver returns: the human is asked about the planned change when it needs it and
    the client can be asked. A plan that fails is not asked about: the tool's body plans again and reports the error.
    """
    try:
        change = await planning
    except NeonMCPError:
        return NotAsked("not-planned")
    if not change.needs_confirmation:
        return NotAsked("not-needed")
    if not can_elicit(ctx):
        return NotAsked("no-elicitation")
    try:
        binding = await change.binding()
    except NeonMCPError:
        return NotAsked("not-planned")
    _asked.set((change.summary, binding))
    return Elicit(_asking(change.summary, binding), ConfirmAnswer)


def _asking(summary: str, binding: Binding) -> str:
    """What the human reads: the summary, then the objects as they are now."""
    objects = describe(binding)
    return f"{summary}\n{objects}" if objects else summary


async def _refuse_if_changed(change: Change, before: Binding, why: str) -> None:
    """Raise ``ConfirmationError`` if ``change``'s objects differ materially from ``before``."""
    found = differences(before, await change.binding())
    if found:
        raise ConfirmationError(
            f"{why}, what it would touch changed: {'; '.join(found)}. Nothing ran. Call the tool again to ask the "
            "user about it as it is now."
        )


Decision = Literal["run", "run-confirmed", "replay", "store", "declined", "cancelled"]


def _decide(outcome: ElicitationResult[Any] | Replayed, *, needed: bool) -> Decision:
    """``run``: nothing needed confirming. ``run-confirmed``: a human accepted by elicitation. ``replay``: a stored
    operation was confirmed. ``store``: confirmation is needed and nobody was asked."""
    match outcome:
        case Replayed():
            return "replay"
        case AcceptedElicitation(data=ConfirmAnswer(confirm=True)):
            return "run-confirmed" if needed else "run"
        case AcceptedElicitation(data=ConfirmAnswer()):
            return "declined"
        case AcceptedElicitation():
            # NotAsked (or anything else a resolver returned without asking): never counts as a yes.
            return "store" if needed else "run"
        case DeclinedElicitation():
            return "declined"
        case CancelledElicitation():
            return "cancelled"
    return "store" if needed else "run"


async def run_or_store(
    ctx: Ctx,
    confirmation: ElicitationResult[ConfirmAnswer],
    *,
    tool: str,
    change: Change,
    apply: Apply,
) -> CallToolResult:
    """Apply ``change`` when nothing needs confirming or a human said yes, store the call for confirm_operation when
    nobody could be asked, or report the human's refusal (nothing runs). Every answer's structured content starts
    from ``change.preview()``, so pending and declined answers validate against the tool's output model too.

    A replayed call (``confirm_operation``) applies the change only if planning it again gave exactly the summary the
    human confirmed (or no longer needs confirming: then ``Confirmed.summary`` lets a service that confirms by
    measuring check its new measurement), and its objects are still those the human was shown (same identities, no
    material growth); a yes by elicitation, only if the objects did not change while the human was asked. Otherwise
    nothing runs: raises ``ConfirmationError``, saying what changed. A change whose apply raises
    ``NeedsConfirmation`` is stored as that exception's change.
    """
    decision = _decide(confirmation, needed=change.needs_confirmation)
    if decision == "run":
        try:
            return await apply(NOT_NEEDED)
        except NeedsConfirmation as found:
            change, decision = typing.cast(Change, found.change), "store"  # rolled back: ask about what it measured
    if decision == "run-confirmed":
        asked = _asked.get()
        if asked is None or asked[0] != change.summary:
            raise AssertionError(f"{tool}: a human's yes to a question this call did not ask")
        await _refuse_if_changed(change, asked[1], "While the user was asked")
        return await apply(Confirmed("elicitation", binding=asked[1]))
    if decision == "replay":
        assert isinstance(confirmation, Replayed)
        stored = confirmation.operation
        if change.needs_confirmation and change.summary != stored.summary:
            raise ConfirmationError(
                f"what operation {stored.id} would do changed since it was confirmed; nothing ran. Now it would be:\n"
                f"{change.summary}\nRun {tool} again to confirm that."
            )
        shown = from_json(stored.binding)
        await _refuse_if_changed(change, shown, f"Since operation {stored.id} was confirmed")
        return await apply(Confirmed("confirm_operation", stored.id, summary=stored.summary, binding=shown))
    about = dict(change.preview())
    if decision in ("declined", "cancelled"):
        return _result({**about, "status": "declined"}, [f"The user {decision} the confirmation: nothing ran."])
    call = current_call.get()
    if call is None or call.tool != tool:
        raise AssertionError(f"{tool}: a change is stored only from within its own tool call")
    binding = await change.binding()
    operation = await services(ctx).pending.add(
        tool=tool, arguments=call.arguments, summary=change.summary, session=session_id(ctx), binding=to_json(binding)
    )
    expires = dt.datetime.fromtimestamp(operation.expires_at, dt.UTC).isoformat(timespec="seconds")
    asking = _asking(change.summary, binding)
    lines = [
        "CONFIRMATION REQUIRED: nothing has run yet.",
        fence(asking),
        f"Show this to the user and ask them. If they agree, call confirm_operation with operation_id="
        f"{operation.id} before {expires}; it runs exactly the operation above, once.",
    ]
    data = {
        **about,
        "status": "confirmation_required",
        "operation_id": operation.id,
        "summary": asking,
        "expires_at": expires,
    }
    return _result(data, lines)


async def replay(ctx: Ctx, fn: Callable[..., Awaitable[CallToolResult]], operation: PendingOperation) -> CallToolResult:
    """Call the tool ``fn`` again with the stored operation's arguments, its confirmation being the operation itself
    (``run_or_store`` then applies the change if it is still the one confirmed); other resolved parameters are
    answered as not asked."""
    resolved = resolved_parameters(fn)
    answers: dict[str, Any] = {name: NotAsked("not-needed") for name in resolved}
    answers["confirmation"] = Replayed(operation)
    token = current_call.set(Call(operation.tool, dict(operation.arguments)))
    try:
        return await fn(**operation.arguments, **answers, ctx=ctx)
    finally:
        current_call.reset(token)


def _result(structured: dict[str, Any], lines: list[str]) -> CallToolResult:
    return CallToolResult(content=[TextContent(text="\n".join(lines))], structured_content=structured)
