"""A database's schema as sorted text lines: for fingerprints (did it change?) and diffs (what changed?).

One catalog query lists the user schemas' objects — schemas, relations, columns with types, nullability and defaults,
constraints, indexes, views (by a hash of their definition), functions (by a hash of their body), triggers and enum
types — one line each, in a stable order. Objects of extensions and neon-mcp's own bookkeeping schema (``neon_mcp``)
are left out, so recording a migration does not count as a change of schema.
"""

from __future__ import annotations

import difflib
import hashlib
from collections.abc import Sequence

from .places import Place

__all__ = ["diff", "fingerprint", "snapshot"]

_USER = (
    "n.nspname NOT IN ('pg_catalog', 'information_schema', 'neon_mcp') AND n.nspname !~ '^pg_(toast|temp_|toast_temp_)'"
)
_NOT_EXTENSION = "NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend e WHERE e.objid = {oid} AND e.deptype = 'e')"

SNAPSHOT_SQL = f"""
SELECT line FROM (
  SELECT pg_catalog.format('schema %I', n.nspname) AS line
  FROM pg_catalog.pg_namespace n WHERE {_USER} AND {_NOT_EXTENSION.format(oid="n.oid")}
  UNION ALL
  SELECT pg_catalog.format('%s %I.%I', CASE c.relkind WHEN 'r' THEN 'table' WHEN 'p' THEN 'partitioned table'
           WHEN 'v' THEN 'view' WHEN 'm' THEN 'materialized view' WHEN 'S' THEN 'sequence' ELSE 'foreign table' END,
         n.nspname, c.relname)
         || CASE WHEN c.relkind IN ('v', 'm') THEN ' ' || pg_catalog.md5(pg_catalog.pg_get_viewdef(c.oid)) ELSE '' END
  FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
  WHERE c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f') AND {_USER} AND {_NOT_EXTENSION.format(oid="c.oid")}
  UNION ALL
  SELECT pg_catalog.format('column %I.%I.%I %s', n.nspname, c.relname, a.attname,
           pg_catalog.format_type(a.atttypid, a.atttypmod))
         || CASE WHEN a.attnotnull THEN ' not null' ELSE '' END
         || COALESCE(' default ' || pg_catalog.pg_get_expr(d.adbin, d.adrelid), '')
  FROM pg_catalog.pg_attribute a
  JOIN pg_catalog.pg_class c ON c.oid = a.attrelid
  JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
  LEFT JOIN pg_catalog.pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
  WHERE a.attnum > 0 AND NOT a.attisdropped AND c.relkind IN ('r', 'p', 'v', 'm', 'f') AND {_USER}
    AND {_NOT_EXTENSION.format(oid="c.oid")}
  UNION ALL
  SELECT pg_catalog.format('constraint %I.%I %I %s', n.nspname, c.relname, k.conname,
           pg_catalog.pg_get_constraintdef(k.oid))
  FROM pg_catalog.pg_constraint k
  JOIN pg_catalog.pg_class c ON c.oid = k.conrelid
  JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
  WHERE {_USER}
  UNION ALL
  SELECT pg_catalog.format('index %I.%I %s', n.nspname, ic.relname, pg_catalog.pg_get_indexdef(i.indexrelid))
         || CASE WHEN i.indisvalid THEN '' ELSE ' (invalid)' END
  FROM pg_catalog.pg_index i
  JOIN pg_catalog.pg_class ic ON ic.oid = i.indexrelid
  JOIN pg_catalog.pg_namespace n ON n.oid = ic.relnamespace
  WHERE {_USER} AND {_NOT_EXTENSION.format(oid="i.indrelid")}
  UNION ALL
  SELECT pg_catalog.format('function %I.%I(%s) returns %s', n.nspname, p.proname,
           pg_catalog.pg_get_function_identity_arguments(p.oid), pg_catalog.pg_get_function_result(p.oid))
         || ' ' || pg_catalog.md5(COALESCE(p.prosrc, ''))
  FROM pg_catalog.pg_proc p JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace
  WHERE {_USER} AND {_NOT_EXTENSION.format(oid="p.oid")}
  UNION ALL
  SELECT pg_catalog.format('trigger %I.%I %I %s', n.nspname, c.relname, t.tgname, pg_catalog.pg_get_triggerdef(t.oid))
  FROM pg_catalog.pg_trigger t
  JOIN pg_catalog.pg_class c ON c.oid = t.tgrelid
  JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
  WHERE NOT t.tgisinternal AND {_USER}
  UNION ALL
  SELECT pg_catalog.format('type %I.%I enum (%s)', n.nspname, t.typname,
           pg_catalog.string_agg(pg_catalog.quote_literal(e.enumlabel), ', ' ORDER BY e.enumsortorder))
  FROM pg_catalog.pg_type t
  JOIN pg_catalog.pg_enum e ON e.enumtypid = t.oid
  JOIN pg_catalog.pg_namespace n ON n.oid = t.typnamespace
  WHERE {_USER} AND {_NOT_EXTENSION.format(oid="t.oid")}
  GROUP BY n.nspname, t.typname
) lines ORDER BY line COLLATE "C"
"""  # noqa: S608 - only the constant fragments above are interpolated


async def snapshot(place: Place) -> list[str]:
    """The schema of ``place``'s database, one line per object."""
    (rows,) = await place.databases.read_catalog(place.database, [(SNAPSHOT_SQL, ())])
    return [row["line"] for row in rows]


def fingerprint(lines: Sequence[str]) -> str:
    return "sha256:" + hashlib.sha256("\n".join(lines).encode()).hexdigest()[:32]


def diff(before: Sequence[str], after: Sequence[str]) -> str:
    """A compact unified diff (no context lines) from ``before`` to ``after``; empty when they are equal."""
    lines = difflib.unified_diff(list(before), list(after), "before", "after", lineterm="", n=0)
    return "\n".join(line for line in lines if not line.startswith("@@"))
