from django.apps import AppConfig


class EntitlementsConfig(AppConfig):
    name = "entitlements"
    verbose_name = "Entitlements"

    def ready(self):
        from . import signals  # noqa: F401  (connects the login audit receivers)
