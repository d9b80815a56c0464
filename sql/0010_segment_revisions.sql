-- Revisions (DESIGN §14): every write that bumps a segment's version stores the definition
-- it leaves, in the contract's input shapes, so a snapshot can be sent back as an update:
-- {"key", "name", "description", "tags", "logicalOp", "rules", "force", "salt",
--  "included", "excluded", "deleted"}, rules as SegmentRuleInput ({"condition": {...}},
-- {"group": {"logicalOp", "rules"}}, {"segment": {"segmentKey", "negate"}}), a reference
-- naming the referenced segment's key at that version. The writer is db.segments; this
-- migration gives every existing segment a revision of its current version.

CREATE TABLE segment_revisions (
    project_id  bigint NOT NULL REFERENCES projects (id),
    id          bigint GENERATED ALWAYS AS IDENTITY,
    segment_id  bigint NOT NULL,
    version     integer NOT NULL,
    snapshot    jsonb NOT NULL,
    actor       text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (project_id, id),
    FOREIGN KEY (project_id, segment_id) REFERENCES segments (project_id, id)
);
-- One revision per version; also the keyset order of Segment.revisions (newest first).
CREATE UNIQUE INDEX segment_revisions_version
    ON segment_revisions (project_id, segment_id, version);

-- Stored rules (by segment id) to SegmentRuleInput shapes (by key), for the backfill only;
-- the application converts with rules.models.rules_as_input.
CREATE FUNCTION pg_temp.rules_as_input(project bigint, stored jsonb) RETURNS jsonb
LANGUAGE plpgsql STABLE AS $$
BEGIN
    RETURN coalesce(
        (
            SELECT jsonb_agg(
                CASE
                    WHEN rule ? 'segmentId' THEN jsonb_build_object(
                        'segment', jsonb_build_object(
                            'segmentKey', (
                                SELECT s.key FROM segments s
                                WHERE s.project_id = project
                                  AND s.id = (rule ->> 'segmentId')::bigint
                            ),
                            'negate', rule -> 'negate'
                        )
                    )
                    WHEN rule ? 'logicalOp' THEN jsonb_build_object(
                        'group', jsonb_build_object(
                            'logicalOp', rule -> 'logicalOp',
                            'rules', pg_temp.rules_as_input(project, rule -> 'rules')
                        )
                    )
                    ELSE jsonb_build_object('condition', rule)
                END
                ORDER BY position
            )
            FROM jsonb_array_elements(stored) WITH ORDINALITY AS item (rule, position)
        ),
        '[]'::jsonb
    );
END
$$;

INSERT INTO segment_revisions (project_id, segment_id, version, snapshot, actor, created_at)
SELECT s.project_id, s.id, s.version,
       jsonb_build_object(
           'key', s.key,
           'name', s.name,
           'description', s.description,
           'tags', to_jsonb(s.tags),
           'logicalOp', s.logical_op,
           'rules', pg_temp.rules_as_input(s.project_id, s.rules),
           'force', s.force,
           'salt', s.salt,
           'included', to_jsonb(s.included),
           'excluded', to_jsonb(s.excluded),
           'deleted', s.deleted_at IS NOT NULL
       ),
       coalesce(
           (
               SELECT a.actor FROM audit_events a
               WHERE a.project_id = s.project_id
                 AND a.entity_type = 'segment'
                 AND a.entity_id = s.id
               ORDER BY a.id DESC
               LIMIT 1
           ),
           'migration'
       ),
       s.updated_at
FROM segments s;

DROP FUNCTION pg_temp.rules_as_input(bigint, jsonb);
