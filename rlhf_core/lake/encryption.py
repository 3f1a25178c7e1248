"""Text at rest: Parquet modular encryption of the lake's free-text columns (envelope encryption).

A lake is encrypted when its master key file ``<root>/keys/master.key`` exists (written by
``rlhf-wizard keys init``; :mod:`rlhf_core.lake.keyfile`). Then every part file of a table with
free-text columns (:data:`rlhf_core.lake.text_columns.TEXT_COLUMNS`) is written with pyarrow's
Parquet modular encryption:

* each encrypted column gets its own random AES-256 data key (AES-GCM, ``AES_GCM_V1``);
* data keys are wrapped by key-encryption keys, which are wrapped by the lake's master key
  (double wrapping) through :class:`MasterKeyClient`, a ``KmsClient`` doing AES-GCM with the
  ``cryptography`` package;
* the wrapped keys live beside each part as external key material
  (``_KEY_MATERIAL_FOR_part-00000.parquet.json``), so rotating the master key re-wraps them
  without rewriting a byte of data (:mod:`rlhf_core.lake.rotation`);
* the footer stays plaintext (signed), so ids, ratings and scores read without any key, and
  DuckDB's own reader serves numeric queries.

Reading text needs ``RLHF_WIZARD_LAKE_PASSPHRASE``: the lake then decrypts through pyarrow
(dataset scans and single files); without it, a read that touches an encrypted column fails with
one :class:`~rlhf_core.errors.LakeKeyError` line.

References:
    Apache Parquet, "Parquet Modular Encryption" (parquet-format ``Encryption.md``).
"""

from __future__ import annotations

import base64
import binascii
import os
import posixpath
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field

import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.fs as pafs
import pyarrow.parquet as pq
import pyarrow.parquet.encryption as pe
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from rlhf_core.errors import LakeKeyError, first_line
from rlhf_core.lake.keyfile import LAKE_PASSPHRASE_ENV, KeyRing, lake_passphrase, load_key_ring
from rlhf_core.lake.names import PART_RE
from rlhf_core.lake.text_columns import text_columns

KEY_FILE_PARTS = ("keys", "master.key")
FOOTER_KEY_ID = "rlhf-wizard-lake-footer"
TEXT_KEY_ID = "rlhf-wizard-lake-text"
KEY_MATERIAL_PREFIX = "_KEY_MATERIAL_FOR_"
KEY_MATERIAL_SUFFIX = ".json"
_WRAP_PREFIX = "mk"

__all__ = [
    "FOOTER_KEY_ID", "KEY_FILE_PARTS", "KEY_MATERIAL_PREFIX", "LakeCrypto", "LakeEncryption",
    "MasterKeyClient", "TEXT_KEY_ID", "forget_keys", "key_material_path", "lake_crypto",
    "part_of_key_material",
]


def key_material_path(part_path: str) -> str:
    """Where pyarrow keeps the wrapped keys of ``part_path`` (same directory, hidden from scans)."""
    directory, name = posixpath.split(part_path)
    return posixpath.join(directory, f"{KEY_MATERIAL_PREFIX}{name}{KEY_MATERIAL_SUFFIX}")


def part_of_key_material(name: str) -> str | None:
    """The part file name a key material file name belongs to, or None for any other name."""
    if not (name.startswith(KEY_MATERIAL_PREFIX) and name.endswith(KEY_MATERIAL_SUFFIX)):
        return None
    part = name[len(KEY_MATERIAL_PREFIX):-len(KEY_MATERIAL_SUFFIX)]
    return part if PART_RE.match(part) else None


class MasterKeyClient(pe.KmsClient):
    """Wraps and unwraps pyarrow's key-encryption keys with the lake's master key (AES-256-GCM).

    A wrapped key is ``mk<version>:<base64(nonce || ciphertext || tag)>``; the master key
    identifier and the version are its associated data, so a key wrapped for the footer cannot
    be passed off as a column key. New wraps use the ring's current version; unwrapping uses the
    version the wrapped key names, so old files stay readable until a rotation re-wraps them.
    """

    def __init__(self, ring: KeyRing) -> None:
        super().__init__()
        self._ring = ring

    def wrap_key(self, key_bytes: bytes, master_key_identifier: str) -> str:
        version = self._ring.current
        nonce = os.urandom(12)
        sealed = AESGCM(self._ring.keys[version]).encrypt(
            nonce, key_bytes, f"{master_key_identifier}|{version}".encode())
        return f"{_WRAP_PREFIX}{version}:{base64.b64encode(nonce + sealed).decode('ascii')}"

    def unwrap_key(self, wrapped_key: str, master_key_identifier: str) -> bytes:
        try:
            tag, payload = wrapped_key.split(":", 1)
            version = int(tag.removeprefix(_WRAP_PREFIX))
            raw = base64.b64decode(payload, validate=True)
        except (ValueError, binascii.Error):
            raise LakeKeyError(f"key material names no master key version ({wrapped_key[:12]}...); "
                               "the file was not written by this lake") from None
        key = self._ring.keys.get(version)
        if key is None:
            raise LakeKeyError(
                f"data keys wrapped by master key version {version}, which the key file does not "
                f"hold (it holds {sorted(self._ring.keys)}); restore the key file that wrote them")
        try:
            return AESGCM(key).decrypt(raw[:12], raw[12:], f"{master_key_identifier}|{version}".encode())
        except InvalidTag:
            raise LakeKeyError(f"master key version {version} does not unwrap this data key: the "
                               "key file or the key material was replaced") from None


