-- A look-up of an unknown reply at the provider reads our other replies to the same
-- number (their provider sids are not this reply's; one still being sent postpones it).
CREATE INDEX outbox_recipient ON outbox (recipient);
