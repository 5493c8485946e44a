from django.apps import AppConfig


class EntitlementsConfig(AppConfig):
    name = "entitlements"
    verbose_name = "Entitlements"

    def ready(self):
        from . import openapi, signals  # noqa: F401  (register schema extensions, connect login audit receivers)
