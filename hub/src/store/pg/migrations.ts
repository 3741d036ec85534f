// The PostgreSQL schema: its own migration list, mirroring SQLite's
// (../migrations.ts) table for table with PostgreSQL's types (BIGINT for
// SQLite's 64-bit INTEGER, DOUBLE PRECISION for REAL, BIGSERIAL for rowid
// keys). Migration 1 is SQLite's schema as of its migration 13; append new
// ones in step with SQLite's. Applied versions are rows of schema_version,
// under an advisory lock so hub replicas starting together migrate once.
import type { PgDb } from './bridge.js'

const PG_MIGRATIONS: readonly string[] = [
  /* 1: SQLite's migrations 1-13 */ `
  CREATE TABLE devices (
    id TEXT PRIMARY KEY,
    profile TEXT NOT NULL,
    tags TEXT NOT NULL DEFAULT '{}',
    secret_hash TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    online INTEGER NOT NULL DEFAULT 0,
    last_seen BIGINT,
    state TEXT,
    broker_hash TEXT,
    status TEXT NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'disabled', 'removed')),
    status_at BIGINT,
    nats_hash TEXT,
    -- SQLite's rowid: insertion order, read by DeviceStore.activeSince.
    seq BIGSERIAL NOT NULL
  );
  CREATE INDEX devices_profile ON devices(profile);
  CREATE TABLE models (name TEXT PRIMARY KEY, created_at BIGINT NOT NULL);
  CREATE TABLE versions (
    model TEXT NOT NULL REFERENCES models(name),
    version TEXT NOT NULL,
    digest TEXT NOT NULL,
    size BIGINT NOT NULL,
    inputs TEXT NOT NULL,
    outputs TEXT NOT NULL,
    options TEXT NOT NULL DEFAULT '{}',
    parent TEXT,
    run_id TEXT,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (model, version)
  );
  CREATE TABLE builds (
    id BIGSERIAL PRIMARY KEY,
    model TEXT NOT NULL,
    version TEXT NOT NULL,
    profile TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('ok', 'failed')),
    precision TEXT,
    artifact TEXT,
    manifest TEXT,
    manifest_sig TEXT,
    report TEXT,
    error_code TEXT,
    error TEXT,
    created_at BIGINT NOT NULL,
    UNIQUE (model, version, profile),
    FOREIGN KEY (model, version) REFERENCES versions(model, version)
  );
  CREATE TABLE artifacts (digest TEXT PRIMARY KEY, size BIGINT NOT NULL, chunks TEXT NOT NULL, created_at BIGINT NOT NULL);
  CREATE TABLE deployments (
    id TEXT PRIMARY KEY,
    model TEXT NOT NULL,
    version TEXT NOT NULL,
    target TEXT NOT NULL,
    rollback INTEGER NOT NULL DEFAULT 0,
    created_at BIGINT NOT NULL
  );
  CREATE TABLE deployment_devices (
    deployment_id TEXT NOT NULL REFERENCES deployments(id),
    device_id TEXT NOT NULL REFERENCES devices(id),
    build_id BIGINT REFERENCES builds(id),
    cmd_id TEXT,
    state TEXT NOT NULL,
    bytes BIGINT NOT NULL DEFAULT 0,
    total_bytes BIGINT NOT NULL DEFAULT 0,
    code TEXT,
    message TEXT,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (deployment_id, device_id)
  );
  CREATE INDEX deployment_devices_device ON deployment_devices(device_id);
  CREATE TABLE events (
    id BIGSERIAL PRIMARY KEY,
    device_id TEXT NOT NULL,
    ts BIGINT NOT NULL,
    kind TEXT NOT NULL,
    deployment_id TEXT,
    cmd_id TEXT,
    model TEXT,
    version TEXT,
    code TEXT,
    message TEXT,
    received_at BIGINT NOT NULL,
    received_bytes BIGINT
  );
  CREATE INDEX events_device ON events(device_id, id);
  CREATE TABLE telemetry_batches (
    device_id TEXT NOT NULL,
    batch_id TEXT NOT NULL,
    ts_from BIGINT NOT NULL,
    ts_to BIGINT NOT NULL,
    device_stats TEXT,
    dropped BIGINT NOT NULL DEFAULT 0,
    received_at BIGINT NOT NULL,
    drops TEXT,
    PRIMARY KEY (device_id, batch_id)
  );
  CREATE INDEX telemetry_batches_to ON telemetry_batches(ts_to);
  CREATE TABLE telemetry (
    device_id TEXT NOT NULL,
    batch_id TEXT NOT NULL,
    ts_to BIGINT NOT NULL,
    model TEXT NOT NULL,
    version TEXT NOT NULL,
    requests BIGINT NOT NULL,
    errors BIGINT NOT NULL,
    latency TEXT NOT NULL,
    latency_sum_ms DOUBLE PRECISION NOT NULL,
    confidence TEXT,
    features TEXT
  );
  CREATE INDEX telemetry_model ON telemetry(model, version, ts_to);
  CREATE TABLE telemetry_shadow (
    device_id TEXT NOT NULL,
    batch_id TEXT NOT NULL,
    ts_to BIGINT NOT NULL,
    model TEXT NOT NULL,
    version TEXT NOT NULL,
    candidate TEXT NOT NULL,
    runs BIGINT NOT NULL,
    skipped BIGINT NOT NULL,
    errors BIGINT NOT NULL,
    top1_agree BIGINT NOT NULL,
    max_abs_diff DOUBLE PRECISION NOT NULL,
    cosine_sum DOUBLE PRECISION NOT NULL,
    latency TEXT NOT NULL,
    latency_sum_ms DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (device_id, batch_id, model, version, candidate)
  );
  CREATE INDEX telemetry_shadow_model ON telemetry_shadow(model, candidate, ts_to);
  CREATE INDEX telemetry_shadow_ts ON telemetry_shadow(ts_to);
  CREATE TABLE samples (
    device_id TEXT NOT NULL,
    sample_id TEXT NOT NULL,
    ts BIGINT NOT NULL,
    model TEXT NOT NULL,
    version TEXT NOT NULL,
    reason TEXT NOT NULL,
    confidence DOUBLE PRECISION,
    bytes BIGINT NOT NULL,
    payload TEXT NOT NULL,
    received_at BIGINT NOT NULL,
    -- SQLite's rowid: the retraining feed's sample cursor.
    seq BIGSERIAL NOT NULL,
    PRIMARY KEY (device_id, sample_id)
  );
  CREATE INDEX samples_model ON samples(model, version, ts);
  CREATE INDEX samples_received ON samples(received_at);
  CREATE UNIQUE INDEX samples_seq ON samples(seq);
  CREATE TABLE api_tokens (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    role TEXT NOT NULL CHECK (role IN ('viewer', 'operator', 'admin')),
    token_hash TEXT NOT NULL UNIQUE,
    created_at BIGINT NOT NULL,
    last_used_at BIGINT,
    revoked_at BIGINT,
    expires_at BIGINT
  );
  CREATE TABLE rollouts (
    id TEXT PRIMARY KEY,
    model TEXT NOT NULL,
    version TEXT NOT NULL,
    spec TEXT NOT NULL,
    state TEXT NOT NULL,
    wave INTEGER NOT NULL DEFAULT 0,
    phase TEXT NOT NULL DEFAULT 'deploy',
    phase_started_at BIGINT,
    soak_until BIGINT,
    paused_from TEXT,
    paused_at BIGINT,
    reason TEXT,
    created_by TEXT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
  );
  CREATE INDEX rollouts_state ON rollouts(state);
  CREATE TABLE rollout_devices (
    rollout_id TEXT NOT NULL REFERENCES rollouts(id),
    device_id TEXT NOT NULL REFERENCES devices(id),
    ord TEXT NOT NULL,
    wave INTEGER,
    status TEXT NOT NULL,
    previous_version TEXT,
    due_at BIGINT,
    deployment_id TEXT,
    rollback_deployment_id TEXT,
    activated_at BIGINT,
    code TEXT,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (rollout_id, device_id)
  );
  CREATE INDEX rollout_devices_wave ON rollout_devices(rollout_id, wave, status);
  CREATE TABLE rollout_decisions (
    id BIGSERIAL PRIMARY KEY,
    rollout_id TEXT NOT NULL REFERENCES rollouts(id),
    ts BIGINT NOT NULL,
    wave INTEGER NOT NULL,
    kind TEXT NOT NULL,
    decision TEXT NOT NULL,
    detail TEXT NOT NULL DEFAULT '{}',
    actor TEXT
  );
  CREATE INDEX rollout_decisions_rollout ON rollout_decisions(rollout_id, id);
  CREATE TABLE rollout_gate_samples (
    rollout_id TEXT NOT NULL REFERENCES rollouts(id),
    ts BIGINT NOT NULL,
    wave INTEGER NOT NULL,
    vals TEXT NOT NULL
  );
  CREATE INDEX rollout_gate_samples_rollout ON rollout_gate_samples(rollout_id, ts);
  CREATE TABLE telemetry_rollups (
    model TEXT NOT NULL,
    version TEXT NOT NULL,
    profile TEXT NOT NULL,
    bucket BIGINT NOT NULL,
    batches BIGINT NOT NULL,
    requests BIGINT NOT NULL,
    errors BIGINT NOT NULL,
    latency TEXT NOT NULL,
    latency_sum_ms DOUBLE PRECISION NOT NULL,
    confidence TEXT,
    features TEXT,
    PRIMARY KEY (model, version, profile, bucket)
  );
  CREATE INDEX telemetry_rollups_bucket ON telemetry_rollups(bucket);
  CREATE TABLE baselines (
    model TEXT NOT NULL,
    version TEXT NOT NULL,
    profile TEXT NOT NULL,
    source TEXT NOT NULL CHECK (source IN ('api', 'field', 'build')),
    from_ms BIGINT,
    to_ms BIGINT,
    requests BIGINT NOT NULL DEFAULT 0,
    confidence TEXT,
    features TEXT NOT NULL DEFAULT '{}',
    created_at BIGINT NOT NULL,
    PRIMARY KEY (model, version, profile, source)
  );
  CREATE TABLE drift_state (
    model TEXT NOT NULL,
    version TEXT NOT NULL,
    profile TEXT NOT NULL,
    subject TEXT NOT NULL,
    psi DOUBLE PRECISION,
    count BIGINT NOT NULL,
    baseline_source TEXT,
    open INTEGER NOT NULL DEFAULT 0,
    evaluated_at BIGINT NOT NULL,
    PRIMARY KEY (model, version, profile, subject)
  );
  CREATE TABLE feed (
    cursor BIGSERIAL PRIMARY KEY,
    model TEXT NOT NULL,
    version TEXT,
    kind TEXT NOT NULL,
    ts BIGINT NOT NULL,
    body TEXT NOT NULL
  );
  CREATE INDEX feed_model ON feed(model, cursor);
  CREATE INDEX feed_ts ON feed(ts);
  CREATE TABLE feed_meta (id INTEGER PRIMARY KEY CHECK (id = 1), pruned_through BIGINT NOT NULL DEFAULT 0);
  INSERT INTO feed_meta (id, pruned_through) VALUES (1, 0);
  CREATE TABLE capture_policies (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    selector TEXT NOT NULL,
    model TEXT,
    body TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
  );
  CREATE TABLE capture_policy_sent (device_id TEXT PRIMARY KEY, policies TEXT NOT NULL, sent_at BIGINT NOT NULL);
  CREATE TABLE agent_releases (
    version TEXT NOT NULL,
    arch TEXT NOT NULL,
    runtime TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    size BIGINT NOT NULL,
    sig TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    chunks TEXT,
    PRIMARY KEY (version, arch)
  );
  CREATE TABLE agent_updates (
    cmd_id TEXT PRIMARY KEY,
    batch TEXT NOT NULL,
    origin TEXT NOT NULL,
    device_id TEXT NOT NULL,
    version TEXT NOT NULL,
    arch TEXT NOT NULL,
    rollback INTEGER NOT NULL,
    deadline_ms BIGINT NOT NULL,
    http_base TEXT NOT NULL,
    state TEXT NOT NULL,
    code TEXT,
    message TEXT,
    sent_at BIGINT NOT NULL,
    staged_at BIGINT,
    updated_at BIGINT NOT NULL
  );
  CREATE INDEX agent_updates_batch ON agent_updates(batch);
  CREATE INDEX agent_updates_open ON agent_updates(device_id) WHERE state IN ('sent', 'received', 'staged');
  `,
]

/** Any constant: the advisory lock replicas take to migrate one at a time. */
const MIGRATION_LOCK = 0x45466d67 // 'EFmg'

export function migratePostgres(db: PgDb): void {
  db.transaction(() => {
    db.exec(`SELECT pg_advisory_xact_lock(${MIGRATION_LOCK})`)
    db.exec('CREATE TABLE IF NOT EXISTS schema_version (version INTEGER PRIMARY KEY, applied_at BIGINT NOT NULL)')
    const row = db.prepare('SELECT coalesce(max(version), 0) AS v FROM schema_version').get() as { v: number }
    for (let v = row.v; v < PG_MIGRATIONS.length; v++) {
      db.exec(PG_MIGRATIONS[v])
      db.prepare('INSERT INTO schema_version (version, applied_at) VALUES (?, ?)').run(v + 1, Date.now())
    }
  })
}
