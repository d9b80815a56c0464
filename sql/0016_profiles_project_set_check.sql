-- An import writes a million profiles in chunks of 10,000 rows. The row-level foreign key to
-- projects checked each row on its own (a lookup and a row lock per profile): 9 of the 63
-- seconds of a 1,000,000-profile import, measured. The same guarantee, checked once per
-- statement over the projects its rows name, as sql/0014 does for segment_targets:
-- statement triggers with transition tables (which the counter and catalogue triggers
-- capture already).
--
-- Writers of profiles lock the projects they reference FOR KEY SHARE (as the foreign key's
-- check did), so a concurrent delete of such a project waits, then sees the rows and fails;
-- deleting a project that still has profiles fails. A project's id cannot change (GENERATED
-- ALWAYS refuses updates), so deletes are the only way a referenced project can go.

ALTER TABLE profiles DROP CONSTRAINT profiles_project_id_fkey;

CREATE FUNCTION profiles_project_check() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    missing bigint;
BEGIN
    PERFORM 1
    FROM projects pr
    JOIN (SELECT DISTINCT project_id FROM written_profiles) w ON pr.id = w.project_id
    FOR KEY SHARE OF pr;
    SELECT w.project_id INTO missing
    FROM (SELECT DISTINCT project_id FROM written_profiles) w
    WHERE NOT EXISTS (SELECT 1 FROM projects pr WHERE pr.id = w.project_id)
    LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'insert or update on table "profiles" violates its reference to "projects"'
            USING ERRCODE = 'foreign_key_violation',
                  DETAIL = format('Key (project_id)=(%s) is not present in table "projects".', missing);
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER profiles_project_insert
    AFTER INSERT ON profiles
    REFERENCING NEW TABLE AS written_profiles
    FOR EACH STATEMENT EXECUTE FUNCTION profiles_project_check();

CREATE TRIGGER profiles_project_update
    AFTER UPDATE ON profiles
    REFERENCING NEW TABLE AS written_profiles
    FOR EACH STATEMENT EXECUTE FUNCTION profiles_project_check();

CREATE FUNCTION projects_profiles_left_check() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    left_over bigint;
BEGIN
    SELECT p.project_id INTO left_over
    FROM old_projects o
    JOIN profiles p ON p.project_id = o.id
    LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'update or delete on table "projects" violates the reference from "profiles"'
            USING ERRCODE = 'foreign_key_violation',
                  DETAIL = format('Key (id)=(%s) is still referenced from table "profiles".', left_over);
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER projects_profiles_left_delete
    AFTER DELETE ON projects
    REFERENCING OLD TABLE AS old_projects
    FOR EACH STATEMENT EXECUTE FUNCTION projects_profiles_left_check();
