"""The access policy: roles -> permissions over the platform's actions, principals -> Ed25519 keys.

A policy is a YAML document (``configs/access/policy.yaml`` is the template)::

    policy: rlhf-contract-wizard     # name
    version: 1                       # 1, 2, ... one per approved change
    supersedes: null                 # sha256:... of the previous version (null for version 1)
    quorum: 2                        # admin signatures that approve the next version
    tokens: {audience: rlhf-contract-wizard, max_ttl_seconds: 86400, clock_skew_seconds: 60}
    roles:
      operator: {permissions: [run, run.replace, export, report, plan]}
    principals:
      alice: {public_key: "ed25519:...", roles: [admin]}

An *admin* is a principal holding a role with the ``policy.change`` permission. Identity: the
policy hash is SHA-256 over the RFC 8785 canonical JSON of the normalised model, so reformatting
the YAML does not change it and any change of meaning does.
"""

from __future__ import annotations

import hashlib
import io
import re
from pathlib import Path
from typing import Any, Literal

import rfc8785
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from ruamel.yaml import YAML, YAMLError

from rlhf_core.errors import ConfigError, KeyFileError
from rlhf_core.security.keys import key_id, parse_public_key

ACTIONS = (
    "contract.sign", "run", "run.unapproved", "run.replace", "export", "report", "plan",
    "keys.rotate", "audit.read", "policy.change",
)
"""Every action the platform checks, in the order the docs list them."""

Action = Literal[
    "contract.sign", "run", "run.unapproved", "run.replace", "export", "report", "plan",
    "keys.rotate", "audit.read", "policy.change",
]
ADMIN_PERMISSION = "policy.change"
NAME_PATTERN = r"^[a-z][a-z0-9_.-]{0,63}$"
DEFAULT_AUDIENCE = "rlhf-contract-wizard"

__all__ = [
    "ACTIONS", "ADMIN_PERMISSION", "AccessPolicy", "Principal", "Role", "TokenSettings",
    "load_policy", "parse_policy", "policy_yaml",
]


class TokenSettings(BaseModel):
    """How run tokens are checked.

    Attributes:
        audience: The ``aud`` every token must carry (give each deployment its own, e.g.
            ``rlhf-contract-wizard:prod``, so a token for one is refused by another).
        max_ttl_seconds: Longest lifetime (``exp - iat``) a token may have.
        clock_skew_seconds: Leeway on ``exp``, ``nbf`` and ``iat`` for clocks that differ.
    """

    model_config = ConfigDict(extra="forbid")

    audience: str = Field(default=DEFAULT_AUDIENCE, min_length=1, max_length=200)
    max_ttl_seconds: int = Field(default=86_400, ge=60, le=30 * 86_400)
    clock_skew_seconds: int = Field(default=60, ge=0, le=300)


class Role(BaseModel):
    """A named set of permissions."""

    model_config = ConfigDict(extra="forbid")

    description: str = ""
    permissions: list[Action]

    @field_validator("permissions")
    @classmethod
    def _unique(cls, value: list[str]) -> list[str]:
        if len(set(value)) != len(value):
            raise ValueError("permissions are listed twice")
        return value


class Principal(BaseModel):
    """Someone (or something: a scheduler) who acts, identified by an Ed25519 public key."""

    model_config = ConfigDict(extra="forbid")

    public_key: str
    roles: list[str] = Field(min_length=1)
    description: str = ""

    @field_validator("public_key")
    @classmethod
    def _key(cls, value: str) -> str:
        try:
            parse_public_key(value)
        except KeyFileError as exc:
            raise ValueError(str(exc)) from None
        return value.strip()


