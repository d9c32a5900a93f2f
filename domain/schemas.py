"""JSON Schemas of the payloads InfoRequestWorkflow takes and returns, for callers in any language.

    python -m domain.schemas            (or `make schemas`) writes docs/schemas/*.schema.json
    python -m domain.schemas --check    exits 1, naming the stale files, if those differ

Inputs (workflow input, signal and update arguments) are described as pydantic validates them
(mode="validation"); outputs (query, update and workflow results) as pydantic serializes them
(mode="serialization"). Each schema's `description` names the Temporal message it belongs to.
Rules a JSON Schema cannot state (a close needs a close code, ...) are in docs/workflow-api.md.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from pydantic import BaseModel

from domain.models import (
    ClientReply,
    Decision,
    ExtendDeadline,
    FollowUp,
    InfoRequestInput,
    PartnerMessage,
    RequestState,
    RequestSummary,
    ReviewItems,
    Withdrawal,
)

SCHEMA_DIR = Path(__file__).resolve().parent.parent / "docs" / "schemas"
SUFFIX = ".schema.json"
JSON_SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"
WORKFLOW_TYPE = "InfoRequestWorkflow"


@dataclass(frozen=True)
class SchemaSpec:
    model: type[BaseModel]
    mode: Literal["validation", "serialization"]
    uses: tuple[str, ...]  # the Temporal messages the payload belongs to, for `description`

    @property
    def file_name(self) -> str:
        return f"{self.model.__name__}{SUFFIX}"


SCHEMAS: tuple[SchemaSpec, ...] = (
    SchemaSpec(InfoRequestInput, "validation", (f"Input of workflow {WORKFLOW_TYPE}",)),
    SchemaSpec(ClientReply, "validation", ("Argument of signal client_reply",)),
    SchemaSpec(PartnerMessage, "validation", ("Argument of signal partner_message",)),
    SchemaSpec(Decision, "validation", ("Argument of update decide",)),
    SchemaSpec(Withdrawal, "validation", ("Argument of update withdraw",)),
    SchemaSpec(ReviewItems, "validation", ("Argument of update review_items",)),
    SchemaSpec(FollowUp, "validation", ("Argument of update follow_up",)),
    SchemaSpec(ExtendDeadline, "validation", ("Argument of update extend_deadline",)),
    SchemaSpec(
        RequestState,
        "serialization",
        (
            "Result of query state",
            "Result of update opened",
            "Result of update review_items",
            "Result of update follow_up",
            "Result of update extend_deadline",
        ),
    ),
    SchemaSpec(
        RequestSummary,
        "serialization",
        (
            f"Result of workflow {WORKFLOW_TYPE}",
            "Result of update decide",
            "Result of update withdraw",
        ),
    ),
)


def _render(spec: SchemaSpec) -> str:
    schema = spec.model.model_json_schema(mode=spec.mode)
    schema.pop("$id", None)
    schema["$schema"] = JSON_SCHEMA_DIALECT
    schema["title"] = spec.model.__name__
    schema["description"] = "; ".join(spec.uses)
    return json.dumps(schema, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def render_schemas() -> dict[str, str]:
    """File name -> the schema text to commit under docs/schemas/."""
    return {spec.file_name: _render(spec) for spec in SCHEMAS}


def stale_files(directory: Path = SCHEMA_DIR) -> list[str]:
    """Files in `directory` that differ from, are missing from, or are not in render_schemas()."""
    expected = render_schemas()
    stale = [
        name
        for name, text in expected.items()
        if not (directory / name).is_file()
        or (directory / name).read_text(encoding="utf-8") != text
    ]
    if directory.is_dir():
        stale += [p.name for p in directory.glob(f"*{SUFFIX}") if p.name not in expected]
    return sorted(stale)


def write_schemas(directory: Path = SCHEMA_DIR) -> list[str]:
    """Write every schema (and remove ones no longer generated); returns the files changed."""
    changed = stale_files(directory)
    directory.mkdir(parents=True, exist_ok=True)
    expected = render_schemas()
    for name in changed:
        path = directory / name
        if name in expected:
            path.write_text(expected[name], encoding="utf-8")
        else:
            path.unlink()
    return changed


def main(argv: Sequence[str] | None = None, directory: Path = SCHEMA_DIR) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m domain.schemas", description=__doc__.splitlines()[0] if __doc__ else None
    )
    parser.add_argument(
        "--check",
        action="store_true",
        help="write nothing; exit 1 and list the stale files if the committed schemas differ",
    )
    args = parser.parse_args(argv)
    if args.check:
        stale = stale_files(directory)
        if stale:
            print(f"stale JSON Schemas in {directory} (run `make schemas`):", file=sys.stderr)
            for name in stale:
                print(f"  {name}", file=sys.stderr)
            return 1
        print(f"JSON Schemas in {directory} are up to date")
        return 0
    changed = write_schemas(directory)
    print(
        f"wrote {', '.join(changed)} in {directory}"
        if changed
        else f"JSON Schemas in {directory} were already up to date"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
