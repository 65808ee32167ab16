"""Documents in a chat: attach/drop, ingest jobs, chips, citation preview, passwords."""
