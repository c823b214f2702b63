from django.apps import AppConfig


class DeliveryConfig(AppConfig):
    name = "delivery"
    verbose_name = "Delivery"

    def ready(self) -> None:
        from delivery.deliverability import (
            domain_checks,  # noqa: F401 - registers the sending domain's deploy checks
            tracking,  # noqa: F401 - connects the anymail signal handler
        )
