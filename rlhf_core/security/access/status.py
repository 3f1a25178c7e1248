"""What ``rlhf-wizard doctor`` says about access: the policy, a pending change, issued tokens."""

from __future__ import annotations

import time
from typing import NamedTuple

from rlhf_core.errors import WizardError, first_line
from rlhf_core.lake.store import Lake
from rlhf_core.security.access.enforce import governing_lake
from rlhf_core.security.access.ledger import ISSUED, TokenLedger
from rlhf_core.security.access.store import ANCHOR_ENV, PolicyStore

EXPIRING_WITHIN_S = 86_400

__all__ = ["AccessCheck", "access_checks"]


class AccessCheck(NamedTuple):
    """One doctor row: name, ok, detail, fix (the fields of ``ops.doctor.Check``)."""

    name: str
    ok: bool
    detail: str
    fix: str = ""


def access_checks(lake: Lake, *, now: float | None = None,
                  within_s: int = EXPIRING_WITHIN_S) -> list[AccessCheck]:
    """The access-policy rows: installed and verified (or open mode), pending, expiring tokens."""
    store = PolicyStore(governing_lake(lake))
    try:
        installed = store.installed()
        pending = store.pending()
    except WizardError as exc:
        return [AccessCheck("access policy", False, first_line(exc),
                            "restore the lake's access/ folder from backup; until then every "
                            "action is denied")]
    if installed is None:
        return [AccessCheck("access policy", True,
                            "no access policy: open mode, anyone who can run a command or reach "
                            "the Prefect UI may run, export and re-run; install one with "
                            "`rlhf-wizard access init` (docs/security.md)")]
    policy = installed.policy
    pin = ("chain pinned by " + ANCHOR_ENV if installed.anchored else
           f"not pinned: set {ANCHOR_ENV}={installed.genesis} on workers")
    rows = [AccessCheck("access policy", True,
                        f"v{policy.version} {installed.hash[:19]}… {installed.approval.summary()}; "
                        f"{len(policy.principals)} principals, {len(policy.admins())} admins, next "
                        f"version needs {policy.quorum}; {pin}")]
    if pending is not None:
        rows.append(AccessCheck("access policy pending", True,
                                f"v{pending.policy.version}: {pending.approval.summary()}"))
    rows.append(_token_row(store.lake, now if now is not None else time.time(), within_s))
    return rows


def _token_row(lake: Lake, now: float, within_s: int) -> AccessCheck:
    try:
        issued = TokenLedger(lake, ISSUED).records()
    except (WizardError, OSError) as exc:
        return AccessCheck("access tokens", False, f"issued-token list unreadable: {first_line(exc)}",
                           "check the lake's access/ folder")
    live = [r for r in issued if isinstance(r.get("exp"), int) and r["exp"] > now]
    soon = sorted((r for r in live if r["exp"] <= now + within_s), key=lambda r: r["exp"])
    listed = "; ".join(f"{r.get('iss')} ({r.get('role')}) in {(r['exp'] - now) / 3600:.1f} h"
                       for r in soon[:5])
    more = f" (+{len(soon) - 5} more)" if len(soon) > 5 else ""
    detail = (f"{len(live)} issued token(s) valid, {len(soon)} expire within "
              f"{within_s // 3600} h" + (f": {listed}{more}" if soon else ""))
    return AccessCheck("access tokens", True, detail)
