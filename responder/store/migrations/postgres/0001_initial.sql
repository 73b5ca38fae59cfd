-- raidsim responder schema, version 1 (PostgreSQL).
-- Times are seconds since the Unix epoch (DOUBLE PRECISION); money is integer micro-euros.
CREATE TABLE inbound (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    message_sid TEXT NOT NULL UNIQUE,
    idempotency_token TEXT UNIQUE,
    source TEXT NOT NULL,
    sender TEXT NOT NULL,
    recipient TEXT NOT NULL,
    body TEXT,
    received_at DOUBLE PRECISION NOT NULL,
    action TEXT,
    rule TEXT,
    decided_at DOUBLE PRECISION,
    held SMALLINT NOT NULL DEFAULT 0,
    hold_until DOUBLE PRECISION,
    hold_priority INTEGER
);
CREATE INDEX inbound_received_at ON inbound (received_at);
CREATE INDEX inbound_held ON inbound (held) WHERE held = 1;

-- Every decision after the first (held replies decided again); the first lives in inbound.
CREATE TABLE decisions (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    message_sid TEXT NOT NULL,
    action TEXT NOT NULL,
    rule TEXT NOT NULL,
    hold_until DOUBLE PRECISION,
    decided_at DOUBLE PRECISION NOT NULL
);
CREATE INDEX decisions_message_sid ON decisions (message_sid);

CREATE TABLE reservations (
    message_id TEXT PRIMARY KEY,
    sender TEXT NOT NULL,
    cost_micros BIGINT NOT NULL,
    hour BIGINT NOT NULL,
    reserved_at DOUBLE PRECISION NOT NULL
);
CREATE INDEX reservations_sender ON reservations (sender, reserved_at);

CREATE TABLE spend (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    spent_micros BIGINT NOT NULL,
    total_cap_micros BIGINT,
    hour_cap_micros BIGINT,
    caps_source TEXT NOT NULL
);
INSERT INTO spend (id, spent_micros, caps_source) VALUES (1, 0, 'config');

CREATE TABLE spend_hour (
    hour BIGINT PRIMARY KEY,
    spent_micros BIGINT NOT NULL
);

CREATE TABLE outbox (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    message_sid TEXT NOT NULL UNIQUE,
    recipient TEXT NOT NULL,
    from_number TEXT NOT NULL,
    body TEXT NOT NULL,
    cost_micros BIGINT NOT NULL,
    status TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at DOUBLE PRECISION NOT NULL,
    lease_owner TEXT,
    lease_until DOUBLE PRECISION,
    provider_sid TEXT,
    provider_status TEXT,
    segments INTEGER,
    error TEXT,
    created_at DOUBLE PRECISION NOT NULL,
    updated_at DOUBLE PRECISION NOT NULL
);
CREATE INDEX outbox_due ON outbox (status, next_attempt_at);
CREATE INDEX outbox_provider_sid ON outbox (provider_sid) WHERE provider_sid IS NOT NULL;

CREATE TABLE status_events (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    provider_sid TEXT NOT NULL,
    status TEXT NOT NULL,
    error_code TEXT,
    received_at DOUBLE PRECISION NOT NULL
);

CREATE TABLE controls (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    kill_switch SMALLINT NOT NULL,
    version INTEGER NOT NULL
);
INSERT INTO controls (id, kill_switch, version) VALUES (1, 0, 0);

CREATE TABLE number_rules (
    kind TEXT NOT NULL CHECK (kind IN ('block', 'allow')),
    pattern TEXT NOT NULL,
    created_at DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (kind, pattern)
);
