"""Assembles the Strawberry schema served at /graphql and exported as schema.graphql."""

from functools import cache

import strawberry
from graphql import GraphQLError
from strawberry.types import ExecutionContext

from schema.audit import AuditEvent
from schema.change_requests import ChangeRequest
from schema.flags import Flag
from schema.mutations import Mutation
from schema.profiles import Profile
from schema.projects import Environment, Project
from schema.query import Query
from schema.segments import Segment


class SegmentsSchema(strawberry.Schema):
    def process_errors(
        self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None
    ) -> None:
        # The HTTP layer logs unexpected errors once, with the request id, and masks them.
        return None


@cache
def build_schema() -> SegmentsSchema:
    return SegmentsSchema(
        query=Query,
        mutation=Mutation,
        types=[Segment, Flag, Environment, Project, AuditEvent, Profile, ChangeRequest],
    )


def export_sdl() -> str:
    return build_schema().as_str() + "\n"
