-- A segment's salt seeds its PERCENTAGE buckets (DESIGN §12). It is set once at creation
-- (the key unless given) and changes only when asked, so renaming a segment keeps who is in
-- its rollouts. Existing segments take their current key, as a new one would.

ALTER TABLE segments ADD COLUMN salt text;

UPDATE segments SET salt = key;

ALTER TABLE segments ALTER COLUMN salt SET NOT NULL;
