from django.apps import AppConfig


class ApiConfig(AppConfig):
    """The versioned JSON API (/api/v1/) and the outgoing webhooks."""

    name = "api"
    verbose_name = "API and webhooks"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Webhook events are recorded as readers, memberships and articles
        # change; the other apps never import this one, so it is wired here
        # (as the dashboard's history is).
        from api import receivers

        receivers.connect()
