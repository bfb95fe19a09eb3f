-- Migration 3: every event records the schema version of its payload (eventcore_lab.evolution).
--
-- Placeholders as in _schema_1.sql. Rows written before this migration read as schema version 1 (the
-- column default, which PostgreSQL applies without rewriting the table). The functions that write or
-- read whole rows are replaced by versions that carry the column; the new append parameter defaults to
-- NULL (version 1), so a call made as before still works.

ALTER TABLE __SCHEMA__.events
    ADD COLUMN schema_version integer NOT NULL DEFAULT 1 CONSTRAINT events_schema_version_check
    CHECK (schema_version >= 1);

DROP FUNCTION __SCHEMA__.append_events_within(text, text[], uuid[], text[], text[], text[], text[], text[], bigint[]);
DROP FUNCTION __SCHEMA__.append_events(text[], uuid[], text[], text[], text[], text[], text[], bigint[]);
DROP FUNCTION __SCHEMA__.read_streams_within(text, text[], bigint[]);

CREATE FUNCTION __SCHEMA__.append_events(
    p_streams text[], p_ids uuid[], p_types text[], p_payloads text[], p_metadata text[],
    p_check_streams text[], p_check_kinds text[], p_check_versions bigint[],
    p_schema_versions integer[] DEFAULT NULL,
    OUT positions bigint[], OUT versions bigint[], OUT recorded_at timestamptz
) LANGUAGE plpgsql SET plan_cache_mode = force_generic_plan AS $$
DECLARE
    v_conflicts jsonb;
    v_names text[];
    v_current bigint[];
    v_actual bigint;
    v_at integer;
BEGIN
    -- lock_streams(), inlined
    PERFORM count(pg_advisory_xact_lock(l.k))
       FROM (SELECT DISTINCT hashtextextended(s, __LOCK_SEED__) AS k
               FROM unnest(p_streams || p_check_streams) AS s ORDER BY 1) AS l;

    -- a new statement, hence a snapshot taken after the locks: the versions are current
    SELECT array_agg(d.s), array_agg((SELECT coalesce(max(e.version), 0) FROM __SCHEMA__.events e
                                       WHERE e.stream_id = d.s))
      INTO v_names, v_current
      FROM (SELECT DISTINCT s FROM unnest(p_streams || p_check_streams) AS s) AS d;

    -- the rest in plain expressions: an append names few streams, and these cost no executor start-up
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
    versions := '{}';
    FOR i IN 1 .. coalesce(cardinality(p_streams), 0) LOOP
        v_at := array_position(v_names, p_streams[i]);
        v_current[v_at] := v_current[v_at] + 1;
        versions[i] := v_current[v_at];
    END LOOP;

    recorded_at := now();
    IF cardinality(versions) = 0 THEN  -- nothing to write: the call only checked versions
        positions := '{}';
        RETURN;
    END IF;

    -- begin_write() inlined, then the positions: this writer holds them only while it inserts and commits.
    -- nextval() runs in event order (a function scan keeps its input order), so positions ascend with it.
    PERFORM pg_advisory_xact_lock_shared(__WRITER_KEY__), pg_current_xact_id();
    WITH ins AS (
        INSERT INTO __SCHEMA__.events
               (position, stream_id, version, event_id, event_type, payload, metadata, recorded_at,
                schema_version)
        SELECT nextval(__SEQUENCE__), u.s, versions[u.ord], u.id, u.t, u.p::json, u.m::json, recorded_at,
               coalesce(u.sv, 1)
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
    p_schema_versions integer[] DEFAULT NULL,
    OUT positions bigint[], OUT versions bigint[], OUT recorded_at timestamptz
) LANGUAGE plpgsql AS $$
BEGIN
    PERFORM set_config('lock_timeout', p_lock_timeout, true);
    SELECT a.positions, a.versions, a.recorded_at INTO positions, versions, recorded_at
      FROM __SCHEMA__.append_events(p_streams, p_ids, p_types, p_payloads, p_metadata,
                                    p_check_streams, p_check_kinds, p_check_versions,
                                    p_schema_versions) AS a;
END
$$;

CREATE FUNCTION __SCHEMA__.read_streams_within(p_lock_timeout text, p_streams text[], p_after bigint[])
RETURNS TABLE (
    event_id uuid, stream_id text, version bigint, "position" bigint, event_type text, payload text,
    metadata text, recorded_at timestamptz, schema_version integer
) LANGUAGE plpgsql AS $$
#variable_conflict use_column
BEGIN
    PERFORM set_config('lock_timeout', p_lock_timeout, true);
    RETURN QUERY
        SELECT e.event_id, e.stream_id, e.version, e.position, e.event_type, e.payload::text,
               e.metadata::text, e.recorded_at, e.schema_version
          FROM unnest(p_streams, p_after) AS w(s, after)
          JOIN __SCHEMA__.events e ON e.stream_id = w.s AND e.version > w.after
         ORDER BY e.position;
END
$$;
