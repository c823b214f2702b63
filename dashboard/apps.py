from django.apps import AppConfig


class DashboardConfig(AppConfig):
    """The publisher's dashboard: growth, money and sends at a glance."""

    name = "dashboard"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # The history the figures read is written as memberships change;
        # subscriptions never imports the dashboard, so it is wired here.
        from dashboard import history

        history.connect()
