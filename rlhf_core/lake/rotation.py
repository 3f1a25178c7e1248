"""Create, inspect and rotate the lake's master key (``rlhf-wizard keys init|status|rotate``).

Rotation re-wraps keys, never data. Every encrypted part keeps its data keys in external key
material beside it (:mod:`rlhf_core.lake.encryption`); rotating:

1. seals a new master key version into the key file, beside the old one (a crash from here on
   leaves a key file holding both, and ``keys rotate`` resumes instead of starting over);
2. has pyarrow re-wrap every part's key-encryption keys with the new version
   (``CryptoFactory.rotate_master_keys``: each material file is rewritten through a temporary
   ``_TMP_KEY_MATERIAL_FOR_…`` file, which a resumed rotation puts back if a crash left it alone);
3. checks that no material still names an old version (a part written while step 2 ran), and
   re-wraps those too;
4. rewrites the key file with the new version only: the old master key is gone, and with it the
   only way to unwrap what it wrapped.

The Parquet bytes are not touched, so a part's data keys do not change: rotation protects against
a leaked master key or passphrase, not against a leaked data key (rewrite the data for that).
Run it while no flow writes to the lake, as for ``remove_stale_temps``.
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass

import pyarrow.fs as pafs

from rlhf_core.errors import LakeKeyError
from rlhf_core.lake.encryption import (
    KEY_FILE_PARTS,
    KEY_MATERIAL_PREFIX,
    forget_keys,
    lake_crypto,
    part_of_key_material,
)
from rlhf_core.lake.keyfile import (
    KeyFileHeader,
    KeyRing,
    load_key_ring,
    read_header,
    write_key_ring,
)
from rlhf_core.lake.store import Lake
from rlhf_core.lake.text_columns import TEXT_COLUMNS

_TEMP_MATERIAL_PREFIX = "_TMP" + KEY_MATERIAL_PREFIX  # pyarrow's name for material being rotated

__all__ = ["EncryptionStatus", "RotationReport", "encryption_status", "init_master_key",
           "rotate_master_key"]


@dataclass(frozen=True)
class RotationReport:
    """What a rotation did: the versions before and after and the parts re-wrapped."""

    from_version: int
    to_version: int
    parts: int
    restored: int


@dataclass(frozen=True)
class EncryptionStatus:
    """The encryption state of a lake, readable without the passphrase.

    Attributes:
        enabled: Whether ``<root>/keys/master.key`` exists.
        key_path: The key file's path.
        header: Its current version and the versions it holds (None when off).
        encrypted_parts: Part files with key material.
        plain_text_parts: Parts of text tables without it (written before ``keys init``).
        unlocks: Whether the passphrase in the environment opens the key file (None: not set
            or not asked).
        problem: Why it does not (one line), else None.
    """

    enabled: bool
    key_path: str
    header: KeyFileHeader | None
    encrypted_parts: int
    plain_text_parts: int
    unlocks: bool | None
    problem: str | None


def _key_path(lake: Lake) -> str:
    return lake.path(*KEY_FILE_PARTS)


def init_master_key(lake: Lake, passphrase: bytes) -> KeyFileHeader:
    """Create the lake's master key file, turning encryption on for every later write.

    Raises:
        LakeKeyError: The lake already has a key file (rotate it instead).
    """
    path = _key_path(lake)
    if lake.fs.get_file_info(path).type != pafs.FileType.NotFound:
        raise LakeKeyError(f"the lake already has a master key at {path}; use `rlhf-wizard keys "
                           "rotate` to replace it")
    write_key_ring(lake.fs, path, KeyRing.fresh(), passphrase)
    return read_header(lake.fs, path)


def _materials(lake: Lake) -> tuple[dict[str, str], dict[str, str]]:
    """Key material files under ``<root>/lake`` by part path: ``(current, left by a rotation)``."""
    selector = pafs.FileSelector(lake.path("lake"), recursive=True, allow_not_found=True)
    current, temporary = {}, {}
    for info in lake.fs.get_file_info(selector):
        if info.type != pafs.FileType.File:
            continue
        name, directory = info.base_name, posixpath.dirname(info.path)
        if part := part_of_key_material(name):
            current[posixpath.join(directory, part)] = info.path
        elif name.startswith(_TEMP_MATERIAL_PREFIX) and (part := part_of_key_material(name[4:])):
            temporary[posixpath.join(directory, part)] = info.path
    return current, temporary


def _wrapped_by_old(lake: Lake, material: str, current: int) -> bool:
    with lake.fs.open_input_stream(material) as stream:
        text = stream.read().decode("utf-8", "replace")
    # Wrapped keys are ``mk<version>:…`` (escaped inside the material's nested JSON strings).
    return any(f"mk{v}:" in text for v in range(1, current))


def rotate_master_key(lake: Lake, passphrase: bytes) -> RotationReport:
    """Replace the master key by a new version and re-wrap every part's keys with it.

    Raises:
        LakeKeyError: No key file, a wrong passphrase, or a part whose keys cannot be unwrapped.
    """
    path = _key_path(lake)
    ring = load_key_ring(lake.fs, path, passphrase)
    before = min(ring.keys)
    if len(ring.keys) == 1:
        ring = ring.rotated()
        write_key_ring(lake.fs, path, ring, passphrase)
    crypto = lake_crypto(ring)
    current, temporary = _materials(lake)
    restored = 0
    for part, temp in temporary.items():  # a rotation killed between pyarrow's delete and move
        if part in current:
            lake.fs.delete_file(temp)
        else:
            lake.fs.move(temp, posixpath.join(posixpath.dirname(temp), posixpath.basename(temp)[4:]))
            restored += 1
    current, _ = _materials(lake)
    rotated = 0
    for part in sorted(current):
        if lake.fs.get_file_info(part).type == pafs.FileType.File:
            crypto.rotate(part, lake.fs)
            rotated += 1
        else:  # material of a part that no longer exists (a writer killed before its rename)
            lake.fs.delete_file(current[part])
    late, _ = _materials(lake)
    for part in sorted(late):
        if _wrapped_by_old(lake, late[part], ring.current):
            crypto.rotate(part, lake.fs)
    write_key_ring(lake.fs, path, ring.current_only(), passphrase)
    forget_keys()
    return RotationReport(before, ring.current, rotated, restored)


def _plain_text_parts(lake: Lake, encrypted: set[str]) -> int:
    count = 0
    for table in set(TEXT_COLUMNS) & set(lake.list_tables()):
        for parts in lake.visible_parts(table).values():
            count += sum(1 for part in parts if part not in encrypted)
    return count


def encryption_status(lake: Lake, passphrase: bytes | None) -> EncryptionStatus:
    """The lake's encryption state; with ``passphrase``, also whether it opens the key file."""
    path = _key_path(lake)
    enabled = lake.fs.get_file_info(path).type == pafs.FileType.File
    materials, _ = _materials(lake)
    header, unlocks, problem = None, None, None
    if enabled:
        try:
            header = read_header(lake.fs, path)
            if passphrase is not None:
                load_key_ring(lake.fs, path, passphrase)
                unlocks = True
        except LakeKeyError as exc:
            unlocks, problem = (False if passphrase is not None else None), str(exc)
        if header and len(header.versions) > 1:
            problem = problem or (f"a rotation to version {header.current} is unfinished; run "
                                  "`rlhf-wizard keys rotate` again")
    return EncryptionStatus(enabled, path, header, len(materials),
                            _plain_text_parts(lake, set(materials)) if enabled else 0, unlocks, problem)
