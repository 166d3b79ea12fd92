"""The front door's SCRAM exchange, attacked at the message level: channel binding to another certificate, a
downgrade from ``-PLUS``, a replayed nonce, a wrong password; and the keys it yields log in as the client."""

from __future__ import annotations

import base64
import hashlib
import hmac
import os

import pytest

from server.local_neon.frontdoor.scram import (
    MECHANISM,
    MECHANISM_PLUS,
    ClientExchange,
    ScramError,
    ServerExchange,
    Verifier,
    mock_verifier,
)

END_POINT = hashlib.sha256(b"the front door's certificate").digest()


def verifier_for(password: str, iterations: int = 4096) -> Verifier:
    salt = os.urandom(16)
    salted = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, iterations)
    client_key = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
    server_key = hmac.new(salted, b"Server Key", hashlib.sha256).digest()
    return Verifier(iterations, salt, hashlib.sha256(client_key).digest(), server_key)


def client_messages(password: str, server: ServerExchange, *, mechanism: str, flag: str, bound: bytes) -> bytes:
    """Run a client's side by hand (as libpq does) up to its final message."""
    nonce = base64.b64encode(os.urandom(18)).decode()
    gs2 = f"{flag},,"
    bare = f"n=,r={nonce}"
    server_first = server.first(mechanism, (gs2 + bare).encode()).decode()
    fields = dict(part.split("=", 1) for part in server_first.split(","))
    salted = hashlib.pbkdf2_hmac("sha256", password.encode(), base64.b64decode(fields["s"]), int(fields["i"]))
    client_key = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
    binding = base64.b64encode(gs2.encode() + bound).decode()
    without_proof = f"c={binding},r={fields['r']}"
    auth = f"{bare},{server_first},{without_proof}".encode()
    signature = hmac.new(hashlib.sha256(client_key).digest(), auth, hashlib.sha256).digest()
    proof = bytes(a ^ b for a, b in zip(client_key, signature, strict=True))
    return f"{without_proof},p={base64.b64encode(proof).decode()}".encode()


def test_channel_binding_to_this_certificate_succeeds_and_yields_the_clients_keys() -> None:
    verifier = verifier_for("s3cret")
    server = ServerExchange(verifier, end_point=END_POINT)
    assert server.mechanisms == [MECHANISM_PLUS, MECHANISM]
    final = client_messages("s3cret", server, mechanism=MECHANISM_PLUS, flag="p=tls-server-end-point", bound=END_POINT)
    _, keys = server.final(final)
    assert keys == verifier.check_password("s3cret")
    # The keys log in to a server holding the same secret, without the password.
    upstream = ServerExchange(verifier, end_point=None)
    client = ClientExchange(keys, verifier)
    first = client.first()
    server_first = upstream.first(MECHANISM, first)
    server_final, again = upstream.final(client.final(server_first))
    client.check(server_final)
    assert again == keys


def test_binding_to_another_certificate_is_refused() -> None:
    server = ServerExchange(verifier_for("s3cret"), end_point=END_POINT)
    other = hashlib.sha256(b"a man in the middle's certificate").digest()
    final = client_messages("s3cret", server, mechanism=MECHANISM_PLUS, flag="p=tls-server-end-point", bound=other)
    with pytest.raises(ScramError, match="channel binding"):
        server.final(final)


def test_a_downgrade_from_plus_is_refused() -> None:
    server = ServerExchange(verifier_for("s3cret"), end_point=END_POINT)
    with pytest.raises(ScramError, match="channel binding"):
        client_messages("s3cret", server, mechanism=MECHANISM, flag="y", bound=b"")


def test_a_wrong_password_and_an_unknown_role_fail_alike() -> None:
    for verifier in (verifier_for("s3cret"), mock_verifier("nobody")):
        server = ServerExchange(verifier, end_point=END_POINT)
        final = client_messages(
            "guess", server, mechanism=MECHANISM_PLUS, flag="p=tls-server-end-point", bound=END_POINT
        )
        with pytest.raises(ScramError, match="wrong password"):
            server.final(final)


def test_a_tampered_nonce_is_refused() -> None:
    server = ServerExchange(verifier_for("s3cret"), end_point=END_POINT)
    final = client_messages("s3cret", server, mechanism=MECHANISM_PLUS, flag="p=tls-server-end-point", bound=END_POINT)
    tampered = final.replace(b",r=", b",r=x", 1)
    with pytest.raises(ScramError, match="nonce"):
        server.final(tampered)


def test_the_upstream_refuses_keys_for_another_secret() -> None:
    verifier = verifier_for("s3cret")
    keys = verifier.check_password("s3cret")
    assert keys is not None
    changed = verifier_for("s3cret")  # the same password set again: a new salt
    client = ClientExchange(keys, verifier)
    with pytest.raises(ScramError, match="changed"):
        client.final(ServerExchange(changed, end_point=None).first(MECHANISM, client.first()))
