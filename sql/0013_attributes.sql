-- The attribute catalogue and declared attributes (DESIGN §15).
--
-- `attribute_counts` holds, per project, dotted attribute path (as conditions name it: the
-- keys of a profile's flattened `context`, sql/0002, without "targetingKey") and JSON type,
-- how many stored profiles hold a value of that type there. An array is one value of type
-- "array" at its path (flattening does not descend into arrays); an empty object leaves no
-- path. A row whose count reaches 0 is deleted, so the catalogue lists what profiles hold now.
--
-- Kept exact by statement-level triggers on `profiles` with transition tables, like the
-- profile counter (sql/0004): each statement (one API upsert or delete, one COPY chunk of an
-- import) adds the paths of the rows it wrote and subtracts those of the rows it replaced or
-- deleted, set-wise, in its own transaction. An upsert that leaves a profile's attributes as
-- they were touches no catalogue row. Rows are locked in (project, path, type) order, so two
-- writers cannot wait for each other's catalogue rows in a cycle.
--
-- Imports defer, as they do for the counter (sql/0005): while `segments.deferred_count_project`
-- names a project, that project's deltas go to the transaction's temporary table
-- `attribute_count_deltas` (db/profiles.py copy_profiles creates it) and the import adds them
-- in one last statement, so a long import does not hold the catalogue rows of common paths
-- (which every API write of the project touches) for its whole transaction.

CREATE TABLE attribute_counts (
    project_id  bigint NOT NULL REFERENCES projects (id),
    path        text COLLATE "C" NOT NULL,
    json_type   text NOT NULL
        CHECK (json_type IN ('string', 'number', 'boolean', 'array', 'object', 'null')),
    -- No CHECK (profiles >= 0): PostgreSQL checks the row an INSERT ... ON CONFLICT proposes,
    -- and a delta that subtracts is negative before it meets its row.
    profiles    bigint NOT NULL,
    PRIMARY KEY (project_id, path, json_type)
);

CREATE TABLE attribute_definitions (
    project_id      bigint NOT NULL REFERENCES projects (id),
    -- Names the definition in audit events (a path declared again after removal is a new one).
    id              bigint GENERATED ALWAYS AS IDENTITY,
    path            text COLLATE "C" NOT NULL,
    type            text NOT NULL
        CHECK (type IN ('STRING', 'NUMBER', 'BOOLEAN', 'DATETIME', 'SEMVER', 'STRING_LIST')),
    description     text,
    -- A JSON array of the values a condition may name; null: any value of the type.
    allowed_values  jsonb CHECK (allowed_values IS NULL OR jsonb_typeof(allowed_values) = 'array'),
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (project_id, path)
);

-- The catalogue paths and types of one stored context: the one definition the triggers, the
-- backfill below and the tests' recount share.
CREATE FUNCTION attribute_paths(context jsonb) RETURNS TABLE (path text, json_type text)
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT e.key, jsonb_typeof(e.value)
    FROM jsonb_each(context) AS e
    WHERE e.key <> 'targetingKey'
$$;

-- Add per-(project, path, type) deltas (parallel arrays, each triple at most once) to the
-- catalogue, or to the import's deferred deltas for the deferred project.
CREATE FUNCTION attribute_counts_apply(
    project_ids bigint[], paths text[], json_types text[], deltas bigint[]
) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    deferred bigint := nullif(current_setting('segments.deferred_count_project', true), '')::bigint;
BEGIN
    IF project_ids IS NULL THEN
        RETURN;
    END IF;
    IF deferred IS NOT NULL THEN
        INSERT INTO pg_temp.attribute_count_deltas AS c (path, json_type, delta)
        SELECT d.path, d.json_type, d.delta
        FROM unnest(project_ids, paths, json_types, deltas) AS d (project_id, path, json_type, delta)
        WHERE d.project_id = deferred
        ON CONFLICT (path, json_type) DO UPDATE SET delta = c.delta + EXCLUDED.delta;
    END IF;
    INSERT INTO attribute_counts AS c (project_id, path, json_type, profiles)
    SELECT d.project_id, d.path, d.json_type, d.delta
    FROM unnest(project_ids, paths, json_types, deltas) AS d (project_id, path, json_type, delta)
    WHERE d.project_id IS DISTINCT FROM deferred
    ORDER BY d.project_id, d.path, d.json_type
    ON CONFLICT (project_id, path, json_type) DO UPDATE SET profiles = c.profiles + EXCLUDED.profiles;
    DELETE FROM attribute_counts c
    USING unnest(project_ids, paths, json_types, deltas) AS d (project_id, path, json_type, delta)
    WHERE c.project_id = d.project_id
      AND c.path = d.path
      AND c.json_type = d.json_type
      AND d.delta < 0
      AND c.profiles = 0
      AND d.project_id IS DISTINCT FROM deferred;
END;
$$;

CREATE FUNCTION attribute_counts_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        PERFORM attribute_counts_apply(
            array_agg(d.project_id), array_agg(d.path), array_agg(d.json_type), array_agg(d.delta)
        )
        FROM (
            SELECT r.project_id, a.path, a.json_type, count(*) AS delta
            FROM new_rows r, attribute_paths(r.context) a
            GROUP BY 1, 2, 3
        ) d;
    ELSIF TG_OP = 'DELETE' THEN
        PERFORM attribute_counts_apply(
            array_agg(d.project_id), array_agg(d.path), array_agg(d.json_type), array_agg(d.delta)
        )
        FROM (
            SELECT r.project_id, a.path, a.json_type, -count(*) AS delta
            FROM old_rows r, attribute_paths(r.context) a
            GROUP BY 1, 2, 3
        ) d;
    ELSE
        PERFORM attribute_counts_apply(
            array_agg(d.project_id), array_agg(d.path), array_agg(d.json_type), array_agg(d.delta)
        )
        FROM (
            SELECT c.project_id, c.path, c.json_type, sum(c.delta)::bigint AS delta
            FROM (
                SELECT r.project_id, a.path, a.json_type, 1 AS delta
                FROM new_rows r, attribute_paths(r.context) a
                UNION ALL
                SELECT r.project_id, a.path, a.json_type, -1
                FROM old_rows r, attribute_paths(r.context) a
            ) c
            GROUP BY 1, 2, 3
            HAVING sum(c.delta) <> 0
        ) d;
    END IF;
    RETURN NULL;
END;
$$;

CREATE FUNCTION attribute_counts_clear() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM attribute_counts;
    RETURN NULL;
END;
$$;

-- Creating the triggers locks `profiles` against writes until this migration commits, so the
-- counts taken below miss nothing.
CREATE TRIGGER attribute_counts_insert
    AFTER INSERT ON profiles
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION attribute_counts_change();

CREATE TRIGGER attribute_counts_update
    AFTER UPDATE ON profiles
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION attribute_counts_change();

CREATE TRIGGER attribute_counts_delete
    AFTER DELETE ON profiles
    REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION attribute_counts_change();

CREATE TRIGGER attribute_counts_truncate
    AFTER TRUNCATE ON profiles
    FOR EACH STATEMENT EXECUTE FUNCTION attribute_counts_clear();

INSERT INTO attribute_counts (project_id, path, json_type, profiles)
SELECT p.project_id, a.path, a.json_type, count(*)
FROM profiles p, attribute_paths(p.context) a
GROUP BY 1, 2, 3;

-- The attribute paths a stored rule list names in its conditions, nested groups included
-- (references to other segments name none), for `Attribute.usedBySegments`: an expression
-- index over live segments answers "how many name this path" without reading every rule.
CREATE FUNCTION rule_attributes(rules jsonb) RETURNS text[]
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT coalesce(array_agg(DISTINCT a.path ORDER BY a.path), '{}')
    FROM jsonb_path_query(rules, 'lax $.**.attribute') AS q (value),
         LATERAL (SELECT q.value #>> '{}') AS a (path)
    WHERE jsonb_typeof(q.value) = 'string'
$$;

CREATE INDEX segments_rule_attributes ON segments USING gin (rule_attributes(rules))
    WHERE deleted_at IS NULL;
