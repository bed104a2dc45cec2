"""State kept in topics and on disk: the ledger, the batch log, spend, the crash log, the spool."""
