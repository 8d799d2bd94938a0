"""Events: the catalog of names and the transactional outbox they are written to."""
