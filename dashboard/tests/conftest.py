# The known histories of test_metrics, for the other tests of the figures.
from dashboard.tests.test_metrics import history, sends  # noqa: F401
