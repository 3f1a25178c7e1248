"""Filesystem resolution and atomic writes on any pyarrow filesystem.

Every file the project publishes is first written under a hidden temporary name in the same
directory (``.tmp-<uuid>-<name>``) and then renamed into place, so a reader never sees a partial
file and a writer killed mid-write leaves only a hidden temp file (which readers ignore and
:func:`remove_stale_temps` cleans up). On the local filesystem the data is fsynced before the
rename and the directory after it, so a published file survives a power loss.
"""

from __future__ import annotations

import os
import posixpath
import uuid
from collections.abc import Callable, Iterable, Sequence

import pyarrow.fs as pafs

from rlhf_core.errors import LakeError

TEMP_PREFIX = ".tmp-"

__all__ = [
    "TEMP_PREFIX",
    "atomic_write",
    "is_local",
    "remove_stale_temps",
    "resolve_paths",
    "resolve_root",
    "temp_path_for",
    "write_bytes_atomic",
]


def resolve_root(root: str | os.PathLike[str]) -> tuple[pafs.FileSystem, str]:
    """Turn a lake root (local path, ``file://``, ``s3://``, ...) into a filesystem and a base path.

    Args:
        root: A local path (relative paths are made absolute) or any URI that
            ``pyarrow.fs.FileSystem.from_uri`` understands.

    Returns:
        ``(filesystem, base_path)`` where ``base_path`` has no trailing slash.

    Raises:
        LakeError: If the URI scheme is unknown or the filesystem cannot be created.
    """
    text = os.fspath(root)
    if "://" not in text:
        return pafs.LocalFileSystem(), os.path.abspath(os.path.expanduser(text))
    try:
        filesystem, path = pafs.FileSystem.from_uri(text)
    except (ValueError, OSError) as exc:  # pyarrow.ArrowInvalid is a ValueError
        raise LakeError(f"cannot open lake root {text!r}: {exc}; use a local path or a "
                        "pyarrow filesystem URI such as file:///data/lake or s3://bucket/lake") from exc
    return filesystem, path.rstrip("/") or "/"


def resolve_paths(paths: Sequence[str]) -> tuple[pafs.FileSystem, list[str]]:
    """One filesystem and its paths for files named by local paths or URIs.

    Paths that cross a task boundary are local paths, or URIs for a lake on object storage (see
    :meth:`rlhf_core.lake.store.Lake.uri`), so a worker on any host can open them without the
    lake object.

    Args:
        paths: Local paths or URIs such as ``s3://bucket/lake/t/run_id=r/part-00000.parquet?region=…``.

    Returns:
        ``(filesystem, paths on it)``; the local filesystem for an empty list.

    Raises:
        LakeError: If the paths are on different filesystems, or a URI cannot be opened.
    """
    resolved = [resolve_root(path) for path in paths]
    if not resolved:
        return pafs.LocalFileSystem(), []
    filesystem = resolved[0][0]
    for (other, _), path in zip(resolved, paths, strict=True):
        if not other.equals(filesystem):
            raise LakeError(f"{path} is on another filesystem than {paths[0]}; pass files of one "
                            "lake (or one local directory) at a time")
    return filesystem, [path for _, path in resolved]


def is_local(filesystem: pafs.FileSystem) -> bool:
    """Whether ``filesystem`` is the local filesystem (so fsync, locks and O_APPEND are available)."""
    return isinstance(filesystem, pafs.LocalFileSystem)


def temp_path_for(path: str) -> str:
    """A hidden, unique temporary path in the same directory as ``path``."""
    directory, name = posixpath.split(path)
    return posixpath.join(directory, f"{TEMP_PREFIX}{uuid.uuid4().hex}-{name}")


def _fsync_path(path: str, directory: bool = False) -> None:
    flags = os.O_RDONLY | (os.O_DIRECTORY if directory else 0)
    fd = os.open(path, flags)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write(
    filesystem: pafs.FileSystem, path: str, write: Callable[[str], None]
) -> str:
    """Publish a file atomically: ``write(temp_path)`` then rename the temp file onto ``path``.

    Args:
        filesystem: The pyarrow filesystem holding ``path``.
        path: Final path of the file; its parent directory is created if missing.
        write: Callable that writes the complete file at the temp path it is given.

    Returns:
        ``path``.

    Raises:
        LakeError: If writing or renaming fails (the temp file is removed).
    """
    directory = posixpath.dirname(path)
    tmp = temp_path_for(path)
    try:
        if filesystem.type_name != "s3":  # S3 has no directories to create, only key prefixes
            filesystem.create_dir(directory, recursive=True)
        write(tmp)
        if is_local(filesystem):
            _fsync_path(tmp)
        filesystem.move(tmp, path)
        if is_local(filesystem):
            _fsync_path(directory, directory=True)
    except OSError as exc:
        _remove_quietly(filesystem, tmp)
        raise LakeError(f"atomic write of {path} failed: {exc}; check the path, free space and "
                        "permissions, then re-run (the previous version, if any, is intact)") from exc
    except BaseException:
        _remove_quietly(filesystem, tmp)
        raise
    return path


def write_bytes_atomic(
    filesystem: pafs.FileSystem, path: str, data: bytes | Iterable[bytes]
) -> str:
    """Write ``data`` (bytes or an iterable of byte chunks) to ``path`` atomically.

    Args:
        filesystem: The pyarrow filesystem holding ``path``.
        path: Final path of the file.
        data: The full content, or chunks streamed in order.

    Returns:
        ``path``.
    """
    chunks: Iterable[bytes] = (data,) if isinstance(data, bytes | bytearray | memoryview) else data

    def _write(tmp: str) -> None:
        with filesystem.open_output_stream(tmp) as out:
            for chunk in chunks:
                out.write(chunk)

    return atomic_write(filesystem, path, _write)


def _remove_quietly(filesystem: pafs.FileSystem, path: str) -> None:
    try:
        filesystem.delete_file(path)
    except (OSError, FileNotFoundError):
        # The temp file may never have been created; nothing visible depends on it.
        return


def remove_stale_temps(filesystem: pafs.FileSystem, base: str) -> list[str]:
    """Delete hidden temp files (``.tmp-*``) left under ``base`` by killed writers.

    Only call this when no writer is active on ``base`` (e.g. at the start of a run that owns it).

    Args:
        filesystem: The pyarrow filesystem.
        base: Directory to sweep recursively.

    Returns:
        The paths removed.
    """
    selector = pafs.FileSelector(base, recursive=True, allow_not_found=True)
    removed = []
    for info in filesystem.get_file_info(selector):
        if info.type == pafs.FileType.File and info.base_name.startswith(TEMP_PREFIX):
            filesystem.delete_file(info.path)
            removed.append(info.path)
    return removed
