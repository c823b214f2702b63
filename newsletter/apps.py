from django.apps import AppConfig


class NewsletterConfig(AppConfig):
    name = "newsletter"
    verbose_name = "Newsletter"

    def ready(self) -> None:
        from config import checks  # noqa: F401 - registers the product's deploy checks
        from newsletter import (
            health_admin,  # noqa: F401 - send health in the admin
            tracking,  # noqa: F401 - connects the anymail signal handler
        )
