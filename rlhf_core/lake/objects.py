"""Conditional single-object reads and writes on an S3 lake root (compare-and-swap), via boto3.

pyarrow's S3 filesystem cannot send conditional headers. S3 (since 2024), MinIO and moto honour
``If-None-Match: *`` (create only if absent) and ``If-Match: <etag>`` (replace only the version
that was read) on ``PutObject``: enough for several hosts to share one object, such as the audit
log, without a lock service. boto3 is imported only when a lake on S3 needs this.

The client is configured from the lake root URI as pyarrow reads it: ``endpoint_override``,
``scheme`` and ``region`` query parameters; credentials come from the environment
(``AWS_ACCESS_KEY_ID`` / ``AWS_SECRET_ACCESS_KEY`` / ``AWS_SESSION_TOKEN``, a profile, or an
instance role), never from the URI.

References:
    Amazon S3 conditional writes:
    https://docs.aws.amazon.com/AmazonS3/latest/userguide/conditional-writes.html
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

from rlhf_core.errors import LakeError

_CONFLICT_CODES = {"PreconditionFailed", "ConditionalRequestConflict", "412", "409"}
_MISSING_CODES = {"NoSuchKey", "404", "NotFound"}

__all__ = ["ObjectStore", "Version", "supports_conditional_writes"]


def supports_conditional_writes(root: str) -> bool:
    """Whether lake root ``root`` is on S3 (the object store this module speaks to)."""
    return urlsplit(root).scheme == "s3"


@dataclass(frozen=True)
class Version:
    """One object's content and the ETag that names this version of it."""

    data: bytes
    etag: str


class ObjectStore:
    """Compare-and-swap on single objects of the S3 bucket behind a lake root.

    Args:
        root: The lake root URI, e.g. ``s3://bucket/wizard?endpoint_override=host:9000&scheme=http``.

    Raises:
        LakeError: If the root is not an ``s3://`` URI or boto3 is not installed.
    """

    def __init__(self, root: str) -> None:
        parts = urlsplit(root)
        if parts.scheme != "s3":
            raise LakeError(f"conditional writes need a lake on S3 (s3://…), got {root!r}; use an "
                            "s3:// root or a local directory")
        try:
            import boto3
        except ImportError as exc:
            raise LakeError('a lake on S3 needs boto3 for its audit log: pip install '
                            '"rlhf-contract-wizard[s3]" (or boto3)') from exc
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        endpoint = query.get("endpoint_override")
        if endpoint and "://" not in endpoint:
            endpoint = f"{query.get('scheme', 'https')}://{endpoint}"
        self.root = root
        self._client: Any = boto3.client("s3", endpoint_url=endpoint or None,
                                         region_name=query.get("region") or None)

    @staticmethod
    def _split(path: str) -> tuple[str, str]:
        bucket, _, key = path.lstrip("/").partition("/")
        if not bucket or not key:
            raise LakeError(f"{path!r} is not an object path (bucket/key) under an S3 lake root")
        return bucket, key

    def _fail(self, action: str, path: str, exc: Exception) -> LakeError:
        return LakeError(f"{action} s3://{path} failed: {exc}; check the endpoint, the bucket and "
                         "the AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY of this host")

    def get(self, path: str) -> Version | None:
        """The current version of the object at ``path`` (``bucket/key``), or None if absent.

        Raises:
            LakeError: On any other error (endpoint unreachable, access denied).
        """
        from botocore.exceptions import BotoCoreError, ClientError

        bucket, key = self._split(path)
        try:
            response = self._client.get_object(Bucket=bucket, Key=key)
            return Version(response["Body"].read(), response["ETag"])
        except ClientError as exc:
            if _code(exc) in _MISSING_CODES:
                return None
            raise self._fail("reading", path, exc) from exc
        except BotoCoreError as exc:
            raise self._fail("reading", path, exc) from exc

    def put(self, path: str, data: bytes, *, replaces: Version | None) -> bool:
        """Write ``data`` at ``path`` only if the object is still ``replaces`` (or still absent).

        Args:
            path: ``bucket/key``.
            data: The complete new content (one PUT: readers see the old or the new object).
            replaces: The version this write replaces; None to create the object.

        Returns:
            True if written; False if another writer changed (or created) the object first.

        Raises:
            LakeError: On any other error.
        """
        from botocore.exceptions import BotoCoreError, ClientError

        bucket, key = self._split(path)
        condition = {"IfMatch": replaces.etag} if replaces is not None else {"IfNoneMatch": "*"}
        try:
            self._client.put_object(Bucket=bucket, Key=key, Body=data, **condition)
        except ClientError as exc:
            if _code(exc) in _CONFLICT_CODES or (replaces is not None and _code(exc) in _MISSING_CODES):
                return False
            raise self._fail("writing", path, exc) from exc
        except BotoCoreError as exc:
            raise self._fail("writing", path, exc) from exc
        return True


def _code(exc: Any) -> str:
    error = exc.response.get("Error", {})
    return str(error.get("Code") or exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode"))
