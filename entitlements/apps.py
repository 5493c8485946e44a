from django.apps import AppConfig


class EntitlementsConfig(AppConfig):
    name = "entitlements"
    verbose_name = "Entitlements"

    def ready(self):
        from . import openapi, privileges, receivers  # noqa: F401  (schema extensions; privilege and login audit receivers)
