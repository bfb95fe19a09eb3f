-- Migration 6: a leaner append (issue 21; python -m benchmarks.pg_append measures it).
--
-- Placeholders as in _schema_1.sql. Same signatures, same locks, same checks, same errors as migration
-- 4; what changes is how much the server does per call on the common path:
--   * append_events_within holds the body and takes the lock timeout as a parameter (NULL: none), so a
--     command's call is one plpgsql function, not a wrapper calling another (and no set_config when
--     there is no deadline). append_events, for callers without a deadline, is the wrapper now.
--   * The lock names the client sends are hashed in the lock statement itself. lock_keys (a set-
--     returning SQL function whose second branch parses the tags JSON) is used only by a caller that
--     names no keys, in its own branch: plpgsql plans only the branch it runs.
--   * Events without tags (p_tags NULL, the common case) skip the per-row subquery that reads them.
--
-- Why every append still takes the SHARED keys of the types and tags it writes, condition or not: a
-- conditional append or a query read running at the same time is invisible to this writer, and the
-- argument of migration 4 ("every writer of a matching event has either committed or will draw its
-- positions after every position drawn before") holds only if every writer of a matching event holds
-- its keys. Shared advisory locks never make appends without conditions wait for each other. Only the
-- EXCLUSIVE keys of a condition are taken when a condition is present (the client names them then).
--
-- Measured (server CPU per call of a two-event create, plpgsql procedure loop committing each call,
-- on a loaded 2-core machine): this function costs 0.68-0.88 times migration 5's (six paired runs of
-- 10,000 calls, medians 120 against 158 us; a bare one-row INSERT 8). Of migration 5's, the lock_keys
-- call was about 20 us (the largest cost after the INSERT, about 35), the shared type/tag keys about 10. plan_cache_mode stays forced to generic plans: without
-- it this body costs 1.6-1.8 times as much (array parameters make custom plans, re-planned each call).

CREATE OR REPLACE FUNCTION __SCHEMA__.append_events_within(
    p_lock_timeout text,
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
    IF p_lock_timeout IS NOT NULL THEN
        PERFORM set_config('lock_timeout', p_lock_timeout, true);
    END IF;

    -- stream keys (exclusive) and type/tag/condition keys, in one sorted pass (see migration 4)
    IF p_lock_names IS NOT NULL THEN
        PERFORM count(CASE WHEN l.x THEN pg_advisory_xact_lock(l.k) ELSE pg_advisory_xact_lock_shared(l.k) END)
           FROM (SELECT a.k, bool_or(a.x) AS x
                   FROM (SELECT hashtextextended(s, __LOCK_SEED__) AS k, true AS x
                           FROM unnest(p_streams || p_check_streams) AS s
                         UNION ALL
                         SELECT hashtextextended(n.name, __LOCK_SEED__ + 1), coalesce(n.x, false)
                           FROM unnest(p_lock_names, p_lock_exclusive) AS n(name, x)
                        ) AS a
                  GROUP BY a.k ORDER BY a.k) AS l;
    ELSE  -- a caller that names no keys: the shared keys of what it writes, '*' exclusive if it has a condition
        PERFORM count(CASE WHEN l.x THEN pg_advisory_xact_lock(l.k) ELSE pg_advisory_xact_lock_shared(l.k) END)
           FROM (SELECT a.k, bool_or(a.x) AS x
                   FROM (SELECT hashtextextended(s, __LOCK_SEED__) AS k, true AS x
                           FROM unnest(p_streams || p_check_streams) AS s
                         UNION ALL
                         SELECT q.k, q.x
                           FROM __SCHEMA__.lock_keys(NULL, NULL, p_types, p_tags, p_condition) AS q
                        ) AS a
                  GROUP BY a.k ORDER BY a.k) AS l;
    END IF;

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

    -- begin_write() inlined (see migration 1), then the positions, in event order
    PERFORM pg_advisory_xact_lock_shared(__WRITER_KEY__), pg_current_xact_id();
    WITH ins AS (
        INSERT INTO __SCHEMA__.events
               (position, stream_id, version, event_id, event_type, payload, metadata, recorded_at,
                schema_version, tags)
        SELECT nextval(__SEQUENCE__), u.s, versions[u.ord], u.id, u.t, u.p::json, u.m::json, recorded_at,
               coalesce(u.sv, 1),
               CASE WHEN p_tags IS NULL THEN '{}'::text[]
                    ELSE ARRAY(SELECT jsonb_array_elements_text(p_tags -> (u.ord::int - 1))) END
          FROM unnest(p_streams, p_ids, p_types, p_payloads, p_metadata, p_schema_versions)
               WITH ORDINALITY AS u(s, id, t, p, m, sv, ord)
        RETURNING position
    )
    SELECT array_agg(position ORDER BY position) INTO positions FROM ins;
END
$$;

CREATE OR REPLACE FUNCTION __SCHEMA__.append_events(
    p_streams text[], p_ids uuid[], p_types text[], p_payloads text[], p_metadata text[],
    p_check_streams text[], p_check_kinds text[], p_check_versions bigint[],
    p_schema_versions integer[] DEFAULT NULL, p_tags jsonb DEFAULT NULL, p_condition jsonb DEFAULT NULL,
    p_lock_names text[] DEFAULT NULL, p_lock_exclusive boolean[] DEFAULT NULL,
    OUT positions bigint[], OUT versions bigint[], OUT recorded_at timestamptz
) LANGUAGE plpgsql AS $$
BEGIN
    SELECT a.positions, a.versions, a.recorded_at INTO positions, versions, recorded_at
      FROM __SCHEMA__.append_events_within(NULL, p_streams, p_ids, p_types, p_payloads, p_metadata,
                                           p_check_streams, p_check_kinds, p_check_versions,
                                           p_schema_versions, p_tags, p_condition,
                                           p_lock_names, p_lock_exclusive) AS a;
END
$$;
