"""Keeping work on time: the escalation sweep, alerts and their delivery, archiving and queue upkeep."""
