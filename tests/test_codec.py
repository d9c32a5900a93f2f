"""EncryptionCodec and its keys: AES-256-GCM of whole payloads, rotation, the dev key file."""

from __future__ import annotations

import base64
import dataclasses
import logging
import secrets
import stat
import threading
from pathlib import Path

import pytest
from temporalio.api.common.v1 import Payload
from temporalio.contrib.pydantic import pydantic_data_converter

from codec.converter import data_converter, data_converter_for
from codec.encryption import ENCODING, KEY_ID_METADATA, EncryptionCodec, PayloadDecryptionError
from codec.keys import KeyRing, KeyRingError, load_key_ring, new_entry, parse_key_ring
from config import Settings
from domain.models import InfoRequestInput, ItemKind, RequestedItem

DEBTOR = "Jørgen Debitorsen"


def key(key_id: str) -> tuple[str, bytes]:
    return key_id, secrets.token_bytes(32)


def plain(text: str) -> Payload:
    [payload] = pydantic_data_converter.payload_converter.to_payloads([text])
    return payload


def request() -> InfoRequestInput:
    return InfoRequestInput(
        request_id="r-1",
        case_id="C-1",
        partner_user_id="U-1",
        items=[RequestedItem(kind=ItemKind.INVOICE_OR_CONTRACT, reason=f"{DEBTOR} denies it")],
        message=f"Please send the contract signed by {DEBTOR}.",
        attachments=[],
    )


async def test_round_trip_restores_the_whole_payload() -> None:
    codec = EncryptionCodec(KeyRing([key("k1")]))
    original = Payload(metadata={"encoding": b"json/plain", "x": b"y"}, data=b'"hello"')
    [encrypted] = await codec.encode([original])
    assert encrypted.metadata["encoding"] == ENCODING
    assert encrypted.metadata[KEY_ID_METADATA] == b"k1"
    assert set(encrypted.metadata) == {"encoding", KEY_ID_METADATA}
    [decoded] = await codec.decode([encrypted])
    assert decoded == original


async def test_converter_round_trips_a_model_and_hides_it() -> None:
    converter = data_converter_for(KeyRing([key("k1")]))
    [encrypted] = await converter.encode([request()])
    assert DEBTOR.encode() not in encrypted.SerializeToString()
    assert b"json/plain" not in encrypted.SerializeToString()
    [decoded] = await converter.decode([encrypted], [InfoRequestInput])
    assert decoded == request()


async def test_ciphertext_differs_per_encode_and_hides_the_plaintext() -> None:
    codec = EncryptionCodec(KeyRing([key("k1")]))
    payload = plain(f"case of {DEBTOR}")
    first, second = await codec.encode([payload, payload])
    assert first.data != second.data
    assert first.data[:12] != second.data[:12]  # a fresh nonce each time
    for encrypted in (first, second):
        assert DEBTOR.encode() not in encrypted.data
        assert "Jørgen".encode() not in encrypted.SerializeToString()


async def test_unencrypted_payloads_pass_through_decode() -> None:
    """Histories written before encryption was turned on still read."""
    codec = EncryptionCodec(KeyRing([key("k1")]))
    old = plain("written before encryption")
    binary_null = Payload(metadata={"encoding": b"binary/null"})
    assert await codec.decode([old, binary_null]) == [old, binary_null]


async def test_rotation_new_key_encodes_old_key_still_decodes() -> None:
    k1, k2 = key("k1"), key("k2")
    before = await EncryptionCodec(KeyRing([k1])).encode([plain("old")])

    rotated = EncryptionCodec(KeyRing([k2, k1]))
    assert await rotated.decode(before) == [plain("old")]
    after = await rotated.encode([plain("new")])
    assert after[0].metadata[KEY_ID_METADATA] == b"k2"

    retired = EncryptionCodec(KeyRing([k2]))
    assert await retired.decode(after) == [plain("new")]
    with pytest.raises(PayloadDecryptionError, match="key id 'k1'") as raised:
        await retired.decode(before)
    assert base64.b64encode(k1[1]).decode() not in str(raised.value)
    assert "k2" in str(raised.value)  # the known ids help the operator


async def test_tampered_ciphertext_fails_authentication() -> None:
    codec = EncryptionCodec(KeyRing([key("k1")]))
    [encrypted] = await codec.encode([plain("amount 100 DKK")])
    data = bytearray(encrypted.data)
    data[20] ^= 0x01
    tampered = Payload(metadata=dict(encrypted.metadata), data=bytes(data))
    with pytest.raises(PayloadDecryptionError, match="failed authentication"):
        await codec.decode([tampered])


async def test_relabelled_key_id_fails_authentication() -> None:
    """The key id is authenticated: pointing a payload at another key does not decrypt it."""
    k1 = key("k1")
    codec = EncryptionCodec(KeyRing([k1, ("k0", k1[1])]))
    [encrypted] = await codec.encode([plain("x")])
    relabelled = Payload(
        metadata={"encoding": ENCODING, KEY_ID_METADATA: b"k0"}, data=encrypted.data
    )
    with pytest.raises(PayloadDecryptionError, match="failed authentication"):
        await codec.decode([relabelled])


