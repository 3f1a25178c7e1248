"""Wire formats of reward-model servers: request bodies, per-row cache payloads, score extraction.

- **TEI** (Hugging Face Text Embeddings Inference, ``POST /predict``): body
  ``{"inputs": [[prompt, response], ...], "raw_scores": bool, "truncate": true}``; answer: one
  entry per pair, each a list of ``{"score", "label"}`` (a bare ``{"score", "label"}`` or a number
  is accepted too).
- **vLLM score** (``POST /score`` or ``/v1/score``): body
  ``{"model", "text_1": [prompts], "text_2": [responses]}``; answer
  ``{"data": [{"index", "object": "score", "score"}, ...]}`` (ordered by ``index``).
- **vLLM pooling** (``POST /pooling`` of a reward model): body ``{"model", "input": [texts]}``;
  answer ``{"data": [{"index", "data": value}]}`` where ``value`` is a number or a one-element
  (possibly nested) list.
- **generic**: ``request_template`` is any JSON whose strings equal to a placeholder are replaced:
  ``"{{prompts}}"``, ``"{{responses}}"``, ``"{{pairs}}"``, ``"{{items}}"`` (the ``item_template``
  rendered per row with ``"{{prompt}}"``/``"{{response}}"``) and ``"{{model}}"``;
  ``response_path`` (:class:`JsonPath`) selects the list of scores.

Wire formats only shape data; they never validate numbers (see :mod:`.validation`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from rlhf_core.errors import RemoteResponseError, RemoteScoringError
from rlhf_core.remote.config import EndpointConfig
from rlhf_core.remote.jsonpath import JsonPath

__all__ = ["WireFormat", "make_wire"]

BATCH_PLACEHOLDERS = ("{{prompts}}", "{{responses}}", "{{pairs}}", "{{items}}", "{{model}}")
ITEM_PLACEHOLDERS = ("{{prompt}}", "{{response}}", "{{model}}")


class WireFormat(Protocol):
    """What the client needs from a wire format."""

    def row_payload(self, prompt: str, response: str) -> Any:
        """The JSON value identifying one row's request (hashed into the cache key)."""

    def build_body(self, prompts: Sequence[str], responses: Sequence[str]) -> Any:
        """The JSON request body for one batch."""

    def extract(self, document: Any) -> list[Any]:
        """The raw per-row score values from a decoded answer (raises RemoteResponseError)."""


class TeiWire:
    """Text Embeddings Inference ``/predict`` over (prompt, response) pairs."""

    def __init__(self, config: EndpointConfig) -> None:
        self.label = config.tei_label
        self.raw_scores = config.tei_raw_scores

    def row_payload(self, prompt: str, response: str) -> Any:
        return {"inputs": [prompt, response], "raw_scores": self.raw_scores, "label": self.label}

    def build_body(self, prompts: Sequence[str], responses: Sequence[str]) -> Any:
        pairs = [[p, r] for p, r in zip(prompts, responses, strict=True)]
        return {"inputs": pairs, "raw_scores": self.raw_scores, "truncate": True}

    def extract(self, document: Any) -> list[Any]:
        if not isinstance(document, list):
            raise RemoteResponseError(f"TEI answer is a {type(document).__name__}, expected a list")
        return [self._one(entry, i) for i, entry in enumerate(document)]

    def _one(self, entry: Any, position: int) -> Any:
        if isinstance(entry, dict):
            entry = [entry]
        if not isinstance(entry, list):
            return entry
        if not all(isinstance(item, dict) and "score" in item for item in entry):
            raise RemoteResponseError(f"TEI answer entry {position} is not a list of {{score, label}}")
        if self.label is None:
            if len(entry) != 1:
                raise RemoteResponseError(
                    f"TEI answer entry {position} has {len(entry)} labels; set tei_label to pick one")
            return entry[0]["score"]
        for item in entry:
            if item.get("label") == self.label:
                return item["score"]
        raise RemoteResponseError(f"TEI answer entry {position} has no label {self.label!r}")


def _indexed_data(document: Any, field: str, what: str) -> list[Any]:
    if not isinstance(document, dict) or not isinstance(document.get("data"), list):
        raise RemoteResponseError(f"{what} answer has no 'data' list")
    rows = document["data"]
    if not all(isinstance(r, dict) and isinstance(r.get("index"), int) and field in r for r in rows):
        raise RemoteResponseError(f"{what} answer 'data' entries need an integer 'index' and '{field}'")
    ordered = sorted(rows, key=lambda r: r["index"])
    if [r["index"] for r in ordered] != list(range(len(ordered))):
        raise RemoteResponseError(f"{what} answer indices are not 0..{len(ordered) - 1}")
    return [r[field] for r in ordered]


