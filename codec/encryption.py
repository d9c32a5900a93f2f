"""EncryptionCodec: every payload leaves the process AES-256-GCM encrypted.

The plaintext is the whole original Payload proto (metadata and data), so Temporal sees
neither the value nor its encoding. The encrypted payload is

    metadata: encoding = binary/encrypted, encryption-key-id = <kid>
    data:     12-byte random nonce || ciphertext || 16-byte GCM tag

with the key id as associated data, so a payload cannot be relabelled to another key. New
payloads use the ring's current key; any key of the ring decrypts. Payloads without the
`binary/encrypted` encoding (histories written before encryption was turned on) pass through
decode unchanged.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from google.protobuf.message import DecodeError
from temporalio.api.common.v1 import Payload
from temporalio.converter import PayloadCodec

from codec.keys import KeyRing

ENCODING = b"binary/encrypted"
KEY_ID_METADATA = "encryption-key-id"
NONCE_BYTES = 12


class PayloadDecryptionError(ValueError):
    """An encrypted payload could not be decrypted. Names the key id, never the key."""


class EncryptionCodec(PayloadCodec):
    def __init__(self, key_ring: KeyRing) -> None:
        self._key_ring = key_ring
        self._ciphers = {key_id: AESGCM(key) for key_id, key in key_ring.items()}

    @property
    def key_ring(self) -> KeyRing:
        return self._key_ring

    async def encode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return [self.encrypt(p) for p in payloads]

    async def decode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return [self.decrypt(p) for p in payloads]

    def encrypt(self, payload: Payload) -> Payload:
        key_id = self._key_ring.current_id
        nonce = os.urandom(NONCE_BYTES)
        sealed = self._ciphers[key_id].encrypt(nonce, payload.SerializeToString(), key_id.encode())
        return Payload(
            metadata={"encoding": ENCODING, KEY_ID_METADATA: key_id.encode()},
            data=nonce + sealed,
        )

    def decrypt(self, payload: Payload) -> Payload:
        if payload.metadata.get("encoding") != ENCODING:
            return payload
        raw_id = payload.metadata.get(KEY_ID_METADATA)
        if raw_id is None:
            raise PayloadDecryptionError(
                f"encrypted payload has no {KEY_ID_METADATA} metadata; cannot choose a key"
            )
        key_id = raw_id.decode(errors="replace")
        cipher = self._ciphers.get(key_id)
        if cipher is None:
            raise PayloadDecryptionError(
                f"payload was encrypted with key id {key_id!r}, which is not in the key ring "
                f"(known: {', '.join(self._key_ring.key_ids)}); add that key to PAYLOAD_KEYS "
                "after the current one"
            )
        if len(payload.data) < NONCE_BYTES + 16:
            raise PayloadDecryptionError(
                f"encrypted payload (key id {key_id!r}) is too short to be one"
            )
        nonce, sealed = payload.data[:NONCE_BYTES], payload.data[NONCE_BYTES:]
        try:
            plaintext = cipher.decrypt(nonce, sealed, raw_id)
        except InvalidTag:
            raise PayloadDecryptionError(
                f"encrypted payload (key id {key_id!r}) failed authentication: it was altered, "
                "or that key id names a different key than the one it was written with"
            ) from None
        try:
            return Payload.FromString(plaintext)
        except DecodeError as e:
            raise PayloadDecryptionError(
                f"decrypted payload (key id {key_id!r}) is not a Payload: {e}"
            ) from None
