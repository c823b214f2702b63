from django.apps import AppConfig


class SubscriptionsConfig(AppConfig):
    name = "subscriptions"
    verbose_name = "Readers and billing"

    def ready(self) -> None:
        from subscriptions import stripe_api

        # A BILLING_BACKEND that names no class stops the service at start,
        # not at the first signup.
        stripe_api.backend_class()
