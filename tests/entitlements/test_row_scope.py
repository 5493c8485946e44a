"""The row scope reaches PostgreSQL once per transaction, as the code running says (entitlements/row_scope.py):
requests in their user's scope, act-as in the target's, and the queues by the one access rule."""

import re
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection, transaction

from entitlements import row_scope as row_scope_module
from entitlements.access import GRANTING_CAPABILITIES, queue_names_for
from entitlements.models import Capability
from entitlements.row_scope import NO_ROWS, SYSTEM, acting_as, row_scope, user_row_scope


@pytest.fixture
def sent(monkeypatch) -> list:
    """The scopes sent to PostgreSQL, in order."""
    scopes = []
    send = row_scope_module._send

    def record(connection, scope):
        scopes.append(scope)
        send(connection, scope)

    monkeypatch.setattr(row_scope_module, "_send", record)
    return scopes


def settings_now() -> tuple:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT entitlements.acting_user_id(), entitlements.acting_scope(), entitlements.acting_queue_names(),"
            " entitlements.acting_supervised_queue_names()"
        )
        return cursor.fetchone()


@pytest.mark.django_db
class TestSettings:
    def test_a_users_scope_holds_the_queues_they_may_view_and_supervise_by_the_access_rule(self, supervisor_sam):
        with acting_as(supervisor_sam):
            user_id, kind, viewable, supervised = settings_now()

        assert (user_id, kind) == (supervisor_sam.pk, "")
        assert viewable == queue_names_for(user=supervisor_sam, capability=Capability.VIEW)
        assert supervised == queue_names_for(user=supervisor_sam, capability=Capability.SUPERVISE)

    def test_the_system_scope_names_no_user(self):
        with row_scope(SYSTEM):
            assert settings_now() == (None, "system", [], [])

    def test_no_scope_names_nobody_and_no_queue(self, caseworker_alice):
        with acting_as(caseworker_alice):
            settings_now()
            with row_scope(NO_ROWS):
                assert settings_now() == (None, "", [], [])

    def test_an_active_superuser_reads_every_row_an_inactive_user_nothing(self, caseworker_alice):
        from tests.factories import UserFactory

        root = UserFactory(username="root-scope", is_superuser=True)
        caseworker_alice.is_active = False

        assert user_row_scope(root).kind == "superuser"
        assert user_row_scope(caseworker_alice) == NO_ROWS

    def test_the_sql_asks_the_access_rule_for_the_capabilities_access_py_grants_with(self):
        """entitlements.work_access_for names them as literals: they must be GRANTING_CAPABILITIES'."""
        source = (Path(settings.BASE_DIR) / "entitlements" / "sql" / "work_access_for.sql").read_text()
        asked = {
            tuple(re.findall(r"'(\w+)'", found))
            for found in re.findall(r"queue_ids_for\(p_user_id,\s*(ARRAY\[[^]]*\])", source)
        }

        assert asked == {
            tuple(GRANTING_CAPABILITIES[Capability.WORK]),
            tuple(GRANTING_CAPABILITIES[Capability.VIEW]),
            tuple(GRANTING_CAPABILITIES[Capability.SUPERVISE]),
        }


