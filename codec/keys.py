"""The payload encryption keys: a key ring of (key id -> 32-byte AES-256 key), one current.

In production the keys come from the environment:

    PAYLOAD_KEYS="k2:<base64 of 32 random bytes>,k1:<base64 of 32 random bytes>"

Comma-separated `kid:base64key` entries; the FIRST entry is the current key, used to encrypt
every new payload; the others only decrypt payloads written before a rotation. Key ids are
1-64 characters of letters, digits, `.`, `_` and `-`; they are stored in plain text next to
each payload, so they must say nothing secret. `python -m codec.keys new k3` prints a fresh
entry to put in front (docs/encryption.md has the rotation procedure).

Without PAYLOAD_KEYS, a dev key file `<data dir>/payload-keys` (INFO_REQUESTS_DATA_DIR,
default .data/) is used, created once with one random key (atomically, mode 0600), so that
`make run`, the worker, the CLI and the tests sharing a data dir agree. Its format is the
same entries, one a line (`#` starts a comment). A warning is logged whenever it is used.

No key material ever appears in an error message, a log line or a repr.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import logging
import os
import re
import secrets
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path

from codec import secret_file
from config import Settings

log = logging.getLogger(__name__)

ENV_VAR = "PAYLOAD_KEYS"
KEY_FILE_NAME = "payload-keys"
KEY_BYTES = 32
KEY_ID_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")


class KeyRingError(ValueError):
    """The configured keys are unusable. The message names entries and ids, never keys."""


class KeyRing:
    """Key ids to AES-256 keys, in order: the first is the current (encrypting) key."""

    __slots__ = ("_current_id", "_keys")

    def __init__(self, entries: Iterable[tuple[str, bytes]], *, source: str = "key ring") -> None:
        keys: dict[str, bytes] = {}
        for position, (key_id, key) in enumerate(entries, start=1):
            _check_key_id(key_id, source, position)
            if len(key) != KEY_BYTES:
                raise KeyRingError(
                    f"{source} entry {position} (key id {key_id!r}): the key is {len(key)} "
                    f"bytes; AES-256 needs exactly {KEY_BYTES} (base64 of 32 random bytes)"
                )
            if key_id in keys:
                raise KeyRingError(
                    f"{source} entry {position}: key id {key_id!r} appears more than once"
                )
            keys[key_id] = key
        if not keys:
            raise KeyRingError(f"{source} has no key")
        self._keys = keys
        self._current_id = next(iter(keys))

    @classmethod
    def generate(cls, key_id: str | None = None) -> KeyRing:
        """A ring of one new random key (for tests and the dev key file)."""
        return cls([(key_id or new_key_id(), secrets.token_bytes(KEY_BYTES))])

    @property
    def current_id(self) -> str:
        return self._current_id

    @property
    def current_key(self) -> bytes:
        return self._keys[self._current_id]

    @property
    def key_ids(self) -> tuple[str, ...]:
        return tuple(self._keys)

    def key(self, key_id: str) -> bytes | None:
        return self._keys.get(key_id)

    def items(self) -> tuple[tuple[str, bytes], ...]:
        """(key id, key) pairs, the current first. They hold the keys: handle as secrets."""
        return tuple(self._keys.items())

    def to_spec(self) -> str:
        """The PAYLOAD_KEYS value of this ring. It holds the keys: handle as a secret."""
        return ",".join(
            f"{key_id}:{base64.b64encode(key).decode()}" for key_id, key in self._keys.items()
        )

    def __repr__(self) -> str:
        return f"KeyRing(current={self._current_id!r}, key_ids={list(self._keys)!r})"


def new_key_id() -> str:
    return f"k-{secrets.token_hex(4)}"


def new_entry(key_id: str | None = None) -> str:
    """A fresh `kid:base64key` entry of a random key."""
    return KeyRing.generate(key_id).to_spec()


def parse_key_ring(spec: str, *, source: str = ENV_VAR) -> KeyRing:
    """Parse `kid:base64key` entries separated by commas or newlines, the first current.

    Blank lines and lines starting with `#` are skipped; an empty entry between commas is an
    error (it is most likely a pasting mistake).
    """
    entries: list[tuple[str, bytes]] = []
    position = 0
    for line in spec.splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        for raw in line.split(","):
            position += 1
            entry = raw.strip()
            if not entry:
                raise KeyRingError(
                    f"{source} entry {position} is empty (expected kid:base64key, comma-separated)"
                )
            key_id, sep, encoded = entry.partition(":")
            key_id = key_id.strip()
            if not sep or not key_id:
                raise KeyRingError(f"{source} entry {position} is not of the form kid:base64key")
            _check_key_id(key_id, source, position)
            entries.append((key_id, _decode_key(encoded.strip(), source, position, key_id)))
    if not entries:
        raise KeyRingError(
            f"{source} is set but holds no key (expected kid:base64key entries, the first "
            "being the current key)"
        )
    return KeyRing(entries, source=source)


def _check_key_id(key_id: str, source: str, position: int) -> None:
    if not KEY_ID_PATTERN.fullmatch(key_id):
        raise KeyRingError(
            f"{source} entry {position}: the key id is not 1-64 letters, digits, '.', '_' or "
            "'-' starting with a letter or digit (not shown: it may be a misplaced key)"
        )


def _decode_key(encoded: str, source: str, position: int, key_id: str) -> bytes:
    for altchars in (None, b"-_"):
        try:
            return base64.b64decode(encoded, altchars=altchars, validate=True)
        except (binascii.Error, ValueError):
            continue
    raise KeyRingError(
        f"{source} entry {position} (key id {key_id!r}): the key is not valid base64"
    )


_warned: set[Path] = set()


def key_file_path(settings: Settings) -> Path:
    return settings.data_dir / KEY_FILE_NAME


def load_key_ring(
    settings: Settings | None = None, environ: Mapping[str, str] | None = None
) -> KeyRing:
    """The key ring of PAYLOAD_KEYS, else of the dev key file (created if missing)."""
    env = os.environ if environ is None else environ
    spec = env.get(ENV_VAR)
    if spec is not None:
        return parse_key_ring(spec, source=ENV_VAR)
    path = key_file_path(settings or Settings.from_env())
    text, created = secret_file.read_or_create(path, _new_key_file)
    ring = parse_key_ring(text, source=str(path))
    if path in _warned:
        return ring
    _warned.add(path)
    log.warning(
        "payload encryption uses the dev key file %s (%s, current key id %s): set %s in "
        "production (see docs/encryption.md)",
        path,
        "just created" if created else "existing",
        ring.current_id,
        ENV_VAR,
    )
    return ring


def _new_key_file() -> str:
    return (
        "# Dev payload encryption keys (kid:base64key, one a line, the first is current).\n"
        "# Without it, payloads already in the Temporal history here cannot be read.\n"
        f"# Production uses the {ENV_VAR} environment variable instead.\n"
        f"{new_entry(f'dev-{secrets.token_hex(4)}')}\n"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m codec.keys", description="Payload encryption keys"
    )
    commands = parser.add_subparsers(dest="command", required=True)
    new = commands.add_parser("new", help="print a new kid:base64key entry (a secret!)")
    new.add_argument("key_id", nargs="?", help="the key id (default: random)")
    commands.add_parser("ids", help="print the key ids in use, the current one first")
    args = parser.parse_args(argv)
    try:
        if args.command == "new":
            print(new_entry(args.key_id))
        else:
            ring = load_key_ring()
            for key_id in ring.key_ids:
                print(key_id + (" (current)" if key_id == ring.current_id else ""))
    except KeyRingError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    sys.exit(main())
