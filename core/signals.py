"""Signals core sends, so that apps above it can follow without core importing them."""

from django.dispatch import Signal

# Sent by the API's exception handler for every exception a DRF view raised, once the database is known to be
# reachable and before the error response is built: `exc`, `context` (DRF's: request, view). Receivers run in
# the request, so an exception they raise replaces the error response; entitlements records denials from it.
api_exception_raised = Signal()
