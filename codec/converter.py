"""THE data converter of every Temporal client of this service: Pydantic JSON, then AES-GCM.

The worker, the starter, the CLI, the HTTP API and `make run` all connect through
`starter.connection.connect()`, which uses it; tests pass one built on a test key ring.

Failures are encrypted too: their message and stack trace move into the failure's encoded
attributes, which go through the codec. A failure message can carry personal data (a Pydantic
ValidationError quotes the offending input; a database error its parameters), and without
this it would be stored in plain text. The SDK decodes it back for callers (`e.message` is
unchanged); the Web UI shows it through the codec server.
"""

from __future__ import annotations

import dataclasses

from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.converter import DataConverter, DefaultFailureConverterWithEncodedAttributes

from codec.encryption import EncryptionCodec
from codec.keys import KeyRing, load_key_ring
from config import Settings


def data_converter(settings: Settings | None = None) -> DataConverter:
    """Pydantic payloads encrypted with the keys of PAYLOAD_KEYS (else the dev key file)."""
    return data_converter_for(load_key_ring(settings))


def data_converter_for(key_ring: KeyRing) -> DataConverter:
    """Pydantic payloads and failure messages encrypted with the given key ring."""
    return dataclasses.replace(
        pydantic_data_converter,
        payload_codec=EncryptionCodec(key_ring),
        failure_converter_class=DefaultFailureConverterWithEncodedAttributes,
    )
