"""The account level: the local user, the API key's identity, organisations and regions.

Local Neon has one user (``local``), whose API key is a personal key, and organisations of that user: the first start
makes a default one, and every project belongs to one (``org_id``; a project made without one joins the default).
The user has a billing account (as Neon users created before organisations do), so clients that pick an organisation
for users without one (Neon's MCP server) keep Neon's default behaviour. There is one region, ``local``.
"""

from __future__ import annotations

from typing import Any

from . import ids, views
from .errors import bad_request, not_found
from .records import Organization, Project
from .routing import route
from .runtime import Runtime

__all__ = ["USER_ID", "Accounts"]

USER_ID = "local"
_EMAIL = "local@localhost"


class Accounts:
    def __init__(self, rt: Runtime) -> None:
        self._rt = rt

    def ensure_default_organization(self) -> Organization:
        """The default organisation, made at first start; projects stored before organisations existed join it."""
        store = self._rt.store
        organizations = store.list(Organization)
        default = next((org for org in organizations if org.default), None)
        with store.transaction():
            if default is None:
                moment = ids.now()
                default = Organization(ids.org_id(), "Local", moment, moment, default=True)
                store.put(default)
            for project in store.list(Project):
                if project.org_id is None:
                    project.org_id = default.id
                    store.put(project)
        return default

    def default_organization(self) -> Organization:
        """The default organisation (made now if the state has none yet)."""
        found = next((org for org in self._rt.store.list(Organization) if org.default), None)
        return found if found is not None else self.ensure_default_organization()

    def organization(self, org_id: str) -> Organization:
        """The organisation ``org_id`` of the user; 404 if there is none."""
        record = self._rt.store.get(Organization, org_id)
        if record is None:
            raise not_found("organization", org_id)
        return record

    @route("get_auth_details", "GET", "/auth")
    async def auth(self) -> dict[str, Any]:
        """Who the API key is: the local user's personal key."""
        return {"account_id": USER_ID, "auth_method": "api_key_user"}

    @route("me", "GET", "/users/me")
    async def me(self) -> dict[str, Any]:
        default = self.default_organization()
        return {
            "id": USER_ID,
            "email": _EMAIL,
            "login": USER_ID,
            "name": "Local",
            "last_name": "Neon",
            "image": "",
            "projects_limit": 1000,
            "branches_limit": 5000,
            "max_autoscaling_limit": 8,
            "active_seconds_limit": 0,
            "auth_accounts": [],
            "plan": "local",
            "billing_account": {
                "state": "active",
                "payment_source": {"type": "none"},
                "subscription_type": "free_v2",  # in the spec and in older clients (neon-api 0.3 knows no v3)
                "payment_method": "none",
                "quota_reset_at_last": ids.format_time(default.created_at),
                "name": "Local Neon",
                "email": _EMAIL,
                "address_city": "",
                "address_country": "",
                "address_line1": "",
                "address_line2": "",
                "address_postal_code": "",
                "address_state": "",
            },
        }

    @route("list_user_organizations", "GET", "/users/me/organizations")
    async def list_organizations(self) -> dict[str, Any]:
        self.default_organization()
        return {"organizations": [views.organization(org) for org in self._rt.store.list(Organization)]}

    @route("get_organization", "GET", "/organizations/{org_id}")
    async def get_organization(self, org_id: str) -> dict[str, Any]:
        return views.organization(self.organization(org_id))

    @route("list_regions", "GET", "/regions")
    async def regions(self, org_id: str | None = None) -> dict[str, Any]:
        if org_id is not None:
            self.organization(org_id)
        return {"regions": [views.region()]}


def check_region(region_id: str | None) -> None:
    """400 unless ``region_id`` is absent or local Neon's one region."""
    if region_id is not None and region_id != views.REGION:
        raise bad_request(f"region {region_id!r} is not available: local Neon has one region, {views.REGION!r}")
