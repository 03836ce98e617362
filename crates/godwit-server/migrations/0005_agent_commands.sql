-- The commands an agent runs, as it said when it last connected (a JSON list of words); NULL
-- until it has connected once.
ALTER TABLE agents ADD COLUMN commands TEXT;
