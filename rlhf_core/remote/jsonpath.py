"""A tiny JSON path: dotted keys with ``[index]`` and ``[*]`` steps (parsed, never evaluated).

Grammar: ``path := step ('.' step)*``, ``step := key? ('[' (int | '*') ']')*`` where ``key`` is
``[A-Za-z0-9_-]+``. ``result.outputs[*].reward`` selects the ``reward`` of every output; a path
with no ``[*]`` selects one value. An empty path selects the document itself.
"""

from __future__ import annotations

import re
from typing import Any

from rlhf_core.errors import RemoteScoringError

__all__ = ["JsonPath", "PathStep"]

_STEP = re.compile(r"^(?P<key>[A-Za-z0-9_\-]*)(?P<idx>(\[(-?\d+|\*)\])*)$")
_INDEX = re.compile(r"\[(-?\d+|\*)\]")

PathStep = str | int | None
"""A parsed step: a dict key (``str``), a list index (``int``) or ``None`` for ``[*]``."""


class JsonPath:
    """A parsed response path.

    Args:
        text: The path, e.g. ``data[*].score`` or ``[*][0].score``.

    Raises:
        RemoteScoringError: If the path does not match the grammar.
    """

    def __init__(self, text: str) -> None:
        self.text = text
        self.steps: tuple[PathStep, ...] = tuple(self._parse(text))

    @staticmethod
    def _parse(text: str) -> list[PathStep]:
        steps: list[PathStep] = []
        if text.strip() == "":
            return steps
        for part in text.split("."):
            match = _STEP.match(part)
            if match is None or (not match.group("key") and not match.group("idx")):
                raise RemoteScoringError(
                    f"response path {text!r}: bad step {part!r}; use keys, [n] and [*] "
                    "separated by dots, e.g. result.outputs[*].reward"
                )
            if match.group("key"):
                steps.append(match.group("key"))
            for index in _INDEX.findall(match.group("idx")):
                steps.append(None if index == "*" else int(index))
        return steps

    @property
    def is_multi(self) -> bool:
        """Whether the path contains a ``[*]`` step (and so selects a list of values)."""
        return any(step is None for step in self.steps)

    def select(self, document: Any) -> Any:
        """Apply the path to a decoded JSON document.

        Args:
            document: Decoded JSON (dicts, lists, scalars).

        Returns:
            The selected value; with ``[*]`` steps, a (possibly nested) list of values.

        Raises:
            RemoteScoringError: If a key is missing, an index is out of range or a step meets the
                wrong JSON type; the message names the step.
        """
        return self._walk(document, 0, "$")

    def _walk(self, node: Any, position: int, where: str) -> Any:
        if position == len(self.steps):
            return node
        step = self.steps[position]
        if step is None:
            if not isinstance(node, list):
                raise self._error(where, f"expected a list for [*], got {type(node).__name__}")
            return [self._walk(item, position + 1, f"{where}[{i}]") for i, item in enumerate(node)]
        if isinstance(step, int):
            if not isinstance(node, list):
                raise self._error(where, f"expected a list for [{step}], got {type(node).__name__}")
            if not -len(node) <= step < len(node):
                raise self._error(where, f"index {step} out of range (length {len(node)})")
            return self._walk(node[step], position + 1, f"{where}[{step}]")
        if not isinstance(node, dict):
            raise self._error(where, f"expected an object with key {step!r}, got {type(node).__name__}")
        if step not in node:
            raise self._error(where, f"missing key {step!r}")
        return self._walk(node[step], position + 1, f"{where}.{step}")

    def _error(self, where: str, what: str) -> RemoteScoringError:
        return RemoteScoringError(f"response path {self.text!r} at {where}: {what}")

    def __repr__(self) -> str:
        return f"JsonPath({self.text!r})"