class LakeCrypto:
    """pyarrow encryption and decryption properties for one key ring.

    Args:
        ring: The unlocked master keys.
    """

    def __init__(self, ring: KeyRing) -> None:
        self.ring = ring
        self.factory = pe.CryptoFactory(lambda _config: MasterKeyClient(ring))
        self.connection = pe.KmsConnectionConfig()
        self._decryption = pe.DecryptionConfiguration()

    def encryption_properties(self, path: str, filesystem: pafs.FileSystem,
                              columns: Sequence[str]) -> pq.FileEncryptionProperties:
        """Properties writing ``columns`` encrypted, the footer plaintext, key material beside
        ``path`` (the file's final name: readers find the material by it)."""
        config = pe.EncryptionConfiguration(
            footer_key=FOOTER_KEY_ID, column_keys={TEXT_KEY_ID: list(columns)},
            encryption_algorithm="AES_GCM_V1", plaintext_footer=True, double_wrapping=True,
            internal_key_material=False, data_key_length_bits=256)
        if filesystem.type_name != "s3":  # the material is written now, before the part
            filesystem.create_dir(posixpath.dirname(path), recursive=True)
        return self.factory.file_encryption_properties(self.connection, config, path, filesystem)

    def decryption_properties(self, path: str, filesystem: pafs.FileSystem) -> pq.FileDecryptionProperties:
        """Properties reading the part file ``path`` (its external key material sits beside it)."""
        return self.factory.file_decryption_properties(self.connection, self._decryption, path, filesystem)

    def scan_format(self) -> ds.ParquetFileFormat:
        """A dataset format that decrypts every fragment (each finds its own key material)."""
        config = ds.ParquetDecryptionConfig(self.factory, self.connection, self._decryption)
        return ds.ParquetFileFormat(
            default_fragment_scan_options=ds.ParquetFragmentScanOptions(decryption_config=config))

    def rotate(self, path: str, filesystem: pafs.FileSystem) -> None:
        """Re-wrap the keys of part ``path`` with the ring's current master key (data untouched)."""
        self.factory.rotate_master_keys(self.connection, path, filesystem, double_wrapping=True)


_LOCK = threading.Lock()
_CRYPTO: dict[str, LakeCrypto] = {}
_CRYPTO_KEPT = 4


def lake_crypto(ring: KeyRing) -> LakeCrypto:
    """The process's :class:`LakeCrypto` for ``ring`` (one per ring, so pyarrow's key caches are
    shared by every lake object and a rotation's new ring starts with empty ones)."""
    with _LOCK:
        crypto = _CRYPTO.pop(ring.fingerprint, None) or LakeCrypto(ring)
        _CRYPTO[ring.fingerprint] = crypto  # most recently used last
        if len(_CRYPTO) > _CRYPTO_KEPT:  # one entry added at a time: one over at most
            del _CRYPTO[next(iter(_CRYPTO))]
        return crypto


def forget_keys() -> None:
    """Drop every unlocked ring and pyarrow key cache of this process (after a rotation, so the
    old master key does not linger in memory)."""
    with _LOCK:
        for crypto in _CRYPTO.values():
            crypto.factory.remove_cache_entries_for_all_tokens()
        _CRYPTO.clear()


@dataclass
class LakeEncryption:
    """Whether one lake is encrypted, and its crypto when the passphrase is at hand.

    Args:
        filesystem: The lake's filesystem.
        key_path: Path of its master key file on ``filesystem``.
    """

    filesystem: pafs.FileSystem
    key_path: str
    enabled: bool = field(init=False)

    def __post_init__(self) -> None:
        self.enabled = self.filesystem.get_file_info(self.key_path).type == pafs.FileType.File

    def crypto(self, *, required: bool) -> LakeCrypto | None:
        """The unlocked crypto, or None when the lake is plain (or, unless ``required``, when no
        passphrase is set: numeric columns still read).

        Raises:
            LakeKeyError: ``required`` without a passphrase, or a wrong passphrase.
        """
        if not self.enabled:
            return None
        passphrase = lake_passphrase()
        if passphrase is None:
            if required:
                raise LakeKeyError(f"the lake is encrypted ({self.key_path}) and no passphrase is "
                                   f"set; export {LAKE_PASSPHRASE_ENV} to write or read its text")
            return None
        return lake_crypto(load_key_ring(self.filesystem, self.key_path, passphrase))

    def write_properties(self, table: str, path: str, schema: pa.Schema) -> pq.FileEncryptionProperties | None:
        """Encryption properties for part ``path`` of ``table`` (None: nothing in it to encrypt)."""
        columns = text_columns(table, schema) if self.enabled else []
        crypto = self.crypto(required=True) if columns else None
        return crypto.encryption_properties(path, self.filesystem, columns) if crypto else None

    def scan_format(self) -> ds.ParquetFileFormat | str:
        """The dataset format for scans: decrypting when the key is at hand, else plain Parquet."""
        crypto = self.crypto(required=False)
        return crypto.scan_format() if crypto is not None else "parquet"

    def open_file(self, path: str) -> pq.ParquetFile:
        """A part file, decrypting when the key is at hand."""
        crypto = self.crypto(required=False)
        props = crypto.decryption_properties(path, self.filesystem) if crypto is not None else None
        return pq.ParquetFile(path, filesystem=self.filesystem, decryption_properties=props)

    def explain(self, exc: BaseException, where: str) -> LakeKeyError | None:
        """A one-line error for a read that failed on an encrypted column, else None."""
        text = str(exc).lower()
        if not self.enabled or ("decrypt" not in text and "encrypted" not in text):
            return None
        if lake_passphrase() is None:
            return LakeKeyError(f"{where}: text columns are encrypted at rest; export "
                                f"{LAKE_PASSPHRASE_ENV} to read them (queries over ids and numeric "
                                "columns need no key)")
        return LakeKeyError(f"{where}: encrypted text cannot be decrypted with this lake's key "
                            f"({first_line(exc)}); was the part written under another key file?")
