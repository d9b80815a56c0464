-- Roles and project settings (DESIGN §14): an `admin` key may do everything an editor may,
-- and change the project's settings. A project without a settings row has the defaults.

ALTER TABLE api_keys DROP CONSTRAINT api_keys_role_check;
ALTER TABLE api_keys ADD CONSTRAINT api_keys_role_check
    CHECK (role IN ('viewer', 'editor', 'admin'));

CREATE TABLE project_settings (
    project_id          bigint NOT NULL REFERENCES projects (id),
    require_approval    boolean NOT NULL DEFAULT false,
    required_approvals  integer NOT NULL DEFAULT 1 CHECK (required_approvals BETWEEN 1 AND 5),
    strict_attributes   boolean NOT NULL DEFAULT false,
    updated_at          timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (project_id)
);
