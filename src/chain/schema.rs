//! Head office's PostgreSQL schema `iobox_chain`: its migrations (`iobox chain init`), the stores and their
//! boxes' credentials (`iobox chain add-store`), and the views BI tools read.
//!
//! - `stores`: one row per store id, bound to the PostgreSQL role its box logs in as.
//! - `facts`: every figure every store delivered, one row per (store, kind, bucket, bucket start, dim),
//!   the highest revision kept; `figures` is the store's JSON (see `store::outbox`), NULL when suppressed.
//! - Row-level security: a box's role (a member of `iobox_chain_box`) sees and writes only the rows of
//!   the store it is bound to, whatever it sends; `iobox_chain_reader` reads every row. The owner (who
//!   ran `chain init`) is not bound by the policies.
//! - Views, one per kind with typed columns (counts as bigint, times in seconds, the store's local day
//!   and hour): see [`VIEWS`] and docs/chain.md.

use postgres::Client;

use super::{Error, Result, db};

/// Migrations in order; `MIGRATIONS[i]` takes the schema from version `i` to `i + 1`. Append, never edit.
pub const MIGRATIONS: &[&str] = &[
    // 1: stores, facts, roles and policies, views.
    r#"
    DO $$ BEGIN
        IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'iobox_chain_box') THEN CREATE ROLE iobox_chain_box NOLOGIN; END IF;
        IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'iobox_chain_reader') THEN CREATE ROLE iobox_chain_reader NOLOGIN; END IF;
    END $$;
    CREATE TABLE iobox_chain.stores (
        store text PRIMARY KEY CHECK (store ~ '^[a-z0-9][a-z0-9_-]{0,62}$'),
        role name NOT NULL UNIQUE,
        created_at timestamptz NOT NULL DEFAULT now()
    );
    CREATE TABLE iobox_chain.facts (
        store text NOT NULL REFERENCES iobox_chain.stores(store),
        kind text NOT NULL CHECK (kind IN ('footfall', 'visits', 'zone', 'queue', 'funnel', 'interaction', 'heat', 'mood')),
        bucket text NOT NULL CHECK (bucket IN ('hour', 'day')),
        bucket_start timestamptz NOT NULL,
        dim text NOT NULL,
        local_start timestamp NOT NULL,
        revision integer NOT NULL CHECK (revision > 0),
        suppressed boolean NOT NULL,
        figures jsonb CHECK (figures IS NULL OR jsonb_typeof(figures) = 'object'),
        k integer NOT NULL CHECK (k > 0),
        received_at timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (store, kind, bucket, bucket_start, dim),
        CHECK (suppressed = (figures IS NULL))
    );
    CREATE INDEX facts_local ON iobox_chain.facts (kind, bucket, local_start);
    -- The store the logged-in box is bound to (session_user: the login role, not the function's owner).
    CREATE FUNCTION iobox_chain.my_store() RETURNS text LANGUAGE sql STABLE SECURITY DEFINER
        SET search_path = pg_catalog, pg_temp
        AS $f$ SELECT store FROM iobox_chain.stores WHERE role = session_user $f$;
    REVOKE ALL ON FUNCTION iobox_chain.my_store() FROM PUBLIC;
    ALTER TABLE iobox_chain.facts ENABLE ROW LEVEL SECURITY;
    CREATE POLICY box_own_store ON iobox_chain.facts TO iobox_chain_box
        USING (store = iobox_chain.my_store()) WITH CHECK (store = iobox_chain.my_store());
    CREATE POLICY reader_reads_all ON iobox_chain.facts FOR SELECT TO iobox_chain_reader USING (true);
    GRANT USAGE ON SCHEMA iobox_chain TO iobox_chain_box, iobox_chain_reader;
    GRANT SELECT, INSERT, UPDATE ON iobox_chain.facts TO iobox_chain_box;
    GRANT EXECUTE ON FUNCTION iobox_chain.my_store() TO iobox_chain_box;
    "#,
];

