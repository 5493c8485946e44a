"""Personal data: retention (closed cases redacted or deleted), erasure and export of one person's data.

The only code that rewrites history (task history, case events, routing hops, the security audit): it runs as the
maintenance database role, to which the append-only rules of those tables give way. Every write it makes is in
retention.py (batched retention) and erasure.py (one person, one transaction); export.py only reads and records
the export. redaction.py holds the value rewriting they share and touches no database.
"""
