"""SCRAM-SHA-256 on both sides of the front door, as Neon's proxy does it.

The front door authenticates the client itself, against the role's SCRAM secret as the endpoint's server stores it
(``pg_authid.rolpassword``: ``SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>``), with channel binding
(``SCRAM-SHA-256-PLUS``, ``tls-server-end-point``) when the client came over TLS. A successful exchange yields the
client's *ClientKey* (its proof XOR the signature the secret predicts). With the ClientKey and the secret's ServerKey
the front door then logs in to the server (or its PgBouncer) as the client, by SCRAM again, without ever knowing the
password: the server's salt and iterations are the ones the client just used. Clients that send a password instead
(the WebSocket transport and SQL over HTTP, as on Neon) get it checked against the same secret, which yields the same
keys.

RFC 5802 and RFC 7677; the messages are PostgreSQL's (the SCRAM user name is ignored: the startup packet names the
role). Failures raise ``ScramError``; a wrong proof is ``ScramError`` too, never a partial success.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import stringprep
import unicodedata
from collections import OrderedDict
from dataclasses import dataclass

__all__ = [
    "CLIENT_MECHANISM",
    "MECHANISM",
    "MECHANISM_PLUS",
    "ClientExchange",
    "Keys",
    "ScramError",
    "ServerExchange",
    "Verifier",
    "mock_verifier",
]

MECHANISM = "SCRAM-SHA-256"
MECHANISM_PLUS = "SCRAM-SHA-256-PLUS"
CLIENT_MECHANISM = MECHANISM
_CB_TYPE = "tls-server-end-point"
_MOCK_SECRET = secrets.token_bytes(32)


class ScramError(Exception):
    """The exchange failed: a malformed message, a channel binding mismatch, or a wrong password."""


@dataclass(frozen=True)
class Keys:
    """What logging in as the client takes: its ClientKey and the server's ServerKey."""

    client_key: bytes
    server_key: bytes


@dataclass(frozen=True)
class Verifier:
    """A role's SCRAM secret."""

    iterations: int
    salt: bytes
    stored_key: bytes
    server_key: bytes

    @classmethod
    def parse(cls, text: str) -> Verifier | None:
        """The secret in ``pg_authid.rolpassword`` form, or None if it is not a SCRAM-SHA-256 secret (e.g. md5)."""
        try:
            method, rest = text.split("$", 1)
            params, keys = rest.split("$", 1)
            iterations, salt = params.split(":", 1)
            stored, server = keys.split(":", 1)
            if method != "SCRAM-SHA-256":
                return None
            return cls(int(iterations), _b64d(salt), _b64d(stored), _b64d(server))
        except ValueError:
            return None

    def check_password(self, password: str) -> Keys | None:
        """The keys if ``password`` is the role's, else None (costs ``iterations`` rounds of PBKDF2)."""
        salted = hashlib.pbkdf2_hmac("sha256", _saslprep(password), self.salt, self.iterations)
        client_key = _hmac(salted, b"Client Key")
        server_key = _hmac(salted, b"Server Key")
        stored_ok = hmac.compare_digest(hashlib.sha256(client_key).digest(), self.stored_key)
        if stored_ok and hmac.compare_digest(server_key, self.server_key):
            return Keys(client_key, server_key)
        return None


class PasswordChecks:
    """``Verifier.check_password`` with its answers remembered (PBKDF2 is slow by design; a pooled HTTP client sends
    the same password with every request). Keyed by the secret and a hash of the password; bounded."""

    def __init__(self, size: int = 1024) -> None:
        self._size = size
        self._known: OrderedDict[tuple[Verifier, bytes], Keys | None] = OrderedDict()

    def check(self, verifier: Verifier, password: str) -> Keys | None:
        key = (verifier, hashlib.sha256(password.encode("utf-8", "surrogateescape")).digest())
        if key in self._known:
            self._known.move_to_end(key)
            return self._known[key]
        keys = verifier.check_password(password)
        self._known[key] = keys
        if len(self._known) > self._size:
            self._known.popitem(last=False)
        return keys


