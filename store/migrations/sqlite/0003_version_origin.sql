-- Where an AI-suggested version came from (JSON of the VersionCreated event's `origin`);
-- NULL for versions a person wrote. Old rows are right as they are: their events have
-- no origin, so no replay is needed.
ALTER TABLE rm_versions ADD COLUMN origin TEXT;
