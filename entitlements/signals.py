"""Signals entitlements sends, so that the apps above it can follow without entitlements importing them."""

from django.dispatch import Signal

# sender WorkflowRole; role: a workflow role was created or changed (role_save), inside that transaction. queues
# receives it to grant the role's group its queue permissions.
role_changed = Signal()
