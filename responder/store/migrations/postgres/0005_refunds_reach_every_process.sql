-- Each process's policy tick reads the refunds recorded since the last it saw (any
-- process's outbox may refund a reply another one admitted): only refunded rows, by time.
CREATE INDEX reservations_refunded_at ON reservations (refunded_at) WHERE refunded = 1;
