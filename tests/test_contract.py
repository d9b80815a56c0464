"""The served schema keeps the public contract that clients generate code from."""

from pathlib import Path

import pytest
from graphql import build_schema, find_breaking_changes

from schema.build import export_sdl

SHARED = Path(__file__).resolve().parent.parent.parent / "shared"
# Read as one document, in this order: the profiles part extends types of the first.
CONTRACTS = [SHARED / "contract.graphql", SHARED / "contract-profiles.graphql"]


@pytest.mark.skipif(
    not all(path.exists() for path in CONTRACTS),
    reason="../shared/contract*.graphql are not beside the repo",
)
def test_served_schema_has_no_breaking_change_from_the_contracts():
    contract = build_schema("\n".join(path.read_text() for path in CONTRACTS))
    served = build_schema(export_sdl())
    assert [c.description for c in find_breaking_changes(contract, served)] == []


def test_every_type_field_argument_and_enum_value_has_a_description():
    served = build_schema(export_sdl())
    missing = []
    for name, graphql_type in served.type_map.items():
        if name.startswith("__") or name in {"String", "Int", "Float", "Boolean", "ID"}:
            continue
        if not graphql_type.description:
            missing.append(name)
        for field_name, field in (getattr(graphql_type, "fields", None) or {}).items():
            if not field.description:
                missing.append(f"{name}.{field_name}")
            for arg_name, arg in (getattr(field, "args", None) or {}).items():
                if not arg.description:
                    missing.append(f"{name}.{field_name}({arg_name})")
        for value_name, value in (getattr(graphql_type, "values", None) or {}).items():
            if not value.description:
                missing.append(f"{name}.{value_name}")
    assert missing == []
