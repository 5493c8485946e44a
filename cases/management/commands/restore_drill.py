"""Point-in-time restore drill with pgBackRest, on throwaway clusters of this machine.

A source cluster archives its WAL to a pgBackRest repository on the configuration `backup_config` generates
(core/backup.py). The drill migrates the application into it, takes a full backup, keeps writing through the
application's services (cases opened, tasks claimed and completed) in three batches A, B and C with an incremental
backup after A, notes the moment T between B and C, restores the repository into a new cluster to T, starts it and
checks: A and B are there, C is not, `check_integrity --compare-with <source> --until T` passes (the invariants, and
the history's counts and checksums up to T equal the source's).

    python manage.py restore_drill [--cases N] [--keep]

Needs pgbackrest and the PostgreSQL server binaries (Debian: pgbackrest, postgresql-15). As root, the clusters and
pgBackRest run as the postgres OS user. Exit 0 when every check holds; non-zero with one line saying what failed.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psycopg
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from core.backup import BackupPlan
from core.local_cluster import LocalCluster, ServerBinaryMissing

STANZA = "drill"
BATCHES = ("A", "B", "C")
DRILL_TITLE = "Restore drill {batch} {number}"
PROMOTION_SECONDS = 120
# What the drill's processes must not inherit: they talk to the throwaway clusters as their superuser.
ENV_DROPPED = ("DATABASE_SET_ROLE", "DATABASE_MIGRATE_URL", "DATABASE_ADMIN_URL", "DATABASE_REPLICA_URL")


class DrillFailed(Exception):
    """A step of the drill failed: its one-line reason."""


class Command(BaseCommand):
    help = (
        "Back up a throwaway copy of the system with pgBackRest while it keeps writing, restore it into a new cluster "
        "to a moment between two known writes, and check that everything before is there, nothing after, and "
        "check_integrity passes against the source."
    )

    def add_arguments(self, parser):
        parser.add_argument("--cases", type=int, default=3, help="Cases opened (and first tasks done) per batch.")
        parser.add_argument("--keep", action="store_true", help="Leave the clusters and the repository (printed).")
        parser.add_argument("--write-batch", metavar="LABEL", help=f"Internal: write one batch ({'/'.join(BATCHES)}).")

    def handle(self, *args, cases, keep, write_batch=None, **options):
        if cases < 1:
            raise CommandError("--cases must be at least 1")
        if write_batch:
            self.stdout.write(json.dumps(write_batch_of_cases(write_batch, cases)))
            return
        if shutil.which("pgbackrest") is None:
            raise CommandError("pgbackrest is not installed (Debian: apt-get install pgbackrest)")
        drill = Drill(cases=cases, out=self.stdout)
        try:
            drill.run()
        except ServerBinaryMissing as exc:
            raise CommandError(str(exc)) from None
        except DrillFailed as exc:
            raise CommandError(f"restore drill failed: {exc}") from None
        except subprocess.CalledProcessError as exc:
            said = (exc.stderr or exc.stdout or "").strip().splitlines()
            raise CommandError(
                f"restore drill failed: {Path(exc.cmd[0]).name if exc.cmd else 'a command'} exited {exc.returncode}"
                + (f": {said[-1]}" if said else "")
            ) from None
        finally:
            if keep:
                self.stdout.write(f"Kept {drill.folder} (clusters still running: stop them with pg_ctl).")
            else:
                drill.remove()


def write_batch_of_cases(batch: str, count: int) -> list[str]:
    """In the source's environment: `count` cases opened by alice, each one's first task claimed and completed
    through the services, as caseworkers do. Returns their case numbers."""
    from cases import demo
    from cases.services import case_open
    from entitlements.models import User
    from tasks.models import WorkflowTask
    from tasks.services import task_claim, task_complete

    people = {
        u.username: u for u in User.objects.filter(username__in=set(demo.DEMO_WORKER_BY_QUEUE.values()) | {"alice"})
    }
    numbers = []
    for number in range(1, count + 1):
        allegation, amount, _ = demo.DEMO_CASE_PLAN[number % len(demo.DEMO_CASE_PLAN)]
        case = case_open(
            user=people["alice"],
            title=DRILL_TITLE.format(batch=batch, number=number),
            allegations=[
                {"type": allegation, "description": demo.DEMO_ALLEGATION_TEXT[allegation], "date": "2026-11-02"}
            ],
            subjects=demo.DEMO_SUBJECTS[number % len(demo.DEMO_SUBJECTS)],
        )
        task = (
            WorkflowTask.objects.filter(process_instance__case_mapping__case=case, status="OPEN").order_by("pk").first()
        )
        if task is None:
            raise CommandError(f"{case.case_number} opened no task: is the demo workflow deployed?")
        worker = people[demo.DEMO_WORKER_BY_QUEUE[task.queue_id]]
        task_claim(user=worker, task_id=task.pk)
        task_complete(
            user=worker, task_id=task.pk, variables=demo.task_variables(allegation, amount, task.task_definition_key)
        )
        numbers.append(case.case_number)
    return numbers


class Drill:
    def __init__(self, *, cases: int, out) -> None:
        self.cases = cases
        self.out = out
        self.folder = Path(tempfile.mkdtemp(prefix="restore-drill-"))
        if os.geteuid() == 0:  # the clusters and pgBackRest run as postgres, inside this folder
            shutil.chown(self.folder, "postgres", "postgres")
        self.clusters: list[LocalCluster] = []
        self.started = time.monotonic()

    def say(self, line: str) -> None:
        self.out.write(f"[{time.monotonic() - self.started:6.1f} s] {line}")

    def remove(self) -> None:
        for cluster in self.clusters:
            cluster.remove()
        shutil.rmtree(self.folder, ignore_errors=True)

    def run(self) -> None:
        source = self.cluster("source-")
        plan = BackupPlan(
            stanza=STANZA,
            pg_path=source.data,
            repo_path=self.folder / "repo",
            pg_port=source.port,
            pg_socket_path=source.folder,
            retention_full=2,
            log_path=self.folder / "log",
            lock_path=self.folder / "lock",
            spool_path=self.folder / "spool",
            config_path=self.folder / "pgbackrest.conf",
            process_max=1,
        )
        for name in ("repo", "log", "lock", "spool"):
            (self.folder / name).mkdir()
            source.own(self.folder / name)
        plan.config_path.write_text(plan.pgbackrest_conf())
        source.own(plan.config_path)
        source.configure(plan.server_settings())
        source.start()
        with psycopg.connect(source.url.replace("/workflow", "/postgres"), autocommit=True) as admin:
            admin.execute("CREATE DATABASE workflow")
        self.say(f"source cluster on port {source.port}, archiving WAL to {plan.repo_path}")

        self.manage(source, "migrate", "--no-input")
        self.manage(source, "seed_demo", "--cases", "0")
        self.say("application migrated, demo organisation seeded")
        source.run(*plan.pgbackrest("stanza-create"))
        source.run(*plan.pgbackrest("check"))
        source.run(*plan.pgbackrest("--type=full", "backup"), timeout=600)
        self.say("full backup taken")

        written = {"A": self.write(source, "A")}
        source.run(*plan.pgbackrest("--type=incr", "backup"), timeout=600)
        self.say(f"batch A written ({', '.join(written['A'])}); incremental backup taken")
        written["B"] = self.write(source, "B")
        with psycopg.connect(source.url) as conn:
            target = conn.execute("SELECT clock_timestamp()::text").fetchone()[0]
        time.sleep(1.0)  # C's commits fall clearly after the target
        written["C"] = self.write(source, "C")
        source.run(*plan.pgbackrest("check"))  # switches WAL and waits until C's segment is archived
        self.say(f"batch B written, target {target}, batch C written after it; WAL archived")

        restored = self.cluster("restored-", initdb=False)
        began = time.monotonic()
        source.run(
            *plan.pgbackrest(
                f"--pg1-path={restored.data}", "--type=time", f"--target={target}", "--target-action=promote", "restore"
            ),
            timeout=600,
        )
        # The restored server keeps the source's settings: it must not archive into the source's stanza.
        restored.start(options=f"-c archive_mode=off -c unix_socket_directories={restored.folder}")
        self.wait_promoted(restored)
        self.say(f"restored to {target} on port {restored.port} in {time.monotonic() - began:.1f} s")

        self.check_cases(restored, written)
        result = self.manage(restored, "check_integrity", "--compare-with", source.url, "--until", target, check=False)
        if result.returncode != 0:
            raise DrillFailed("check_integrity on the restored database: " + " | ".join(result.stdout.split("\n")[:5]))
        self.say(f"check_integrity: {result.stdout.strip().splitlines()[-1]}")
        info = json.loads(source.run(*plan.pgbackrest("--output=json", "info")).stdout)
        backups = info[0]["backup"]
        self.say(
            "backups: "
            + ", ".join(f"{b['type']} {b['info']['repository']['delta'] / 1e6:.1f} MB" for b in backups)
            + f"; restore drill passed in {time.monotonic() - self.started:.0f} s"
        )

    def cluster(self, prefix: str, *, initdb: bool = True) -> LocalCluster:
        cluster = LocalCluster(prefix=prefix, folder=self.folder, initdb=initdb)
        self.clusters.append(cluster)
        return cluster

    def environment(self, cluster: LocalCluster) -> dict:
        env = {key: value for key, value in os.environ.items() if key not in ENV_DROPPED}
        return {**env, "DATABASE_URL": cluster.url}

    def manage(self, cluster: LocalCluster, *arguments: str, check: bool = True) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, str(Path(settings.BASE_DIR) / "manage.py"), *arguments],
            env=self.environment(cluster),
            cwd=settings.BASE_DIR,
            capture_output=True,
            text=True,
            check=check,
            timeout=900,
        )

    def write(self, cluster: LocalCluster, batch: str) -> list[str]:
        result = self.manage(cluster, "restore_drill", "--write-batch", batch, "--cases", str(self.cases))
        return json.loads(result.stdout.strip().splitlines()[-1])

    def wait_promoted(self, cluster: LocalCluster) -> None:
        deadline = time.monotonic() + PROMOTION_SECONDS
        while time.monotonic() < deadline:
            try:
                with psycopg.connect(cluster.url, connect_timeout=5) as conn:
                    if not conn.execute("SELECT pg_is_in_recovery()").fetchone()[0]:
                        return
            except psycopg.OperationalError:
                pass
            time.sleep(0.5)
        raise DrillFailed(
            f"the restored cluster did not finish recovery in {PROMOTION_SECONDS} s: {cluster.log()[-300:]}"
        )

    def check_cases(self, restored: LocalCluster, written: dict[str, list[str]]) -> None:
        with psycopg.connect(restored.url) as conn:
            present = {row[0] for row in conn.execute("SELECT case_number FROM onecms.cases")}
        for batch, expected in (("A", True), ("B", True), ("C", False)):
            there = [number for number in written[batch] if number in present]
            if expected and len(there) != len(written[batch]):
                raise DrillFailed(
                    f"batch {batch}, written before the target, is missing: {sorted(set(written[batch]) - present)}"
                )
            if not expected and there:
                raise DrillFailed(f"batch {batch}, written after the target, was restored: {there}")
        self.say(f"batches A and B are there ({len(written['A']) + len(written['B'])} cases), batch C is not")
