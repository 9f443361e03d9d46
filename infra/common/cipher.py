"""The payload cipher, constructed in one place for the codec and the snapshot store: AES-GCM."""

from __future__ import annotations

from eventsourcing.cipher import AESCipher
from eventsourcing.utils import Environment

from ...domain.errors import ConfigurationError


def make_cipher(key_id: str, key: str) -> AESCipher:
    """An AES-GCM cipher of the base64 ``key``; ConfigurationError naming ``key_id`` if it is not a valid key."""
    try:
        return AESCipher(Environment(env={AESCipher.CIPHER_KEY: key}))
    except (OSError, ValueError) as e:
        raise ConfigurationError(f"cipher key {key_id!r} is not a base64 AES key of 16/24/32 bytes: {e}") from e