def mock_verifier(role: str) -> Verifier:
    """A secret no password matches, with a salt stable per role name: an unknown role goes through the same
    exchange as a known one and fails at its end, so the front door does not tell which roles exist."""
    salt = _hmac(_MOCK_SECRET, role.encode())[:16]
    return Verifier(4096, salt, secrets.token_bytes(32), secrets.token_bytes(32))


class ServerExchange:
    """The server side of one exchange. ``end_point`` is the TLS certificate's channel binding data (None: the client
    did not come over TLS, so only ``SCRAM-SHA-256`` is offered)."""

    def __init__(self, verifier: Verifier, *, end_point: bytes | None) -> None:
        self._verifier = verifier
        self._end_point = end_point
        self._nonce = ""
        self._client_first_bare = ""
        self._server_first = ""
        self._gs2 = ""

    @property
    def mechanisms(self) -> list[str]:
        return [MECHANISM_PLUS, MECHANISM] if self._end_point is not None else [MECHANISM]

    def first(self, mechanism: str, client_first: bytes) -> bytes:
        """The server-first-message for the client's SASLInitialResponse."""
        if mechanism not in self.mechanisms:
            raise ScramError(f"unsupported SASL mechanism {mechanism!r}")
        text = _text(client_first)
        parts = text.split(",", 2)
        if len(parts) != 3:
            raise ScramError("malformed SCRAM message")
        flag, authzid, bare = parts
        if authzid:
            raise ScramError("client uses authorization identity, which is not supported")
        if mechanism == MECHANISM_PLUS:
            if flag != f"p={_CB_TYPE}":
                raise ScramError(f"channel binding type must be {_CB_TYPE} with {MECHANISM_PLUS}")
        elif flag.startswith("p="):
            raise ScramError(f"channel binding requested with {MECHANISM}; use {MECHANISM_PLUS}")
        elif flag == "y" and self._end_point is not None:
            # The client could bind but believes the server cannot: someone removed -PLUS from our offer.
            raise ScramError("SCRAM channel binding negotiation error: the server supports channel binding")
        elif flag not in ("n", "y"):
            raise ScramError("malformed SCRAM message")
        self._gs2 = f"{flag},{authzid},"
        attributes = _attributes(bare)
        client_nonce = attributes.get("r")
        if not client_nonce or "m" in attributes:
            raise ScramError("malformed SCRAM message")
        self._client_first_bare = bare
        self._nonce = client_nonce + base64.b64encode(secrets.token_bytes(18)).decode()
        salt = base64.b64encode(self._verifier.salt).decode()
        self._server_first = f"r={self._nonce},s={salt},i={self._verifier.iterations}"
        return self._server_first.encode()

    def final(self, client_final: bytes) -> tuple[bytes, Keys]:
        """The server-final-message and the client's keys; raises ``ScramError`` if the proof is wrong."""
        text = _text(client_final)
        without_proof, _, proof_part = text.rpartition(",p=")
        if not without_proof:
            raise ScramError("malformed SCRAM message")
        attributes = _attributes(without_proof)
        binding = _b64d_or_fail(attributes.get("c", ""))
        bound = self._end_point if self._gs2.startswith("p=") and self._end_point is not None else b""
        expected = self._gs2.encode() + bound
        if not hmac.compare_digest(binding, expected):
            raise ScramError("SCRAM channel binding check failed")
        if attributes.get("r") != self._nonce:
            raise ScramError("SCRAM nonce mismatch")
        proof = _b64d_or_fail(proof_part)
        auth_message = f"{self._client_first_bare},{self._server_first},{without_proof}".encode()
        signature = _hmac(self._verifier.stored_key, auth_message)
        if len(proof) != len(signature):
            raise ScramError("malformed SCRAM proof")
        client_key = _xor(proof, signature)
        if not hmac.compare_digest(hashlib.sha256(client_key).digest(), self._verifier.stored_key):
            raise ScramError("wrong password")
        server_signature = base64.b64encode(_hmac(self._verifier.server_key, auth_message)).decode()
        return f"v={server_signature}".encode(), Keys(client_key, self._verifier.server_key)


