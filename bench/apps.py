from django.apps import AppConfig


class BenchConfig(AppConfig):
    """The benchmarks (`make bench`): installed only by bench.settings, never by the product."""

    name = "bench"
    verbose_name = "Benchmarks"
