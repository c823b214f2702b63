"""docs/api.md's signature verification snippets, Python and JavaScript, on real deliveries."""

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from api import webhooks
from api.models import WebhookDelivery
from api.tests.conftest import make_endpoint
from subscriptions.actions.staff import do_grant_complimentary

pytestmark = pytest.mark.django_db

DOCS = Path(__file__).resolve().parents[2] / "docs" / "api.md"


def snippet(first_line: str) -> str:
    """The fenced block of docs/api.md that starts with `first_line`."""
    blocks = re.findall(r"```[a-z]+\n(.*?)```", DOCS.read_text(), flags=re.DOTALL)
    [found] = [block for block in blocks if block.startswith(first_line)]
    return found


@pytest.fixture
def delivery(receiver):
    """A real delivery's raw body, signature header and the endpoint's secret."""
    endpoint = make_endpoint(receiver.url, ["reader.created"])
    do_grant_complimentary(email="ada@example.com")
    webhooks.attempt(WebhookDelivery.objects.get().pk)
    [received] = receiver.received
    return received.body, received.headers["Briefing-Signature"], endpoint.secret


def cases(body: bytes, header: str, secret: str) -> list[tuple[str, bytes, str, str, float, bool]]:
    timestamp = int(dict(part.split("=", 1) for part in header.split(","))["t"])
    return [
        ("genuine", body, header, secret, timestamp + 10, True),
        ("tampered body", body.replace(b"ada@", b"eve@"), header, secret, timestamp, False),
        ("another secret", body, header, "whsec_not-the-one", timestamp, False),
        ("too old", body, header, secret, timestamp + 301, False),
        ("from the future", body, header, secret, timestamp - 301, False),
        ("no signature", body, f"t={timestamp}", secret, timestamp, False),
        ("garbage", body, "nonsense", secret, timestamp, False),
        ("two timestamps", body, f"t=1,{header}", secret, timestamp, False),
    ]


def test_the_python_snippet_accepts_a_genuine_delivery_and_nothing_else(delivery):
    namespace: dict = {}
    exec(compile(snippet("# verify_briefing.py"), "verify_briefing.py", "exec"), namespace)  # noqa: S102 - our own docs
    verify = namespace["verify"]

    for name, body, header, secret, now, expected in cases(*delivery):
        assert verify(body, header, secret, now=now) is expected, name
    # Without `now`, the clock's (the test's, fixed at the delivery's moment).
    assert verify(*delivery) is True


def test_the_javascript_snippet_does_the_same(delivery, tmp_path):
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed")
    (tmp_path / "verify-briefing.js").write_text(snippet("// verify-briefing.js"))
    runs = [
        {"name": name, "body": body.decode(), "header": header, "secret": secret, "now": now}
        for name, body, header, secret, now, _ in cases(*delivery)
    ]
    (tmp_path / "cases.json").write_text(json.dumps(runs))
    (tmp_path / "run.js").write_text(
        'const { verify } = require("./verify-briefing.js");\n'
        'const runs = require("./cases.json");\n'
        "console.log(JSON.stringify(runs.map((run) =>\n"
        "  verify(Buffer.from(run.body), run.header, run.secret, run.now))));\n"
    )

    result = subprocess.run(
        [node, "run.js"], cwd=tmp_path, capture_output=True, text=True, timeout=60, check=True
    )

    assert json.loads(result.stdout) == [expected for *_, expected in cases(*delivery)]
