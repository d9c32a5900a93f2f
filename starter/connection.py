"""One way to reach Temporal for every process: `temporalio.envconfig` plus our data converter
(Pydantic JSON, AES-GCM encrypted: `codec.converter`, keys from PAYLOAD_KEYS).

TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE, TEMPORAL_API_KEY, TEMPORAL_TLS* or a TOML profile
(TEMPORAL_CONFIG_FILE / TEMPORAL_PROFILE) choose the cluster; nothing here names a host.
See docs/operations.md.
"""

from __future__ import annotations

from temporalio.client import Client
from temporalio.envconfig import ClientConfig, ClientConnectConfig
from temporalio.runtime import Runtime

from codec.converter import data_converter

DEFAULT_ADDRESS = "localhost:7233"


def connect_config() -> ClientConnectConfig:
    """Where and how to connect, from the TOML profile and the environment (env wins)."""
    config = ClientConfig.load_client_connect_config()
    config.setdefault("target_host", DEFAULT_ADDRESS)
    return config


async def connect(runtime: Runtime | None = None) -> Client:
    return await Client.connect(
        **connect_config(), data_converter=data_converter(), runtime=runtime
    )
