"""`make run` on a port of one's own: signup works, its links use that port, Ctrl-C is clean.

bin/run-demo is started as a newcomer would (`PORT=…`, no SITE_URL), with
its database, outbox, broker and cache under var/e2e-run-demo/.
"""

import email
import email.policy
import os
import re
import shutil
import signal
import subprocess
import time
import urllib.request

from playwright.sync_api import Browser, expect

from e2e.conftest import BROWSER_TIME_ZONE, DESKTOP, ISOLATED_PREFIXES, LOGS, ROOT, free_port

STATE = ROOT / "var" / "e2e-run-demo"


def outbox_link(outbox, pattern: str, timeout: float = 30) -> str:
    deadline = time.monotonic() + timeout
    while True:
        for path in sorted(outbox.glob("*.eml")):
            message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
            text = message.get_body(preferencelist=("plain",)).get_content()
            for url in re.findall(r"https?://\S+", text):
                if re.search(pattern, url):
                    return url
        assert time.monotonic() < deadline, f"No link matching {pattern!r} in {outbox}"
        time.sleep(0.2)


def test_run_demo_on_another_port(browser: Browser) -> None:
    shutil.rmtree(STATE, ignore_errors=True)
    STATE.mkdir(parents=True)
    LOGS.mkdir(parents=True, exist_ok=True)
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(ISOLATED_PREFIXES)}
    env.pop("REDIS_URL", None)
    env.pop("SITE_URL", None)
    env.update(
        PORT=str(port),
        DJANGO_SETTINGS_MODULE="e2e.run_demo_settings",
        DJANGO_ENV_FILE="none",
        DJANGO_DEBUG="1",
        DATABASE_URL=f"sqlite:///{STATE / 'db.sqlite3'}",
        MEDIA_ROOT=str(STATE / "media"),
        CELERY_BEAT_SCHEDULE_FILE=str(STATE / "celerybeat-schedule"),
    )
    log_path = LOGS / "run-demo.log"
    with log_path.open("w") as log:
        # A session of its own, so Ctrl-C can be sent to the whole group as a
        # terminal does; and SIGINT at its default, as a terminal's shell
        # starts programs. Run from a shell's background job (`.ci/run &`),
        # this process ignores SIGINT, children inherit that, and bash cannot
        # trap a signal ignored at its start: the demo's trap would never run.
        inherited = signal.signal(signal.SIGINT, signal.default_int_handler)
        try:
            demo = subprocess.Popen(  # noqa: S603 - our own script
                [str(ROOT / "bin" / "run-demo")],
                cwd=ROOT,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        finally:
            signal.signal(signal.SIGINT, inherited)
        try:
            site = f"http://127.0.0.1:{port}"
            deadline = time.monotonic() + 90
            while True:
                assert demo.poll() is None, log_path.read_text()
                try:
                    urllib.request.urlopen(f"{site}/healthz", timeout=2)  # noqa: S310 - ours
                    break
                except OSError:
                    assert time.monotonic() < deadline, log_path.read_text()
                    time.sleep(0.5)

            context = browser.new_context(
                base_url=site, viewport=DESKTOP, timezone_id=BROWSER_TIME_ZONE
            )
            page = context.new_page()
            page.goto("/")
            form = page.locator("form.signup")
            form.get_by_label("Email").fill("port@example.com")
            form.get_by_role("button", name=re.compile("Start my free")).click()
            expect(page.get_by_role("heading", name="Check your inbox")).to_be_visible()
            # The worker built the link: on the port the demo serves, not 8000.
            link = outbox_link(STATE / "outbox", r"/subscribe/continue/")
            assert link.startswith(f"{site}/subscribe/continue/"), link
            page.goto(link)
            page.get_by_role("button", name=re.compile("Start my free")).click()
            expect(page.get_by_text("Local test checkout.")).to_be_visible()
            assert page.url.startswith(f"{site}/test-checkout/"), page.url
            context.close()
        finally:
            if demo.poll() is None:
                os.killpg(demo.pid, signal.SIGINT)  # what Ctrl-C in a terminal does
            returncode = demo.wait(timeout=60)
    output = log_path.read_text()
    assert f"starting on {site}/" in output
    assert "8000" not in output.split("starting on")[1].split("Ctrl-C")[0]
    assert returncode == 0, output
    assert "Stopping the web server and the worker" in output
    # Nothing of the demo is left listening.
    try:
        urllib.request.urlopen(f"{site}/healthz", timeout=2)  # noqa: S310 - ours
        raise AssertionError("The web server still answers after Ctrl-C")
    except OSError:
        pass
