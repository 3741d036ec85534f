// Schema migrations, applied in order; never edit one that has shipped, append a new one.
export const MIGRATIONS: readonly string[] = [
  /* 1: initial schema */ `
  CREATE TABLE devices (
    id TEXT PRIMARY KEY,
    profile TEXT NOT NULL,
    tags TEXT NOT NULL DEFAULT '{}',
    secret_hash TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    online INTEGER NOT NULL DEFAULT 0,
    last_seen INTEGER,
    state TEXT
  );
  CREATE INDEX devices_profile ON devices(profile);

  CREATE TABLE models (
    name TEXT PRIMARY KEY,
    created_at INTEGER NOT NULL
  );
  CREATE TABLE versions (
    model TEXT NOT NULL REFERENCES models(name),
    version TEXT NOT NULL,
    digest TEXT NOT NULL,
    size INTEGER NOT NULL,
    inputs TEXT NOT NULL,
    outputs TEXT NOT NULL,
    options TEXT NOT NULL DEFAULT '{}',
    parent TEXT,
    run_id TEXT,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (model, version)
  );
  CREATE TABLE builds (
    id INTEGER PRIMARY KEY,
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
    created_at INTEGER NOT NULL,
    UNIQUE (model, version, profile),
    FOREIGN KEY (model, version) REFERENCES versions(model, version)
  );
  CREATE TABLE artifacts (
    digest TEXT PRIMARY KEY,
    size INTEGER NOT NULL,
    chunks TEXT NOT NULL,
    created_at INTEGER NOT NULL
  );
  CREATE TABLE deployments (
    id TEXT PRIMARY KEY,
    model TEXT NOT NULL,
    version TEXT NOT NULL,
    target TEXT NOT NULL,
    rollback INTEGER NOT NULL DEFAULT 0,
    created_at INTEGER NOT NULL
  );
  CREATE TABLE deployment_devices (
    deployment_id TEXT NOT NULL REFERENCES deployments(id),
    device_id TEXT NOT NULL REFERENCES devices(id),
    build_id INTEGER REFERENCES builds(id),
    cmd_id TEXT,
    state TEXT NOT NULL,
    bytes INTEGER NOT NULL DEFAULT 0,
    total_bytes INTEGER NOT NULL DEFAULT 0,
    code TEXT,
    message TEXT,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (deployment_id, device_id)
  );
  CREATE INDEX deployment_devices_device ON deployment_devices(device_id);
  CREATE TABLE events (
    id INTEGER PRIMARY KEY,
    device_id TEXT NOT NULL,
    ts INTEGER NOT NULL,
    kind TEXT NOT NULL,
    deployment_id TEXT,
    cmd_id TEXT,
    model TEXT,
    version TEXT,
    code TEXT,
    message TEXT,
    received_at INTEGER NOT NULL
  );
  CREATE INDEX events_device ON events(device_id, id);
  CREATE TABLE telemetry_batches (
    device_id TEXT NOT NULL,
    batch_id TEXT NOT NULL,
    ts_from INTEGER NOT NULL,
    ts_to INTEGER NOT NULL,
    device_stats TEXT,
    dropped INTEGER NOT NULL DEFAULT 0,
    received_at INTEGER NOT NULL,
    PRIMARY KEY (device_id, batch_id)
  );
  CREATE TABLE telemetry (
    device_id TEXT NOT NULL,
    batch_id TEXT NOT NULL,
    ts_to INTEGER NOT NULL,
    model TEXT NOT NULL,
    version TEXT NOT NULL,
    requests INTEGER NOT NULL,
    errors INTEGER NOT NULL,
    latency TEXT NOT NULL,
    latency_sum_ms REAL NOT NULL,
    PRIMARY KEY (device_id, batch_id, model, version)
  );
  CREATE INDEX telemetry_model ON telemetry(model, version, ts_to);
  `,
  /* 2: Mosquitto-format password hash per device (external-broker mode); bytes a download moved */ `
  ALTER TABLE devices ADD COLUMN broker_hash TEXT;
  ALTER TABLE events ADD COLUMN received_bytes INTEGER;
  `,
  /* 3: agent runtime telemetry (confidence, input statistics, shadow comparisons, drop reasons) and captured samples */ `
  ALTER TABLE telemetry ADD COLUMN confidence TEXT;
  ALTER TABLE telemetry ADD COLUMN features TEXT;
  ALTER TABLE telemetry_batches ADD COLUMN drops TEXT;
  CREATE TABLE telemetry_shadow (
    device_id TEXT NOT NULL,
    batch_id TEXT NOT NULL,
    ts_to INTEGER NOT NULL,
    model TEXT NOT NULL,
    version TEXT NOT NULL,
    candidate TEXT NOT NULL,
    runs INTEGER NOT NULL,
    skipped INTEGER NOT NULL,
    errors INTEGER NOT NULL,
    top1_agree INTEGER NOT NULL,
    max_abs_diff REAL NOT NULL,
    cosine_sum REAL NOT NULL,
    latency TEXT NOT NULL,
    latency_sum_ms REAL NOT NULL,
    PRIMARY KEY (device_id, batch_id, model, version, candidate)
  );
  CREATE INDEX telemetry_shadow_model ON telemetry_shadow(model, candidate, ts_to);
  CREATE TABLE samples (
    device_id TEXT NOT NULL,
    sample_id TEXT NOT NULL,
    ts INTEGER NOT NULL,
    model TEXT NOT NULL,
    version TEXT NOT NULL,
    reason TEXT NOT NULL,
    confidence REAL,
    bytes INTEGER NOT NULL,
    payload TEXT NOT NULL,
    received_at INTEGER NOT NULL,
    PRIMARY KEY (device_id, sample_id)
  );
  CREATE INDEX samples_model ON samples(model, version, ts);
  CREATE INDEX samples_received ON samples(received_at);
  `,
  /* 4: API tokens (sha256 only) and rollouts: state machine, per-device status, decisions, gate values over time [EF-8] */ `
  CREATE TABLE api_tokens (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    role TEXT NOT NULL CHECK (role IN ('viewer', 'operator', 'admin')),
    token_hash TEXT NOT NULL UNIQUE,
    created_at INTEGER NOT NULL,
    last_used_at INTEGER,
    revoked_at INTEGER
  );
  CREATE TABLE rollouts (
    id TEXT PRIMARY KEY,
    model TEXT NOT NULL,
    version TEXT NOT NULL,
    spec TEXT NOT NULL,
    state TEXT NOT NULL,
    wave INTEGER NOT NULL DEFAULT 0,
    phase TEXT NOT NULL DEFAULT 'deploy',
    phase_started_at INTEGER,
    soak_until INTEGER,
    paused_from TEXT,
    paused_at INTEGER,
    reason TEXT,
    created_by TEXT,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
  );
  CREATE INDEX rollouts_state ON rollouts(state);
  CREATE TABLE rollout_devices (
    rollout_id TEXT NOT NULL REFERENCES rollouts(id),
    device_id TEXT NOT NULL REFERENCES devices(id),
    ord TEXT NOT NULL,
    wave INTEGER,
    status TEXT NOT NULL,
    previous_version TEXT,
    due_at INTEGER,
    deployment_id TEXT,
    rollback_deployment_id TEXT,
    activated_at INTEGER,
    code TEXT,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (rollout_id, device_id)
  );
  CREATE INDEX rollout_devices_wave ON rollout_devices(rollout_id, wave, status);
  CREATE TABLE rollout_decisions (
    id INTEGER PRIMARY KEY,
    rollout_id TEXT NOT NULL REFERENCES rollouts(id),
    ts INTEGER NOT NULL,
    wave INTEGER NOT NULL,
    kind TEXT NOT NULL,
    decision TEXT NOT NULL,
    detail TEXT NOT NULL DEFAULT '{}',
    actor TEXT
  );
  CREATE INDEX rollout_decisions_rollout ON rollout_decisions(rollout_id, id);
  CREATE TABLE rollout_gate_samples (
    rollout_id TEXT NOT NULL REFERENCES rollouts(id),
    ts INTEGER NOT NULL,
    wave INTEGER NOT NULL,
    vals TEXT NOT NULL
  );
  CREATE INDEX rollout_gate_samples_rollout ON rollout_gate_samples(rollout_id, ts);
  `,
  /* 5: retraining loop [EF-9]: rollups per model version, profile and time bucket; baselines; drift state; the feed log and its retention floor */ `
  CREATE TABLE telemetry_rollups (
    model TEXT NOT NULL,
    version TEXT NOT NULL,
    profile TEXT NOT NULL,
    bucket INTEGER NOT NULL,
    batches INTEGER NOT NULL,
    requests INTEGER NOT NULL,
    errors INTEGER NOT NULL,
    latency TEXT NOT NULL,
    latency_sum_ms REAL NOT NULL,
    confidence TEXT,
    features TEXT,
    PRIMARY KEY (model, version, profile, bucket)
  ) WITHOUT ROWID;
  CREATE INDEX telemetry_rollups_bucket ON telemetry_rollups(bucket);
  CREATE INDEX telemetry_ts ON telemetry(ts_to);
  CREATE INDEX telemetry_batches_to ON telemetry_batches(ts_to);
  CREATE INDEX telemetry_shadow_ts ON telemetry_shadow(ts_to);
  CREATE TABLE baselines (
    model TEXT NOT NULL,
    version TEXT NOT NULL,
    profile TEXT NOT NULL,
    source TEXT NOT NULL CHECK (source IN ('api', 'field', 'build')),
    from_ms INTEGER,
    to_ms INTEGER,
    requests INTEGER NOT NULL DEFAULT 0,
    confidence TEXT,
    features TEXT NOT NULL DEFAULT '{}',
    created_at INTEGER NOT NULL,
    PRIMARY KEY (model, version, profile, source)
  );
  CREATE TABLE drift_state (
    model TEXT NOT NULL,
    version TEXT NOT NULL,
    profile TEXT NOT NULL,
    subject TEXT NOT NULL,
    psi REAL,
    count INTEGER NOT NULL,
    baseline_source TEXT,
    open INTEGER NOT NULL DEFAULT 0,
    evaluated_at INTEGER NOT NULL,
    PRIMARY KEY (model, version, profile, subject)
  );
  CREATE TABLE feed (
    cursor INTEGER PRIMARY KEY AUTOINCREMENT,
    model TEXT NOT NULL,
    version TEXT,
    kind TEXT NOT NULL,
    ts INTEGER NOT NULL,
    body TEXT NOT NULL
  );
  CREATE INDEX feed_model ON feed(model, cursor);
  CREATE INDEX feed_ts ON feed(ts);
  CREATE TABLE feed_meta (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    pruned_through INTEGER NOT NULL DEFAULT 0
  );
  INSERT INTO feed_meta (id, pruned_through) VALUES (1, 0);
  `,
  /* 6: telemetry rows lose the ts_to index of migration 5 (a fourth index per row cost ~1/3 of ingest); retention deletes through telemetry_model instead [EF-9.1, EF-9.3] */ `
  DROP INDEX telemetry_ts;
  `,
  /* 7: telemetry rows without their composite primary key: a batch is stored once already
        (telemetry_batches' key, EF-2.6), and the extra B-tree per row cost ~25% of ingest [EF-9.1] */ `
  CREATE TABLE telemetry_v7 (
    device_id TEXT NOT NULL,
    batch_id TEXT NOT NULL,
    ts_to INTEGER NOT NULL,
    model TEXT NOT NULL,
    version TEXT NOT NULL,
    requests INTEGER NOT NULL,
    errors INTEGER NOT NULL,
    latency TEXT NOT NULL,
    latency_sum_ms REAL NOT NULL,
    confidence TEXT,
    features TEXT
  );
  INSERT INTO telemetry_v7 SELECT device_id, batch_id, ts_to, model, version, requests, errors, latency, latency_sum_ms, confidence, features FROM telemetry;
  DROP TABLE telemetry;
  ALTER TABLE telemetry_v7 RENAME TO telemetry;
  CREATE INDEX telemetry_model ON telemetry(model, version, ts_to);
  `,
  /* 8: identity lifecycle [EF-1.3.3, EF-8.10]: a device is active, disabled or removed (the row stays for its
        history; only active devices authenticate); API tokens may expire */ `
  ALTER TABLE devices ADD COLUMN status TEXT NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'disabled', 'removed'));
  ALTER TABLE devices ADD COLUMN status_at INTEGER;
  ALTER TABLE api_tokens ADD COLUMN expires_at INTEGER;
  `,
  /* 9: capture policies as fleet objects [EF-8.15]: each targets devices by selector; the hub keeps
        what it last sent each device so a reconnect resends it and a delete withdraws it */ `
  CREATE TABLE capture_policies (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    selector TEXT NOT NULL,
    model TEXT,
    body TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
  );
  CREATE TABLE capture_policy_sent (
    device_id TEXT PRIMARY KEY,
    policies TEXT NOT NULL,
    sent_at INTEGER NOT NULL
  );
  `,
  /* 10: bcrypt hash of each device secret for a NATS broker cluster's authorization file [EF-4.12] */ `
  ALTER TABLE devices ADD COLUMN nats_hash TEXT;
  `,
  /* 11: agent releases [EF-11.3]: one signed package per version and architecture, its file in blobs/<sha256> */ `
  CREATE TABLE agent_releases (
    version TEXT NOT NULL,
    arch TEXT NOT NULL,
    runtime TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    size INTEGER NOT NULL,
    sig TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (version, arch)
  );
  `,
  /* 12: agent updates sent [EF-11.9]: one row per agent-update command, followed by the device's events, resent
        while open and the device comes back, grouped in batches (one per `agent update` or rollout dispatch) */ `
  CREATE TABLE agent_updates (
    cmd_id TEXT PRIMARY KEY,
    batch TEXT NOT NULL,
    origin TEXT NOT NULL,
    device_id TEXT NOT NULL,
    version TEXT NOT NULL,
    arch TEXT NOT NULL,
    rollback INTEGER NOT NULL,
    deadline_ms INTEGER NOT NULL,
    http_base TEXT NOT NULL,
    state TEXT NOT NULL,
    code TEXT,
    message TEXT,
    sent_at INTEGER NOT NULL,
    staged_at INTEGER,
    updated_at INTEGER NOT NULL
  );
  CREATE INDEX agent_updates_batch ON agent_updates(batch);
  CREATE INDEX agent_updates_open ON agent_updates(device_id) WHERE state IN ('sent', 'received', 'staged');
  `,
  /* 13: an agent release's chunk list (JSON [{digest,size}]) so its package travels the chunk broadcast [EF-11.4];
        NULL for releases registered before: they go by HTTP range requests */ `
  ALTER TABLE agent_releases ADD COLUMN chunks TEXT;
  `,
]
