-- Applies in dev; in the demo staging already has an index of this name (hand-made drift),
-- so staging fails here and prod is never touched.
CREATE INDEX ix_country_name ON country (name);
