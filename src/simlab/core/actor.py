"""Who acts, through which door: the first argument of every service."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from simlab.core.context import current_request_id


class Source(StrEnum):
    WEB = "web"
    API = "api"
    COMPUTE = "compute"
    AI_TOOL = "ai_tool"
    MCP = "mcp"
    ASSISTANT = "assistant"
    ADMIN = "admin"
    CLI = "cli"
    SYSTEM = "system"


# Scopes an API key may carry; a session or JWT user acts with all of them.
SCOPES: dict[str, str] = {
    "read": "Read projects, simulations and results.",
    "write": "Create and change simulations, sweeps and projects.",
    "compute": "Run interactive computations on the compute service.",
    "admin": "Manage the organisation: members and API keys.",
}
ALL_SCOPES = frozenset(SCOPES)


@dataclass(frozen=True)
class Actor:
    """The acting user, the organisation an API key is bound to, and the door used.

    `organization_id` is set when the credential is bound to one organisation (API
    keys); a session or JWT user may act in any organisation they are a member of.
    """

    user_id: int | None
    source: Source
    username: str = ""
    organization_id: int | None = None
    scopes: frozenset[str] = field(default=ALL_SCOPES)
    is_superuser: bool = False
    api_key_id: int | None = None
    request_id: str | None = None
    ip: str | None = None

    @classmethod
    def system(cls, *, source: Source = Source.SYSTEM) -> Actor:
        return cls(user_id=None, source=source, username="system", request_id=current_request_id())

    @property
    def is_system(self) -> bool:
        return self.user_id is None

    def has_scope(self, scope: str) -> bool:
        return scope in self.scopes
