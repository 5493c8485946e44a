from django.apps import AppConfig


class CasesConfig(AppConfig):
    name = "cases"
    verbose_name = "Cases"

    def ready(self):
        from . import services  # noqa: F401  (registers routing-history hooks with the tasks app)
