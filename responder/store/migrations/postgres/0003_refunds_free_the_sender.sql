-- A reply settled unbilled (the provider surely did not send it: a 4xx, or retries
-- exhausted) gives its money back AND no longer counts toward its sender's reply limit.
-- ``refunded`` marks it (a free reply, cost_micros = 0, is legitimate and still counts);
-- ``refunded_at`` is when it was refunded, so a restart replays the refund in order.
ALTER TABLE reservations ADD COLUMN refunded SMALLINT NOT NULL DEFAULT 0;
ALTER TABLE reservations ADD COLUMN refunded_at DOUBLE PRECISION;
-- Before this version, a refund was recorded only by the outbox: every reply marked
-- 'failed' was refunded in the same transaction, which set its updated_at.
UPDATE reservations SET refunded = 1, refunded_at = (
    SELECT MAX(o.updated_at) FROM outbox o
    WHERE o.message_sid = reservations.message_id AND o.status = 'failed'
) WHERE message_id IN (SELECT message_sid FROM outbox WHERE status = 'failed');
