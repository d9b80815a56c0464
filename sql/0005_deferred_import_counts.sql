-- Imports count their profiles at the end, so a long import does not hold the project's
-- profile counter row (sql/0004) for its whole transaction and API upserts of the same
-- project keep going meanwhile (issue 21).
--
-- A transaction that sets `segments.deferred_count_project` to a project id (transaction-
-- local, see db/profiles.py copy_profiles) has the triggers add that project's inserted and
-- deleted rows to `segments.deferred_count` instead of the counter row; the import then adds
-- that sum to the counter in one short last step, in the same transaction, and checks the
-- limit under the counter's lock. The counter stays exact: the sum comes from the same
-- transition tables, and it commits or rolls back with the rows it counts. Every other write
-- is counted as before.

CREATE FUNCTION profile_counts_defer(delta bigint) RETURNS void
LANGUAGE sql AS $$
    SELECT set_config(
        'segments.deferred_count',
        (coalesce(nullif(current_setting('segments.deferred_count', true), ''), '0')::bigint + delta)::text,
        true
    );
$$;

CREATE OR REPLACE FUNCTION profile_counts_add() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    deferred bigint := nullif(current_setting('segments.deferred_count_project', true), '')::bigint;
BEGIN
    IF deferred IS NOT NULL THEN
        PERFORM profile_counts_defer((SELECT count(*) FROM inserted WHERE project_id = deferred));
    END IF;
    INSERT INTO profile_counts AS c (project_id, profiles)
    SELECT project_id, count(*) FROM inserted WHERE project_id IS DISTINCT FROM deferred GROUP BY project_id
    ON CONFLICT (project_id) DO UPDATE SET profiles = c.profiles + EXCLUDED.profiles;
    RETURN NULL;
END;
$$;

CREATE OR REPLACE FUNCTION profile_counts_subtract() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    deferred bigint := nullif(current_setting('segments.deferred_count_project', true), '')::bigint;
BEGIN
    IF deferred IS NOT NULL THEN
        PERFORM profile_counts_defer(-(SELECT count(*) FROM deleted WHERE project_id = deferred));
    END IF;
    UPDATE profile_counts c
    SET profiles = c.profiles - d.n
    FROM (
        SELECT project_id, count(*) AS n FROM deleted
        WHERE project_id IS DISTINCT FROM deferred
        GROUP BY project_id
    ) d
    WHERE c.project_id = d.project_id;
    RETURN NULL;
END;
$$;
