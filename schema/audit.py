"""Audit events: who changed what, before and after, newest first."""

from collections.abc import Mapping
from datetime import datetime
from enum import Enum
from typing import Any, Self

import strawberry
from strawberry.scalars import JSON

from db import audit as db_audit
from schema.context import AppInfo
from schema.ids import encode_id
from schema.node import Node
from schema.pagination import (
    Connection,
    decode_cursor,
    encode_cursor,
    id_value,
    listing_connection,
    page_request,
)


@strawberry.enum(description="What happened to the entity.")
class AuditAction(Enum):
    CREATED = strawberry.enum_value("CREATED", description="It was created.")
    UPDATED = strawberry.enum_value("UPDATED", description="Some of its fields changed.")
    DELETED = strawberry.enum_value(
        "DELETED", description="It was (softly) deleted; archiving a flag is an UPDATED event."
    )
    RESTORED = strawberry.enum_value("RESTORED", description="A deleted entity was restored.")


@strawberry.type(description="One field's value before and after a change.")
class FieldChange:
    field: str = strawberry.field(description='Name of the field as in the API, e.g. "name".')
    before: JSON | None = strawberry.field(description="Value before; null on creation.")
    after: JSON | None = strawberry.field(description="Value after.")


@strawberry.type(description="A recorded change to a segment, flag or environment.")
class AuditEvent(Node):
    action: AuditAction = strawberry.field(description="What happened.")
    entity_type: str = strawberry.field(description='"segment", "flag", ...')
    entity_id: strawberry.ID = strawberry.field(description="Global id of the changed entity.")
    actor: str = strawberry.field(description="Name of the API key that made the change.")
    changes: list[FieldChange] = strawberry.field(
        description="Changed fields (all of them on creation)."
    )
    created_at: datetime = strawberry.field(description="When it happened.")

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> Self:
        entity_type = row["entity_type"]
        return cls(
            id=strawberry.ID(encode_id("AuditEvent", row["id"])),
            action=row["action"],
            entity_type=entity_type,
            # "segment" -> Segment, "changeRequest" -> ChangeRequest: the node type of the id.
            entity_id=strawberry.ID(
                encode_id(entity_type[:1].upper() + entity_type[1:], row["entity_id"])
            ),
            actor=row["actor"],
            changes=[
                FieldChange(
                    field=c["field"],
                    before=_api_value(c["field"], c.get("before")),
                    after=_api_value(c["field"], c.get("after")),
                )
                # Bounded again on read: events stored before the writer bounded them may
                # hold whole lists; on bounded ones this changes nothing.
                for c in map(db_audit.bounded_change, row["changes"])
            ],
            created_at=row["created_at"],
        )


def _api_value(field: str, value: Any) -> Any:
    """A stored value as the API shows it: targeting rules name segments by their global id,
    the one a client can look up, not by row id."""
    if not field.startswith("targetingRules."):
        return value
    if isinstance(value, dict) and isinstance(value.get("sample"), list):  # a long list, bounded
        return {**value, "sample": _api_value(field, value["sample"])}
    if not isinstance(value, list):
        return value
    return [
        {**rule, "segmentId": encode_id("Segment", rule["segmentId"])}
        if isinstance(rule, dict) and rule.get("segmentId") is not None
        else rule
        for rule in value
    ]


@strawberry.type(description="A page of audit events, newest first.")
class AuditEventConnection(Connection[AuditEvent]):
    pass


async def history_of(
    info: AppInfo,
    entity: tuple[str, int] | None,
    first: int | None,
    after: str | None,
    project_id: int,
) -> AuditEventConnection:
    ctx = info.context
    page = page_request(
        first=first,
        after=decode_cursor(after, "audit", id_value) if after else None,
        last=None,
        before=None,
        column="id",
        descending=True,
    )
    return await listing_connection(
        AuditEventConnection,
        ctx.db,
        db_audit.event_listing(project_id, entity),
        page,
        cursor=lambda row: encode_cursor("audit", row["id"], row["id"]),
        node=AuditEvent.from_row,
    )
