"""Django project package: settings, URLs, the Celery app and embedded defaults."""

from .celery import app as celery_app

__all__ = ("celery_app",)
