"""Publish or remove a whole partition so readers never see a mix of versions.

Two protocols, chosen by the filesystem:

* **Directory rename** (the local filesystem): a staged directory is swapped in with two
  renames; readers see the old partition, then briefly none, then the new one.
* **Commit marker** (object stores such as S3, which cannot rename a directory): a partition is
  visible only while its marker object ``_committed.json`` exists. A commit deletes the marker
  (the old version disappears at once), removes the parts the new version lacks, copies the staged
  parts in (server-side copies, each object whole), writes the marker with one PUT (atomic) and
  only then deletes the staging directory. A writer killed at any step leaves either the old
  version, or an unmarked (invisible) partition beside a complete staging directory, which the
  next commit of the same run id repairs. Readers list the partition and trust the marker.
"""

from __future__ import annotations

import json
import posixpath
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

import pyarrow.fs as pafs

from rlhf_core.lake.encryption import key_material_path, part_of_key_material
from rlhf_core.lake.fs import TEMP_PREFIX, is_local, write_bytes_atomic
from rlhf_core.lake.names import PART_RE

COMMIT_MARKER = "_committed.json"
MARKER_FORMAT = "rlhf-wizard/partition-commit/v1"
_COPY_THREADS = 16

__all__ = [
    "COMMIT_MARKER", "has_marker", "mark_committed", "publish_with_marker", "remove_directory",
    "swap_in_directory", "unpublish", "uses_commit_markers",
]


def uses_commit_markers(filesystem: pafs.FileSystem) -> bool:
    """Whether partitions on ``filesystem`` are published with a commit marker (not local disks)."""
    return not is_local(filesystem)


def has_marker(entries: list[pafs.FileInfo]) -> bool:
    """Whether a partition's directory listing holds its commit marker."""
    return any(i.base_name == COMMIT_MARKER and i.type == pafs.FileType.File for i in entries)


def _exists(filesystem: pafs.FileSystem, path: str) -> bool:
    return filesystem.get_file_info(path).type == pafs.FileType.Directory


def swap_in_directory(filesystem: pafs.FileSystem, staging: str, final: str, trash: str) -> None:
    """Replace directory ``final`` by ``staging`` (filesystems that rename directories).

    Args:
        filesystem: The pyarrow filesystem.
        staging: Complete directory to publish (removed afterwards).
        final: Visible directory to replace (created if absent).
        trash: Unused hidden path to park the old ``final`` in before deleting it.
    """
    try:
        if _exists(filesystem, final):
            filesystem.move(final, trash)
        filesystem.move(staging, final)
    except NotImplementedError:
        _swap_file_by_file(filesystem, staging, final)
    if _exists(filesystem, trash):
        filesystem.delete_dir(trash)


def _swap_file_by_file(filesystem: pafs.FileSystem, staging: str, final: str) -> None:
    selector = pafs.FileSelector(staging, allow_not_found=True)
    staged = {i.base_name: i.path for i in filesystem.get_file_info(selector)
              if PART_RE.match(i.base_name) or part_of_key_material(i.base_name)}
    filesystem.create_dir(final, recursive=True)
    for info in filesystem.get_file_info(pafs.FileSelector(final, allow_not_found=True)):
        if PART_RE.match(info.base_name) and info.base_name not in staged:
            filesystem.delete_file(info.path)
    for name, path in sorted(staged.items()):
        filesystem.move(path, posixpath.join(final, name))
    filesystem.delete_dir(staging)


def remove_directory(filesystem: pafs.FileSystem, path: str, trash: str) -> None:
    """Remove ``path`` so it disappears at once for readers (rename to ``trash``, then delete)."""
    try:
        filesystem.move(path, trash)
    except NotImplementedError:  # a filesystem that cannot rename directories
        trash = path
    filesystem.delete_dir(trash)


def _delete_if_present(filesystem: pafs.FileSystem, path: str) -> None:
    if filesystem.get_file_info(path).type == pafs.FileType.File:
        filesystem.delete_file(path)


def mark_committed(filesystem: pafs.FileSystem, final: str) -> None:
    """Write the commit marker of partition directory ``final`` (one atomic object)."""
    body = {"format": MARKER_FORMAT, "committed_at": datetime.now(UTC).isoformat()}
    write_bytes_atomic(filesystem, posixpath.join(final, COMMIT_MARKER),
                       json.dumps(body, sort_keys=True).encode("utf-8") + b"\n")


def publish_with_marker(filesystem: pafs.FileSystem, staging: str, final: str,
                        names: list[str]) -> None:
    """Publish the staged parts ``names`` as partition ``final`` (commit-marker protocol).

    Args:
        filesystem: The pyarrow filesystem (an object store).
        staging: Directory holding every part in ``names`` (deleted once the marker is written).
        final: The partition directory readers see.
        names: Part file names to publish (with the key material of encrypted ones); any other
            part in ``final`` is removed.
    """
    marker = posixpath.join(final, COMMIT_MARKER)
    _delete_if_present(filesystem, marker)
    wanted = set(names)
    for info in filesystem.get_file_info(pafs.FileSelector(final, allow_not_found=True)):
        part = PART_RE.match(info.base_name) and info.base_name or part_of_key_material(info.base_name)
        stale_part = part and part not in wanted
        if info.type == pafs.FileType.File and (stale_part or info.base_name.startswith(TEMP_PREFIX)):
            filesystem.delete_file(info.path)
    staged = {i.base_name for i in filesystem.get_file_info(pafs.FileSelector(staging, allow_not_found=True))}
    names = [*names, *(m for m in (posixpath.basename(key_material_path(n)) for n in names) if m in staged)]
    filesystem.create_dir(final, recursive=True)
    # Server-side copies, not moves: until the marker exists the staging directory stays whole,
    # so a commit killed here is simply redone by the next one.
    with ThreadPoolExecutor(max_workers=min(_COPY_THREADS, max(1, len(names)))) as pool:
        list(pool.map(lambda name: filesystem.copy_file(posixpath.join(staging, name),
                                                        posixpath.join(final, name)), names))
    mark_committed(filesystem, final)
    filesystem.delete_dir(staging)


def unpublish(filesystem: pafs.FileSystem, final: str) -> None:
    """Remove partition ``final`` (commit-marker protocol): the marker first, so it vanishes at once."""
    _delete_if_present(filesystem, posixpath.join(final, COMMIT_MARKER))
    filesystem.delete_dir(final)
