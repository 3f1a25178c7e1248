"""A small reader of the shared JSONL files into the normalised ``responses`` / ``preferences`` shape.

Test-only: it lets the optimisation tests run on real data independently of the ingestion
adapters. Labels are strings ``"a"`` / ``"b"`` / ``"tie"``; ids are sha256 prefixes.
"""

from __future__ import annotations

import ast
import hashlib
import json
from itertools import combinations
from pathlib import Path

import pyarrow as pa


def _id(*parts: str) -> str:
    return hashlib.sha256("\x1f".join(parts).encode("utf-8")).hexdigest()[:16]


class _Builder:
    def __init__(self) -> None:
        self.responses: dict[str, dict[str, object]] = {}
        self.pairs: list[dict[str, object]] = []

    def response(self, prompt: str, text: str, **attrs: object) -> str:
        pid = _id("prompt", prompt)
        rid = _id(pid, text)
        self.responses.setdefault(
            rid, {"prompt_id": pid, "response_id": rid, "prompt": prompt, "response": text, **attrs}
        )
        return rid

    def pair(self, prompt: str, a: str, b: str, margin: float | None = None, **labels: str) -> None:
        pid = _id("prompt", prompt)
        self.pairs.append(
            {"pair_id": _id(pid, a, b), "prompt_id": pid, "response_a_id": a, "response_b_id": b,
             "margin": margin, **labels}
        )

    def tables(self) -> tuple[pa.Table, pa.Table]:
        return pa.Table.from_pylist(list(self.responses.values())), pa.Table.from_pylist(self.pairs)


def _rows(path: Path) -> list[dict[str, object]]:
    with path.open(encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def read_pku(data: Path) -> tuple[pa.Table, pa.Table]:
    """PKU-SafeRLHF: two responses per row, labels ``better`` and ``safer``."""
    b = _Builder()
    for row in _rows(data / "preferences" / "pku_saferlhf_train500.jsonl"):
        prompt = str(row["prompt"])
        ids = [
            b.response(prompt, str(row[f"response_{k}"]),
                       is_safe=bool(row[f"is_response_{k}_safe"]),
                       severity=int(row[f"response_{k}_severity_level"]))
            for k in (0, 1)
        ]
        if ids[0] == ids[1]:
            continue
        label = {crit: "a" if int(row[f"{crit}_response_id"]) == 0 else "b"
                 for crit in ("better", "safer")}
        b.pair(prompt, ids[0], ids[1], **label)
    return b.tables()


def read_hh(data: Path, subset: str) -> tuple[pa.Table, pa.Table]:
    """HH-RLHF helpful/harmless: the prompt is the transcript up to the last Assistant turn."""
    b = _Builder()
    marker = "\n\nAssistant:"
    for row in _rows(data / "preferences" / f"hh_{subset}_train500.jsonl"):
        chosen, rejected = str(row["chosen"]), str(row["rejected"])
        cut = chosen.rfind(marker) + len(marker)
        prompt = chosen[:cut]
        rej_cut = rejected.rfind(marker) + len(marker)
        a = b.response(prompt, chosen[cut:].strip())
        r = b.response(prompt, rejected[rej_cut:].strip())
        if a != r:
            b.pair(prompt, a, r, better="a")
    return b.tables()


def read_ultrafeedback(data: Path) -> tuple[pa.Table, pa.Table]:
    """UltraFeedback binarized: ``better`` from the scores, ties kept as ``"tie"``."""
    b = _Builder()
    for row in _rows(data / "preferences" / "ultrafeedback_binarized_train1000.jsonl"):
        prompt = str(row["prompt"])
        meta = row["metadata"]
        meta = ast.literal_eval(meta) if isinstance(meta, str) else meta
        sc, sr = float(meta["score_chosen"]), float(meta["score_rejected"])

        def text(msgs: object) -> str:
            if isinstance(msgs, list):
                return str(msgs[-1]["content"])
            return str(msgs)

        a = b.response(prompt, text(row["chosen"]), score=sc)
        r = b.response(prompt, text(row["rejected"]), score=sr)
        if a != r:
            b.pair(prompt, a, r, margin=sc - sr, better="tie" if sc == sr else "a")
    return b.tables()


def read_helpsteer(data: Path) -> tuple[pa.Table, pa.Table]:
    """HelpSteer: every within-prompt pair with different helpfulness; the margin is the gap."""
    b = _Builder()
    by_prompt: dict[str, list[tuple[str, float]]] = {}
    for row in _rows(data / "preferences" / "helpsteer_train500.jsonl"):
        prompt = str(row["prompt"])
        attrs = {k: float(row[k]) for k in
                 ("helpfulness", "correctness", "coherence", "complexity", "verbosity")}
        rid = b.response(prompt, str(row["response"]), **attrs)
        by_prompt.setdefault(prompt, []).append((rid, attrs["helpfulness"]))
    for prompt, items in by_prompt.items():
        for (ra, ha), (rb, hb) in combinations(items, 2):
            if ha != hb and ra != rb:
                b.pair(prompt, ra, rb, margin=abs(ha - hb), better="a" if ha > hb else "b")
    return b.tables()
