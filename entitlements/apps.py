from django.apps import AppConfig


class EntitlementsConfig(AppConfig):
    name = "entitlements"
    verbose_name = "Entitlements"

    def ready(self):
        from django.db.backends.signals import connection_created

        from . import openapi, privileges, receivers  # noqa: F401  (schema extensions; privilege and login audit receivers)
        from .row_scope import install_row_scope

        connection_created.connect(install_row_scope, dispatch_uid="entitlements_row_scope")
