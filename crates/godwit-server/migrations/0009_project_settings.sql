-- A project's settings, which its migrations inherit (a JSON object of job options); NULL: none.
ALTER TABLE projects ADD COLUMN settings TEXT;
-- The options a migration was created with, as given (a JSON object); NULL for migrations made
-- before project settings, whose `options` are then all their own.
ALTER TABLE migrations ADD COLUMN given_options TEXT;
