-- Profiles (DESIGN §11): known evaluation contexts, so segments can be asked who they match.
-- `attributes` is the object as given; `context` its flattened form (dotted keys plus
-- "targetingKey"), computed on write by the evaluator's own flattening, which member queries
-- read attribute by attribute.

CREATE TABLE profiles (
    project_id     bigint NOT NULL REFERENCES projects (id),
    id             bigint GENERATED ALWAYS AS IDENTITY,
    -- Byte order: keyset pages and member merges compare keys the same way everywhere, and
    -- comparisons skip locale rules.
    targeting_key  text COLLATE "C" NOT NULL,
    attributes     jsonb NOT NULL,
    context        jsonb NOT NULL,
    updated_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (project_id, id),
    CHECK (jsonb_typeof(attributes) = 'object'),
    CHECK (jsonb_typeof(context) = 'object')
);
-- Upserts, lookups by key, and the targetingKey order of profile and member pages (ties
-- cannot happen: the key is unique, so ordering by (targeting_key, id) reads this index too).
CREATE UNIQUE INDEX profiles_key ON profiles (project_id, targeting_key) INCLUDE (id);
-- Case-insensitive substring search on the key.
CREATE INDEX profiles_search_key ON profiles USING gin (targeting_key gin_trgm_ops);
