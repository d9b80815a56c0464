-- The data model of DESIGN §2. Every tenant table carries project_id and every foreign key
-- between tenant tables includes it, so the schema can be distributed by project later.

CREATE EXTENSION IF NOT EXISTS pg_trgm;

CREATE TABLE projects (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    key         text NOT NULL UNIQUE,
    name        text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE environments (
    project_id  bigint NOT NULL REFERENCES projects (id),
    id          bigint GENERATED ALWAYS AS IDENTITY,
    key         text NOT NULL,
    name        text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (project_id, id),
    UNIQUE (project_id, key)
);
CREATE UNIQUE INDEX environments_id ON environments (id);

CREATE TABLE api_keys (
    project_id  bigint NOT NULL REFERENCES projects (id),
    id          bigint GENERATED ALWAYS AS IDENTITY,
    name        text NOT NULL,
    role        text NOT NULL CHECK (role IN ('viewer', 'editor')),
    token_hash  text NOT NULL UNIQUE,
    created_at  timestamptz NOT NULL DEFAULT now(),
    revoked_at  timestamptz,
    PRIMARY KEY (project_id, id)
);

CREATE TABLE segments (
    project_id   bigint NOT NULL REFERENCES projects (id),
    id           bigint GENERATED ALWAYS AS IDENTITY,
    key          text NOT NULL,
    name         text NOT NULL,
    description  text,
    tags         text[] NOT NULL DEFAULT '{}',
    logical_op   text NOT NULL DEFAULT 'AND' CHECK (logical_op IN ('AND', 'OR', 'NOT')),
    rules        jsonb NOT NULL DEFAULT '[]',
    force        boolean NOT NULL DEFAULT false,
    included     text[] NOT NULL DEFAULT '{}',
    excluded     text[] NOT NULL DEFAULT '{}',
    version      integer NOT NULL DEFAULT 1,
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now(),
    deleted_at   timestamptz,
    PRIMARY KEY (project_id, id)
);
CREATE UNIQUE INDEX segments_id ON segments (id);
-- A deleted segment frees its key.
CREATE UNIQUE INDEX segments_live_key ON segments (project_id, key) WHERE deleted_at IS NULL;
-- Keyset order for every SegmentOrderField, ties broken by id.
CREATE INDEX segments_order_name ON segments (project_id, name, id);
CREATE INDEX segments_order_key ON segments (project_id, key, id);
CREATE INDEX segments_order_created ON segments (project_id, created_at, id);
CREATE INDEX segments_order_updated ON segments (project_id, updated_at, id);
-- Counting a project's live segments (totalCount, the live-segment limit) reads this small
-- index alone instead of the table.
CREATE INDEX segments_live ON segments (project_id) WHERE deleted_at IS NULL;
-- Case-insensitive substring search on name and key.
CREATE INDEX segments_search_name ON segments USING gin (name gin_trgm_ops);
CREATE INDEX segments_search_key ON segments USING gin (key gin_trgm_ops);
CREATE INDEX segments_tags ON segments USING gin (tags);

CREATE TABLE flags (
    project_id   bigint NOT NULL REFERENCES projects (id),
    id           bigint GENERATED ALWAYS AS IDENTITY,
    key          text NOT NULL,
    name         text NOT NULL,
    description  text,
    created_at   timestamptz NOT NULL DEFAULT now(),
    archived_at  timestamptz,
    PRIMARY KEY (project_id, id),
    UNIQUE (project_id, key)
);
CREATE UNIQUE INDEX flags_id ON flags (id);

CREATE TABLE targeting_rules (
    project_id      bigint NOT NULL,
    id              bigint GENERATED ALWAYS AS IDENTITY,
    flag_id         bigint NOT NULL,
    environment_id  bigint NOT NULL,
    order_index     integer NOT NULL,
    kind            text NOT NULL CHECK (kind IN ('SEGMENT', 'CUSTOM')),
    segment_id      bigint,
    logical_op      text CHECK (logical_op IN ('AND', 'OR', 'NOT')),
    rules           jsonb NOT NULL DEFAULT '[]',
    variation_key   text,
    rollout_key     text,
    PRIMARY KEY (project_id, id),
    FOREIGN KEY (project_id, flag_id) REFERENCES flags (project_id, id),
    FOREIGN KEY (project_id, environment_id) REFERENCES environments (project_id, id),
    FOREIGN KEY (project_id, segment_id) REFERENCES segments (project_id, id),
    UNIQUE (project_id, flag_id, environment_id, order_index),
    CHECK ((kind = 'SEGMENT') = (segment_id IS NOT NULL)),
    CHECK ((variation_key IS NULL) <> (rollout_key IS NULL))
);
CREATE INDEX targeting_rules_segment ON targeting_rules (project_id, segment_id)
    WHERE segment_id IS NOT NULL;

CREATE TABLE audit_events (
    project_id   bigint NOT NULL REFERENCES projects (id),
    id           bigint GENERATED ALWAYS AS IDENTITY,
    entity_type  text NOT NULL,
    entity_id    bigint NOT NULL,
    action       text NOT NULL CHECK (action IN ('CREATED', 'UPDATED', 'DELETED', 'RESTORED')),
    actor        text NOT NULL,
    changes      jsonb NOT NULL DEFAULT '[]',
    created_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (project_id, id)
);
CREATE UNIQUE INDEX audit_events_id ON audit_events (id);
-- Newest first, per project and per entity.
CREATE INDEX audit_events_project ON audit_events (project_id, id DESC);
CREATE INDEX audit_events_entity ON audit_events (project_id, entity_type, entity_id, id DESC);
