-- Change requests (DESIGN §14): a proposed update or delete of one segment, written against
-- a base version, reviewed, then applied now or at a time (by the scheduler). The writer is
-- core/change_requests.py through db/change_requests.py.
--
-- `fields`: what applying writes, as core.segments takes an update (stored names; rules as
-- SegmentRuleInput, references by segmentKey), only the fields the request changes.
-- `base`: the stored values of the segment at base_version (stored names, plus "deleted"),
-- to tell which fields changed since. `base_snapshot` / `proposed_snapshot`: the
-- revision-shaped definitions before and after, from which `changes` is shown.
-- `changed_fields`: the API names of the fields the request changes.

CREATE TABLE change_requests (
    project_id         bigint NOT NULL REFERENCES projects (id),
    id                 bigint GENERATED ALWAYS AS IDENTITY,
    segment_id         bigint NOT NULL,
    state              text NOT NULL DEFAULT 'OPEN' CHECK (
        state IN ('OPEN', 'APPROVED', 'SCHEDULED', 'APPLIED', 'REJECTED', 'CONFLICT', 'WITHDRAWN')
    ),
    author             text NOT NULL,
    note               text,
    base_version       integer NOT NULL,
    deletes            boolean NOT NULL,
    fields             jsonb NOT NULL,
    base               jsonb NOT NULL,
    base_snapshot      jsonb NOT NULL,
    proposed_snapshot  jsonb NOT NULL,
    changed_fields     text[] NOT NULL,
    apply_at           timestamptz,
    applied_by         text,
    applied_version    integer,
    conflict           text,
    created_at         timestamptz NOT NULL DEFAULT now(),
    updated_at         timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (project_id, id),
    FOREIGN KEY (project_id, segment_id) REFERENCES segments (project_id, id)
);
-- Segment.changeRequests and Query.changeRequests, newest first.
CREATE INDEX change_requests_segment ON change_requests (project_id, segment_id, id DESC);
-- What the scheduler polls: only scheduled requests, by time.
CREATE INDEX change_requests_due ON change_requests (apply_at) WHERE state = 'SCHEDULED';

-- One review per reviewer (API key name) and request: a reviewer's latest decision counts.
CREATE TABLE change_request_reviews (
    project_id         bigint NOT NULL REFERENCES projects (id),
    id                 bigint GENERATED ALWAYS AS IDENTITY,
    change_request_id  bigint NOT NULL,
    reviewer           text NOT NULL,
    decision           text NOT NULL CHECK (decision IN ('APPROVE', 'REJECT')),
    comment            text,
    created_at         timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (project_id, id),
    FOREIGN KEY (project_id, change_request_id) REFERENCES change_requests (project_id, id)
);
CREATE UNIQUE INDEX change_request_reviews_reviewer
    ON change_request_reviews (project_id, change_request_id, reviewer);
