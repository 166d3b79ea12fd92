"""Checking local Neon's answers against Neon's official OpenAPI spec (read from ../shared, never copied here).

The spec is read from ``../shared`` beside the repository, or from ``$NEON_OPENAPI_SPEC`` (a worktree elsewhere).
``response_validator(method, path, status)`` returns a function that raises ``jsonschema.ValidationError`` when a
body does not match the spec's schema for that operation and status (a no-op when ../shared is absent). OpenAPI
3.0's ``nullable`` is translated to JSON Schema's null type so that the spec's own nulls validate.
"""

from __future__ import annotations

import copy
import functools
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

SPEC_PATH = Path(
    os.environ.get("NEON_OPENAPI_SPEC")
    or Path(__file__).resolve().parents[3] / "shared" / "neon-api" / "openapi-v2.json"
)


def _nullable_to_json_schema(node: Any, *, names: bool = False) -> Any:
    """``names``: ``node`` maps property names to schemas (a property may be called ``nullable`` or ``type``)."""
    if isinstance(node, dict) and names:
        return {key: _nullable_to_json_schema(value) for key, value in node.items()}
    if isinstance(node, dict):
        out = {key: _nullable_to_json_schema(value, names=key == "properties") for key, value in node.items()}
        if out.pop("nullable", False) is True:
            if "type" in out:
                kind = out["type"]
                out["type"] = [*kind, "null"] if isinstance(kind, list) else [kind, "null"]
            elif "$ref" in out or "allOf" in out or "oneOf" in out or "anyOf" in out:
                out = {"anyOf": [out, {"type": "null"}]}
            if "enum" in out:
                out["enum"] = [*out["enum"], None]
        return out
    if isinstance(node, list):
        return [_nullable_to_json_schema(item) for item in node]
    return node


@functools.cache
def _spec() -> dict[str, Any]:
    if not SPEC_PATH.exists():
        pytest.skip(f"Neon's OpenAPI spec is not at {SPEC_PATH} (../shared is absent): spec checks skipped")
    raw = json.loads(SPEC_PATH.read_text())
    converted: dict[str, Any] = _nullable_to_json_schema(copy.deepcopy(raw))
    return converted


def response_validator(method: str, path: str, status: int) -> Callable[[Any], None]:
    """A validator for the body of ``method path`` answered with ``status`` (path as written in the spec)."""
    from jsonschema import Draft4Validator
    from referencing import Registry, Resource
    from referencing.jsonschema import DRAFT4

    if not SPEC_PATH.exists():
        return lambda body: None  # behaviour is still tested; test_service's spec test says why answers are unchecked
    spec = _spec()
    response = spec["paths"][path][method.lower()]["responses"][str(status)]
    if "$ref" in response:
        response = spec["components"]["responses"][response["$ref"].rsplit("/", 1)[1]]
    schema = response["content"]["application/json"]["schema"]
    registry: Registry[Any] = Registry().with_resource("urn:neon", Resource(contents=spec, specification=DRAFT4))
    validator = Draft4Validator(_rebase(schema), registry=registry)

    def validate(body: Any) -> None:
        validator.validate(body)

    return validate


def _rebase(node: Any) -> Any:
    """Point the spec's local ``#/components/...`` references at the registered spec resource."""
    if isinstance(node, dict):
        return {
            key: "urn:neon" + value
            if key == "$ref" and isinstance(value, str) and value.startswith("#")
            else _rebase(value)
            for key, value in node.items()
        }
    if isinstance(node, list):
        return [_rebase(item) for item in node]
    return node