@pytest.mark.django_db
class TestSending:
    def test_a_scope_is_sent_once_for_the_statements_of_a_transaction(self, caseworker_alice, sent):
        with acting_as(caseworker_alice):
            for _ in range(3):
                settings_now()

        assert sent == [user_row_scope(caseworker_alice)]

    def test_a_change_of_scope_inside_a_transaction_is_sent_and_so_is_the_way_back(self, caseworker_alice, sent):
        with acting_as(caseworker_alice):
            settings_now()
            with row_scope(SYSTEM):
                settings_now()
            assert settings_now()[0] == caseworker_alice.pk

        assert sent == [user_row_scope(caseworker_alice), SYSTEM, user_row_scope(caseworker_alice)]

    def test_a_scope_undone_by_a_rolled_back_savepoint_is_sent_again(self, caseworker_alice, legal_reviewer_carol):
        with acting_as(caseworker_alice):
            settings_now()
            with pytest.raises(RuntimeError), transaction.atomic():
                with acting_as(legal_reviewer_carol):
                    assert settings_now()[0] == legal_reviewer_carol.pk
                    raise RuntimeError("roll the savepoint back")
            with acting_as(legal_reviewer_carol):
                assert settings_now()[0] == legal_reviewer_carol.pk  # rolled back: sent again

    def test_entering_the_same_scope_again_sends_nothing(self, caseworker_alice, sent):
        with acting_as(caseworker_alice):
            settings_now()
            with acting_as(caseworker_alice):
                settings_now()

        assert len(sent) == 1


@pytest.mark.django_db
class TestRequests:
    """Inside a test's transaction a request first clears the test's own scope (NO_ROWS); in production each
    request is a transaction of its own, where nothing needs clearing."""

    def test_an_api_request_runs_in_its_token_users_scope_sent_once(self, api_as, caseworker_alice, sent):
        client = api_as(caseworker_alice)
        sent.clear()

        response = client.get("/api/workflow/tasks/")

        assert response.status_code == 200
        assert sent == [NO_ROWS, user_row_scope(caseworker_alice)]

    def test_an_integration_acting_for_a_user_runs_in_the_users_scope(
        self, api_as, integration_account, caseworker_alice, sent
    ):
        client = api_as(integration_account)
        sent.clear()

        response = client.get("/api/workflow/tasks/", HTTP_X_ON_BEHALF_OF="alice")

        assert response.status_code == 200
        assert sent == [NO_ROWS, user_row_scope(caseworker_alice)]

    def test_a_page_runs_in_its_session_users_scope(self, client, caseworker_alice, sent):
        client.force_login(caseworker_alice)
        sent.clear()

        assert client.get("/inbox/").status_code == 200
        assert sent == [NO_ROWS, user_row_scope(caseworker_alice)]

    def test_the_metrics_scrape_reads_in_the_system_scope(self, sent, client):
        assert client.get("/metrics").status_code == 200
        assert sent[-1:] == [SYSTEM]


@pytest.mark.usefixtures("committed_db")
class TestOutsideTransactions:
    """Real transactions (committed_db): each test's code opens and commits its own."""

    def test_a_statement_outside_a_transaction_runs_in_one_of_its_own_with_the_scope(self):
        assert connection.get_autocommit()
        with row_scope(SYSTEM):
            assert settings_now()[1] == "system"
        with row_scope(NO_ROWS):
            assert settings_now()[1] in ("", None)

    def test_a_transaction_that_needs_no_scope_is_sent_nothing(self, sent):
        with row_scope(NO_ROWS), transaction.atomic():
            settings_now()

        assert sent == []

    def test_the_claim_function_outside_a_transaction_claims_in_its_callers_scope_alone(self, caseworker_alice):
        from queues.models import WorkflowQueue
        from tasks.services import task_insert

        with row_scope(SYSTEM), transaction.atomic():
            task_insert(queue=WorkflowQueue.objects.get(queue_name="intake"), name="claim me")
        with connection.cursor() as cursor:
            cursor.execute("SELECT name FROM flowable.claim_next_for_user(%s)", [caseworker_alice.pk])
            assert cursor.fetchall() == [("claim me",)]

    def test_claim_next_over_the_api_sends_no_scope_and_opens_no_transaction(self, committed_api_as, sent):
        from queues.models import WorkflowQueue
        from tasks.services import task_insert

        with row_scope(SYSTEM), transaction.atomic():
            task_insert(queue=WorkflowQueue.objects.get(queue_name="intake"), name="claim me")
        client = committed_api_as("alice")
        sent.clear()

        response = client.post("/api/workflow/tasks/claim/next")

        assert response.status_code == 200 and response.json()["name"] == "claim me"
        assert sent == []  # the token, then the claim statement, which scopes itself

    def test_a_page_sends_its_users_scope_once(self, client, sent):
        from entitlements.models import User

        alice = User.objects.get(username="alice")
        client.force_login(alice)
        sent.clear()

        assert client.get("/inbox/").status_code == 200
        assert sent == [user_row_scope(alice)]


