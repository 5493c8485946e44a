"""Database router: reporting reads may go to a read replica when DATABASE_REPLICA_URL is set."""


class ReportingReplicaRouter:
    """Sends reads of models that declare `reporting_model = True` to the replica; everything else stays on default."""

    def db_for_read(self, model, **hints):
        return "replica" if getattr(model, "reporting_model", False) else "default"

    def db_for_write(self, model, **hints):
        return "default"

    def allow_relation(self, obj1, obj2, **hints):
        return True

    def allow_migrate(self, db, app_label, model_name=None, **hints):
        return db == "default"