/// The views, recreated by every `chain init` (a view changes without a migration of the data).
pub const VIEWS: &str = r#"
    CREATE OR REPLACE VIEW iobox_chain.footfall_daily AS
        SELECT store, local_start::date AS day, bucket_start, suppressed,
               (figures->>'entries')::bigint AS entries, (figures->>'exits')::bigint AS exits,
               (figures->>'buckets_suppressed')::int AS hours_suppressed, revision, k
        FROM iobox_chain.facts WHERE kind = 'footfall' AND bucket = 'day';
    CREATE OR REPLACE VIEW iobox_chain.footfall_hourly AS
        SELECT store, local_start::date AS day, extract(hour FROM local_start)::int AS hour, bucket_start, suppressed,
               (figures->>'entries')::bigint AS entries, (figures->>'exits')::bigint AS exits, revision, k
        FROM iobox_chain.facts WHERE kind = 'footfall' AND bucket = 'hour';
    CREATE OR REPLACE VIEW iobox_chain.footfall_weekly AS
        SELECT store, date_trunc('week', day)::date AS week, sum(entries) AS entries, count(*) AS days,
               count(*) FILTER (WHERE suppressed) AS days_suppressed
        FROM iobox_chain.footfall_daily GROUP BY store, date_trunc('week', day);
    CREATE OR REPLACE VIEW iobox_chain.visits_daily AS
        SELECT store, local_start::date AS day, suppressed, (figures->>'visits')::bigint AS visits,
               (figures->>'median_duration_ms')::float8 / 1000 AS median_s, (figures->>'p90_duration_ms')::float8 / 1000 AS p90_s
        FROM iobox_chain.facts WHERE kind = 'visits' AND bucket = 'day';
    CREATE OR REPLACE VIEW iobox_chain.zone_daily AS
        SELECT store, local_start::date AS day, dim AS zone, suppressed, (figures->>'visits')::bigint AS stays,
               (figures->>'tracks')::bigint AS tracks, (figures->>'mean_ms')::float8 / 1000 AS mean_stay_s,
               (figures->>'hidden')::bigint AS stays_in_hidden_bins
        FROM iobox_chain.facts WHERE kind = 'zone' AND bucket = 'day';
    CREATE OR REPLACE VIEW iobox_chain.dwell_histogram AS
        SELECT f.store, f.local_start::date AS day, f.dim AS zone, (b.i - 1)::int AS bin,
               (ARRAY[0, 30, 60, 120, 300, 600, 1200, 1800, 3600])[b.i] AS from_s,
               (ARRAY[30, 60, 120, 300, 600, 1200, 1800, 3600, NULL])[b.i] AS to_s,
               (b.v #>> '{}')::bigint AS stays
        FROM iobox_chain.facts f, jsonb_array_elements(f.figures->'bins') WITH ORDINALITY AS b(v, i)
        WHERE f.kind = 'zone' AND f.bucket = 'day' AND jsonb_typeof(f.figures->'bins') = 'array';
    CREATE OR REPLACE VIEW iobox_chain.queue_daily AS
        SELECT store, local_start::date AS day, dim AS zone, suppressed, (figures->>'samples')::bigint AS samples,
               (figures->>'mean_length')::float8 AS mean_length, (figures->>'max_length')::bigint AS max_length,
               (figures->>'mean_wait_ms')::float8 / 1000 AS mean_wait_s, (figures->>'max_wait_ms')::float8 / 1000 AS max_wait_s
        FROM iobox_chain.facts WHERE kind = 'queue' AND bucket = 'day';
    CREATE OR REPLACE VIEW iobox_chain.funnel_daily AS
        SELECT store, local_start::date AS day, split_part(dim, '>', 1) AS from_zone, split_part(dim, '>', 2) AS to_zone,
               suppressed, (figures->>'entered')::bigint AS entered, (figures->>'reached')::bigint AS reached
        FROM iobox_chain.facts WHERE kind = 'funnel' AND bucket = 'day';
    CREATE OR REPLACE VIEW iobox_chain.interaction_daily AS
        SELECT store, local_start::date AS day, dim AS zone, suppressed, (figures->>'interactions')::bigint AS interactions,
               (figures->>'tracks')::bigint AS tracks, (figures->>'mean_duration_ms')::float8 / 1000 AS mean_duration_s
        FROM iobox_chain.facts WHERE kind = 'interaction' AND bucket = 'day';
    CREATE OR REPLACE VIEW iobox_chain.heat_daily AS
        SELECT store, local_start::date AS day, (figures->>'cell_m')::float8 AS cell_m, (figures->>'cx')::int AS cx,
               (figures->>'cy')::int AS cy, (figures->>'presence')::bigint AS presence,
               (figures->>'dwell_ms')::float8 / 1000 AS dwell_s, (figures->>'tracks')::bigint AS tracks
        FROM iobox_chain.facts WHERE kind = 'heat' AND bucket = 'day' AND NOT suppressed;
    CREATE OR REPLACE VIEW iobox_chain.mood_daily AS
        SELECT store, local_start::date AS day, dim AS zone, suppressed, (figures->>'samples')::bigint AS faces_read,
               (figures->>'uncertain')::bigint AS faces_unread, (figures->>'readable')::boolean AS readable,
               (figures->'counts'->>'angry')::bigint AS angry, (figures->'counts'->>'disgust')::bigint AS disgust,
               (figures->'counts'->>'fear')::bigint AS fear, (figures->'counts'->>'happy')::bigint AS happy,
               (figures->'counts'->>'sad')::bigint AS sad, (figures->'counts'->>'surprise')::bigint AS surprise,
               (figures->'counts'->>'neutral')::bigint AS neutral
        FROM iobox_chain.facts WHERE kind = 'mood' AND bucket = 'day';
    GRANT SELECT ON ALL TABLES IN SCHEMA iobox_chain TO iobox_chain_reader;
    GRANT SELECT ON iobox_chain.migrations TO iobox_chain_box;
    REVOKE SELECT ON iobox_chain.stores FROM iobox_chain_reader;
    GRANT SELECT (store, created_at) ON iobox_chain.stores TO iobox_chain_reader;
"#;

/// The schema version this iobox writes.
pub const LATEST: i32 = MIGRATIONS.len() as i32;

/// What `chain init` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Initialised {
    pub from_version: i32,
    pub to_version: i32,
}

