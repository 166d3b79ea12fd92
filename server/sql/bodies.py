"""Code stored as text, read as statements: SQL and PL/pgSQL function bodies, and rule actions.

PostgreSQL keeps a function's body as text (or, for ``BEGIN ATOMIC``, as a parsed tree it can print back). What the
body does is what it runs, whatever volatility label the function carries: a ``STABLE`` function may still call
``dblink_exec`` or another function that writes. ``function_body`` turns a ``CREATE FUNCTION`` statement (as
``pg_get_functiondef`` prints it, or as a caller wrote it) into the facts of every SQL statement and expression in the
body (``server.sql.analysis``), and names what it cannot see into: dynamic SQL, transaction control, text that does
not parse. Pure and cached by text; nothing here reads the catalog.

PL/pgSQL is read with pglast's ``parse_plpgsql`` (PostgreSQL's own PL/pgSQL parser): every embedded expression
(``PLpgSQL_expr``) is an SQL statement, an expression (read as ``SELECT <expr>``) or an assignment (``target :=
expr``, read as ``SELECT target, expr``).
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from pglast import ast, parse_plpgsql
from pglast.parser import ParseError, parse_sql, scan
from pglast.stream import RawStream

from ..errors import NeonMCPError
from .analysis import StatementFacts, analyze, facts_of

__all__ = ["Body", "function_body", "rule_actions", "statement_body"]

_MAX_BODY_CHARS = 200_000
"""Longer bodies are not read (a definition is rarely a tenth of that): they count as unseen."""

# PostgreSQL's RawParseMode for the expressions PL/pgSQL embeds (src/include/parser/parser.h).
_PARSE_DEFAULT = 0
_PARSE_EXPRESSION = 2
_PARSE_ASSIGNMENT = (3, 4, 5)
_DYNAMIC = frozenset({"PLpgSQL_stmt_dynexecute", "PLpgSQL_stmt_dynfors"})
_TRANSACTION = {"PLpgSQL_stmt_commit": "COMMIT", "PLpgSQL_stmt_rollback": "ROLLBACK"}


@dataclass(frozen=True, slots=True)
class Body:
    """The statements a piece of stored code runs, and what in it the analysis could not see into."""

    statements: tuple[StatementFacts, ...] = ()
    unseen: tuple[str, ...] = ()
    """Why parts of it stay unknown (e.g. "runs dynamic SQL (EXECUTE)"): each makes the code opaque to the policy."""


@functools.lru_cache(maxsize=2048)
def function_body(definition: str) -> Body:
    """What a function or procedure runs, from its ``CREATE FUNCTION``/``CREATE PROCEDURE`` statement.

    Bodies in SQL (a string, or ``BEGIN ATOMIC``/``RETURN``) and PL/pgSQL are read; any other language gives an
    empty ``Body`` (the policy judges those by their language). Never raises: what does not parse is ``unseen``.
    """
    if len(definition) > _MAX_BODY_CHARS:
        return Body(unseen=("its body is too long to analyse",))
    try:
        (raw,) = parse_sql(definition)
    except (ParseError, ValueError):
        return Body(unseen=("its definition does not parse",))
    node = raw.stmt
    if not isinstance(node, ast.CreateFunctionStmt):
        return Body(unseen=("its definition is not a CREATE FUNCTION statement",))
    return statement_body(node, definition)


def statement_body(node: Any, definition: str) -> Body:
    """``function_body`` for an already parsed ``CREATE FUNCTION`` node whose source text is ``definition``."""
    options = {option.defname: option.arg for option in node.options or () if isinstance(option, ast.DefElem)}
    language = _string(options.get("language"))
    if node.sql_body is not None:
        return _atomic(node.sql_body)
    source = options.get("as")
    text = _string(source[0]) if isinstance(source, tuple) and source else _string(source)
    if language is None or language.lower() == "sql":
        if text is None:
            return Body(unseen=("its SQL body is missing",))
        return _sql_text(text)
    if language.lower() == "plpgsql":
        return _plpgsql(definition)
    return Body()


@functools.lru_cache(maxsize=1024)
def rule_actions(definition: str) -> Body:
    """What a rule runs, from its ``CREATE RULE`` statement (as ``pg_get_ruledef`` prints it)."""
    try:
        (raw,) = parse_sql(definition)
    except (ParseError, ValueError):
        return Body(unseen=("its definition does not parse",))
    node = raw.stmt
    if not isinstance(node, ast.RuleStmt):
        return Body(unseen=("its definition is not a CREATE RULE statement",))
    statements = []
    for action in node.actions or ():
        statements.append(facts_of(action, _deparse(action)))
    if node.whereClause is not None:
        statements.append(_expression(node.whereClause))
    return Body(tuple(statements))


def _atomic(body: Any) -> Body:
    if isinstance(body, ast.ReturnStmt):
        return Body((_expression(body.returnval),))
    statements: list[StatementFacts] = []
    for part in _flatten(body):
        statements.append(facts_of(part, _deparse(part)))
    return Body(tuple(statements))


def _flatten(items: Any) -> Iterator[Any]:
    if isinstance(items, tuple | list):
        for item in items:
            yield from _flatten(item)
    elif items is not None:
        yield items


def _expression(expr: Any) -> StatementFacts:
    """An expression as the facts of ``SELECT <expr>``."""
    select = ast.SelectStmt(targetList=(ast.ResTarget(val=expr),))
    return facts_of(select, _deparse(select))


def _deparse(node: Any) -> str:
    try:
        return str(RawStream()(node))
    except Exception:
        return f"<{type(node).__name__}>"


def _sql_text(text: str) -> Body:
    try:
        return Body(analyze(text))
    except NeonMCPError:
        return Body(unseen=("its SQL body does not parse",))


def _string(value: Any) -> str | None:
    if isinstance(value, ast.String) and isinstance(value.sval, str):
        return value.sval
    if isinstance(value, str):
        return value
    return None


def _plpgsql(definition: str) -> Body:
    unseen: list[str] = []
    try:
        tree = parse_plpgsql(definition)
    except (ParseError, ValueError, RecursionError) as exc:
        # pglast compiles PL/pgSQL without a catalog: it knows types unqualified or in pg_catalog and public only.
        neutral = _without_type_schemas(definition) if _NAMESPACES in str(exc) else None
        if neutral is None:
            return Body(unseen=("its PL/pgSQL body does not parse",))
        try:
            tree = parse_plpgsql(neutral)
        except (ParseError, ValueError, RecursionError):
            return Body(unseen=("its PL/pgSQL body does not parse",))
    statements: list[StatementFacts] = []
    _walk_plpgsql(tree, statements, unseen, dynamic=False)
    # Variables of types pglast cannot look up lose their default expression in its tree: read them from the text.
    for text, mode in _declarations(_source(definition))[1]:
        _embedded({"query": text, "parseMode": mode}, statements, unseen, dynamic=False)
    return Body(tuple(statements), tuple(dict.fromkeys(unseen)))


_NAMESPACES = "LookupExplicitNamespace"
_KNOWN_SCHEMAS = frozenset({"pg_catalog", "public"})


def _source(definition: str) -> str:
    """The body text of a CREATE FUNCTION statement (empty when it has none)."""
    try:
        (raw,) = parse_sql(definition)
    except (ParseError, ValueError):
        return ""
    for option in getattr(raw.stmt, "options", None) or ():
        if isinstance(option, ast.DefElem) and option.defname == "as" and isinstance(option.arg, tuple):
            return _string(option.arg[0]) or ""
    return ""


def _without_type_schemas(definition: str) -> str | None:
    """The definition with the schemas of its parameter, result and variable types left out (``app.status`` →
    ``status``), which changes nothing of what its body runs: expressions and statements stay as written."""
    try:
        (raw,) = parse_sql(definition)
    except (ParseError, ValueError):
        return None
    node = raw.stmt
    if not isinstance(node, ast.CreateFunctionStmt):
        return None
    for type_name in [node.returnType, *(p.argType for p in node.parameters or ())]:
        names = type_name.names if isinstance(type_name, ast.TypeName) else None
        if names and len(names) > 1 and str(names[0].sval) not in _KNOWN_SCHEMAS:
            type_name.names = names[-1:]
    for option in node.options or ():
        if isinstance(option, ast.DefElem) and option.defname == "as" and isinstance(option.arg, tuple):
            body = _string(option.arg[0])
            if body is not None:
                option.arg = (ast.String(sval=_declarations(body)[0]), *option.arg[1:])
    try:
        return str(RawStream()(node))
    except Exception:
        return None


def _declarations(body: str) -> tuple[str, list[tuple[str, int]]]:
    """Read the DECLARE sections of a PL/pgSQL body: the body with the schema taken off each variable's type
    (``x app.status`` → ``x status``), and every default value and cursor query (with its parse mode)."""
    try:
        tokens = scan(body)
    except (ParseError, ValueError):
        return body, []
    cuts: list[tuple[int, int]] = []
    expressions: list[tuple[str, int]] = []
    declaring, state, depth, start, mode = False, "", 0, 0, _PARSE_EXPRESSION
    for index, token in enumerate(tokens):
        text = body[token.start : token.end + 1]
        if token.name == "DECLARE":
            declaring, state, depth = True, "name", 0
            continue
        if not declaring:
            continue
        if (token.name == "BEGIN_P" or text == ";") and depth == 0:
            if state == "value":
                expressions.append((body[start : token.start], mode))
            declaring = token.name != "BEGIN_P"
            state = "name"
        elif text in ("(", "["):
            depth += 1
        elif text in (")", "]"):
            depth -= 1
        elif depth > 0 or state in ("value", "skip"):
            continue
        elif state == "name":
            state = "type"
        elif state == "type" and text.lower() == "constant":
            continue
        elif state == "type" and token.name in ("CURSOR", "SCROLL", "NO_P", "ALIAS"):
            state = "cursor"
        elif state == "cursor" and token.name in ("FOR", "IS"):
            state, start, mode = "value", token.end + 1, _PARSE_DEFAULT
        elif state == "type":
            state = "declared"
            following = [body[t.start : t.end + 1] for t in tokens[index + 1 : index + 3]]
            rest = [body[t.start : t.end + 1] for t in tokens[index + 1 : index + 8]]
            if following[:1] == ["."] and "%" not in rest and text.strip('"') not in _KNOWN_SCHEMAS:
                cuts.append((token.start, tokens[index + 1].end + 1))
        elif state == "declared" and (token.name in ("COLON_EQUALS", "DEFAULT") or text == "="):
            state, start, mode = "value", token.end + 1, _PARSE_EXPRESSION
    for cut_start, cut_end in reversed(cuts):
        body = body[:cut_start] + body[cut_end:]
    return body, expressions


def _walk_plpgsql(tree: Any, statements: list[StatementFacts], unseen: list[str], *, dynamic: bool) -> None:
    """Collect the facts of every embedded expression; ``dynamic`` marks the text of an EXECUTE."""
    if isinstance(tree, list):
        for item in tree:
            _walk_plpgsql(item, statements, unseen, dynamic=dynamic)
        return
    if not isinstance(tree, dict):
        return
    for key, value in tree.items():
        if key == "PLpgSQL_expr" and isinstance(value, dict):
            _embedded(value, statements, unseen, dynamic=dynamic)
        elif key in _TRANSACTION:
            unseen.append(f"it ends its transaction ({_TRANSACTION[key]})")
        elif key in _DYNAMIC and isinstance(value, dict):
            for inner_key, inner in value.items():
                _walk_plpgsql(inner, statements, unseen, dynamic=inner_key == "query")
        else:
            _walk_plpgsql(value, statements, unseen, dynamic=dynamic or key == "dynquery")


def _embedded(expr: dict[str, Any], statements: list[StatementFacts], unseen: list[str], *, dynamic: bool) -> None:
    query = expr.get("query")
    if not isinstance(query, str):
        return
    mode = expr.get("parseMode", _PARSE_DEFAULT)
    if mode in _PARSE_ASSIGNMENT:
        text = _assignment_as_select(query)
    elif mode == _PARSE_EXPRESSION:
        text = "SELECT " + query
    else:
        text = query
    if text is None:
        unseen.append("an assignment in its body does not parse")
        return
    try:
        found = analyze(text)
    except NeonMCPError:
        unseen.append("an expression in its body does not parse")
        return
    statements.extend(found)
    if dynamic:
        literal = _literal(found)
        if literal is None:
            unseen.append("it runs dynamic SQL (EXECUTE of a computed string)")
            return
        try:
            statements.extend(analyze(literal))
        except NeonMCPError:
            unseen.append("it runs dynamic SQL that does not parse")


def _literal(found: tuple[StatementFacts, ...]) -> str | None:
    """The string of ``SELECT '<literal>'``: the text an EXECUTE of a constant runs."""
    if len(found) != 1:
        return None
    node = found[0].node
    if not isinstance(node, ast.SelectStmt) or not node.targetList or len(node.targetList) != 1:
        return None
    value = node.targetList[0].val
    if isinstance(value, ast.A_Const) and not value.isnull and isinstance(value.val, ast.String):
        return str(value.val.sval)
    return None


def _assignment_as_select(query: str) -> str | None:
    """``target := expr`` (or ``target = expr``) as ``SELECT target, expr``: both sides may call functions."""
    depth = 0
    try:
        tokens = scan(query)
    except (ParseError, ValueError):
        return None
    for token in tokens:
        text = query[token.start : token.end + 1]
        if text in ("(", "["):
            depth += 1
        elif text in (")", "]"):
            depth -= 1
        elif depth == 0 and (token.name == "COLON_EQUALS" or text == "="):
            return f"SELECT {query[: token.start]}, {query[token.end + 1 :]}"
    return None
