-- raidsim responder schema, version 1 (SQLite).
-- Times are seconds since the Unix epoch (REAL); money is integer micro-euros.
CREATE TABLE inbound (
    id INTEGER PRIMARY KEY,
    message_sid TEXT NOT NULL UNIQUE,
    idempotency_token TEXT UNIQUE,
    source TEXT NOT NULL,
    sender TEXT NOT NULL,
    recipient TEXT NOT NULL,
    body TEXT,
    received_at REAL NOT NULL,
    action TEXT,
    rule TEXT,
    decided_at REAL,
    held INTEGER NOT NULL DEFAULT 0,
    hold_until REAL,
    hold_priority INTEGER
);
CREATE INDEX inbound_received_at ON inbound (received_at);
CREATE INDEX inbound_held ON inbound (held) WHERE held = 1;

-- Every decision after the first (held replies decided again); the first lives in inbound.
CREATE TABLE decisions (
    id INTEGER PRIMARY KEY,
    message_sid TEXT NOT NULL,
    action TEXT NOT NULL,
    rule TEXT NOT NULL,
    hold_until REAL,
    decided_at REAL NOT NULL
);
CREATE INDEX decisions_message_sid ON decisions (message_sid);

CREATE TABLE reservations (
    message_id TEXT PRIMARY KEY,
    sender TEXT NOT NULL,
    cost_micros INTEGER NOT NULL,
    hour INTEGER NOT NULL,
    reserved_at REAL NOT NULL
);
CREATE INDEX reservations_sender ON reservations (sender, reserved_at);

CREATE TABLE spend (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    spent_micros INTEGER NOT NULL,
    total_cap_micros INTEGER,
    hour_cap_micros INTEGER,
    caps_source TEXT NOT NULL
);
INSERT INTO spend (id, spent_micros, caps_source) VALUES (1, 0, 'config');

CREATE TABLE spend_hour (
    hour INTEGER PRIMARY KEY,
    spent_micros INTEGER NOT NULL
);

CREATE TABLE outbox (
    id INTEGER PRIMARY KEY,
    message_sid TEXT NOT NULL UNIQUE,
    recipient TEXT NOT NULL,
    from_number TEXT NOT NULL,
    body TEXT NOT NULL,
    cost_micros INTEGER NOT NULL,
    status TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at REAL NOT NULL,
    lease_owner TEXT,
    lease_until REAL,
    provider_sid TEXT,
    provider_status TEXT,
    segments INTEGER,
    error TEXT,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL
);
CREATE INDEX outbox_due ON outbox (status, next_attempt_at);
CREATE INDEX outbox_provider_sid ON outbox (provider_sid) WHERE provider_sid IS NOT NULL;

CREATE TABLE status_events (
    id INTEGER PRIMARY KEY,
    provider_sid TEXT NOT NULL,
    status TEXT NOT NULL,
    error_code TEXT,
    received_at REAL NOT NULL
);

CREATE TABLE controls (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    kill_switch INTEGER NOT NULL,
    version INTEGER NOT NULL
);
INSERT INTO controls (id, kill_switch, version) VALUES (1, 0, 0);

CREATE TABLE number_rules (
    kind TEXT NOT NULL CHECK (kind IN ('block', 'allow')),
    pattern TEXT NOT NULL,
    created_at REAL NOT NULL,
    PRIMARY KEY (kind, pattern)
);
