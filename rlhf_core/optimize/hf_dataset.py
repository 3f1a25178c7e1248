"""Write an export as a Hugging Face dataset folder, signed, all-or-nothing.

Layout (what ``datasets.load_dataset(folder)`` and the Hub read)::

    README.md                              card: YAML configs + dataset_info, then Markdown
    data/train-00000-of-00002.parquet      (or .jsonl for JSON Lines formats), one file per
    data/train-00001-of-00002.parquet      source shard (~1M pairs) that has rows of the split
    data/test-00000-of-00002.parquet       none when the test share is 0 or no prompt drew it
    manifest.json                          every other file's SHA-256 + provenance
    manifest.dsse.json                     DSSE envelope of manifest.json, operator key

The source comes as consecutive shards (about a million pairs each, whole Parquet row groups of
the lake), written in parallel threads: each shard streams batch by batch, every batch split by
prompt (:func:`rlhf_core.optimize.export_split.in_test_split`), converted to the format and
appended to the shard's file of its split, and a prefetch thread reads, splits and converts the
next batches while the current ones are encoded. Concatenating a split's files in name order
gives its rows in the run's order, and the files depend only on the data, the seed and the
lake's row groups (not on the number of threads), so an export is byte-for-byte reproducible.
Only formats that merge rows across pairs (``kto``) take a single shard and hold a split in
memory.

The folder is built under a hidden temporary name beside its destination, fsynced, then renamed
into place, so a crash leaves no partial folder. A previous export at the destination is
replaced (moved aside to a hidden ``.trash-`` name first, then deleted); any other existing path
is refused.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from rlhf_core.errors import DataError
from rlhf_core.optimize.export_card import SplitFiles, render_dataset_card
from rlhf_core.optimize.export_lengths import PairLengthBias, pair_length_bias
from rlhf_core.optimize.export_manifest import (
    ENVELOPE,
    file_sha256,
    manifest_bytes,
    write_signed_manifest,
)
from rlhf_core.optimize.export_provenance import Provenance, footer_metadata, schema_metadata
from rlhf_core.optimize.export_sinks import EXPORT_POOL, open_sink, prefetch
from rlhf_core.optimize.export_split import in_test_split
from rlhf_core.optimize.formats import ExportFormat
from rlhf_core.optimize.pair_rows import paired_rows
from rlhf_core.security.operator_key import OperatorKey

__all__ = ["FolderExport", "LengthTally", "write_dataset_folder"]

README = "README.md"


@dataclass(frozen=True)
class FolderExport:
    """What :func:`write_dataset_folder` wrote.

    Attributes:
        path: The folder.
        splits: The splits written (train first).
        manifest_sha256: SHA-256 of ``manifest.json`` (what the audit log records).
        key_id: The operator key that signed it.
        lengths: Length figures of the exported pairs.
    """

    path: str
    splits: tuple[SplitFiles, ...]
    manifest_sha256: str
    key_id: str
    lengths: PairLengthBias


class LengthTally:
    """Collects chosen / rejected lengths (characters) batch by batch for :func:`pair_length_bias`."""

    def __init__(self) -> None:
        self._chosen: list[np.ndarray] = []
        self._rejected: list[np.ndarray] = []

    @staticmethod
    def measure(pairs: pa.Table) -> tuple[np.ndarray, np.ndarray]:
        """Lengths of the chosen and rejected responses of ``pairs``, in code points (rows
        exported as pairs only: not the ``unpaired`` KTO rows of tied responses)."""
        if "kind" in pairs.column_names:
            keep = paired_rows(pairs["kind"])
            pairs = pairs if pc.all(keep).as_py() is not False else pairs.filter(keep)
        return tuple(pc.utf8_length(pairs[c], memory_pool=EXPORT_POOL).to_numpy().astype(np.int64)  # type: ignore[return-value]
                     for c in ("chosen", "rejected"))

    def add(self, chosen: np.ndarray, rejected: np.ndarray) -> None:
        """Record one batch's lengths (from :meth:`measure`)."""
        self._chosen.append(chosen)
        self._rejected.append(rejected)

    def result(self) -> PairLengthBias:
        """The figures over every pair added."""
        def joined(parts: list[np.ndarray]) -> np.ndarray:
            return np.concatenate(parts) if parts else np.zeros(0, np.int64)

        return pair_length_bias(joined(self._chosen), joined(self._rejected))

    @classmethod
    def merged(cls, tallies: Sequence[LengthTally]) -> LengthTally:
        """One tally holding ``tallies``' lengths, in order."""
        merged = cls()
        for tally in tallies:
            merged._chosen += tally._chosen
            merged._rejected += tally._rejected
        return merged


