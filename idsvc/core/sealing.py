"""Authenticated encryption at rest for secrets and biometric templates (AES-256-GCM).

The master key ring comes from configuration: ``IDSVC_MASTER_KEY`` holds one or more base64 keys
separated by commas; the first one seals, all of them open, so a key is rotated by putting the new
one first and keeping the old one until nothing sealed with it remains. Each sealed blob names its
key by a 4-byte id and is bound to an ``aad`` string (what it belongs to), so a blob copied onto
another row does not open.

Sealed values cannot be searched, so a field that needs an equality lookup (a phone number, an
external reference) also gets a *blind index*: a keyed HMAC of its normalised value under a key
derived from each master key. Lookups try the index under every configured key, so they keep
working while ``idsvc keys rotate`` moves rows to the new one.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import os
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from idsvc.core.private_files import private_dir

log = logging.getLogger(__name__)

_VERSION = b"\x01"


class SealingError(Exception):
    pass


def _key_id(key: bytes) -> bytes:
    return hashlib.sha256(b"idsvc-master-key-id" + key).digest()[:4]


def _index_key(key: bytes) -> bytes:
    # A key of its own for blind indexes, so an index value says nothing about the sealing key.
    return hmac.new(key, b"idsvc blind index v1", hashlib.sha256).digest()


class Sealer:
    def __init__(self, keys: list[bytes]) -> None:
        if not keys:
            raise SealingError("no master key configured")
        for key in keys:
            if len(key) != 32:
                raise SealingError("each master key must be 32 bytes (base64 of 32 random bytes)")
        self._current = keys[0]
        self._by_id = {_key_id(k): AESGCM(k) for k in keys}
        self._current_id = _key_id(self._current)
        self._index_keys = [_index_key(k) for k in keys]  # current first

    @classmethod
    def from_config(cls, master_key: str, data_dir: Path) -> Sealer:
        if master_key:
            try:
                keys = [base64.b64decode(part.strip(), validate=True) for part in master_key.split(",") if part.strip()]
            except ValueError as exc:
                raise SealingError("IDSVC_MASTER_KEY is not valid base64; generate one with `idsvc master-key`") from exc
            return cls(keys)
        return cls([_development_key(data_dir)])

    def seal(self, plaintext: bytes, aad: str) -> bytes:
        nonce = os.urandom(12)
        return _VERSION + self._current_id + nonce + self._by_id[self._current_id].encrypt(nonce, plaintext, aad.encode())

    @property
    def current_key_id(self) -> bytes:
        return self._current_id

    def sealed_with_current_key(self, blob: bytes) -> bool:
        return blob[1:5] == self._current_id

    def blind_index(self, field: str, value: str) -> str:
        """The index of a normalised value under the current key (what is stored)."""
        return self._index(self._index_keys[0], field, value)

    def blind_indexes(self, field: str, value: str) -> list[str]:
        """The index under every configured key (what a lookup matches, during a rotation too)."""
        return [self._index(key, field, value) for key in self._index_keys]

    @staticmethod
    def _index(key: bytes, field: str, value: str) -> str:
        return hmac.new(key, f"{field}\x00{value}".encode(), hashlib.sha256).hexdigest()[:32]

    def open(self, blob: bytes, aad: str) -> bytes:
        if len(blob) < 1 + 4 + 12 + 16 or blob[:1] != _VERSION:
            raise SealingError("sealed value is malformed")
        aead = self._by_id.get(blob[1:5])
        if aead is None:
            raise SealingError("sealed with a master key that is not configured any more")
        try:
            return aead.decrypt(blob[5:17], blob[17:], aad.encode())
        except InvalidTag as exc:
            raise SealingError("sealed value failed authentication (tampered, or bound to another record)") from exc


def new_master_key() -> str:
    return base64.b64encode(os.urandom(32)).decode()


def _development_key(data_dir: Path) -> bytes:
    """A generated key file for the embedded, single-node setup; production sets IDSVC_MASTER_KEY."""
    path = data_dir / "master.key"
    if not path.exists():
        private_dir(data_dir)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(new_master_key())
        log.warning("generated a master key in %s; set IDSVC_MASTER_KEY in production", path)
    return base64.b64decode(path.read_text().strip())
