-- Migration 5: an index for filtered reads by stream category (read_all / read_filtered / subscribe
-- with categories). Reads by event type use events_type_position from migration 4.
--
-- A reader that wants the streams of a few categories walks this index in position order instead of
-- the whole log. A stream's category is the part of its id before the first '-'; the expression here is
-- the one the store's SELECTs use, so the planner can match it.

CREATE INDEX IF NOT EXISTS events_category_position
    ON __SCHEMA__.events ((split_part(stream_id, '-', 1)), position);