def _check_destination(out: Path) -> None:
    if out.is_file() or (out.exists() and not out.is_dir()):
        raise DataError(f"{out}: exists and is not a folder; a dataset export writes a folder "
                        "(give --out a .jsonl or .parquet path for a single file)")
    if out.is_dir() and any(out.iterdir()) and not (out / ENVELOPE).is_file():
        raise DataError(f"{out}: exists and is not an earlier export (no {ENVELOPE}); choose a new "
                        "path or empty it")


def _fsync(path: Path, directory: bool = False) -> None:
    fd = os.open(path, os.O_RDONLY | (os.O_DIRECTORY if directory else 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _publish(tmp: Path, out: Path) -> None:
    """Rename the finished ``tmp`` folder onto ``out`` (replacing an earlier export)."""
    for path in sorted(tmp.rglob("*"), reverse=True):
        _fsync(path, directory=path.is_dir())
    _fsync(tmp, directory=True)
    old = None
    if out.exists():
        old = out.with_name(f".trash-{uuid.uuid4().hex}-{out.name}")
        out.rename(old)
    tmp.rename(out)
    _fsync(out.parent, directory=True)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


@dataclass
class _Shard:
    """What one source shard wrote: its temp data files by split, rows, Arrow bytes, SHA-256, lengths."""

    files: dict[str, Path]
    rows: dict[str, int]
    nbytes: dict[str, int]
    sha256: dict[str, str]
    lengths: LengthTally


def _prepared(batches: Iterable[pa.Table], fmt: ExportFormat, names: list[str], seed: int,
              test_share: float) -> Iterator[tuple[tuple[np.ndarray, np.ndarray], dict[str, pa.Table]]]:
    """Per batch: its lengths and its rows by split, converted unless the format is whole-split."""
    for batch in batches:
        if len(names) == 1:
            parts = {names[0]: batch}
        else:
            test = in_test_split(batch["prompt_id"], seed, test_share)
            # take() of the row indices copies less than filter() of the mask for string columns
            parts = {"train": pc.take(batch, pc.indices_nonzero(pc.invert(test)), memory_pool=EXPORT_POOL),
                     "test": pc.take(batch, pc.indices_nonzero(test), memory_pool=EXPORT_POOL)}
        yield LengthTally.measure(batch), {
            name: part if fmt.whole_split else fmt.convert(part) for name, part in parts.items() if part.num_rows}


def _write_shard(tmp: Path, index: int, source: Callable[[], Iterable[pa.Table]], fmt: ExportFormat,
                 names: list[str], seed: int, test_share: float, prov: Provenance) -> _Shard:
    """Read one source shard, split and convert it, and write its file of each split."""
    files = {name: tmp / "data" / f".{name}-{index:05d}.{fmt.folder_file}" for name in names}
    sinks = {name: open_sink(str(files[name]), fmt.folder_file, fmt.schema.with_metadata(
        {**schema_metadata(prov, fmt.name), "rlhf_wizard.split": name})) for name in names}
    tally = LengthTally()
    held: dict[str, list[pa.Table]] = {name: [] for name in names}
    for lengths, parts in prefetch(_prepared(source(), fmt, names, seed, test_share)):
        tally.add(*lengths)
        for name, part in parts.items():
            if fmt.whole_split:
                held[name].append(part)
            else:
                sinks[name].write(part)
    for name, parts_held in held.items():
        if parts_held:
            sinks[name].write(fmt.convert(pa.concat_tables(parts_held)))
    split_rule = {"seed": seed, "test_share": test_share}
    for name, sink in sinks.items():
        sink.close(footer_metadata(prov, fmt.name, {"split": name, "split_rule": split_rule}))
    # Hashed here, while other shards still write, rather than in one pass at the end.
    digests = {name: file_sha256(path) for name, path in files.items() if sinks[name].rows or name == "train"}
    return _Shard(files, {n: s.rows for n, s in sinks.items()}, {n: s.nbytes for n, s in sinks.items()},
                  digests, tally)


def _name_files(tmp: Path, shards: list[_Shard], names: list[str], kind: str,
                digests: dict[str, str]) -> list[SplitFiles]:
    """Rename each split's non-empty shard files ``data/<split>-<i>-of-<n>.<kind>``, in order;
    record their SHA-256 in ``digests`` by final name."""
    splits = []
    for name in names:
        kept = [s for s in shards if s.rows[name]] or ([shards[0]] if name == "train" else [])
        for s in shards:
            if not any(s is k for k in kept):
                s.files[name].unlink()
        finals = tuple(f"data/{name}-{i:05d}-of-{len(kept):05d}.{kind}" for i in range(len(kept)))
        for s, final in zip(kept, finals, strict=True):
            s.files[name].rename(tmp / final)
            digests[final] = s.sha256[name]
        if kept:
            splits.append(SplitFiles(name, sum(s.rows[name] for s in kept), sum(s.nbytes[name] for s in kept),
                                     sum((tmp / f).stat().st_size for f in finals), finals))
    return splits


def write_dataset_folder(out: str | os.PathLike[str], fmt: ExportFormat,
                         sources: Sequence[Callable[[], Iterable[pa.Table]]], prov: Provenance,
                         key: OperatorKey, *, test_share: float = 0.1, seed: int = 0) -> FolderExport:
    """Write the pairs produced by ``sources`` as a signed dataset folder at ``out``.

    Args:
        out: Destination folder (created; an earlier export there is replaced).
        fmt: The trainer format of the rows.
        sources: The run's pairs in order as consecutive shards: each callable yields one
            shard's batches (:data:`rlhf_core.optimize.formats.SOURCE_SCHEMA`). Shards are written
            in parallel threads, each to its own file per split; a whole-split format takes one.
        prov: Provenance for the card, the manifest and the Parquet metadata.
        key: The operator key signing the manifest.
        test_share: Share of prompts in the test split, in ``[0, 1)``; 0: train only.
        seed: Split seed.

    Returns:
        What was written.

    Raises:
        DataError: ``out`` exists and is neither a folder of an earlier export nor empty, or
            the test share is out of range.
        ValueError: Several shards for a whole-split format.
    """
    if not 0.0 <= test_share < 1.0:
        raise DataError(f"--test-share must be in [0, 1), got {test_share}")
    if fmt.whole_split and len(sources) > 1:
        raise ValueError(f"format {fmt.name} merges rows across pairs: pass its source as one shard")
    out = Path(out).resolve()
    _check_destination(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".tmp-{uuid.uuid4().hex}-{out.name}")
    (tmp / "data").mkdir(parents=True)
    try:
        names = ["train", "test"] if test_share > 0 else ["train"]
        workers = max(1, min(len(sources), os.cpu_count() or 1))
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="export-shard") as pool:
            futures = [pool.submit(_write_shard, tmp, i, source, fmt, names, seed, test_share, prov)
                       for i, source in enumerate(sources)]
            try:
                shards = [f.result() for f in futures]
            except BaseException:
                pool.shutdown(wait=True, cancel_futures=True)
                raise
        digests: dict[str, str] = {}
        splits = _name_files(tmp, shards, names, fmt.folder_file, digests)
        lengths = LengthTally.merged([s.lengths for s in shards]).result()
        card = render_dataset_card(fmt, prov, splits, lengths, seed=seed, test_share=test_share)
        (tmp / README).write_text(card, encoding="utf-8")
        digests[README] = file_sha256(tmp / README)
        files = {n: (sha, (tmp / n).stat().st_size) for n, sha in digests.items()}
        export_info: dict[str, Any] = {
            "format": fmt.name, "split_rule": {"seed": seed, "test_share": test_share},
            "lengths": lengths.as_dict(), "splits": {s.name: s.rows for s in splits},
        }
        manifest_sha = write_signed_manifest(tmp, manifest_bytes(files, prov.as_dict(export_info)), key)
        _publish(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return FolderExport(str(out), tuple(splits), manifest_sha, key.key_id, lengths)
