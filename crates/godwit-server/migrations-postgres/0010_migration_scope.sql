-- A plan's jobs share their source and target and differ in their include rules (`scope`: the
-- rules sorted, one a line; '' for a migration of its whole source path). The scope is part of
-- what makes a migration unique.
ALTER TABLE migrations ADD COLUMN scope TEXT NOT NULL DEFAULT '';
DO $$
DECLARE c TEXT;
BEGIN
    FOR c IN SELECT conname FROM pg_constraint
        WHERE conrelid = 'migrations'::regclass AND contype = 'u'
    LOOP
        EXECUTE 'ALTER TABLE migrations DROP CONSTRAINT ' || quote_ident(c);
    END LOOP;
END $$;
CREATE UNIQUE INDEX migrations_by_locations
    ON migrations (source_endpoint, source_path, target_endpoint, target_path, scope);
