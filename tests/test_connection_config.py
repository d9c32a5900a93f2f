"""A cluster is reached by configuration alone: the shapes docs/operations.md shows load as
documented (a self-hosted cluster with mTLS from a TOML profile; Temporal Cloud with an API key
from the environment; the local dev server when nothing is set)."""

from __future__ import annotations

from pathlib import Path

import pytest
from temporalio.service import TLSConfig

from starter.connection import DEFAULT_ADDRESS, connect_config

TEMPORAL_VARS = (
    "TEMPORAL_ADDRESS",
    "TEMPORAL_NAMESPACE",
    "TEMPORAL_API_KEY",
    "TEMPORAL_CONFIG_FILE",
    "TEMPORAL_PROFILE",
    "TEMPORAL_TLS",
)


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in TEMPORAL_VARS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))  # no ~/.config/temporalio/temporal.toml


def test_nothing_configured_means_the_local_dev_server() -> None:
    assert connect_config() == {"target_host": DEFAULT_ADDRESS}


def test_self_hosted_cluster_with_mtls_from_a_toml_profile(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    for name, text in [
        ("client.pem", "CLIENT CERT"),
        ("client.key", "CLIENT KEY"),
        ("ca.pem", "CA CERT"),
    ]:
        (tmp_path / name).write_text(text)
    profile = tmp_path / "temporal.toml"
    profile.write_text(f"""
[profile.selfhosted]
address = "temporal.internal:7233"
namespace = "info-requests"

[profile.selfhosted.tls]
client_cert_path = "{tmp_path / "client.pem"}"
client_key_path = "{tmp_path / "client.key"}"
server_ca_cert_path = "{tmp_path / "ca.pem"}"
server_name = "temporal.internal"
""")
    monkeypatch.setenv("TEMPORAL_CONFIG_FILE", str(profile))
    monkeypatch.setenv("TEMPORAL_PROFILE", "selfhosted")

    config = connect_config()

    assert config["target_host"] == "temporal.internal:7233"
    assert config["namespace"] == "info-requests"
    tls = config["tls"]
    assert isinstance(tls, TLSConfig)
    assert tls.client_cert == b"CLIENT CERT" and tls.client_private_key == b"CLIENT KEY"
    assert tls.server_root_ca_cert == b"CA CERT" and tls.domain == "temporal.internal"
    assert "api_key" not in config


def test_temporal_cloud_with_an_api_key_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TEMPORAL_ADDRESS", "info-requests.a1b2c.tmprl.cloud:7233")
    monkeypatch.setenv("TEMPORAL_NAMESPACE", "info-requests.a1b2c")
    monkeypatch.setenv("TEMPORAL_API_KEY", "key-from-the-secret-store")

    config = connect_config()

    assert config["target_host"] == "info-requests.a1b2c.tmprl.cloud:7233"
    assert config["namespace"] == "info-requests.a1b2c"
    assert config["api_key"] == "key-from-the-secret-store"
    assert config["tls"] is True  # an API key turns TLS on


def test_environment_overrides_the_profile(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    profile = tmp_path / "temporal.toml"
    profile.write_text('[profile.default]\naddress = "from-file:7233"\nnamespace = "file-ns"\n')
    monkeypatch.setenv("TEMPORAL_CONFIG_FILE", str(profile))
    monkeypatch.setenv("TEMPORAL_NAMESPACE", "env-ns")

    config = connect_config()

    assert config["target_host"] == "from-file:7233"
    assert config["namespace"] == "env-ns"
