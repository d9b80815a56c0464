-- Big (unbounded) segments (DESIGN §13): their included and excluded keys are rows, up to
-- millions per segment, looked up by primary key; the arrays on segments stay empty for them.
-- The counts live on the segment row, kept by the writes that change the rows, so reading
-- them never counts millions of rows.

ALTER TABLE segments
    ADD COLUMN unbounded      boolean NOT NULL DEFAULT false,
    ADD COLUMN generation     integer NOT NULL DEFAULT 0,
    ADD COLUMN included_count integer NOT NULL DEFAULT 0,
    ADD COLUMN excluded_count integer NOT NULL DEFAULT 0;

-- "C" collation: keys order by code point (the targets connection's order) and a prefix is
-- a range of the primary key.
CREATE TABLE segment_targets (
    project_id     bigint NOT NULL,
    segment_id     bigint NOT NULL,
    kind           text NOT NULL CHECK (kind IN ('included', 'excluded')),
    targeting_key  text COLLATE "C" NOT NULL,
    added_at       timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (project_id, segment_id, kind, targeting_key),
    FOREIGN KEY (project_id, segment_id) REFERENCES segments (project_id, id)
);
