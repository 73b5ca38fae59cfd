-- What became of one number's messages (GET /admin/evidence?sender=...) read every inbound
-- row: seconds, on a database of millions, and on the event loop with SQLite. This index
-- finds them, in time order.
CREATE INDEX inbound_sender ON inbound (sender, received_at);
