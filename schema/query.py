"""Query: the read side of the API."""

from typing import Annotated

import strawberry
from strawberry.scalars import JSON

from schema import attributes, flags, profiles, segments, targeting
from schema.attributes import Attribute, AttributeConnection
from schema.audit import AuditEvent, AuditEventConnection, history_of
from schema.change_requests import (
    ChangeRequest,
    ChangeRequestConnection,
    ChangeRequestState,
    change_requests_of,
)
from schema.context import AppInfo
from schema.evaluation import SegmentEvaluation, evaluate_segment
from schema.flags import Flag, FlagConnection
from schema.ids import decode_id
from schema.impact import SegmentImpactPayload, segment_change_impact
from schema.mutations.segments import UpdateSegmentInput
from schema.node import Node
from schema.profiles import PreviewSegmentInput, Profile, ProfileConnection, SegmentPreview
from schema.projects import Environment, Project
from schema.segments import (
    Segment,
    SegmentConnection,
    SegmentFilter,
    SegmentOrder,
    SegmentOverlap,
)
from schema.targeting import TargetingEvaluation

ProjectKey = Annotated[
    str, strawberry.argument(description="Key of the project (the token's own).")
]
First = Annotated[
    int | None, strawberry.argument(description="Page size from the start, 0-100 (default 50).")
]
After = Annotated[str | None, strawberry.argument(description="Cursor to continue after.")]


