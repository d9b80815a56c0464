-- Distribution by project (DESIGN §2): a distributed table's unique keys must include the
-- distribution column, so the unique indexes on `id` alone go. Every lookup by id also names
-- its project (`project_id = $1 AND id = ...`), which the primary key (project_id, id)
-- serves; identity columns keep ids unique without an index.

DROP INDEX environments_id;
DROP INDEX segments_id;
DROP INDEX flags_id;
DROP INDEX audit_events_id;
