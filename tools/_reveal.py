"""The user's consent to show a password: asked in a form, only where the operator allows revealing it.

A tool that can return a password (create_role, create_project) takes an ``ElicitationResult[RevealAnswer]``
resolved by ``ask_reveal``; ``revealed`` reads the answer. Anything but an explicit yes (the operator does not allow
it, the client cannot show a form, the user declined or cancelled) keeps the password back.
"""

from __future__ import annotations

from mcp.server.mcpserver import AcceptedElicitation, Elicit, ElicitationResult
from pydantic import BaseModel, Field

from server.mcp import Ctx, NotAsked, can_elicit

__all__ = ["RevealAnswer", "ask_reveal", "revealed"]


class RevealAnswer(BaseModel):
    """The form the human answers before a password is made, when the operator allows revealing it."""

    reveal: bool = Field(title="Show the password", description="Tick to let the agent see the password, this once.")


def ask_reveal(ctx: Ctx, *, allowed: bool, question: str) -> Elicit[RevealAnswer] | NotAsked:
    """Ask ``question`` when the operator ``allowed`` revealing the password and the client can be asked."""
    if not allowed:
        return NotAsked("not-needed")
    if not can_elicit(ctx):
        return NotAsked("no-elicitation")
    return Elicit(question, RevealAnswer)


def revealed(outcome: ElicitationResult[RevealAnswer]) -> bool:
    """Whether the human accepted showing the password (anything else, including not being asked, is a no)."""
    match outcome:
        case AcceptedElicitation(data=RevealAnswer(reveal=True)):
            return True
    return False
