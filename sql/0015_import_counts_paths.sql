-- An import counts the catalogue paths of the rows it writes itself. It has every profile's
-- flattened context in hand before sending it (db/profiles.py ImportChunk), and PostgreSQL's
-- walk over each new context (attribute_paths for every row of every COPY chunk) was a sixth
-- of a 1,000,000-profile import. While `segments.deferred_count_project` names the importing
-- project (sql/0005, sql/0013), the triggers therefore leave out that project's new rows:
-- inserts add nothing, updates subtract only the replaced rows' paths, and the import adds
-- its own count of the paths it wrote to the same deferred deltas (db/attributes.py
-- add_import_paths). Every other write counts both sides here, as before.

CREATE OR REPLACE FUNCTION attribute_counts_change() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    importing bigint := nullif(current_setting('segments.deferred_count_project', true), '')::bigint;
BEGIN
    IF TG_OP = 'INSERT' THEN
        PERFORM attribute_counts_apply(
            array_agg(d.project_id), array_agg(d.path), array_agg(d.json_type), array_agg(d.delta)
        )
        FROM (
            SELECT r.project_id, a.path, a.json_type, count(*) AS delta
            FROM new_rows r, attribute_paths(r.context) a
            WHERE r.project_id IS DISTINCT FROM importing
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
                WHERE r.project_id IS DISTINCT FROM importing
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
