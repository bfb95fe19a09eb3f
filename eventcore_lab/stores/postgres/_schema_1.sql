-- eventcore-lab PostgreSQL store, schema version 1.
--
-- Placeholders filled in by eventcore_lab/stores/postgres.py before running:
--   __SCHEMA__     the quoted schema name
--   __SEQUENCE__   the schema-qualified position sequence, as a quoted string literal
--   __LOCK_SEED__  a per-schema integer seed for the advisory-lock keys of streams
--   __WRITER_KEY__ "k1, k2": the two-int advisory key every writer of this schema holds in shared mode
--   __CHANNEL__    the NOTIFY channel, as a quoted string literal (unused since NOTIFYs are sent by the client)

-- Every event. Payload and metadata are `json` (kept verbatim, cheaper to write than jsonb, and able to
-- hold "\u0000"); cast to jsonb in queries that need operators or GIN indexes.
CREATE TABLE __SCHEMA__.events (
    position    bigint      PRIMARY KEY,
    stream_id   text        NOT NULL,
    version     bigint      NOT NULL CHECK (version >= 1),
    event_id    uuid        NOT NULL,
    event_type  text        NOT NULL,
    payload     json        NOT NULL,
    metadata    json        NOT NULL,
    recorded_at timestamptz NOT NULL,
    CONSTRAINT events_stream_version_key UNIQUE (stream_id, version)
);

-- Positions. CACHE 1, so that numbers are handed out in the order writers ask for them.
CREATE SEQUENCE __SCHEMA__.positions AS bigint START 1 CACHE 1;

-- Projection checkpoints: the last position a named reader has processed.
CREATE TABLE __SCHEMA__.checkpoints (
    name       text        PRIMARY KEY,
    position   bigint      NOT NULL CHECK (position >= 0),
    updated_at timestamptz NOT NULL DEFAULT now()
);

-- Events are immutable: UPDATE, DELETE and TRUNCATE are refused.
CREATE FUNCTION __SCHEMA__.refuse_event_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'events are immutable: % on %.events is refused', TG_OP, TG_TABLE_SCHEMA
        USING ERRCODE = 'ECI01';
END
$$;
CREATE TRIGGER events_immutable BEFORE UPDATE OR DELETE ON __SCHEMA__.events
    FOR EACH ROW EXECUTE FUNCTION __SCHEMA__.refuse_event_change();
CREATE TRIGGER events_no_truncate BEFORE TRUNCATE ON __SCHEMA__.events
    FOR EACH STATEMENT EXECUTE FUNCTION __SCHEMA__.refuse_event_change();

-- Lock the given streams for the rest of the transaction, in sorted key order (no deadlocks between
-- appends that share streams; appends on other streams never wait for each other here).
CREATE FUNCTION __SCHEMA__.lock_streams(p_streams text[]) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    v_key bigint;
BEGIN
    FOR v_key IN
        SELECT DISTINCT hashtextextended(s, __LOCK_SEED__) FROM unnest(p_streams) AS s ORDER BY 1
    LOOP
        PERFORM pg_advisory_xact_lock(v_key);
    END LOOP;
END
$$;

-- Every writer takes the schema's writer key (shared: writers never wait for each other here) and its
-- transaction id right before it draws positions (after its stream locks and checks). So a position that is missing while a later one is
-- visible belongs to a transaction that is either still holding the writer key or is gone for good;
-- settle_gap tells which (see the module docstring of postgres.py).
CREATE FUNCTION __SCHEMA__.begin_write() RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_advisory_xact_lock_shared(__WRITER_KEY__);
    PERFORM pg_current_xact_id();
END
$$;

-- One round trip per append: lock, check every expected version, number, insert.
-- A failed expectation raises SQLSTATE ECV01 with DETAIL {"stream": [kind, expected, actual], ...}.
-- Generic plans: the statements below are planned once per connection instead of on every call (the
-- default custom plans for array parameters made planning most of the function's server time).
CREATE FUNCTION __SCHEMA__.append_events(
    p_streams text[], p_ids uuid[], p_types text[], p_payloads text[], p_metadata text[],
    p_check_streams text[], p_check_kinds text[], p_check_versions bigint[],
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
               (position, stream_id, version, event_id, event_type, payload, metadata, recorded_at)
        SELECT nextval(__SEQUENCE__), u.s, versions[u.ord], u.id, u.t, u.p::json, u.m::json, recorded_at
          FROM unnest(p_streams, p_ids, p_types, p_payloads, p_metadata) WITH ORDINALITY AS u(s, id, t, p, m, ord)
        RETURNING position
    )
    SELECT array_agg(position ORDER BY position) INTO positions FROM ins;
END
$$;

-- p_count new positions, ascending (not necessarily consecutive: concurrent writers interleave).
CREATE FUNCTION __SCHEMA__.draw_positions(p_count bigint) RETURNS bigint[] LANGUAGE sql AS $$
    SELECT array_agg(p ORDER BY p) FROM (SELECT nextval(__SEQUENCE__) AS p FROM generate_series(1, p_count)) AS n
$$;

-- Bulk import, step 1 (the caller then COPYs the rows and commits in the same transaction): lock the
-- streams, check that each stream's first imported version follows its current version, draw p_count
-- positions. Raises ECV01 like append_events.
CREATE FUNCTION __SCHEMA__.import_begin(p_streams text[], p_first_versions bigint[], p_count bigint)
RETURNS bigint[] LANGUAGE plpgsql AS $$
DECLARE
    v_conflicts jsonb;
    v_positions bigint[];
BEGIN
    PERFORM __SCHEMA__.lock_streams(p_streams);

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

-- Positions p_from..p_to are missing while a later one is visible. Their writers took their transaction
-- ids before drawing them, hence before this reader saw the later position and before the reader id
-- p_reader (a transaction id taken now when NULL). 'pending': a writer older than p_reader still holds
-- the writer key and may fill them. Otherwise 'filled' if some are visible now (checked in a later
-- snapshot), else 'permanent' (their transactions rolled back: skip them).
CREATE FUNCTION __SCHEMA__.settle_gap(
    p_reader xid8, p_from bigint, p_to bigint, OUT state text, OUT reader xid8
) LANGUAGE plpgsql AS $$
BEGIN
    reader := coalesce(p_reader, pg_current_xact_id());
    IF EXISTS (
        SELECT 1
          FROM pg_locks w
          JOIN pg_locks x ON x.pid = w.pid AND x.locktype = 'transactionid' AND x.mode = 'ExclusiveLock'
         WHERE w.locktype = 'advisory' AND w.objsubid = 2 AND w.granted
           AND (w.classid, w.objid) = (SELECT k1::oid, k2::oid FROM (VALUES (__WRITER_KEY__)) AS k(k1, k2))
           AND w.database = (SELECT oid FROM pg_database WHERE datname = current_database())
           AND age(x.transactionid) > age(reader::xid)
    ) THEN
        state := 'pending';
    ELSIF EXISTS (SELECT 1 FROM __SCHEMA__.events WHERE position BETWEEN p_from AND p_to) THEN
        state := 'filled';
    ELSE
        state := 'permanent';
    END IF;
END
$$;
