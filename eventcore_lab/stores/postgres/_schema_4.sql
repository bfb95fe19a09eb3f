-- Migration 4: indexes for filtered reads (read_all / read_filtered / subscribe with event types or
-- stream categories).
--
-- A reader that wants a few event types, or the streams of a few categories, walks one of these in
-- position order instead of the whole log. A stream's category is the part of its id before the
-- first '-'; the expression here is the one the store's SELECTs use, so the planner can match it.

CREATE INDEX IF NOT EXISTS events_type_position ON __SCHEMA__.events (event_type, position);

CREATE INDEX IF NOT EXISTS events_category_position
    ON __SCHEMA__.events ((split_part(stream_id, '-', 1)), position);
