"""The worker's Prometheus endpoint: the SDK's metrics and ours (see docs/operations.md)."""

from __future__ import annotations

import os

from temporalio.runtime import PrometheusConfig, Runtime, TelemetryConfig

DEFAULT_METRICS_BIND = "127.0.0.1:9464"


def metrics_runtime(bind: str | None = None) -> Runtime | None:
    """A Temporal runtime serving /metrics on METRICS_BIND; None when it is `off`."""
    bind = bind or os.environ.get("METRICS_BIND", DEFAULT_METRICS_BIND)
    if bind == "off":
        return None
    return Runtime(telemetry=TelemetryConfig(metrics=PrometheusConfig(bind_address=bind)))