/// Creates or upgrades the schema (and its views) in one transaction; safe to run again.
pub fn init(client: &mut Client, target: &str) -> Result<Initialised> {
    let mut tx = client.transaction().map_err(db(target))?;
    tx.batch_execute(
        "CREATE SCHEMA IF NOT EXISTS iobox_chain;
         CREATE TABLE IF NOT EXISTS iobox_chain.migrations (
            version integer PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now());
         LOCK TABLE iobox_chain.migrations IN EXCLUSIVE MODE;",
    )
    .map_err(db(target))?;
    let from: i32 =
        tx.query_one("SELECT COALESCE(MAX(version), 0) FROM iobox_chain.migrations", &[]).map_err(db(target))?.get(0);
    if from > LATEST {
        return Err(Error::TooNew { target: target.to_string(), found: from, supported: LATEST });
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(from as usize) {
        tx.batch_execute(sql).map_err(db(target))?;
        tx.execute("INSERT INTO iobox_chain.migrations (version) VALUES ($1)", &[&(i as i32 + 1)])
            .map_err(db(target))?;
    }
    tx.batch_execute(VIEWS).map_err(db(target))?;
    tx.commit().map_err(db(target))?;
    Ok(Initialised { from_version: from, to_version: LATEST })
}

/// The schema version on the server (0: never initialised).
pub fn version(client: &mut Client, target: &str) -> Result<i32> {
    let row = client
        .query_one(
            "SELECT CASE WHEN to_regclass('iobox_chain.migrations') IS NULL THEN 0
                    ELSE (SELECT COALESCE(MAX(version), 0) FROM iobox_chain.migrations) END",
            &[],
        )
        .map_err(db(target))?;
    Ok(row.get(0))
}

/// The PostgreSQL role a store's box logs in as.
pub fn role_of(store: &str) -> String {
    format!("iobox_box_{}", store.replace('-', "_"))
}

/// Adds a store and its box's login (or, for a store already there, sets a new password): the role can
/// write only this store's rows. Returns the role.
pub fn add_store(client: &mut Client, target: &str, store: &str, password: &str) -> Result<String> {
    if !crate::config::is_store_id(store) {
        return Err(Error::Usage(format!(
            "{store:?} is not a store id: 1 to 63 lowercase letters, digits, '-' or '_'"
        )));
    }
    let role = role_of(store);
    let mut tx = client.transaction().map_err(db(target))?;
    let exists: bool =
        tx.query_one("SELECT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = $1)", &[&role]).map_err(db(target))?.get(0);
    // Quoted by the server (%I, %L): DDL takes no parameters.
    let sql: String = tx
        .query_one(
            if exists {
                "SELECT format('ALTER ROLE %I LOGIN PASSWORD %L', $1::text, $2::text)"
            } else {
                "SELECT format('CREATE ROLE %I LOGIN PASSWORD %L IN ROLE iobox_chain_box', $1::text, $2::text)"
            },
            &[&role, &password],
        )
        .map_err(db(target))?
        .get(0);
    tx.batch_execute(&sql).map_err(db(target))?;
    tx.execute(
        "INSERT INTO iobox_chain.stores (store, role) VALUES ($1, $2) ON CONFLICT (store) DO UPDATE SET role = $2",
        &[&store, &role],
    )
    .map_err(db(target))?;
    tx.commit().map_err(db(target))?;
    Ok(role)
}
