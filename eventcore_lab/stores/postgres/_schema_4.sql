-- Migration 4: tags on events, reads by query and append conditions (eventcore_lab.core.query).
--
-- Placeholders as in _schema_1.sql. Rows written before this migration carry no tags (the column
-- default, applied without rewriting the table). A GIN index makes a tag lookup a few index probes; an
-- (event_type, position) index serves items that name types only.
--
-- Why an append condition cannot be fooled by a concurrent append (the argument, once):
--   Positions come from a sequence and commit out of order, so "no matching event after position P"
--   must be serialised against writers of matching events by locks, not by positions alone. Every
--   append takes, in ONE sorted pass together with its stream locks (so no deadlocks: a transaction
--   waiting for a key holds only smaller keys):
--     * a SHARED advisory lock on a key per event type ('y' || type) and per tag ('t' || tag) it writes
--       (appends without conditions never wait for each other here);
--     * for its condition, an EXCLUSIVE lock per query item: on the key of the item's first tag when
--       it names tags (every matching event carries that tag, so its writer holds that key shared),
--       else on the key of each type it names (every matching event has one of them);
--     * the key '*' SHARED, or EXCLUSIVE when the condition is Query.all (matched by every event) or
--       when the append writes more than 64 distinct type/tag keys (it then takes '*' instead of them);
--       a bulk import (import_begin) takes '*' exclusive (and no stream locks: it excludes every append).
--   So when a conditional append holds its locks, every writer of a matching event has either
--   committed (it held a conflicting key, so the check's statement, a new snapshot, sees it) or will
--   take its keys after this transaction ends, and so draws its positions after every position drawn
--   before: above the position P of any read made earlier. read_query takes the same exclusive keys
--   for its items before the statement that reads (waiting out writers of matching events in flight),
--   and returns as P the highest position in that statement's snapshot; hence "a matching event above
--   P" is exactly "a matching event the read did not see". A read holds its keys only for its own
--   call (one transaction), so it delays matching writers by the length of one indexed statement.
--   The names are computed by the client (lock_names() in _reading.py, the rule written once) and
--   hashed here with another seed than stream keys (a hash collision only makes two appends wait for
--   each other, never lets one through). A caller that passes no names (an older client calling the
--   function directly) takes the shared keys of what it writes, and '*' exclusive if it has a condition.

ALTER TABLE __SCHEMA__.events ADD COLUMN tags text[] NOT NULL DEFAULT '{}';
CREATE INDEX events_tags ON __SCHEMA__.events USING gin (tags);
CREATE INDEX events_type_position ON __SCHEMA__.events (event_type, position);

-- The advisory keys of lock names ('*', 'y' || type, 't' || tag) with their modes (x: exclusive).
-- The client names them (PostgresStore: lock_names() in _writer.py, the rule above written once);
-- a caller that names none gets the shared keys of the types and tags it writes, and '*' exclusive
-- when it has a condition (safe, and serialised against every writer).
CREATE FUNCTION __SCHEMA__.lock_keys(p_names text[], p_exclusive boolean[], p_types text[], p_tags jsonb,
                                     p_condition jsonb)
RETURNS TABLE (k bigint, x boolean) LANGUAGE sql IMMUTABLE AS $$
    SELECT hashtextextended(n.name, __LOCK_SEED__ + 1), coalesce(n.x, false)
      FROM unnest(p_names, p_exclusive) AS n(name, x)
     WHERE p_names IS NOT NULL
    UNION ALL
    SELECT hashtextextended(d.name, __LOCK_SEED__ + 1), d.name = '*' AND p_condition IS NOT NULL
      FROM (SELECT 'y' || t AS name FROM unnest(p_types) AS t
            UNION SELECT 't' || tag FROM jsonb_array_elements(coalesce(p_tags, '[]')) AS a,
                                         jsonb_array_elements_text(a) AS tag
            UNION SELECT '*') AS d
     WHERE p_names IS NULL
$$;

-- The lowest position above p_after of an event matching p_query ({"items": [{"types", "tags"}]};
-- no items: every event), or NULL. One indexed statement per item.
CREATE FUNCTION __SCHEMA__.first_match(p_query jsonb, p_after bigint)
RETURNS bigint LANGUAGE plpgsql SET plan_cache_mode = force_generic_plan AS $$
DECLARE
    v_item jsonb;
    v_tags text[];
    v_types text[];
    v_pos bigint;
    v_found bigint;
BEGIN
    IF jsonb_array_length(p_query -> 'items') = 0 THEN
        SELECT min(e.position) INTO v_found FROM __SCHEMA__.events e WHERE e.position > p_after;
        RETURN v_found;
    END IF;
    FOR v_item IN SELECT jsonb_array_elements(p_query -> 'items') LOOP
        v_tags := ARRAY(SELECT jsonb_array_elements_text(v_item -> 'tags'));
        v_types := ARRAY(SELECT jsonb_array_elements_text(v_item -> 'types'));
        IF cardinality(v_tags) > 0 THEN
            SELECT min(e.position) INTO v_pos FROM __SCHEMA__.events e
             WHERE e.tags @> v_tags AND e.position > p_after
               AND (cardinality(v_types) = 0 OR e.event_type = ANY(v_types));
        ELSE
            SELECT min(e.position) INTO v_pos FROM __SCHEMA__.events e
             WHERE e.event_type = ANY(v_types) AND e.position > p_after;
        END IF;
        v_found := least(v_found, v_pos);
    END LOOP;
    RETURN v_found;
END
$$;

-- The events matching p_query with position > p_after (at most p_limit; NULL: all), after waiting out
-- writers of matching events in flight (see above). The first row carries only the head: the highest
-- position in the snapshot the events were read in.
CREATE FUNCTION __SCHEMA__.read_query(p_lock_timeout text, p_query jsonb, p_after bigint, p_limit bigint,
                                      p_lock_names text[], p_lock_exclusive boolean[])
RETURNS TABLE (
    head bigint, event_id uuid, stream_id text, version bigint, "position" bigint, event_type text,
    payload text, metadata text, recorded_at timestamptz, schema_version integer, tags text[]
) LANGUAGE plpgsql AS $$
DECLARE
    v_where text := '';
    v_item jsonb;
    v_part text;
BEGIN
    IF p_lock_timeout IS NOT NULL THEN
        PERFORM set_config('lock_timeout', p_lock_timeout, true);
    END IF;
    PERFORM count(CASE WHEN l.x THEN pg_advisory_xact_lock(l.k) ELSE pg_advisory_xact_lock_shared(l.k) END)
       FROM (SELECT hashtextextended(n.name, __LOCK_SEED__ + 1) AS k, n.x
               FROM unnest(p_lock_names, p_lock_exclusive) AS n(name, x) ORDER BY 1) AS l;
    FOR v_item IN SELECT jsonb_array_elements(p_query -> 'items') LOOP
        v_part := 'true';
        IF jsonb_array_length(v_item -> 'tags') > 0 THEN
            v_part := format('e.tags @> %L::text[]', ARRAY(SELECT jsonb_array_elements_text(v_item -> 'tags')));
        END IF;
        IF jsonb_array_length(v_item -> 'types') > 0 THEN
            v_part := v_part || format(' AND e.event_type = ANY(%L::text[])',
                                       ARRAY(SELECT jsonb_array_elements_text(v_item -> 'types')));
        END IF;
        v_where := v_where || CASE WHEN v_where = '' THEN '' ELSE ' OR ' END || '(' || v_part || ')';
    END LOOP;
    IF v_where = '' THEN
        v_where := 'true';
    END IF;
    -- a new statement, hence a snapshot taken after the locks; head and events from that one snapshot
    RETURN QUERY EXECUTE format(
        'WITH m AS (SELECT e.event_id, e.stream_id, e.version, e.position, e.event_type, e.payload::text, '
        '                  e.metadata::text, e.recorded_at, e.schema_version, e.tags '
        '             FROM %1$s.events e WHERE e.position > $1 AND (%2$s) ORDER BY e.position LIMIT $2) '
        'SELECT h.head, NULL::uuid, NULL::text, NULL::bigint, NULL::bigint, NULL::text, NULL::text, '
        '       NULL::text, NULL::timestamptz, NULL::integer, NULL::text[] '
        '  FROM (SELECT coalesce(max(position), 0) AS head FROM %1$s.events) AS h '
        'UNION ALL SELECT NULL, m.* FROM m',
        '__SCHEMA__', v_where) USING p_after, p_limit;
END
$$;

DROP FUNCTION __SCHEMA__.append_events_within(text, text[], uuid[], text[], text[], text[], text[], text[], bigint[], integer[]);
DROP FUNCTION __SCHEMA__.append_events(text[], uuid[], text[], text[], text[], text[], text[], bigint[], integer[]);
DROP FUNCTION __SCHEMA__.read_streams_within(text, text[], bigint[]);

-- As in migration 3, plus each event's tags (p_tags: a JSON array of string arrays, one per event) and
-- an append condition (p_condition: {"after": P or null, "items": [...]}), checked after the stream
-- versions under the locks described above; a failure raises SQLSTATE ECA01 with DETAIL the first
-- matching position.
CREATE FUNCTION __SCHEMA__.append_events(
    p_streams text[], p_ids uuid[], p_types text[], p_payloads text[], p_metadata text[],
    p_check_streams text[], p_check_kinds text[], p_check_versions bigint[],
    p_schema_versions integer[] DEFAULT NULL, p_tags jsonb DEFAULT NULL, p_condition jsonb DEFAULT NULL,
    p_lock_names text[] DEFAULT NULL, p_lock_exclusive boolean[] DEFAULT NULL,
    OUT positions bigint[], OUT versions bigint[], OUT recorded_at timestamptz
) LANGUAGE plpgsql SET plan_cache_mode = force_generic_plan AS $$
DECLARE
    v_conflicts jsonb;
    v_names text[];
    v_current bigint[];
    v_actual bigint;
    v_at integer;
    v_found bigint;
BEGIN
    -- stream keys (exclusive) and type/tag/condition keys, in one sorted pass
    PERFORM count(CASE WHEN l.x THEN pg_advisory_xact_lock(l.k) ELSE pg_advisory_xact_lock_shared(l.k) END)
       FROM (SELECT a.k, bool_or(a.x) AS x
               FROM (SELECT hashtextextended(s, __LOCK_SEED__) AS k, true AS x
                       FROM unnest(p_streams || p_check_streams) AS s
                     UNION ALL
                     SELECT q.k, q.x
                       FROM __SCHEMA__.lock_keys(p_lock_names, p_lock_exclusive, p_types, p_tags, p_condition) AS q
                    ) AS a
              GROUP BY a.k ORDER BY a.k) AS l;

    -- a new statement, hence a snapshot taken after the locks: the versions are current
    SELECT array_agg(d.s), array_agg((SELECT coalesce(max(e.version), 0) FROM __SCHEMA__.events e
                                       WHERE e.stream_id = d.s))
      INTO v_names, v_current
      FROM (SELECT DISTINCT s FROM unnest(p_streams || p_check_streams) AS s) AS d;

    FOR i IN 1 .. coalesce(cardinality(p_check_streams), 0) LOOP
        v_actual := v_current[array_position(v_names, p_check_streams[i])];
        IF NOT (CASE p_check_kinds[i]
                    WHEN 'exact' THEN v_actual = p_check_versions[i]
                    WHEN 'no_stream' THEN v_actual = 0
                    WHEN 'any' THEN v_actual > 0
                    ELSE true
                END) THEN
            v_conflicts := coalesce(v_conflicts, '{}'::jsonb) || jsonb_build_object(
                p_check_streams[i], jsonb_build_array(p_check_kinds[i], p_check_versions[i], v_actual));
        END IF;
    END LOOP;
    IF v_conflicts IS NOT NULL THEN
        RAISE EXCEPTION 'version conflict' USING ERRCODE = 'ECV01', DETAIL = v_conflicts::text;
    END IF;
    IF p_condition IS NOT NULL THEN
        v_found := __SCHEMA__.first_match(p_condition, coalesce((p_condition ->> 'after')::bigint, 0));
        IF v_found IS NOT NULL THEN
            RAISE EXCEPTION 'append condition failed' USING ERRCODE = 'ECA01', DETAIL = v_found::text;
        END IF;
    END IF;
    versions := '{}';
    FOR i IN 1 .. coalesce(cardinality(p_streams), 0) LOOP
        v_at := array_position(v_names, p_streams[i]);
        v_current[v_at] := v_current[v_at] + 1;
        versions[i] := v_current[v_at];
    END LOOP;

    recorded_at := now();
    IF cardinality(versions) = 0 THEN  -- nothing to write: the call only checked
        positions := '{}';
        RETURN;
    END IF;

    PERFORM pg_advisory_xact_lock_shared(__WRITER_KEY__), pg_current_xact_id();
    WITH ins AS (
        INSERT INTO __SCHEMA__.events
               (position, stream_id, version, event_id, event_type, payload, metadata, recorded_at,
                schema_version, tags)
        SELECT nextval(__SEQUENCE__), u.s, versions[u.ord], u.id, u.t, u.p::json, u.m::json, recorded_at,
               coalesce(u.sv, 1), ARRAY(SELECT jsonb_array_elements_text(p_tags -> (u.ord::int - 1)))
          FROM unnest(p_streams, p_ids, p_types, p_payloads, p_metadata, p_schema_versions)
               WITH ORDINALITY AS u(s, id, t, p, m, sv, ord)
        RETURNING position
    )
    SELECT array_agg(position ORDER BY position) INTO positions FROM ins;
END
$$;

CREATE FUNCTION __SCHEMA__.append_events_within(
    p_lock_timeout text,
    p_streams text[], p_ids uuid[], p_types text[], p_payloads text[], p_metadata text[],
    p_check_streams text[], p_check_kinds text[], p_check_versions bigint[],
    p_schema_versions integer[] DEFAULT NULL, p_tags jsonb DEFAULT NULL, p_condition jsonb DEFAULT NULL,
    p_lock_names text[] DEFAULT NULL, p_lock_exclusive boolean[] DEFAULT NULL,
    OUT positions bigint[], OUT versions bigint[], OUT recorded_at timestamptz
) LANGUAGE plpgsql AS $$
BEGIN
    PERFORM set_config('lock_timeout', p_lock_timeout, true);
    SELECT a.positions, a.versions, a.recorded_at INTO positions, versions, recorded_at
      FROM __SCHEMA__.append_events(p_streams, p_ids, p_types, p_payloads, p_metadata,
                                    p_check_streams, p_check_kinds, p_check_versions,
                                    p_schema_versions, p_tags, p_condition,
                                    p_lock_names, p_lock_exclusive) AS a;
END
$$;

CREATE FUNCTION __SCHEMA__.read_streams_within(p_lock_timeout text, p_streams text[], p_after bigint[])
RETURNS TABLE (
    event_id uuid, stream_id text, version bigint, "position" bigint, event_type text, payload text,
    metadata text, recorded_at timestamptz, schema_version integer, tags text[]
) LANGUAGE plpgsql AS $$
#variable_conflict use_column
BEGIN
    PERFORM set_config('lock_timeout', p_lock_timeout, true);
    RETURN QUERY
        SELECT e.event_id, e.stream_id, e.version, e.position, e.event_type, e.payload::text,
               e.metadata::text, e.recorded_at, e.schema_version, e.tags
          FROM unnest(p_streams, p_after) AS w(s, after)
          JOIN __SCHEMA__.events e ON e.stream_id = w.s AND e.version > w.after
         ORDER BY e.position;
END
$$;

-- Bulk import, step 1, as in migration 1, but its stream locks are taken together with the key '*' held
-- EXCLUSIVELY, in one sorted pass: an import writes tags without naming their keys, so it serialises
-- with every append condition and query read (which hold '*' shared) instead.
CREATE OR REPLACE FUNCTION __SCHEMA__.import_begin(p_streams text[], p_first_versions bigint[], p_count bigint)
RETURNS bigint[] LANGUAGE plpgsql AS $$
DECLARE
    v_conflicts jsonb;
    v_positions bigint[];
BEGIN
    -- '*' exclusive alone: every append and query read holds '*' (shared at least), so this waits
    -- for them all and keeps them out until the import commits. No lock per stream: an import of
    -- 100,000 streams would need 100,000 advisory locks in one transaction (out of shared memory).
    PERFORM pg_advisory_xact_lock(hashtextextended('*', __LOCK_SEED__ + 1));

    SELECT jsonb_object_agg(c.s, jsonb_build_array('exact', c.v - 1, cur.version))
      INTO v_conflicts
      FROM unnest(p_streams, p_first_versions) AS c(s, v)
     CROSS JOIN LATERAL (
           SELECT coalesce(max(e.version), 0) AS version FROM __SCHEMA__.events e WHERE e.stream_id = c.s
     ) AS cur
     WHERE cur.version <> c.v - 1;
    IF v_conflicts IS NOT NULL THEN
        RAISE EXCEPTION 'version conflict' USING ERRCODE = 'ECV01', DETAIL = v_conflicts::text;
    END IF;

    PERFORM __SCHEMA__.begin_write();
    v_positions := __SCHEMA__.draw_positions(p_count);
    RETURN v_positions;
END
$$;
