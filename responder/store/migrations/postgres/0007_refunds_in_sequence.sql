-- Each process's policy tick reads the refunds it has not seen yet by a number, not by
-- time: a refund's time is its writer's clock, and one instance whose clock ran ahead
-- hid the others' later refunds from every tick. ``spend.refund_seq`` counts refunds;
-- a refund adds one under the budget lock (the ``spend`` row, locked until it commits)
-- and gives the new value to its reservation, so the numbers commit in order: a tick
-- reading past its last number skips none and reads none twice.
ALTER TABLE spend ADD COLUMN refund_seq BIGINT NOT NULL DEFAULT 0;
ALTER TABLE reservations ADD COLUMN refund_seq BIGINT;
-- The refunds made before this version, numbered in the order they were recorded (one of
-- unknown time, made before 0003, at its reservation's time, as a restart replays it).
UPDATE reservations SET refund_seq = numbered.seq FROM (
    SELECT message_id, ROW_NUMBER() OVER (
        ORDER BY COALESCE(refunded_at, reserved_at), message_id
    ) AS seq FROM reservations WHERE refunded = 1
) AS numbered WHERE reservations.message_id = numbered.message_id;
UPDATE spend SET refund_seq = (SELECT COALESCE(MAX(refund_seq), 0) FROM reservations);
CREATE UNIQUE INDEX reservations_refund_seq ON reservations (refund_seq)
    WHERE refund_seq IS NOT NULL;
-- Refunds are no longer read by time (0005's index).
DROP INDEX reservations_refunded_at;
