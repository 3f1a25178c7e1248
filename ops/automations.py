"""Register the Prefect automations of ``deployments/automations/`` (alerts) with a server.

Each file holds one automation, or a list under ``automations:``, in the format of
``prefect automation create --from-file`` and is validated by the same model
(``AutomationCore``). An action's ``block_document_id`` may be a block reference
``{{ prefect.blocks.<type-slug>.<name> }}`` instead of an id: :func:`resolve_automations`
replaces it with the id of that block document on the server, so the files name their
notification channels (``custom-webhook/rlhf-alerts``, ``custom-webhook/rlhf-escalation``)
rather than ids that differ per server.

:func:`deploy_automations` (run by ``rlhf-wizard deploy``) saves the webhook blocks it is given
URLs for, resolves the references and creates or updates each automation by name, so deploying
again changes them in place instead of adding copies. An automation whose block does not exist
is skipped and reported; the deployments are registered either way.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any
from uuid import UUID

from pydantic import ValidationError
from ruamel.yaml import YAML, YAMLError

from ops.deployments import PROJECT_ROOT
from rlhf_core.errors import ConfigError, DeploymentError

AUTOMATIONS_DIR = PROJECT_ROOT / "deployments" / "automations"
WEBHOOK_SLUG = "custom-webhook"
ALERTS_BLOCK = "rlhf-alerts"
ESCALATION_BLOCK = "rlhf-escalation"
WEBHOOK_JSON = {"text": "{{subject}}\n{{body}}", "subject": "{{subject}}", "body": "{{body}}"}
"""What the webhook blocks POST: ``text`` for Slack-style receivers, the parts for the others."""

_BLOCK_REF = re.compile(r"^\{\{\s*prefect\.blocks\.([a-z0-9-]+)\.([A-Za-z0-9_.-]+)\s*\}\}$")

BlockRef = tuple[str, str]
"""``(block type slug, block document name)``."""


def read_automation_files(folder: str | Path = AUTOMATIONS_DIR) -> list[dict[str, Any]]:
    """The automations of every ``*.yaml`` / ``*.yml`` file in ``folder`` (sorted by file name).

    Returns:
        Plain dicts as in the files, each with ``__file__`` (its path) added.

    Raises:
        ConfigError: The folder is missing, a file is not YAML, or two automations share a name.
    """
    folder = Path(folder)
    files = sorted([*folder.glob("*.yaml"), *folder.glob("*.yml")])
    if not files:
        raise ConfigError("no automation files (*.yaml) found; restore deployments/automations/",
                          str(folder))
    found: list[dict[str, Any]] = []
    for path in files:
        try:
            data = YAML(typ="safe").load(path.read_text(encoding="utf-8"))
        except YAMLError as exc:
            raise ConfigError(f"not valid YAML ({exc})", str(path)) from exc
        items = data["automations"] if isinstance(data, dict) and "automations" in data else data
        for item in items if isinstance(items, list) else [items]:
            if not isinstance(item, dict) or not isinstance(item.get("name"), str):
                raise ConfigError("each automation needs a `name`, a `trigger` and `actions`",
                                  str(path))
            found.append({**item, "__file__": str(path)})
    names = [a["name"] for a in found]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise ConfigError(f"automation names must be unique (they are how deploy updates them): "
                          f"{', '.join(twice)}", str(folder))
    return found


def block_references(automations: Sequence[Mapping[str, Any]]) -> dict[str, list[BlockRef]]:
    """``{automation name: [block references of its actions]}``."""
    refs: dict[str, list[BlockRef]] = {}
    for automation in automations:
        for action in automation.get("actions") or []:
            match = _BLOCK_REF.match(str(action.get("block_document_id", "")))
            if match:
                refs.setdefault(automation["name"], []).append((match[1], match[2]))
    return refs


def resolve_automations(automations: Sequence[Mapping[str, Any]],
                        block_ids: Mapping[BlockRef, UUID]) -> list[Any]:
    """Replace block references by ids and validate as ``prefect automation create`` does.

    Args:
        automations: From :func:`read_automation_files` (possibly edited, e.g. shorter windows).
        block_ids: Id of every referenced block.

    Returns:
        ``prefect.events.schemas.automations.AutomationCore`` objects.

    Raises:
        ConfigError: An automation is invalid, or references a block not in ``block_ids``.
    """
    from prefect.events.schemas.automations import AutomationCore

    resolved = []
    for automation in automations:
        where = automation.get("__file__", "<automation>")
        data = {k: v for k, v in automation.items() if k != "__file__"}
        actions = []
        for action in data.get("actions") or []:
            match = _BLOCK_REF.match(str(action.get("block_document_id", "")))
            if match:
                ref = (match[1], match[2])
                if ref not in block_ids:
                    raise ConfigError(f"{data['name']}: block {ref[0]}/{ref[1]} is not on the "
                                      "server; create it or pass its webhook URL to deploy", where)
                action = {**action, "block_document_id": str(block_ids[ref])}
            actions.append(action)
        try:
            resolved.append(AutomationCore.model_validate({**data, "actions": actions}))
        except ValidationError as exc:
            first = exc.errors()[0]
            place = ".".join(str(p) for p in first["loc"])
            raise ConfigError(f"{data['name']}: {place}: {first['msg']}", where) from exc
    return resolved


def save_webhook_block(name: str, url: str) -> UUID:
    """Create or overwrite the Custom Webhook notification block ``name`` posting to ``url``.

    Returns:
        The block document id.
    """
    from prefect.blocks.notifications import CustomWebhookNotificationBlock

    block = CustomWebhookNotificationBlock(name=name, url=url, json_data=dict(WEBHOOK_JSON))
    return block.save(name, overwrite=True)


def read_block_ids(refs: Sequence[BlockRef]) -> dict[BlockRef, UUID]:
    """Ids of the referenced blocks that exist on the server (absent ones are left out)."""
    from prefect.client.orchestration import get_client
    from prefect.exceptions import ObjectNotFound

    ids = {}
    with get_client(sync_client=True) as client:
        for slug, name in sorted(set(refs)):
            try:
                ids[(slug, name)] = client.read_block_document_by_name(
                    name, block_type_slug=slug, include_secrets=False).id
            except ObjectNotFound:
                continue
    return ids


def apply_automations(automations: Sequence[Any]) -> list[dict[str, str]]:
    """Create each automation, or update the one of the same name (extra copies are deleted).

    Returns:
        ``[{"name", "id", "action": "created" | "updated"}]``.

    Raises:
        DeploymentError: The server refused one (with its name and the reason).
    """
    from prefect.client.orchestration import get_client
    from prefect.exceptions import PrefectHTTPStatusError

    applied = []
    with get_client(sync_client=True) as client:
        for automation in automations:
            try:
                existing = client.read_automations_by_name(automation.name)
                if existing:
                    client.update_automation(existing[0].id, automation)
                    for extra in existing[1:]:
                        client.delete_automation(extra.id)
                    applied.append({"name": automation.name, "id": str(existing[0].id),
                                    "action": "updated"})
                else:
                    new_id = client.create_automation(automation)
                    applied.append({"name": automation.name, "id": str(new_id), "action": "created"})
            except PrefectHTTPStatusError as exc:
                raise DeploymentError(f"automation {automation.name}: the server refused it "
                                      f"({exc.response.status_code}: {exc.response.text[:200]}); "
                                      "check the file in deployments/automations/") from exc
    return applied


def deploy_automations(
    folder: str | Path = AUTOMATIONS_DIR,
    *,
    alerts_webhook: str | None = None,
    escalation_webhook: str | None = None,
) -> dict[str, list[dict[str, Any]]]:
    """Save the webhook blocks given, then register every automation whose blocks exist.

    Args:
        folder: The automation files.
        alerts_webhook: URL for the ``custom-webhook/rlhf-alerts`` block (saved when given).
        escalation_webhook: URL for ``custom-webhook/rlhf-escalation`` (default: the alerts URL).

    Returns:
        ``{"applied": [...] (see :func:`apply_automations`), "skipped": [{"name", "missing"}]}``.

    Raises:
        ConfigError: A file or automation is invalid.
        DeploymentError: The server refused an automation.
    """
    raw = read_automation_files(folder)
    if alerts_webhook:
        save_webhook_block(ALERTS_BLOCK, alerts_webhook)
    if escalation_webhook or alerts_webhook:
        save_webhook_block(ESCALATION_BLOCK, escalation_webhook or alerts_webhook)
    refs = block_references(raw)
    ids = read_block_ids([r for found in refs.values() for r in found])
    ready, skipped = [], []
    for automation in raw:
        missing = [f"{s}/{n}" for s, n in refs.get(automation["name"], []) if (s, n) not in ids]
        if missing:
            skipped.append({"name": automation["name"], "missing": missing})
        else:
            ready.append(automation)
    applied = apply_automations(resolve_automations(ready, ids))
    return {"applied": applied, "skipped": skipped}
