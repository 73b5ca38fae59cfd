-- A reply whose outcome is unknown (a read timeout, a worker that died mid-send) is
-- looked up at the provider (its Messages list, by To and From): found, it is sent;
-- surely absent, it is queued again. ``checks`` counts the look-ups (bounded), and
-- ``check_at`` is when the next one is due (NULL: a grace period after updated_at).
ALTER TABLE outbox ADD COLUMN checks INTEGER NOT NULL DEFAULT 0;
ALTER TABLE outbox ADD COLUMN check_at REAL;
