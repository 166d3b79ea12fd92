"""What the ``search`` and ``fetch`` tools find: projects, branches and tables by name, and one of them in full.

Connector clients (ChatGPT-style connectors, deep research) call ``search(query)`` and then ``fetch(id)``. A search
costs a fixed number of API requests however many projects the account has (Neon's own MCP server lists the branches
of every project, one request each):

- projects: one listing with Neon's ``search`` parameter (names and ids containing the query), per organisation only
  when Neon asks for ``org_id`` (``NeonClient.list_account_projects``);
- branches: the served project's branch list (one request); other projects' branches are not searched, as that
  would take a request per project (fetching a project lists its branches);
- tables: one catalog query in the served project's default database (NEON_DATABASE, else neondb) on its default
  branch (NEON_BRANCH, else the project's default branch), over the connection the SQL tools use.

Without a served project (several projects and no NEON_PROJECT_ID) only projects are searched. Ids are
``project:<project id>``, ``branch:<project id>/<branch id>`` and ``table:<project id>/<branch id>/<oid>`` (the
table's OID, so that no id carries text from the database; the database is the default one). URLs are Neon
console pages, or, away from Neon's console (local Neon), the API's own resource URLs.

This module finds and reads; the tools shape the connector contract and fence what came from the database.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal
from urllib.parse import urlsplit

from ..errors import InvalidInput, NeonMCPError

if TYPE_CHECKING:
    from ..sql.catalog import Found, SchemaCatalog, TableDetail
    from ..sql.places import Places
    from .client import NeonClient
    from .models import Branch, Project
    from .targets import Directory
    from .views import BranchDescription, BranchList, NeonViews, ProjectDescription

__all__ = ["BranchHit", "Finder", "ProjectHit", "Ref", "SearchHits", "TableDocument", "TableHit", "parse_ref"]

logger = logging.getLogger(__name__)

_PER_KIND = 20
"""Most results of each kind (projects, branches, tables) a search returns."""


@dataclass(frozen=True, slots=True)
class ProjectHit:
    project: Project
    served: bool
    url: str


@dataclass(frozen=True, slots=True)
class BranchHit:
    project: Project
    branch: Branch
    protected_because: str | None
    url: str


@dataclass(frozen=True, slots=True)
class TableHit:
    project: Project
    branch: Branch
    database: str
    table: Found
    url: str


@dataclass(frozen=True, slots=True)
class SearchHits:
    """Everything one search found, by kind, and what it could not search (said in words)."""

    projects: list[ProjectHit]
    branches: list[BranchHit]
    tables: list[TableHit]
    skipped: list[str]


@dataclass(frozen=True, slots=True)
class Ref:
    """A parsed search id."""

    kind: Literal["project", "branch", "table"]
    project_id: str
    branch_id: str | None = None
    oid: int | None = None


@dataclass(frozen=True, slots=True)
class TableDocument:
    project: Project
    branch: Branch
    database: str
    detail: TableDetail
    url: str


def parse_ref(ref: str) -> Ref:
    """``project:<id>``, ``branch:<project id>/<branch id>`` or ``table:<project id>/<branch id>/<oid>``."""
    kind, _, rest = ref.strip().partition(":")
    parts = rest.split("/")
    if kind == "project" and len(parts) == 1 and parts[0]:
        return Ref("project", parts[0])
    if kind == "branch" and len(parts) == 2 and all(parts):
        return Ref("branch", parts[0], parts[1])
    if kind == "table" and len(parts) == 3 and all(parts[:2]) and parts[2].isdigit():
        return Ref("table", parts[0], parts[1], int(parts[2]))
    raise InvalidInput(
        f"id {ref!r} is not one search returns: project:<project id>, branch:<project id>/<branch id> or "
        "table:<project id>/<branch id>/<oid>"
    )


class Finder:
    """Searches and fetches over the API client, the directory, the read-only Neon views and the SQL places."""

    def __init__(
        self, neon: NeonClient, directory: Directory, views: NeonViews, places: Places, catalog: SchemaCatalog
    ) -> None:
        self.neon = neon
        self.directory = directory
        self.views = views
        self.places = places
        self.catalog = catalog
        host = urlsplit(neon.base_url).hostname or ""
        self._console = "https://console.neon.tech" if host.endswith("neon.tech") else None

    # --- urls --------------------------------------------------------------------------------------------------------

    def project_url(self, project_id: str) -> str:
        if self._console is not None:
            return f"{self._console}/app/projects/{project_id}"
        return f"{self.neon.base_url}/projects/{project_id}"

    def branch_url(self, project_id: str, branch_id: str) -> str:
        if self._console is not None:
            return f"{self._console}/app/projects/{project_id}/branches/{branch_id}"
        return f"{self.neon.base_url}/projects/{project_id}/branches/{branch_id}"

    # --- search ------------------------------------------------------------------------------------------------------

    async def search(self, query: str) -> SearchHits:
        """Projects, branches and tables whose name (or id) contains ``query`` (case-insensitive; empty: all, up to
        the limit of each kind)."""
        text = query.strip()
        needle = text.lower()
        skipped: list[str] = []
        projects = await self.neon.list_account_projects(search=text or None)
        served = await self.directory.served()
        project_hits = [
            ProjectHit(p, served is not None and p.id == served.id, self.project_url(p.id)) for p in projects
        ][:_PER_KIND]
        branch_hits: list[BranchHit] = []
        table_hits: list[TableHit] = []
        if served is None:
            skipped.append("branches and tables: no project is served (several projects and no NEON_PROJECT_ID)")
        else:
            branches = await self.directory.branches(served.id, refresh=True)
            branch_hits = [
                BranchHit(served, b, self.directory.protection(b), self.branch_url(served.id, b.id))
                for b in branches
                if needle in b.name.lower() or needle in b.id.lower()
            ][:_PER_KIND]
            try:
                table_hits = await self._tables(served, branches, text)
            except NeonMCPError as exc:  # the project is listed anyway; what kept the tables out is said
                logger.info("search: tables not searched: %s", exc)
                skipped.append(f"tables: {exc}")
        return SearchHits(project_hits, branch_hits, table_hits, skipped)

    async def _tables(self, served: Project, branches: list[Branch], text: str) -> list[TableHit]:
        place = await self.places.place(None, None)
        target = place.target
        branch = next((b for b in branches if target is not None and b.id == target.branch_id), None)
        if branch is None:
            return []
        found = await self.catalog.search(place, text, limit=_PER_KIND)
        url = self.branch_url(served.id, branch.id)
        return [TableHit(served, branch, place.database, table, url) for table in found]

    # --- fetch -------------------------------------------------------------------------------------------------------

    async def project(self, ref: Ref) -> tuple[ProjectDescription, BranchList, str]:
        """A project's description, its branch tree, and the url of its page."""
        description, branches = await self.views.project_and_branches(ref.project_id)
        return description, branches, self.project_url(description.id)

    async def branch(self, ref: Ref) -> tuple[BranchDescription, Project, str]:
        """A branch's description, its project, and the url of its page."""
        assert ref.branch_id is not None
        project = await self.directory.project(ref.project_id)
        description = await self.views.branch(ref.branch_id, project.id)
        return description, project, self.branch_url(project.id, description.id)

    async def table(self, ref: Ref) -> TableDocument:
        """A table of the served project's default database, on the branch the id names."""
        assert ref.branch_id is not None and ref.oid is not None
        served = await self.directory.served()
        if served is None or served.id != ref.project_id:
            raise InvalidInput(
                f"tables are read from the project this server serves only, and {ref.project_id} is not it "
                "(fetch project:<id> describes another project)"
            )
        branch = await self.directory.branch(ref.branch_id, project=served.id)
        place = await self.places.place(branch.id, None)
        detail = await self.catalog.table_by_oid(place, ref.oid)
        return TableDocument(served, branch, place.database, detail, self.branch_url(served.id, branch.id))
