-- Revisions and change requests keep the rules as stored (a reference by the referenced
-- segment's id) beside their snapshots (a reference by the key it had then), so a revert or
-- an applied request references the same segments however they were renamed since, and
-- never one that took a freed key since. Every write sets them; the backfill can only know
-- a revision of a segment's current version, whose rules are the segment's. The others stay
-- NULL and are resolved by the keys of their snapshots, as before.

ALTER TABLE segment_revisions ADD COLUMN rules jsonb;

UPDATE segment_revisions r
SET rules = s.rules
FROM segments s
WHERE s.project_id = r.project_id
  AND s.id = r.segment_id
  AND s.version = r.version;

-- Set when the request changes rules: the rules its dry run wrote.
ALTER TABLE change_requests ADD COLUMN proposed_rules jsonb;
