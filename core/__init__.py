"""Helpers every app may use: the domain errors and their API mapping, request parsing, health and metrics
probes, database routing, Celery retry policy. Imports no app and not the project package."""
