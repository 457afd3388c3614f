"""The sandbox's own SSH key pair, made fresh per sandbox and never reused elsewhere."""

from __future__ import annotations

import io
import os
import tarfile
import time
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey


def ensure_keypair(path: Path) -> tuple[Path, str]:
    """Create an ed25519 key pair at `path` (private, 0600) and `path.pub` unless present.

    Returns the private key path and the public key line.
    """
    public_path = path.with_suffix(".pub")
    if path.exists() and public_path.exists():
        return path, public_path.read_text().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    key = Ed25519PrivateKey.generate()
    private = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.OpenSSH,
        serialization.NoEncryption(),
    )
    public = key.public_key().public_bytes(
        serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH
    ).decode() + " flaskfleet-sandbox"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(private)
    public_path.write_text(public + "\n")
    return path, public


def authorized_keys_tar(public_key: str, uid: int, gid: int) -> bytes:
    """A tar holding `authorized_keys` owned by uid:gid, mode 0600, for Docker's put_archive."""
    data = (public_key + "\n").encode()
    info = tarfile.TarInfo("authorized_keys")
    info.size = len(data)
    info.mode = 0o600
    info.uid, info.gid = uid, gid
    info.mtime = int(time.time())
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()
