"""Identifiers, timestamps and LSNs in Neon's formats.

Project ids look like ``lively-river-12345678``, organisation ids ``org-lively-river-12345678``, branch ids
``br-lively-river-a1b2c3d4``, endpoint ids ``ep-lively-river-a1b2c3d4``, operation ids are UUIDs. Timestamps are
RFC 3339 in UTC with a ``Z``; LSNs are PostgreSQL's ``X/X`` hexadecimal form.
"""

from __future__ import annotations

import re
import secrets
import string
import uuid
from datetime import UTC, datetime

from .errors import bad_request

__all__ = [
    "branch_id",
    "endpoint_id",
    "format_lsn",
    "format_time",
    "now",
    "operation_id",
    "org_id",
    "parse_lsn",
    "parse_time",
    "password",
    "project_id",
    "timeline_name",
]

_ADJECTIVE_TEXT = (
    "aged autumn billowing bitter black blue bold broad calm cold cool crimson curly damp dark dawn "
    "delicate divine dry empty falling fancy flat floral fragrant frosty gentle green hidden holy icy "
    "jolly late lingering little lively long lucky misty morning muddy nameless noisy odd old orange "
    "patient plain polished proud purple quiet rapid raspy red restless rough round royal shiny shrill "
    "shy silent small snowy soft solitary sparkling spring square steep still summer super sweet "
    "throbbing tight tiny twilight wandering weathered white wild winter wispy withered yellow young"
)
_ADJECTIVES = tuple(_ADJECTIVE_TEXT.split())
_NOUN_TEXT = (
    "art band bar base bird block boat bonus bread breeze brook bush butterfly cake cell cherry cloud "
    "credit darkness dawn dew disk dream dust feather field fire firefly flower fog forest frog frost "
    "glade glitter grass hall hat haze heart hill king lab lake leaf limit math meadow mode moon morning "
    "mountain mouse mud night paper pine poetry pond queen rain recipe resonance rice river salad scene "
    "sea shadow shape silence sky smoke snow snowflake sound star sun sunset surf term thunder tooth "
    "tree truth union unit violet voice water waterfall wave wildflower wind wood"
)
_NOUNS = tuple(_NOUN_TEXT.split())
_ALNUM = string.ascii_lowercase + string.digits
_LSN = re.compile(r"([0-9A-Fa-f]{1,8})/([0-9A-Fa-f]{1,8})")


def _words() -> str:
    return f"{secrets.choice(_ADJECTIVES)}-{secrets.choice(_NOUNS)}"


def project_id() -> str:
    """``adjective-noun-12345678``."""
    return f"{_words()}-{secrets.randbelow(10**8):08d}"


def org_id() -> str:
    """``org-adjective-noun-12345678``."""
    return f"org-{project_id()}"


def _suffix() -> str:
    return "".join(secrets.choice(_ALNUM) for _ in range(8))


def branch_id() -> str:
    """``br-adjective-noun-xxxxxxxx``."""
    return f"br-{_words()}-{_suffix()}"


def endpoint_id() -> str:
    """``ep-adjective-noun-xxxxxxxx``."""
    return f"ep-{_words()}-{_suffix()}"


def operation_id() -> str:
    """A random UUID, as text."""
    return str(uuid.uuid4())


def timeline_name() -> str:
    """The directory name of a new timeline (one copy of a branch's data): ``tl-`` and 32 hex digits."""
    return "tl-" + uuid.uuid4().hex


def password() -> str:
    """A role password like Neon's: letters and digits only, so it needs no quoting in a URI."""
    return "npg_" + "".join(secrets.choice(string.ascii_letters + string.digits) for _ in range(16))


def now() -> datetime:
    """The current time, UTC."""
    return datetime.now(UTC)


def format_time(moment: datetime, *, precise: bool = False) -> str:
    """RFC 3339 in UTC with ``Z``; whole seconds as Neon answers, or microseconds too with ``precise``."""
    moment = moment.astimezone(UTC)
    if precise and moment.microsecond:
        return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(text: object, field: str) -> datetime:
    """An RFC 3339 / ISO 8601 timestamp with a time zone, as an aware UTC datetime; 400 naming ``field`` if not."""
    if not isinstance(text, str):
        raise bad_request(f"{field} must be a timestamp string such as 2024-02-26T12:00:00Z")
    try:
        moment = datetime.fromisoformat(text.strip().replace("z", "Z"))
    except ValueError:
        raise bad_request(f"{field} {text!r} is not a timestamp such as 2024-02-26T12:00:00Z") from None
    if moment.tzinfo is None:
        raise bad_request(f"{field} {text!r} has no time zone; use UTC with Z, such as 2024-02-26T12:00:00Z")
    return moment.astimezone(UTC)


def parse_lsn(text: object, field: str) -> int:
    """An LSN in ``X/X`` form as an integer; 400 naming ``field`` if malformed."""
    match = _LSN.fullmatch(text.strip()) if isinstance(text, str) else None
    if match is None:
        raise bad_request(f"{field} {text!r} is not an LSN such as 0/1DE2850")
    return (int(match.group(1), 16) << 32) | int(match.group(2), 16)


def format_lsn(value: int) -> str:
    """An integer LSN in PostgreSQL's ``X/X`` form (upper-case hex)."""
    return f"{value >> 32:X}/{value & 0xFFFFFFFF:X}"
