"""Write the pgBackRest configuration, the WAL-archiving settings and the backup schedule for a cluster."""

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from core.backup import DEFAULT_RETENTION_FULL, BackupPlan


class Command(BaseCommand):
    help = (
        "Generate pgbackrest.conf, the postgresql.conf lines that archive WAL to it (at least every 15 minutes) and "
        "a cron schedule (full backup daily, incremental hourly) for the cluster at --pg-path. Prints them, or "
        "writes them into --output-dir. deploy/pgbackrest/README.md says where each goes."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--pg-path", required=True, help="The cluster's data folder, e.g. /var/lib/postgresql/15/main."
        )
        parser.add_argument(
            "--stanza", default="workflow", help="pgBackRest's name for the cluster (default workflow)."
        )
        parser.add_argument("--repo-path", default="/var/lib/pgbackrest", help="Where backups and WAL are kept.")
        parser.add_argument("--pg-port", type=int, default=5432)
        parser.add_argument("--pg-socket-path", help="The server's Unix socket folder, if not the default.")
        parser.add_argument(
            "--retention-full", type=int, default=DEFAULT_RETENTION_FULL, help="Full backups kept (one a day)."
        )
        parser.add_argument(
            "--config-path", default="/etc/pgbackrest/pgbackrest.conf", help="Where pgbackrest.conf goes."
        )
        parser.add_argument("--output-dir", help="Write the files here instead of printing them.")

    def handle(
        self, *args, pg_path, stanza, repo_path, pg_port, pg_socket_path, retention_full, config_path, **options
    ):
        if not stanza.replace("-", "").replace("_", "").isalnum():
            raise CommandError(f"--stanza must be letters, digits, - and _, not {stanza!r}")
        if retention_full < 1:
            raise CommandError("--retention-full must be at least 1")
        for name, value in (("--pg-path", pg_path), ("--repo-path", repo_path), ("--config-path", config_path)):
            if not Path(value).is_absolute():
                raise CommandError(f"{name} must be an absolute path, not {value!r}")
        plan = BackupPlan(
            stanza=stanza,
            pg_path=Path(pg_path),
            repo_path=Path(repo_path),
            pg_port=pg_port,
            pg_socket_path=Path(pg_socket_path) if pg_socket_path else None,
            retention_full=retention_full,
            config_path=Path(config_path),
        )
        files = plan.files()
        if options["output_dir"]:
            folder = Path(options["output_dir"])
            try:
                folder.mkdir(parents=True, exist_ok=True)
                for name, content in files.items():
                    (folder / name).write_text(content)
            except OSError as exc:
                raise CommandError(f"cannot write into {folder}: {exc.strerror}") from None
            self.stdout.write(f"Wrote {', '.join(files)} into {folder}.")
        else:
            for name, content in files.items():
                self.stdout.write(f"# ---- {name}\n{content}")
        self.stdout.write(
            "Next: put pgbackrest.conf at "
            f"{config_path}, include postgresql.archive.conf from postgresql.conf and restart the server, then as "
            f"{plan.pg_user}: {' '.join(plan.pgbackrest('stanza-create'))} && {' '.join(plan.pgbackrest('check'))}; "
            "install pgbackrest.cron in /etc/cron.d/."
        )