@pytest.mark.django_db
def test_the_policies_row_tests_are_planned_once_per_session():
    """Every PL/pgSQL function a row-level security policy calls per row runs with a generic plan: re-planned per
    row, its cost would depend on the connection's history and the indexes' dead entries (cases 0011 says why;
    tests/cases/test_case_list_plans.py shows it for the case list's test)."""
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT p.oid::regprocedure::text, coalesce(p.proconfig, '{}')
              FROM pg_proc p JOIN pg_language l ON l.oid = p.prolang
             WHERE l.lanname = 'plpgsql'
               AND EXISTS (SELECT 1 FROM pg_policies pol
                            WHERE concat(pol.qual, ' ', pol.with_check) LIKE '%%' || p.proname || '(%%')
            """
        )
        functions = dict(cursor.fetchall())

    assert len(functions) >= 7, functions
    assert {name for name, config in functions.items() if "plan_cache_mode=force_generic_plan" not in config} == set()


OWNER_RIGHTS_FUNCTIONS_OPEN_TO_SEARCH_PATH = """
SELECT p.oid::regprocedure::text
  FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
 WHERE p.prosecdef AND n.nspname IN ('flowable', 'entitlements', 'queues', 'onecms', 'public')
   AND p.prosqlbody IS NULL
   AND NOT EXISTS (SELECT 1 FROM unnest(p.proconfig) c WHERE c LIKE 'search\\_path=%%')
"""


@pytest.mark.django_db
def test_no_function_that_runs_as_its_owner_takes_names_from_the_callers_search_path():
    """A SECURITY DEFINER function pins its search_path, or has a SQL-standard body, whose names were bound when it
    was created: otherwise a caller's search_path could hand it a table or operator of the caller's choosing."""
    with connection.cursor() as cursor:
        cursor.execute(OWNER_RIGHTS_FUNCTIONS_OPEN_TO_SEARCH_PATH)
        assert cursor.fetchall() == []


def test_a_function_that_runs_as_its_owner_with_the_callers_search_path_is_found(owner_connection):
    """The check above finds such a function (made and rolled back here, as the owner)."""
    with owner_connection.transaction(force_rollback=True):
        owner_connection.execute(
            "CREATE FUNCTION onecms.open_to_search_path() RETURNS int LANGUAGE plpgsql SECURITY DEFINER "
            "AS $$ BEGIN RETURN 1; END $$"
        )
        found = [
            row[0] for row in owner_connection.execute(OWNER_RIGHTS_FUNCTIONS_OPEN_TO_SEARCH_PATH.replace("%%", "%"))
        ]
    assert found == ["onecms.open_to_search_path()"]


@pytest.mark.django_db
def test_the_case_walks_tests_carry_no_setting_to_save_and_restore_per_call():
    """The case list calls these once per case it passes over (cases 0012): a setting pinned on a function is saved,
    set and restored on every call; their SQL-standard bodies need none."""
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT p.oid::regprocedure::text, p.proconfig, p.prosqlbody IS NOT NULL
              FROM pg_proc p
             WHERE p.oid IN ('onecms.case_has_task_in_queues(bigint, text[])'::regprocedure,
                             'onecms.case_reached_by_acting_queues(bigint)'::regprocedure)
             ORDER BY 1
            """
        )
        assert cursor.fetchall() == [
            ("onecms.case_has_task_in_queues(bigint,text[])", None, True),
            ("onecms.case_reached_by_acting_queues(bigint)", None, True),
        ]
