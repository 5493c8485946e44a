"""Writes of queues: creating them and granting roles their queue permissions."""
from __future__ import annotations

from django.contrib.auth.models import Permission
from django.db import transaction

from entitlements.access import permission_codename
from entitlements.models import WorkflowRole

from .models import QueueGroupObjectPermission, WorkflowQueue


def _queue_permissions(capabilities: list[str]) -> dict[str, Permission]:
    codenames = [permission_codename(c) for c in capabilities]
    return {p.codename: p for p in Permission.objects.filter(content_type__app_label="queues", codename__in=codenames)}


@transaction.atomic
def role_queue_permissions_sync(*, role: WorkflowRole) -> None:
    """Make the role's group hold exactly the role's capabilities on the role's named queues."""
    if role.group_id is None:
        return
    wanted_permissions = _queue_permissions(role.permissions)
    queues = list(WorkflowQueue.objects.filter(queue_name__in=role.queue_names))
    wanted = {(queue.pk, permission.pk) for queue in queues for permission in wanted_permissions.values()}
    existing = {
        (row.content_object_id, row.permission_id): row.pk
        for row in QueueGroupObjectPermission.objects.filter(group_id=role.group_id)
    }
    stale = [pk for key, pk in existing.items() if key not in wanted]
    QueueGroupObjectPermission.objects.filter(pk__in=stale).delete()
    QueueGroupObjectPermission.objects.bulk_create(
        [
            QueueGroupObjectPermission(group_id=role.group_id, content_object_id=queue_id, permission_id=permission_id)
            for queue_id, permission_id in sorted(wanted - set(existing))
        ]
    )


@transaction.atomic
def queue_save(*, queue_name: str, **fields) -> WorkflowQueue:
    """Create or update a queue; roles that name it get their permissions on it."""
    queue, _ = WorkflowQueue.objects.update_or_create(queue_name=queue_name, defaults=fields)
    for role in WorkflowRole.objects.filter(queue_names__contains=[queue_name]):
        role_queue_permissions_sync(role=role)
    return queue