@strawberry.type(description="The read side of the segments API.")
class Query:
    @strawberry.field(description="Any object by its global id; null when unknown or not visible.")
    async def node(
        self,
        info: AppInfo,
        id: Annotated[strawberry.ID, strawberry.argument(description="A global id.")],
    ) -> Node | None:
        decoded = decode_id(id)
        if decoded is None:
            return None
        type_name, db_id = decoded
        loaders = info.context.loaders
        if type_name == "Segment":
            row = await loaders.segment.load(db_id)
            return Segment.from_row(row) if row and row["deleted_at"] is None else None
        if type_name == "Flag":
            row = await loaders.flag.load(db_id)
            return Flag.from_row(row) if row else None
        if type_name == "Environment":
            row = await loaders.environment.load(db_id)
            return Environment.from_row(row) if row else None
        if type_name == "Project":
            row = await loaders.project.load(db_id)
            return Project.from_row(row) if row else None
        if type_name == "AuditEvent":
            row = await loaders.audit_event.load(db_id)
            return AuditEvent.from_row(row) if row else None
        if type_name == "ChangeRequest":
            row = await loaders.change_request.load(db_id)
            return ChangeRequest.from_row(row) if row else None
        if type_name == "Profile":
            row = await loaders.profile.load(db_id)
            return Profile.from_row(row) if row else None
        return None

    @strawberry.field(description="The project with this key, if the token belongs to it.")
    async def project(
        self, info: AppInfo, key: Annotated[str, strawberry.argument(description="Project key.")]
    ) -> Project | None:
        ctx = info.context
        if key != ctx.principal.project_key:
            return None
        row = await ctx.loaders.project.load(ctx.principal.project_id)
        return Project.from_row(row) if row else None

    @strawberry.field(description="A live segment by key.")
    async def segment(
        self,
        info: AppInfo,
        project_key: ProjectKey,
        key: Annotated[str, strawberry.argument(description="Segment key.")],
    ) -> Segment | None:
        return await segments.segment_by_key(info, project_key, key)

    @strawberry.field(
        description="How many stored profiles only segment a, only b, both and either "
        "match: exact, in SQL; null when either key names no live segment."
    )
    async def segment_overlap(
        self,
        info: AppInfo,
        project_key: ProjectKey,
        a: Annotated[str, strawberry.argument(description="Key of segment A.")],
        b: Annotated[str, strawberry.argument(description="Key of segment B.")],
    ) -> SegmentOverlap | None:
        return await segments.segment_overlap(info, project_key, a, b)

    @strawberry.field(description="Segments of a project: a keyset-paginated Relay connection.")
    async def segments(
        self,
        info: AppInfo,
        project_key: ProjectKey,
        first: First = None,
        after: After = None,
        last: Annotated[
            int | None, strawberry.argument(description="Page size from the end, 0-100.")
        ] = None,
        before: Annotated[
            str | None, strawberry.argument(description="Cursor to continue before.")
        ] = None,
        search: Annotated[
            str | None,
            strawberry.argument(description="Case-insensitive substring of name or key."),
        ] = None,
        order_by: Annotated[
            SegmentOrder | None,
            strawberry.argument(description="Sort order (default name ascending)."),
        ] = None,
        filter: Annotated[
            SegmentFilter | None, strawberry.argument(description="Narrows the list.")
        ] = None,
    ) -> SegmentConnection:
        return await segments.list_segments(
            info, project_key, first, after, last, before, search, order_by, filter
        )

    @strawberry.field(description="A flag by key.")
    async def flag(
        self,
        info: AppInfo,
        project_key: ProjectKey,
        key: Annotated[str, strawberry.argument(description="Flag key.")],
    ) -> Flag | None:
        return await flags.flag_by_key(info, project_key, key)

    @strawberry.field(description="Flags of a project by key.")
    async def flags(
        self,
        info: AppInfo,
        project_key: ProjectKey,
        first: First = None,
        after: After = None,
        search: Annotated[
            str | None,
            strawberry.argument(description="Case-insensitive substring of name or key."),
        ] = None,
    ) -> FlagConnection:
        return await flags.list_flags(info, project_key, first, after, search)

    @strawberry.field(description="The project's audit log, newest first.")
    async def audit_log(
        self, info: AppInfo, project_key: ProjectKey, first: First = None, after: After = None
    ) -> AuditEventConnection:
        return await history_of(info, None, first, after, info.context.project_id_for(project_key))

    @strawberry.field(description="The project's change requests, newest first.")
    async def change_requests(
        self,
        info: AppInfo,
        project_key: ProjectKey,
        state: Annotated[
            ChangeRequestState | None, strawberry.argument(description="Only this state.")
        ] = None,
        first: Annotated[int | None, strawberry.argument(description="Page size, 0-100.")] = 20,
        after: After = None,
    ) -> ChangeRequestConnection:
        project_id = info.context.project_id_for(project_key)
        return await change_requests_of(info, project_id, None, state, first, after)

    @strawberry.field(description="Whether a context matches a live segment, and why.")
    async def evaluate_segment(
        self,
        info: AppInfo,
        project_key: ProjectKey,
        key: Annotated[str, strawberry.argument(description="Segment key.")],
        context: Annotated[
            JSON,
            strawberry.argument(
                description="The evaluation context, a JSON object with targetingKey."
            ),
        ],
    ) -> SegmentEvaluation:
        return await evaluate_segment(info, project_key, key, context)

    @strawberry.field(
        description="Which targeting rule of a flag a context meets in one environment, and "
        "why: the flag's rules in order, first match wins; nothing is stored."
    )
    async def evaluate_targeting(
        self,
        info: AppInfo,
        project_key: ProjectKey,
        flag_key: Annotated[str, strawberry.argument(description="Key of a live flag.")],
        environment_key: Annotated[
            str, strawberry.argument(description='Environment key, e.g. "production".')
        ],
        context: Annotated[
            JSON,
            strawberry.argument(
                description="The evaluation context, a JSON object with targetingKey."
            ),
        ],
    ) -> TargetingEvaluation:
        return await targeting.evaluate_targeting(
            info, project_key, flag_key, environment_key, context
        )

    @strawberry.field(description="A stored profile by its targetingKey.")
    async def profile(
        self,
        info: AppInfo,
        project_key: ProjectKey,
        targeting_key: Annotated[
            str, strawberry.argument(description="The profile's targetingKey.")
        ],
    ) -> Profile | None:
        return await profiles.profile_by_key(info, project_key, targeting_key)

    @strawberry.field(
        description="Every attribute path a project's stored profiles hold or its editors "
        "declared, path ascending (keyset pages): which attributes a rule can target."
    )
    async def attributes(
        self,
        info: AppInfo,
        project_key: ProjectKey,
        search: Annotated[
            str | None,
            strawberry.argument(description="Case-insensitive substring of the path."),
        ] = None,
        first: First = None,
        after: After = None,
    ) -> AttributeConnection:
        return await attributes.list_attributes(info, project_key, search, first, after)

    @strawberry.field(
        description="One attribute by its dotted path; null when neither seen nor declared."
    )
    async def attribute(
        self,
        info: AppInfo,
        project_key: ProjectKey,
        path: Annotated[str, strawberry.argument(description='Dotted path, e.g. "user.plan".')],
    ) -> Attribute | None:
        return await attributes.attribute_by_path(info, project_key, path)

    @strawberry.field(
        description="Stored profiles of a project, targetingKey ascending (keyset pages)."
    )
    async def profiles(
        self,
        info: AppInfo,
        project_key: ProjectKey,
        first: First = None,
        after: After = None,
        search: Annotated[
            str | None,
            strawberry.argument(description="Case-insensitive substring of the targetingKey."),
        ] = None,
    ) -> ProfileConnection:
        return await profiles.list_profiles(info, project_key, first, after, search)

    @strawberry.field(
        description="How many stored profiles an unsaved segment definition matches now, with a sample."
    )
    async def preview_segment(
        self,
        info: AppInfo,
        input: Annotated[
            PreviewSegmentInput,
            strawberry.argument(description="The definition, validated like createSegment's."),
        ],
    ) -> SegmentPreview:
        return await profiles.preview_segment(info, input)

    @strawberry.field(
        description="Who would enter and leave if this update were applied now; validated "
        "like updateSegment, writes nothing."
    )
    async def segment_change_impact(
        self,
        info: AppInfo,
        input: Annotated[
            UpdateSegmentInput,
            strawberry.argument(description="The update, as updateSegment takes it."),
        ],
    ) -> SegmentImpactPayload:
        return await segment_change_impact(info, input)