class VllmScoreWire:
    """vLLM's ``/score`` API (cross-encoder / reward scoring of text pairs)."""

    def __init__(self, config: EndpointConfig) -> None:
        self.model = config.model_id

    def row_payload(self, prompt: str, response: str) -> Any:
        return {"text_1": prompt, "text_2": response}

    def build_body(self, prompts: Sequence[str], responses: Sequence[str]) -> Any:
        return {"model": self.model, "text_1": list(prompts), "text_2": list(responses)}

    def extract(self, document: Any) -> list[Any]:
        return _indexed_data(document, "score", "vLLM /score")


class VllmPoolingWire:
    """vLLM's ``/pooling`` API serving a sequence reward model (one value per input)."""

    def __init__(self, config: EndpointConfig) -> None:
        self.model = config.model_id
        self.template = config.pooling_text_template

    def _text(self, prompt: str, response: str) -> str:
        # Plain replacement, not str.format: the template must not reach attributes of the rows.
        return self.template.replace("{prompt}", prompt).replace("{response}", response)

    def row_payload(self, prompt: str, response: str) -> Any:
        return {"input": self._text(prompt, response)}

    def build_body(self, prompts: Sequence[str], responses: Sequence[str]) -> Any:
        texts = [self._text(p, r) for p, r in zip(prompts, responses, strict=True)]
        return {"model": self.model, "input": texts}

    def extract(self, document: Any) -> list[Any]:
        values = _indexed_data(document, "data", "vLLM /pooling")
        out = []
        for position, value in enumerate(values):
            while isinstance(value, list) and len(value) == 1:
                value = value[0]
            if isinstance(value, list):
                raise RemoteResponseError(
                    f"vLLM /pooling entry {position} has {len(value)} values, expected one reward")
            out.append(value)
        return out


def _render(template: Any, values: dict[str, Any], allowed: tuple[str, ...]) -> Any:
    if isinstance(template, dict):
        return {k: _render(v, values, allowed) for k, v in template.items()}
    if isinstance(template, list):
        return [_render(v, values, allowed) for v in template]
    if isinstance(template, str) and template.startswith("{{") and template.endswith("}}"):
        if template not in allowed:
            raise RemoteScoringError(
                f"request template placeholder {template} is unknown; use one of {', '.join(allowed)}")
        return values[template]
    return template


class GenericWire:
    """Any JSON POST API: a request template and a response path from the config."""

    def __init__(self, config: EndpointConfig) -> None:
        if config.request_template is None or config.response_path is None:
            raise RemoteScoringError("generic endpoint needs request_template and response_path")
        self.model = config.model_id
        self.template = config.request_template
        self.item_template = config.item_template or {"prompt": "{{prompt}}", "response": "{{response}}"}
        self.path = JsonPath(config.response_path)
        # Render once on dummy data so a bad placeholder fails at construction, not mid-run.
        self.build_body(["p"], ["r"])

    def _item(self, prompt: str, response: str) -> Any:
        values = {"{{prompt}}": prompt, "{{response}}": response, "{{model}}": self.model}
        return _render(self.item_template, values, ITEM_PLACEHOLDERS)

    def row_payload(self, prompt: str, response: str) -> Any:
        return {"item": self._item(prompt, response), "template": self.template, "path": self.path.text}

    def build_body(self, prompts: Sequence[str], responses: Sequence[str]) -> Any:
        values = {
            "{{prompts}}": list(prompts),
            "{{responses}}": list(responses),
            "{{pairs}}": [[p, r] for p, r in zip(prompts, responses, strict=True)],
            "{{items}}": [self._item(p, r) for p, r in zip(prompts, responses, strict=True)],
            "{{model}}": self.model,
        }
        return _render(self.template, values, BATCH_PLACEHOLDERS)

    def extract(self, document: Any) -> list[Any]:
        try:
            selected = self.path.select(document)
        except RemoteScoringError as exc:
            raise RemoteResponseError(str(exc)) from None
        if not isinstance(selected, list):
            raise RemoteResponseError(
                f"response path {self.path.text!r} selected a {type(selected).__name__}, expected a list")
        return selected


def make_wire(config: EndpointConfig) -> WireFormat:
    """The wire format for ``config.kind``.

    Args:
        config: Endpoint configuration.

    Returns:
        An object with ``row_payload``, ``build_body`` and ``extract``.
    """
    kinds = {
        "tei": TeiWire,
        "vllm_score": VllmScoreWire,
        "vllm_pooling": VllmPoolingWire,
        "generic": GenericWire,
    }
    return kinds[config.kind](config)
