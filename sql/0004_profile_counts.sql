-- How many profiles each project stores, for the per-project limit (DESIGN §11), so the check
-- after a write reads one row instead of counting the project's profiles.
--
-- Kept exact by statement-level triggers with transition tables: they run once per statement
-- (one per COPY chunk of an import), adding the rows inserted and subtracting the rows
-- deleted, per project. INSERT ... ON CONFLICT DO UPDATE puts the rows it replaced in the
-- UPDATE transition table, not the INSERT one, so replacing a profile does not count it
-- twice. A missing row means 0. `project_id` of a profile never changes.
--
-- The counter row is also the lock that serialises a project's profile writes: writers take
-- it first (db/profiles.py), so concurrent upserts cannot both pass the limit.

CREATE TABLE profile_counts (
    project_id  bigint PRIMARY KEY REFERENCES projects (id),
    profiles    bigint NOT NULL CHECK (profiles >= 0)
);

CREATE FUNCTION profile_counts_add() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO profile_counts AS c (project_id, profiles)
    SELECT project_id, count(*) FROM inserted GROUP BY project_id
    ON CONFLICT (project_id) DO UPDATE SET profiles = c.profiles + EXCLUDED.profiles;
    RETURN NULL;
END;
$$;

CREATE FUNCTION profile_counts_subtract() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    UPDATE profile_counts c
    SET profiles = c.profiles - d.n
    FROM (SELECT project_id, count(*) AS n FROM deleted GROUP BY project_id) d
    WHERE c.project_id = d.project_id;
    RETURN NULL;
END;
$$;

CREATE FUNCTION profile_counts_clear() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM profile_counts;
    RETURN NULL;
END;
$$;

-- Creating the triggers locks `profiles` against writes until this migration commits, so the
-- counts taken below miss nothing.
CREATE TRIGGER profile_counts_insert
    AFTER INSERT ON profiles
    REFERENCING NEW TABLE AS inserted
    FOR EACH STATEMENT EXECUTE FUNCTION profile_counts_add();

CREATE TRIGGER profile_counts_delete
    AFTER DELETE ON profiles
    REFERENCING OLD TABLE AS deleted
    FOR EACH STATEMENT EXECUTE FUNCTION profile_counts_subtract();

CREATE TRIGGER profile_counts_truncate
    AFTER TRUNCATE ON profiles
    FOR EACH STATEMENT EXECUTE FUNCTION profile_counts_clear();

INSERT INTO profile_counts (project_id, profiles)
SELECT project_id, count(*) FROM profiles GROUP BY project_id;