async def test_truncated_and_unlabelled_payloads_are_refused_clearly() -> None:
    codec = EncryptionCodec(KeyRing([key("k1")]))
    with pytest.raises(PayloadDecryptionError, match="too short"):
        await codec.decode([Payload(metadata={"encoding": ENCODING, KEY_ID_METADATA: b"k1"})])
    with pytest.raises(PayloadDecryptionError, match=KEY_ID_METADATA):
        await codec.decode([Payload(metadata={"encoding": ENCODING}, data=b"x" * 40)])


# ---- PAYLOAD_KEYS ---------------------------------------------------------------------------


def test_payload_keys_first_entry_is_current() -> None:
    k1, k2 = new_entry("k1"), new_entry("k2")
    ring = parse_key_ring(f" {k2} , {k1} ")
    assert ring.current_id == "k2"
    assert ring.key_ids == ("k2", "k1")


def test_url_safe_base64_keys_are_accepted() -> None:
    raw = b"\xfb" * 32  # '+' and '/' in standard base64
    ring = parse_key_ring(f"k1:{base64.urlsafe_b64encode(raw).decode()}")
    assert ring.key("k1") == raw


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("", "holds no key"),
        ("k1", "entry 1 is not of the form kid:base64key"),
        (":AAAA", "entry 1 is not of the form kid:base64key"),
        ("k1:AAAA,", "entry 2 is empty"),
        ("k1:not base64!", r"entry 1 \(key id 'k1'\): the key is not valid base64"),
        (f"k1:{base64.b64encode(b'x' * 16).decode()}", r"the key is 16 bytes; AES-256 needs"),
        ("bad id:AAAA", "entry 1: the key id is not"),
    ],
)
def test_malformed_payload_keys_are_explained(spec: str, message: str) -> None:
    with pytest.raises(KeyRingError, match=message):
        parse_key_ring(spec)


def test_duplicate_key_ids_are_refused() -> None:
    with pytest.raises(KeyRingError, match="entry 2: key id 'k1' appears more than once"):
        parse_key_ring(f"{new_entry('k1')},{new_entry('k1')}")


def test_errors_and_repr_never_show_key_material() -> None:
    secret = base64.b64encode(secrets.token_bytes(24)).decode()
    with pytest.raises(KeyRingError) as raised:
        parse_key_ring(f"k1:{secret}")
    assert secret not in str(raised.value)
    reversed_entry = f"{base64.b64encode(secrets.token_bytes(32)).decode()}:k1"
    with pytest.raises(KeyRingError) as raised:
        parse_key_ring(reversed_entry)
    assert reversed_entry.split(":")[0] not in str(raised.value)
    ring = parse_key_ring(new_entry("k1"))
    assert repr(ring) == "KeyRing(current='k1', key_ids=['k1'])"


def test_payload_keys_win_over_the_key_file(tmp_path: Path) -> None:
    settings = settings_in(tmp_path)
    ring = load_key_ring(settings, {"PAYLOAD_KEYS": new_entry("prod-1")})
    assert ring.current_id == "prod-1"
    assert not (tmp_path / "payload-keys").exists()


# ---- the dev key file -----------------------------------------------------------------------


def settings_in(data_dir: Path) -> Settings:
    return dataclasses.replace(Settings.from_env(), data_dir=data_dir)


def test_dev_key_file_is_created_once_0600_and_reused(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    settings = settings_in(tmp_path / "data")
    with caplog.at_level(logging.WARNING, logger="codec.keys"):
        first = load_key_ring(settings, {})
    path = tmp_path / "data" / "payload-keys"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert first.current_id.startswith("dev-")
    second = load_key_ring(settings, {})
    assert second.items() == first.items()
    assert "dev key file" in caplog.text and str(path) in caplog.text
    assert base64.b64encode(first.current_key).decode() not in caplog.text
    assert [p.name for p in path.parent.iterdir()] == ["payload-keys"]


def test_dev_key_file_creation_is_atomic_under_a_race(tmp_path: Path) -> None:
    settings = settings_in(tmp_path)
    barrier = threading.Barrier(16)
    rings: list[KeyRing] = []

    def load() -> None:
        barrier.wait()
        rings.append(load_key_ring(settings, {}))

    threads = [threading.Thread(target=load) for _ in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(rings) == 16
    assert len({ring.items() for ring in rings}) == 1  # everyone got the one file's key
    assert [p.name for p in tmp_path.iterdir()] == ["payload-keys"]  # no temporary files left
    assert stat.S_IMODE((tmp_path / "payload-keys").stat().st_mode) == 0o600


def test_dev_key_file_can_be_rotated_by_hand(tmp_path: Path) -> None:
    settings = settings_in(tmp_path)
    old = load_key_ring(settings, {})
    path = tmp_path / "payload-keys"
    path.write_text(f"# rotated\n{new_entry('dev-2')}\n{path.read_text()}")
    ring = load_key_ring(settings, {})
    assert ring.key_ids == ("dev-2", old.current_id)


async def test_data_converter_uses_the_data_dirs_key_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The worker, the CLI and `make run` in one data dir read each other's payloads."""
    monkeypatch.delenv("PAYLOAD_KEYS", raising=False)
    monkeypatch.setenv("INFO_REQUESTS_DATA_DIR", str(tmp_path))
    [encrypted] = await data_converter().encode([request()])
    assert encrypted.metadata["encoding"] == ENCODING
    assert await data_converter().decode([encrypted], [InfoRequestInput]) == [request()]
