-- The hourly cap is a sliding 60-minute window: sum reservations by time.
CREATE INDEX reservations_reserved_at ON reservations (reserved_at);
