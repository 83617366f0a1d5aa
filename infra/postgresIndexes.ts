/**
 * Makes FerretDB's indexes usable on PostgreSQL.
 *
 * FerretDB 1.24 pushes a top-level equality filter `{f: v}` down as
 * `_jsonb -> 'f' @> v`, but creates its indexes (the `_id` one included) as
 * btree on `_jsonb -> 'f'`, which PostgreSQL cannot use for `@>`: out of the
 * box every find, even by `_id`, scans the whole table (25 ms per findOne at
 * 100,000 documents). The event triggers below give every such btree index a
 * twin GIN index (`jsonb_path_ops`, which serves `@>`) on the same expression,
 * and drop the twin with its btree; `installIndexTwins` also backfills the
 * indexes that exist already. With them: ~1 ms per findOne by `_id` and ~2 ms
 * per indexed equality find at 100,000 documents.
 *
 * FerretDB sends the field name as a bind parameter; `plan_cache_mode =
 * force_custom_plan` (set in postgresql.conf by infra/postgres.ts) makes
 * PostgreSQL plan each query with its values, so the expression matches the
 * index. The btree indexes stay: FerretDB's unique `_id` checks use them.
 */
export const INDEX_TWINS_SQL = `
CREATE OR REPLACE FUNCTION push_twin_name(btree_name text, k int) RETURNS text
LANGUAGE sql IMMUTABLE AS $$ SELECT left(btree_name, 55) || '_gin' || k $$;

-- Adds a GIN twin for each key of a btree index on _jsonb -> '<field>'.
CREATE OR REPLACE FUNCTION push_add_index_twins(index_oid oid) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
  info record;
  expr text;
BEGIN
  SELECT i.indrelid::regclass AS tbl, c.relname AS name, am.amname AS method, i.indnkeyatts AS keys,
         n.nspname AS schema
    INTO info
    FROM pg_index i
    JOIN pg_class c ON c.oid = i.indexrelid
    JOIN pg_am am ON am.oid = c.relam
    JOIN pg_namespace n ON n.oid = c.relnamespace
   WHERE i.indexrelid = index_oid;
  IF NOT FOUND OR info.method <> 'btree' THEN
    RETURN;
  END IF;
  FOR k IN 1..info.keys LOOP
    expr := pg_get_indexdef(index_oid, k, true);
    CONTINUE WHEN expr IS NULL OR expr NOT LIKE '(_jsonb -> %';
    EXECUTE format('CREATE INDEX IF NOT EXISTS %I ON %s USING gin (%s jsonb_path_ops) WITH (fastupdate = off)',
                   push_twin_name(info.name, k), info.tbl, expr);
  END LOOP;
END $$;

CREATE OR REPLACE FUNCTION push_on_create_index() RETURNS event_trigger
LANGUAGE plpgsql AS $$
DECLARE
  r record;
BEGIN
  FOR r IN SELECT objid FROM pg_event_trigger_ddl_commands() WHERE object_type = 'index' LOOP
    PERFORM push_add_index_twins(r.objid);
  END LOOP;
END $$;

-- Drops the twins of a dropped btree index (a dropped table takes its indexes with it).
CREATE OR REPLACE FUNCTION push_on_drop_index() RETURNS event_trigger
LANGUAGE plpgsql AS $$
DECLARE
  r record;
BEGIN
  FOR r IN SELECT schema_name, object_name FROM pg_event_trigger_dropped_objects()
            WHERE object_type = 'index' AND original AND object_name NOT LIKE '%\\_gin_' AND object_name NOT LIKE '%\\_gin__' LOOP
    FOR k IN 1..32 LOOP
      EXECUTE format('DROP INDEX IF EXISTS %I.%I', r.schema_name, push_twin_name(r.object_name, k));
    END LOOP;
  END LOOP;
END $$;

DROP EVENT TRIGGER IF EXISTS push_index_twins_create;
CREATE EVENT TRIGGER push_index_twins_create ON ddl_command_end
  WHEN TAG IN ('CREATE INDEX', 'CREATE TABLE') EXECUTE FUNCTION push_on_create_index();
DROP EVENT TRIGGER IF EXISTS push_index_twins_drop;
CREATE EVENT TRIGGER push_index_twins_drop ON sql_drop
  WHEN TAG IN ('DROP INDEX') EXECUTE FUNCTION push_on_drop_index();

-- Backfill: twins for the btree indexes that exist already.
SELECT push_add_index_twins(i.indexrelid)
  FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast');
`;
