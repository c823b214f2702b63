from django.apps import AppConfig


class OperationsConfig(AppConfig):
    """Operators' commands: `manage.py backup` and `manage.py restore`."""

    name = "operations"
    default_auto_field = "django.db.models.BigAutoField"
