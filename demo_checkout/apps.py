from django.apps import AppConfig


class DemoCheckoutConfig(AppConfig):
    name = "demo_checkout"
    verbose_name = "Demo: local test checkout"
