"""Demo parties, users and cases so a newcomer can try the flow at once (`make run` loads
them; loading twice changes nothing)."""

from __future__ import annotations

from store.cases import CaseStore, NewCase
from store.files import FileStore
from store.views import PartyView

PARTNER = PartyView(
    id="P-NORDIC",
    kind="partner",
    name="Nordic Collect ApS",
    email="cases@nordic-collect.example",
    country="DK",
    subdivision=None,
    time_zone="Europe/Copenhagen",
)
CLIENTS = [
    PartyView(
        id="CL-HYGGE",
        kind="client",
        name="Hygge Møbler A/S",
        email="finance@hygge-mobler.example",
        country="DK",
        subdivision=None,
        time_zone="Europe/Copenhagen",
    ),
    PartyView(
        id="CL-ALPEN",
        kind="client",
        name="Alpenbräu GmbH",
        email="buchhaltung@alpenbraeu.example",
        country="DE",
        subdivision="BY",
        time_zone="Europe/Berlin",
    ),
    PartyView(
        id="CL-ACME",
        kind="client",
        name="Acme Supplies Inc.",
        email="ar@acme-supplies.example",
        country="US",
        subdivision="CA",
        time_zone="America/Los_Angeles",
    ),
]
USERS = [
    ("U-PARTNER-ANNA", PARTNER.id, "Anna Jensen", "anna@nordic-collect.example"),
    ("U-HYGGE-LARS", "CL-HYGGE", "Lars Holm", "lars@hygge-mobler.example"),
    ("U-ALPEN-MARIA", "CL-ALPEN", "Maria Huber", "maria@alpenbraeu.example"),
    ("U-ACME-JOE", "CL-ACME", "Joe Miller", "joe@acme-supplies.example"),
]
CASES = [
    NewCase(
        id="C-1001",
        client_id="CL-HYGGE",
        partner_id=PARTNER.id,
        reference="HM-2026-117",
        debtor_name="Café Sol ApS",
        amount_minor=4_850_000,
        currency="DKK",
        description="Unpaid invoice for 12 dining tables delivered in September.",
    ),
    NewCase(
        id="C-1002",
        client_id="CL-ALPEN",
        partner_id=PARTNER.id,
        reference="AB-88-301",
        debtor_name="Gasthaus zur Linde",
        amount_minor=1_275_000,
        currency="EUR",
        description="Beer deliveries March to May, three invoices unpaid; debtor disputes "
        "one delivery.",
    ),
    NewCase(
        id="C-1003",
        client_id="CL-ACME",
        partner_id=PARTNER.id,
        reference="ACME-5521",
        debtor_name="Bright Office LLC",
        amount_minor=980_000,
        currency="USD",
        description="Office supplies on 60-day terms; loan-style instalment plan broken.",
    ),
    NewCase(
        id="C-1004",
        client_id="CL-HYGGE",
        partner_id=PARTNER.id,
        reference="HM-2026-140",
        debtor_name="Nørre Kontor I/S",
        amount_minor=320_000,
        currency="DKK",
        description="Two chairs, invoice 2026-140, no reply to reminders.",
    ),
]


def load_demo(store: CaseStore, files: FileStore) -> list[str]:
    """Load the demo data; returns the IDs of the cases it added."""
    store.add_party(PARTNER)
    for client in CLIENTS:
        store.add_party(client)
    for user in USERS:
        store.add_user(*user)
    added = []
    for case in CASES:
        invoice = files.put_bytes(
            f"Invoice for case {case.reference}\nAmount: {case.amount_minor / 100:.2f} "
            f"{case.currency}\n".encode(),
            filename=f"invoice-{case.reference}.txt",
            content_type="text/plain",
        )
        if store.add_case(case, [invoice], uploaded_by=case.client_id):
            added.append(case.id)
    return added
