-- Chat prompts, model configuration, includes and tags. Old rows are right as they
-- are: events written before these existed are text prompts without configuration,
-- includes or tags, so no replay is needed.
ALTER TABLE rm_versions ADD COLUMN kind TEXT NOT NULL DEFAULT 'text';
ALTER TABLE rm_versions ADD COLUMN messages TEXT;
ALTER TABLE rm_versions ADD COLUMN config TEXT;
ALTER TABLE rm_versions ADD COLUMN includes TEXT NOT NULL DEFAULT '[]';
ALTER TABLE rm_prompts ADD COLUMN tags TEXT NOT NULL DEFAULT '[]';