class ClientExchange:
    """The client side, logging in with ``keys`` over a connection without channel binding."""

    def __init__(self, keys: Keys, verifier: Verifier) -> None:
        self._keys = keys
        self._verifier = verifier
        self._client_nonce = base64.b64encode(secrets.token_bytes(18)).decode()
        self._client_first_bare = f"n=,r={self._client_nonce}"
        self._auth_message = b""

    def first(self) -> bytes:
        return f"n,,{self._client_first_bare}".encode()

    def final(self, server_first: bytes) -> bytes:
        text = _text(server_first)
        attributes = _attributes(text)
        nonce, salt, iterations = attributes.get("r", ""), attributes.get("s", ""), attributes.get("i", "")
        if not nonce.startswith(self._client_nonce) or len(nonce) == len(self._client_nonce):
            raise ScramError("the server's SCRAM nonce does not extend ours")
        if _b64d_or_fail(salt) != self._verifier.salt or iterations != str(self._verifier.iterations):
            raise ScramError("the server's SCRAM secret changed (the password was changed meanwhile)")
        without_proof = f"c=biws,r={nonce}"
        self._auth_message = f"{self._client_first_bare},{text},{without_proof}".encode()
        stored_key = hashlib.sha256(self._keys.client_key).digest()
        proof = _xor(self._keys.client_key, _hmac(stored_key, self._auth_message))
        return f"{without_proof},p={base64.b64encode(proof).decode()}".encode()

    def check(self, server_final: bytes) -> None:
        attributes = _attributes(_text(server_final))
        if "e" in attributes:
            raise ScramError(f"the server refused: {attributes['e']}")
        expected = _hmac(self._keys.server_key, self._auth_message)
        if not hmac.compare_digest(_b64d_or_fail(attributes.get("v", "")), expected):
            raise ScramError("the server's SCRAM signature is wrong")


def _hmac(key: bytes, data: bytes) -> bytes:
    return hmac.new(key, data, hashlib.sha256).digest()


def _xor(left: bytes, right: bytes) -> bytes:
    return bytes(a ^ b for a, b in zip(left, right, strict=True))


def _text(data: bytes) -> str:
    try:
        return data.decode("ascii")
    except UnicodeDecodeError as exc:
        raise ScramError("malformed SCRAM message") from exc


def _attributes(text: str) -> dict[str, str]:
    found: dict[str, str] = {}
    for part in text.split(","):
        name, sep, value = part.partition("=")
        if not sep or len(name) != 1:
            raise ScramError("malformed SCRAM message")
        found[name] = value
    return found


def _b64d(text: str) -> bytes:
    return base64.b64decode(text, validate=True)


def _b64d_or_fail(text: str) -> bytes:
    try:
        return _b64d(text)
    except ValueError as exc:
        raise ScramError("malformed SCRAM message") from exc


def _saslprep(password: str) -> bytes:
    """The password as PostgreSQL hashes it: SASLprep-normalised (RFC 4013) when that succeeds, else as it is."""
    raw = password.encode("utf-8", "surrogateescape")
    try:
        mapped = "".join(" " if stringprep.in_table_c12(c) else c for c in password if not stringprep.in_table_b1(c))
        normal = unicodedata.normalize("NFKC", mapped)
        prohibited = (
            stringprep.in_table_c12,
            stringprep.in_table_c21,
            stringprep.in_table_c22,
            stringprep.in_table_c3,
            stringprep.in_table_c4,
            stringprep.in_table_c5,
            stringprep.in_table_c6,
            stringprep.in_table_c7,
            stringprep.in_table_c8,
            stringprep.in_table_c9,
            stringprep.in_table_a1,
        )
        if any(check(c) for c in normal for check in prohibited):
            return raw
        if any(stringprep.in_table_d1(c) for c in normal):
            if any(stringprep.in_table_d2(c) for c in normal):
                return raw
            if not (stringprep.in_table_d1(normal[0]) and stringprep.in_table_d1(normal[-1])):
                return raw
        return normal.encode("utf-8")
    except UnicodeEncodeError:
        return raw
