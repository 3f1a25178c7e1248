"""Deterministic synthetic ``responses`` data: the demo's data and the benchmarks'.

Rows are prompts x candidates (``candidates`` responses per prompt, the last prompt may have
fewer) with correlated attributes drawn from a small latent model:

* per prompt: difficulty ``d ~ N(0, 1)`` and a topic; per response: quality ``z ~ N(0, 1)`` and
  edginess ``e ~ N(0, 1)`` (how far an answer goes to be direct);
* ``helpfulness`` = clip(2.2 + 0.9 z + 0.6 e - 0.3 d + noise, 0, 4); ``correctness``,
  ``coherence`` = clip(mean + loading * z (- 0.3 d) + noise, 0, 4) (positively correlated);
* ``verbosity`` in [0, 4] mostly noise, tied to z and e; ``length`` (tokens) log-normal,
  increasing with verbosity;
* ``is_safe`` ~ Bernoulli(1 - sigmoid(-2.8 - 0.6 z + 0.5 d + 1.5 e)) (about 12 % unsafe);
  ``severity`` = 0 when safe, else 1-3, higher for low quality (consistent with ``is_safe`` by
  construction). Mild harm (severity 1) comes mostly from edgy, *more* helpful answers, severe
  harm from poor ones, so helpfulness, safety and concision pull against each other: a real
  three-way trade-off for the demo's stakeholders;
* short template text for prompt and response, built column-wise with Arrow compute.

Determinism: randomness is drawn per block of :data:`BLOCK_PROMPTS` prompts from
``numpy.random.default_rng([seed, block])``, so the same seed gives byte-identical tables
whatever the chunk size, and any size (up to 1e8 rows) is produced chunk by chunk in bounded
memory. Rows are sorted by ``prompt_id`` (zero-padded, so string order = generation order).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from functools import cache
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from rlhf_core.contract.program import ContractProgram
from rlhf_core.lake.fs import atomic_write
from rlhf_core.lake.schemas import PROMPT_MESSAGES_FIELD, attribute_fields, responses_schema

GENERATED_ATTRIBUTES = (
    "helpfulness",
    "correctness",
    "coherence",
    "verbosity",
    "is_safe",
    "severity",
    "length",
)
SYNTHETIC_SCHEMA = pa.schema([
    f for f in responses_schema(attribute_fields(GENERATED_ATTRIBUTES))
    if f.name != PROMPT_MESSAGES_FIELD.name])
"""Schema of generated tables: the ``responses`` base columns plus the attributes above. Without
``prompt_messages``: every generated prompt is one user turn, which the native reader fills in
(writing it here would only add bytes to every generated file)."""

PREFERENCES_DIR = "preferences"
"""Sub-folder of a generated dataset holding its synthetic preference labels (when drawn)."""

BLOCK_PROMPTS = 16_384
"""Prompts per random block; chunks are whole blocks so output never depends on chunk size."""

MAX_ROWS = 100_000_000
MAX_CANDIDATES = 64

_VERBS = pa.array(
    ["Explain", "Summarise", "Compare", "Critique", "Outline", "Describe", "Plan", "Debug"]
)
_TOPICS = pa.array(
    [
        "photosynthesis",
        "tax law",
        "sorting algorithms",
        "the French revolution",
        "vaccines",
        "interest rates",
        "sourdough baking",
        "plate tectonics",
        "password hygiene",
        "jazz harmony",
        "climate models",
        "contract negotiation",
        "memory safety",
        "marathon training",
        "opera",
        "supply chains",
    ]
)
_AUDIENCES = pa.array(
    ["a child", "a student", "an expert", "a manager", "a beginner", "a journalist"]
)
_STYLES = pa.array(
    [
        "A concise answer",
        "A step-by-step answer",
        "A cautious answer",
        "A detailed answer",
        "A vague answer",
        "A confident answer",
        "An answer with examples",
        "A rambling answer",
    ]
)


_CANDIDATE_LABELS = pa.array([str(i) for i in range(MAX_CANDIDATES)])


@cache
def _response_vocabulary() -> pa.Array:
    """Every response text: style x topic x candidate label (one ``take`` per row)."""
    return pa.array(
        [
            f"{style} about {topic} (candidate {c})."
            for style in _STYLES.to_pylist()
            for topic in _TOPICS.to_pylist()
            for c in range(MAX_CANDIDATES)
        ]
    )


def _clip(values: np.ndarray) -> np.ndarray:
    return np.clip(values, 0.0, 4.0).astype(np.float32)


def _block(
    seed: int, block: int, first_prompt: int, n_prompts: int, candidates: int, run_id: str
) -> pa.Table:
    """All rows of ``n_prompts`` prompts starting at ``first_prompt`` (one random block)."""
    rng = np.random.default_rng([seed, block])
    difficulty = rng.standard_normal(n_prompts)
    topic = rng.integers(0, len(_TOPICS), n_prompts)
    verb = rng.integers(0, len(_VERBS), n_prompts)
    audience = rng.integers(0, len(_AUDIENCES), n_prompts)
    n = n_prompts * candidates
    prompt_of = np.repeat(np.arange(n_prompts), candidates)
    d = difficulty[prompt_of]
    z = rng.standard_normal(n)
    edge = rng.standard_normal(n)
    noise = rng.standard_normal((6, n))
    helpfulness = _clip(2.2 + 0.9 * z + 0.6 * edge - 0.3 * d + 0.45 * noise[0])
    correctness = _clip(2.3 + 0.8 * z - 0.3 * d + 0.55 * noise[1])
    coherence = _clip(2.8 + 0.5 * z + 0.45 * noise[2])
    verbosity = _clip(1.8 + 0.25 * z + 0.3 * edge + 0.8 * noise[3])
    length = np.maximum(1, np.rint(np.exp(3.6 + 0.4 * verbosity + 0.25 * noise[4]))).astype(
        np.int32
    )
    p_unsafe = 1.0 / (1.0 + np.exp(2.8 + 0.6 * z - 0.5 * d - 1.5 * edge))
    unsafe = rng.random(n) < p_unsafe
    harm = noise[5] - 0.6 * z
    severity = np.where(unsafe, 1 + (harm > 0.4) + (harm > 1.4), 0).astype(np.int8)
    take = pa.array(prompt_of)
    prompt_num = pc.cast(pa.array(first_prompt + np.arange(n_prompts)), pa.string())
    prompt_ids = pc.binary_join_element_wise("p", pc.utf8_lpad(prompt_num, 10, "0"), "")
    topics = _TOPICS.take(pa.array(topic))
    prompts = pc.binary_join_element_wise(
        _VERBS.take(pa.array(verb)),
        " ",
        topics,
        " for ",
        _AUDIENCES.take(pa.array(audience)),
        " (prompt ",
        prompt_num,
        ").",
        "",
    )
    prompt_id = prompt_ids.take(take)
    cand = np.tile(np.arange(candidates), n_prompts)
    style = rng.integers(0, len(_STYLES), n)
    vocabulary = _response_vocabulary()
    response = vocabulary.take(
        pa.array((style * len(_TOPICS) + topic[prompt_of]) * MAX_CANDIDATES + cand)
    )
    columns = {
        "prompt_id": prompt_id,
        "response_id": pc.binary_join_element_wise(
            prompt_id, "-c", _CANDIDATE_LABELS.take(pa.array(cand)), ""
        ),
        "prompt": prompts.take(take),
        "response": response,
        "source": pa.repeat(pa.scalar("synthetic"), n),
        "source_line": np.arange(first_prompt * candidates + 1, first_prompt * candidates + n + 1),
        "ingest_run": pa.repeat(pa.scalar(run_id), n),
        "helpfulness": helpfulness,
        "correctness": correctness,
        "coherence": coherence,
        "verbosity": verbosity,
        "is_safe": ~unsafe,
        "severity": severity,
        "length": length,
    }
    return pa.Table.from_pydict(columns, schema=SYNTHETIC_SCHEMA)


def iter_synthetic(
    rows: int,
    seed: int,
    *,
    candidates: int = 4,
    chunk_rows: int = 1_048_576,
    run_id: str | None = None,
) -> Iterator[pa.Table]:
    """Yield the synthetic table in chunks of about ``chunk_rows`` rows (whole blocks).

    Args:
        rows: Total responses, 1 .. 1e8.
        seed: Random seed; same seed and size -> identical rows.
        candidates: Responses per prompt (>= 1).
        chunk_rows: Target rows per yielded table (rounded to whole blocks).
        run_id: Value of ``ingest_run`` (default ``synthetic-seed<seed>``).

    Yields:
        Tables with :data:`SYNTHETIC_SCHEMA`, in ``prompt_id`` order.

    Raises:
        ValueError: For sizes or counts out of range.
    """
    if not 1 <= rows <= MAX_ROWS:
        raise ValueError(f"rows must be between 1 and {MAX_ROWS:,}, got {rows:,}")
    if not 1 <= candidates <= MAX_CANDIDATES or chunk_rows < 1:
        raise ValueError(f"candidates must be 1..{MAX_CANDIDATES} and chunk_rows at least 1")
    run_id = run_id or f"synthetic-seed{seed}"
    prompts = -(-rows // candidates)
    blocks_per_chunk = max(1, chunk_rows // (BLOCK_PROMPTS * candidates))
    pending: list[pa.Table] = []
    produced = 0
    for block, first in enumerate(range(0, prompts, BLOCK_PROMPTS)):
        n_prompts = min(BLOCK_PROMPTS, prompts - first)
        table = _block(seed, block, first, n_prompts, candidates, run_id)
        table = table.slice(0, min(table.num_rows, rows - produced))
        produced += table.num_rows
        pending.append(table)
        if len(pending) == blocks_per_chunk:
            yield pa.concat_tables(pending)
            pending = []
    if pending:
        yield pa.concat_tables(pending)


def generate_table(
    rows: int, seed: int, *, candidates: int = 4, run_id: str | None = None
) -> pa.Table:
    """The whole synthetic table in memory (for tests and small demos)."""
    return pa.concat_tables(iter_synthetic(rows, seed, candidates=candidates, run_id=run_id))


def write_synthetic(
    out_dir: str | os.PathLike[str],
    rows: int,
    seed: int,
    *,
    candidates: int = 4,
    chunk_rows: int = 1_048_576,
    run_id: str | None = None,
    on_chunk: Callable[[int], None] | None = None,
    annotators: ContractProgram | None = None,
) -> list[Path]:
    """Write the synthetic table as ``part-00000.parquet``, ... under ``out_dir``, atomically.

    Each chunk is one zstd Parquet file (one row group per random block, so row groups never
    split a prompt), published by temp file + rename; parts left from an earlier, larger run
    in the same directory are removed. Memory stays bounded by one chunk.

    With ``annotators`` (a contract), every chunk's candidates are also paired and labelled by
    :func:`rlhf_core.ingest.labels.annotator_preferences` (its hidden weights, seeded by
    ``seed``) into ``preferences/part-<n>.parquet``, which the native ingest reads as the
    run's preference labels.

    Returns:
        The written paths, in order.
    """
    out = Path(out_dir).resolve()
    filesystem = pafs.LocalFileSystem()
    paths: list[Path] = []
    label_paths: list[Path | None] = []
    for index, chunk in enumerate(
        iter_synthetic(rows, seed, candidates=candidates, chunk_rows=chunk_rows, run_id=run_id)
    ):
        target = out / f"part-{index:05d}.parquet"
        atomic_write(
            filesystem,
            target.as_posix(),
            lambda tmp, data=chunk: pq.write_table(
                data, tmp, compression="zstd", row_group_size=BLOCK_PROMPTS * candidates
            ),
        )
        paths.append(target)
        label_paths.append(_write_labels(filesystem, out, index, chunk, annotators, seed))
        if on_chunk is not None:
            on_chunk(chunk.num_rows)  # progress reporting (rows written so far += n)
    for stale in [*out.glob("part-*.parquet"), *(out / PREFERENCES_DIR).glob("part-*.parquet")]:
        if stale not in paths and stale not in label_paths:
            stale.unlink()  # parts of an earlier, larger run (or labels of an unlabelled one)
    return paths


def _write_labels(filesystem: pafs.FileSystem, out: Path, index: int, chunk: pa.Table,
                  annotators: ContractProgram | None, seed: int) -> Path | None:
    if annotators is None:
        return None
    from rlhf_core.ingest.labels import annotator_preferences

    labels = annotator_preferences(chunk, annotators, seed=seed + index)
    target = out / PREFERENCES_DIR / f"part-{index:05d}.parquet"
    (out / PREFERENCES_DIR).mkdir(parents=True, exist_ok=True)
    atomic_write(filesystem, target.as_posix(),
                 lambda tmp: pq.write_table(labels, tmp, compression="zstd"))
    return target