class AccessPolicy(BaseModel):
    """One version of the access policy (see the module docstring for the file format)."""

    model_config = ConfigDict(extra="forbid")

    policy: str = Field(pattern=NAME_PATTERN)
    version: int = Field(ge=1)
    supersedes: str | None = Field(default=None, pattern=r"^sha256:[0-9a-f]{64}$")
    description: str = ""
    quorum: int = Field(default=2, ge=1, le=32)
    tokens: TokenSettings = TokenSettings()
    roles: dict[str, Role]
    principals: dict[str, Principal] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _consistent(self) -> AccessPolicy:
        for name in [*self.roles, *self.principals]:
            if not re.match(NAME_PATTERN, name):
                raise ValueError(f"name {name!r} must match {NAME_PATTERN}")
        if (self.version == 1) != (self.supersedes is None):
            raise ValueError("version 1 supersedes nothing (null); every later version names "
                             "the sha256 of the version before it")
        owners: dict[str, str] = {}
        for name, principal in self.principals.items():
            unknown = [r for r in principal.roles if r not in self.roles]
            if unknown:
                raise ValueError(f"principal {name!r} has undeclared roles {unknown}; declared: "
                                 f"{sorted(self.roles)}")
            kid = key_id(principal.public_key)
            if kid in owners:
                raise ValueError(f"principals {owners[kid]!r} and {name!r} share one public key; "
                                 "give each principal its own key")
            owners[kid] = name
        return self

    def hash(self) -> str:
        """``sha256:<hex>`` of the canonical JSON of the normalised policy."""
        data = rfc8785.dumps(self.model_dump(mode="json"))
        return "sha256:" + hashlib.sha256(data).hexdigest()

    def role_permissions(self, role: str) -> frozenset[str]:
        """The permissions of ``role`` (empty for an unknown role)."""
        found = self.roles.get(role)
        return frozenset(found.permissions) if found else frozenset()

    def permissions_of(self, principal: str) -> frozenset[str]:
        """Union of the permissions of every role ``principal`` holds (empty if unknown)."""
        holder = self.principals.get(principal)
        if holder is None:
            return frozenset()
        return frozenset().union(*(self.role_permissions(r) for r in holder.roles))

    def role_for(self, principal: str, action: str) -> str | None:
        """The first of ``principal``'s roles that permits ``action``, or None."""
        holder = self.principals.get(principal)
        for role in holder.roles if holder else ():
            if action in self.role_permissions(role):
                return role
        return None

    def admins(self) -> dict[str, str]:
        """Principals that may approve the next version: name -> public key."""
        return {name: p.public_key for name, p in self.principals.items()
                if ADMIN_PERMISSION in self.permissions_of(name)}

    def principal_for_key_id(self, kid: str) -> str | None:
        """The principal whose public key has key id ``kid`` (see ``keys.key_id``)."""
        for name, principal in self.principals.items():
            if key_id(principal.public_key) == kid:
                return name
        return None


def _error_location(exc: ValidationError) -> str:
    first = exc.errors()[0]
    where = ".".join(str(p) for p in first["loc"]) or "(document)"
    return f"{where}: {first['msg']}"


def parse_policy(text: str, where: str = "<policy>") -> AccessPolicy:
    """Parse a policy document.

    Raises:
        ConfigError: Invalid YAML, or a document that does not match :class:`AccessPolicy`
            (names the field and what is wrong).
    """
    try:
        doc = YAML(typ="safe").load(text)
    except YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        place = f"{where}:{mark.line + 1}:{mark.column + 1}" if mark else where
        raise ConfigError(f"access policy is not valid YAML ({getattr(exc, 'problem', exc)})",
                          place) from None
    if not isinstance(doc, dict):
        raise ConfigError("an access policy is a mapping with policy, version, roles, principals",
                          where)
    try:
        return AccessPolicy.model_validate(doc)
    except ValidationError as exc:
        raise ConfigError(f"invalid access policy: {_error_location(exc)}", where) from None


def load_policy(path: str | Path) -> AccessPolicy:
    """Read and parse a policy file (see :func:`parse_policy`).

    Raises:
        ConfigError: Unreadable file or invalid policy.
    """
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read access policy ({exc})", str(p)) from None
    return parse_policy(text, str(p))


def policy_yaml(policy: AccessPolicy, header: str = "") -> str:
    """The YAML text of a policy version the platform writes (``access grant``/``revoke``)."""
    doc: dict[str, Any] = policy.model_dump(mode="json")
    out = io.StringIO()
    yaml = YAML()
    yaml.default_flow_style = False
    yaml.dump(doc, out)
    lines = "".join(f"# {line}\n" for line in header.splitlines())
    return lines + out.getvalue()
