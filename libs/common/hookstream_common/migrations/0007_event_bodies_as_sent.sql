-- The history shows the bytes that were signed (issue 13 item 8): `json` keeps the text it is
-- given, key order and all, where `jsonb` reorders keys, so a body read back is the body that
-- was sent and a signature recomputed over it matches. Rows written before keep jsonb's order.
ALTER TABLE event_bodies ALTER COLUMN body TYPE json USING body::text::json;
