-- Servers cache resolved API tokens for a few seconds. Any change to a key (revocation,
-- deletion), whichever way it is made, tells every listening server to forget that token.

CREATE FUNCTION notify_api_key_changed() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('api_key_changed', OLD.token_hash);
    RETURN NULL;
END;
$$;

CREATE TRIGGER api_key_changed
    AFTER UPDATE OR DELETE ON api_keys
    FOR EACH ROW EXECUTE FUNCTION notify_api_key_changed();
