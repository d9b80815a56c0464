-- Segments that reference segments (DESIGN §12). The rules jsonb stays the definition; these
-- rows mirror its references, written in the same transaction as the rules, so usage, the
-- in-use check, cycle and depth checks and the closure a compiler needs are index lookups
-- instead of scans of every rules document.

-- segment_id's rules hold a SegmentMatch naming referenced_id (kept while segment_id is
-- deleted: its definition is kept too).
CREATE TABLE segment_references (
    project_id     bigint NOT NULL,
    segment_id     bigint NOT NULL,
    referenced_id  bigint NOT NULL,
    PRIMARY KEY (project_id, segment_id, referenced_id),
    FOREIGN KEY (project_id, segment_id) REFERENCES segments (project_id, id),
    FOREIGN KEY (project_id, referenced_id) REFERENCES segments (project_id, id)
);
-- Who references a segment: usage, the in-use check, filter.inUse.
CREATE INDEX segment_references_referenced ON segment_references (project_id, referenced_id);

-- A CUSTOM targeting rule whose inline rules hold a SegmentMatch naming referenced_id. The
-- rows go with their rule (setTargetingRules replaces a flag's rules by deleting them).
CREATE TABLE targeting_rule_references (
    project_id     bigint NOT NULL,
    rule_id        bigint NOT NULL,
    referenced_id  bigint NOT NULL,
    PRIMARY KEY (project_id, rule_id, referenced_id),
    FOREIGN KEY (project_id, rule_id) REFERENCES targeting_rules (project_id, id)
        ON DELETE CASCADE,
    FOREIGN KEY (project_id, referenced_id) REFERENCES segments (project_id, id)
);
CREATE INDEX targeting_rule_references_referenced
    ON targeting_rule_references (project_id, referenced_id);
