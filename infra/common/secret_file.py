"""A secret kept in a file of its own, readable by its owner only (mode 0600), made once on first use."""

from __future__ import annotations

import base64
import os
import secrets
from pathlib import Path


def read_or_create(path: Path, size: int = 32) -> bytes:
    """The secret in ``path``; a new random one of ``size`` bytes (base64 text, mode 0600) when missing."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        text = base64.urlsafe_b64encode(secrets.token_bytes(size))
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:  # another process made it first: use theirs
            return path.read_bytes().strip()
        with os.fdopen(fd, "wb") as f:
            f.write(text + b"\n")
    return path.read_bytes().strip()
