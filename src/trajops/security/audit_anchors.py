"""Checkpoints of the audit chain's head kept outside the store, signed.

The hash chain shows an edit or a deletion in the middle of the stored rows, but not a tail
cut off, every row deleted, or the whole chain recomputed: all of these leave a chain that is
consistent with itself. So the head (id and hash of the last row) is checkpointed outside the
database, in an append-only file (``TRAJOPS_AUDIT_ANCHOR_PATH``, by default under ``home``;
put it on other storage than the database), each line signed with an HMAC under a key the
database does not hold. :func:`~trajops.security.audit.verify_chain` checks every checkpoint
past the retention anchor against the stored rows: a missing row or a different hash is
tampering, and so is a checkpoint whose signature does not verify.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from trajops._secrets import load_or_create_secret
from trajops.settings import Settings

log = logging.getLogger(__name__)

KEY_FILE = "audit-anchor.key"


@dataclass(frozen=True)
class Checkpoint:
    """The chain's head at a moment: row ``id`` had ``hash``."""

    id: int
    hash: str
    at: str


class AnchorLog:
    """The signed, append-only file of chain checkpoints.

    Args:
        path: the file (created 0600 on first append).
        key: the HMAC key of the signatures.
    """

    def __init__(self, path: Path, key: bytes) -> None:
        self.path = path
        self._mac = hmac.new(key, digestmod=hashlib.sha256)

    @classmethod
    def from_settings(cls, settings: Settings) -> AnchorLog:
        path = settings.audit_anchor_path or settings.home / "audit-anchors.jsonl"
        key = load_or_create_secret(settings, settings.audit_anchor_key, KEY_FILE)
        return cls(path, key)

    def _sign(self, checkpoint: Checkpoint) -> str:
        mac = self._mac.copy()
        mac.update(f"{checkpoint.id}:{checkpoint.hash}:{checkpoint.at}".encode())
        return mac.hexdigest()

    def last(self) -> Checkpoint | None:
        """The latest checkpoint (None before the first)."""
        found = None
        for found in self.checkpoints():  # noqa: B007 - the last one is wanted
            pass
        return found

    def append(self, head_id: int, head_hash: str) -> Checkpoint | None:
        """Checkpoint the head unless it is the latest one already; returns what was written."""
        latest = self.last()
        if latest is not None and (latest.id, latest.hash) == (head_id, head_hash):
            return None
        checkpoint = Checkpoint(head_id, head_hash, datetime.now(UTC).isoformat())
        line = {**checkpoint.__dict__, "mac": self._sign(checkpoint)}
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            os.write(fd, (json.dumps(line, separators=(",", ":")) + "\n").encode())
            os.fsync(fd)
        finally:
            os.close(fd)
        return checkpoint

    def checkpoints(self) -> Iterator[Checkpoint]:
        """Every checkpoint, oldest first.

        Raises:
            ValueError: a line that does not parse or whose signature does not verify
                (the file was edited).
        """
        try:
            lines = self.path.read_text().splitlines()
        except FileNotFoundError:
            return
        for number, text in enumerate(lines, start=1):
            if not text.strip():
                continue
            try:
                raw = json.loads(text)
                checkpoint = Checkpoint(int(raw["id"]), str(raw["hash"]), str(raw["at"]))
                signature = str(raw["mac"])
            except (ValueError, KeyError, TypeError):
                raise ValueError(f"anchor line {number} does not parse") from None
            if not hmac.compare_digest(signature, self._sign(checkpoint)):
                raise ValueError(f"anchor line {number} has a bad signature")
            yield checkpoint
