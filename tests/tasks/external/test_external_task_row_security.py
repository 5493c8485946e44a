"""Row-level security on external tasks: only the system scope reaches them (and a superuser reads them); a worker
account's own request scope finds none, so a service that forgot its permission check would find nothing."""

import pytest

from entitlements.row_scope import SYSTEM, acting_as, row_scope
from tasks.models import ExternalTask, ExternalTaskHistory

pytestmark = pytest.mark.usefixtures("row_security_enforced")


def test_a_worker_accounts_own_scope_finds_no_external_task(start_records_check, worker_account, supervisor_sam):
    start_records_check("CASE-1")

    with acting_as(worker_account):
        assert ExternalTask.objects.count() == 0
        assert ExternalTaskHistory.objects.count() == 0
    with acting_as(supervisor_sam):
        assert ExternalTask.objects.count() == 0
    with row_scope(SYSTEM):
        assert ExternalTask.objects.count() == 1
