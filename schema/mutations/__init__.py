"""Mutation: the write side of the API, one module per domain."""

import strawberry

from schema.mutations.change_requests import ChangeRequestMutations
from schema.mutations.flags import FlagMutations
from schema.mutations.profiles import ProfileMutations
from schema.mutations.projects import ProjectMutations
from schema.mutations.segments import SegmentMutations
from schema.mutations.targets import TargetMutations


@strawberry.type(description="The write side of the segments API; every field needs an editor key.")
class Mutation(
    SegmentMutations,
    TargetMutations,
    FlagMutations,
    ProfileMutations,
    ProjectMutations,
    ChangeRequestMutations,
):
    pass
