"""Search attributes an operator filters runs by in the Temporal Web UI (typed API).

Only IDs, codes and dates: never names, amounts or free text (personal data stays out of
Temporal's visibility store). `make run` registers them on the dev server; docs/operations.md
shows how on a cluster.
"""

from __future__ import annotations

from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest
from temporalio.client import Client
from temporalio.common import SearchAttributeKey

CASE_ID = SearchAttributeKey.for_keyword("CaseId")
# Upserted only by runs started before the workflow's `upsert-only-changes` patch (it was always
# More Info Required while a run was open); no longer registered for new namespaces.
LEGACY_CASE_STATUS = SearchAttributeKey.for_keyword("CaseStatus")
INFO_REQUEST_PHASE = SearchAttributeKey.for_keyword("InfoRequestPhase")
CLIENT_DEADLINE = SearchAttributeKey.for_datetime("ClientDeadline")
CLIENT_COUNTRY = SearchAttributeKey.for_keyword("ClientCountry")
PARTNER_ID = SearchAttributeKey.for_keyword("PartnerId")

KEYS = (CASE_ID, INFO_REQUEST_PHASE, CLIENT_DEADLINE, CLIENT_COUNTRY, PARTNER_ID)


def dev_server_flags() -> list[str]:
    """`--search-attribute Name=Type` flags for `temporal server start-dev`."""
    kinds = {"KEYWORD": "Keyword", "DATETIME": "Datetime"}
    return [
        flag
        for key in KEYS
        for flag in ("--search-attribute", f"{key.name}={kinds[key.indexed_value_type.name]}")
    ]


async def register_search_attributes(client: Client) -> None:
    """Register the attributes through the operator API (the test server and a self-hosted
    cluster; on Temporal Cloud use `tcld` or the UI, see docs/operations.md)."""
    await client.operator_service.add_search_attributes(
        AddSearchAttributesRequest(
            namespace=client.namespace,
            search_attributes={
                key.name: IndexedValueType.ValueType(key.indexed_value_type) for key in KEYS
            },
        )
    )
