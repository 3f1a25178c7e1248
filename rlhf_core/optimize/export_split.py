"""Seeded train / test assignment of prompt groups, stable across machines and versions.

A prompt's pairs must all land in the same split (otherwise the test set leaks the training
prompts), and the assignment must be reproducible from the seed alone, whatever the batch size,
row order or library versions. So each prompt id is hashed by a fixed, documented function of
its UTF-8 bytes and the seed, and the prompt is a test prompt when the hash's top 53 bits, read
as a fraction of 2**53, fall below the test share.

The hash is vectorised with numpy over the Arrow buffers (no Python loop per row; a DuckDB or
MD5 call per prompt costs seconds per million prompts). Bytes are read in little-endian 64-bit
words, zero-padded at the end; the state starts from the seed and the byte length and absorbs
each word through the SplitMix64 finaliser, a bijection on 64-bit integers:

    h = mix(seed ^ ((length + 1) * 0x9E3779B97F4A7C15))
    h = mix(h ^ word_k ^ (k + 1) * 0xD6E8FEB86659FD93)   for each word k
    u = (h >> 11) / 2**53

References:
    Steele, Lea, Flood (2014). Fast splittable pseudorandom number generators (SplitMix64).
    https://doi.org/10.1145/2714064.2660195
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

__all__ = ["in_test_split", "prompt_hash"]

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)


def _mix(z: np.ndarray) -> np.ndarray:
    """SplitMix64's finaliser, in place on ``z`` (uint64)."""
    z ^= z >> np.uint64(30)
    z *= _M1
    z ^= z >> np.uint64(27)
    z *= _M2
    z ^= z >> np.uint64(31)
    return z


def _padded_words(ids: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """The ids' bytes as an ``(n, width)`` uint64 matrix (zero-padded) and their byte lengths."""
    ids = ids.cast(pa.large_binary()) if pa.types.is_large_string(ids.type) else ids.cast(pa.binary())
    n = len(ids)
    offset_type = np.int64 if pa.types.is_large_binary(ids.type) else np.int32
    offsets = np.frombuffer(ids.buffers()[1], dtype=offset_type, count=n + 1, offset=ids.offset
                            * np.dtype(offset_type).itemsize).astype(np.int64)
    data = np.frombuffer(ids.buffers()[2], dtype=np.uint8) if ids.buffers()[2] is not None \
        else np.zeros(0, np.uint8)
    lengths = np.diff(offsets)
    longest = int(lengths.max()) if n else 0
    width = max(8, -(-longest // 8) * 8)
    if n and int(lengths.min()) == longest:  # equal lengths (hex digests, padded ids): no scatter
        block = data[offsets[0]:offsets[-1]].reshape(n, longest)
        if longest == width:
            return block.view("<u8"), lengths.astype(np.uint64)
        matrix = np.zeros((n, width), np.uint8)
        matrix[:, :longest] = block
    else:
        matrix = np.zeros(n * width, np.uint8)
        starts = np.arange(n, dtype=np.int64) * width - offsets[:-1]
        matrix[np.repeat(starts, lengths) + np.arange(offsets[0], offsets[-1])] = \
            data[offsets[0]:offsets[-1]]
        matrix = matrix.reshape(n, width)
    return matrix.view("<u8"), lengths.astype(np.uint64)


def prompt_hash(prompt_ids: pa.Array | pa.ChunkedArray, seed: int) -> np.ndarray:
    """A seeded 64-bit hash of each id's UTF-8 bytes (the function in the module docstring).

    Args:
        prompt_ids: String ids, shape ``(n,)``; nulls are refused.
        seed: Any integer (reduced modulo 2**64).

    Returns:
        ``(n,)`` uint64 hashes, equal for equal ids and seeds.

    Raises:
        ValueError: If an id is null.
    """
    ids = prompt_ids.combine_chunks() if isinstance(prompt_ids, pa.ChunkedArray) else prompt_ids
    if ids.null_count:
        raise ValueError(f"{ids.null_count} null prompt id(s): every pair needs its prompt_id")
    words, lengths = _padded_words(ids)
    with np.errstate(over="ignore"):
        h = _mix(np.uint64(seed % 2**64) ^ ((lengths + np.uint64(1)) * _GOLDEN))
        n_words = (lengths + np.uint64(7)) // np.uint64(8)
        shortest = int(n_words.min()) if len(n_words) else 0
        for k in range(words.shape[1]):
            if k < shortest:  # every id has a k-th word
                h ^= words[:, k]
                h *= _M1
            else:  # only ids that long: a batch's longest id must not change the others' hash
                h = np.where(n_words > np.uint64(k), (h ^ words[:, k]) * _M1, h)
        return _mix(h)


def in_test_split(prompt_ids: pa.Array | pa.ChunkedArray, seed: int, test_share: float) -> pa.BooleanArray:
    """True for rows whose prompt falls in the test split.

    Args:
        prompt_ids: String ids, shape ``(n,)``.
        seed: Split seed.
        test_share: Expected fraction of prompts in the test split, in ``[0, 1)``.

    Returns:
        ``(n,)`` boolean array; every row of one prompt gets the same value.

    Raises:
        ValueError: A share outside ``[0, 1)`` or a null id.
    """
    if not 0.0 <= test_share < 1.0:
        raise ValueError(f"test share must be in [0, 1), got {test_share}")
    u = (prompt_hash(prompt_ids, seed) >> np.uint64(11)).astype(np.float64) * 2.0**-53
    return pc.less(pa.array(u), test_share)
