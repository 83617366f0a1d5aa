-- Installed by infra/postgres.ts into FerretDB's database (as superuser, on every start; idempotent).
--
-- Why: FerretDB 1.24 on PostgreSQL creates a btree index on (_jsonb -> 'field') for every MongoDB
-- index (the _id one included), but pushes an equality filter down as (_jsonb -> 'field') @> '<value>'.
-- A btree cannot serve @>, so every find, by _id too, scans the whole table (measured: 50 findOne
-- by _id/s at 100,000 documents with 16 clients). A GIN jsonb_path_ops index on the same expression
-- serves @> directly, so next to each single-field btree index FerretDB creates (or the first field
-- of a compound one) we create such a companion, named <index>_gin, and drop it with its index.
-- FerretDB does not know about them; they go with the table when a collection is dropped.
-- fastupdate = off: with GIN's pending list, every lookup after a burst of inserts scans the list
-- (findOne by _id 357/s right after 100,000 inserts, 1,195/s without it; inserts 36,000 -> 24,000 docs/s).

CREATE OR REPLACE FUNCTION push_gin_companion() RETURNS event_trigger LANGUAGE plpgsql AS $fn$
DECLARE
  ix record;
BEGIN
  FOR ix IN
    SELECT c.relname AS name, i.indrelid::regclass AS tbl, pg_get_indexdef(i.indexrelid, 1, false) AS expr
    FROM pg_event_trigger_ddl_commands() d
    JOIN pg_index i ON i.indexrelid = d.objid
    JOIN pg_class c ON c.oid = i.indexrelid
    JOIN pg_am am ON am.oid = c.relam
    JOIN pg_class t ON t.oid = i.indrelid
    WHERE d.command_tag = 'CREATE INDEX' AND am.amname = 'btree' AND t.relname NOT LIKE '\_ferretdb\_%'
  LOOP
    CONTINUE WHEN ix.expr !~ '^\(\(_jsonb -> ''[^'']*''::text\)\)$';
    EXECUTE format('CREATE INDEX IF NOT EXISTS %I ON %s USING gin (%s jsonb_path_ops) WITH (fastupdate = off)', left(ix.name, 59) || '_gin', ix.tbl, ix.expr);
  END LOOP;
END
$fn$;

CREATE OR REPLACE FUNCTION push_gin_companion_drop() RETURNS event_trigger LANGUAGE plpgsql AS $fn$
DECLARE
  ob record;
BEGIN
  FOR ob IN SELECT schema_name, object_name FROM pg_event_trigger_dropped_objects()
    WHERE object_type = 'index' AND original AND object_name NOT LIKE '%\_gin'
  LOOP
    EXECUTE format('DROP INDEX IF EXISTS %I.%I', ob.schema_name, left(ob.object_name, 59) || '_gin');
  END LOOP;
END
$fn$;

-- Event triggers need a superuser; they fire for the DDL FerretDB runs as its own role.
DROP EVENT TRIGGER IF EXISTS push_gin_companion;
CREATE EVENT TRIGGER push_gin_companion ON ddl_command_end WHEN TAG IN ('CREATE INDEX') EXECUTE FUNCTION push_gin_companion();
DROP EVENT TRIGGER IF EXISTS push_gin_companion_drop;
CREATE EVENT TRIGGER push_gin_companion_drop ON sql_drop WHEN TAG IN ('DROP INDEX') EXECUTE FUNCTION push_gin_companion_drop();
