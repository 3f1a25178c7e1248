"""Text features the project computes itself: signed hashed n-grams and length features.

No model downloads: each response becomes a fixed-width float32 vector made of

* hashed word unigrams + bigrams of the response (signed hashing, sublinear tf, L2-normalised),
* hashed character n-grams of the response (bytes of the lower-cased UTF-8 text),
* hashed word unigrams of the prompt (these cancel in a linear Bradley–Terry head on pairs that
  share a prompt, but an MLP head can use them as context),
* length and overlap features: log1p of characters / words / lines of the response, the
  response/prompt length ratio, and the Jaccard overlap of prompt and response word sets.

Hashes are CRC32 based (stable across processes and machines, unlike Python's ``hash``) and mixed
with a 32-bit finaliser, so the same text always gives the same vector.

References:
    Weinberger et al., "Feature Hashing for Large Scale Multitask Learning", ICML 2009.
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

_WORD = re.compile(r"\w+", re.UNICODE)
_MASK32 = np.uint64(0xFFFFFFFF)
N_LENGTH_FEATURES = 6


@dataclass(frozen=True)
class FeaturizerConfig:
    """Widths and n-gram ranges of the hashed text features.

    Args:
        word_dim: Buckets for response word uni/bigrams.
        char_dim: Buckets for response character n-grams.
        prompt_dim: Buckets for prompt word unigrams (0 disables the block).
        char_ngrams: Character n-gram lengths.
        word_bigrams: Whether to add word bigrams to the word block.
    """

    word_dim: int = 2048
    char_dim: int = 2048
    prompt_dim: int = 512
    char_ngrams: tuple[int, ...] = (3, 4)
    word_bigrams: bool = True

    @property
    def dim(self) -> int:
        """Total feature width."""
        return self.word_dim + self.char_dim + self.prompt_dim + N_LENGTH_FEATURES

    def to_dict(self) -> dict[str, object]:
        """JSON-friendly form (stored next to fitted parameters)."""
        return {
            "word_dim": self.word_dim,
            "char_dim": self.char_dim,
            "prompt_dim": self.prompt_dim,
            "char_ngrams": list(self.char_ngrams),
            "word_bigrams": self.word_bigrams,
        }

    @classmethod
    def from_dict(cls, data: dict[str, object]) -> FeaturizerConfig:
        """Inverse of :meth:`to_dict`."""
        return cls(
            word_dim=int(data["word_dim"]),  # type: ignore[arg-type]
            char_dim=int(data["char_dim"]),  # type: ignore[arg-type]
            prompt_dim=int(data["prompt_dim"]),  # type: ignore[arg-type]
            char_ngrams=tuple(int(n) for n in data["char_ngrams"]),  # type: ignore[union-attr]
            word_bigrams=bool(data["word_bigrams"]),
        )


def _mix(h: np.ndarray) -> np.ndarray:
    """MurmurHash3's 32-bit finaliser on uint64 arrays holding 32-bit values."""
    h = h & _MASK32
    h ^= h >> np.uint64(16)
    h = (h * np.uint64(0x85EBCA6B)) & _MASK32
    h ^= h >> np.uint64(13)
    h = (h * np.uint64(0xC2B2AE35)) & _MASK32
    h ^= h >> np.uint64(16)
    return h


def _word_hashes(words: list[str], bigrams: bool) -> np.ndarray:
    base = np.fromiter((zlib.crc32(w.encode("utf-8")) for w in words), np.uint64, len(words))
    if not bigrams or len(words) < 2:
        return _mix(base)
    pairs = _mix(base[:-1] * np.uint64(0x9E3779B1) + base[1:] + np.uint64(1))
    return np.concatenate([_mix(base), pairs])


def _char_hashes(text: str, ngrams: tuple[int, ...]) -> np.ndarray:
    data = np.frombuffer(text.encode("utf-8"), dtype=np.uint8).astype(np.uint64)
    out = []
    for n in ngrams:
        if data.size < n:
            continue
        h = np.full(data.size - n + 1, np.uint64(n), dtype=np.uint64)
        for k in range(n):
            h = ((h * np.uint64(16777619)) ^ data[k : data.size - n + 1 + k]) & _MASK32
        out.append(_mix(h))
    return np.concatenate(out) if out else np.zeros(0, np.uint64)


def _bucketise(hashes: np.ndarray, dim: int) -> np.ndarray:
    """Signed hashing: bucket from the low bits, sign from bit 31; sublinear tf; unit L2 norm."""
    vec = np.zeros(dim, np.float64)
    if hashes.size and dim:
        sign = np.where((hashes >> np.uint64(31)) & np.uint64(1), -1.0, 1.0)
        np.add.at(vec, (hashes % np.uint64(dim)).astype(np.int64), sign)
        vec = np.sign(vec) * np.log1p(np.abs(vec))
        norm = np.linalg.norm(vec)
        if norm > 0:
            vec /= norm
    return vec


def featurize(
    prompts: Sequence[str], responses: Sequence[str], config: FeaturizerConfig
) -> np.ndarray:
    """Hashed text + length features for each (prompt, response).

    Args:
        prompts: Prompt text per row (``None`` treated as empty).
        responses: Response text per row.
        config: Feature widths.

    Returns:
        float32 array ``[n, config.dim]``.

    Raises:
        ValueError: If the two sequences differ in length.
    """
    if len(prompts) != len(responses):
        raise ValueError(
            f"featurize: {len(prompts)} prompts but {len(responses)} responses; pass one prompt per response"
        )
    out = np.zeros((len(responses), config.dim), np.float32)
    w0, c0, p0 = config.word_dim, config.word_dim + config.char_dim, config.dim - N_LENGTH_FEATURES
    prompt_cache: dict[str, tuple[np.ndarray, set[str], int]] = {}
    for i, (prompt, response) in enumerate(zip(prompts, responses, strict=True)):
        prompt, response = prompt or "", response or ""
        lowered = response.lower()
        words = _WORD.findall(lowered)
        out[i, :w0] = _bucketise(_word_hashes(words, config.word_bigrams), config.word_dim)
        out[i, w0:c0] = _bucketise(_char_hashes(lowered, config.char_ngrams), config.char_dim)
        if prompt not in prompt_cache:
            pwords = _WORD.findall(prompt.lower())
            pvec = _bucketise(_word_hashes(pwords, False), config.prompt_dim)
            prompt_cache[prompt] = (pvec, set(pwords), len(prompt))
        pvec, pset, plen = prompt_cache[prompt]
        out[i, c0:p0] = pvec
        rset = set(words)
        union = len(rset | pset)
        out[i, p0:] = (
            np.log1p(len(response)),
            np.log1p(len(words)),
            np.log1p(response.count("\n")),
            np.log1p(len(response)) - np.log1p(plen),
            len(rset & pset) / union if union else 0.0,
            np.log1p(len(rset)),
        )
    return out
