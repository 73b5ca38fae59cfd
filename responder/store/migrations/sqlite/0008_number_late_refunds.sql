-- During a rolling upgrade to 0007, processes still running the older code refund
-- replies without a number (``refund_seq``), and the upgraded processes, which read
-- refunds by number, would not free those senders until they restart. Each upgraded
-- process's policy tick numbers such refunds (``SqlStore.number_refunds``): this index
-- holds only them, so finding none, the usual case, reads nothing.
CREATE INDEX reservations_unnumbered_refunds ON reservations (message_id)
    WHERE refunded = 1 AND refund_seq IS NULL;
