"""Publish or remove a whole partition directory so readers never see a mix of versions.

On filesystems that rename directories (local, HDFS, GCS through its connector) a staged
directory is swapped in with two renames: readers see the old partition, then briefly none, then
the new one. Object stores such as S3 cannot rename directories; there each part file still
appears whole, but readers may briefly see old and new parts side by side.
"""

from __future__ import annotations

import posixpath

import pyarrow.fs as pafs

from rlhf_core.lake.names import PART_RE

__all__ = ["remove_directory", "swap_in_directory"]


def _exists(filesystem: pafs.FileSystem, path: str) -> bool:
    return filesystem.get_file_info(path).type == pafs.FileType.Directory


def swap_in_directory(filesystem: pafs.FileSystem, staging: str, final: str, trash: str) -> None:
    """Replace directory ``final`` by ``staging``.

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
              if PART_RE.match(i.base_name)}
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
    except NotImplementedError:  # object stores cannot rename directories
        trash = path
    filesystem.delete_dir(trash)
