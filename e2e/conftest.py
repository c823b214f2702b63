"""The live stack the browser tests drive, the browser, and helpers.

One session starts, under var/e2e/ (wiped first):

- a real SMTP server process (testing/smtp_sink.py) that stores what
  it receives, read by `mailbox`;
- the demo's database (migrate + seed_demo) on SQLite;
- the web server (`manage.py runserver --noreload`) on a free port, with
  DJANGO_DEBUG on and no Stripe key, so signup goes through the keyless
  local test checkout;
- one Celery worker: the sign-in link and the welcome email are Celery tasks
  queued on commit by the web process, exactly as in `make run`.

Browser: Debian's chromium through Playwright (Playwright's own download is
not used). Screenshots, accessibility reports and the servers' logs go to
test-artifacts/.
"""

import email
import email.policy
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

ROOT = Path(__file__).resolve().parent.parent
STATE = ROOT / "var" / "e2e"
ARTIFACTS = ROOT / "test-artifacts"
SCREENSHOTS = ARTIFACTS / "screenshots"
AXE_REPORTS = ARTIFACTS / "axe"
LOGS = ARTIFACTS / "e2e-logs"
AXE_JS = ROOT / "node_modules" / "axe-core" / "axe.min.js"

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]
DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 375, "height": 812}
BROWSER_TIME_ZONE = "Europe/Lisbon"  # not the server's, nor the digest's default
# Settings the live server takes from the environment; ours replace any the
# developer or CI has set (CI sets DATABASE_URL and REDIS_URL for `make test`).
ISOLATED_PREFIXES = ("DJANGO_", "DATABASE_", "SMTP_", "REDIS_", "EMAIL_", "STRIPE_", "CELERY_")

EDITOR = ("editor", "briefing-demo", "editor@example.com")  # seed_demo's staff account
MAIL_TIMEOUT = 30  # seconds; the worker polls the filesystem broker every 0.1 s
# Two cores shared by the web server, the worker, chromium and others' work:
# assertions wait up to 10 s (Playwright's default is 5).
expect.set_options(timeout=10_000)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Mail:
    rcpt_tos: list[str]
    message: EmailMessage

    @property
    def subject(self) -> str:
        return str(self.message["Subject"])

    @property
    def text(self) -> str:
        return self.message.get_body(preferencelist=("plain",)).get_content()

    @property
    def html(self) -> str:
        return self.message.get_body(preferencelist=("html",)).get_content()

    def link(self, pattern: str) -> str:
        """The first URL in the plain-text part that matches the regular expression."""
        for url in re.findall(r"https?://\S+", self.text):
            if re.search(pattern, url):
                return url
        raise AssertionError(f"No link matching {pattern!r} in {self.subject!r}:\n{self.text}")


class Mailbox:
    """What the SMTP server process received (one JSON file per message)."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def all(self) -> list[Mail]:
        mails = []
        for path in sorted(self.directory.glob("[0-9]*.json")):
            record = json.loads(path.read_text())
            message = email.message_from_string(record["data"], policy=email.policy.default)
            mails.append(Mail(record["rcpt_tos"], message))
        return mails

    def wait_for(self, to: str, subject: str = "", timeout: float = MAIL_TIMEOUT) -> Mail:
        """The latest message to `to` whose subject contains `subject`, once it arrives.

        Polls: the mail is sent by another process (the worker or the web
        server), so there is no page event to wait on.
        """
        deadline = time.monotonic() + timeout
        while True:
            found = [m for m in self.all() if to in m.rcpt_tos and subject in m.subject]
            if found:
                return found[-1]
            if time.monotonic() > deadline:
                seen = [(m.rcpt_tos, m.subject) for m in self.all()]
                raise AssertionError(f"No mail to {to} about {subject!r} in {timeout}s: {seen}")
            time.sleep(0.2)


class Stack:
    """The web server, worker and SMTP server of one test session."""

    def __init__(self) -> None:
        # Each run starts clean: its artifacts are the last run's, nothing older.
        for directory in [STATE, SCREENSHOTS, AXE_REPORTS, LOGS]:
            shutil.rmtree(directory, ignore_errors=True)
        STATE.mkdir(parents=True)
        LOGS.mkdir(parents=True)
        self.processes: list[subprocess.Popen] = []
        self.logs = []
        self.smtp = self._start_smtp()
        self.mailbox = Mailbox(STATE / "smtp")
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {
            key: value for key, value in os.environ.items() if not key.startswith(ISOLATED_PREFIXES)
        }
        self.env.pop("REDIS_URL", None)
        self.env.update(
            DJANGO_SETTINGS_MODULE="e2e.live_settings",
            DJANGO_ENV_FILE="none",
            DJANGO_DEBUG="1",
            DATABASE_URL=f"sqlite:///{STATE / 'db.sqlite3'}",
            SITE_URL=self.url,
            SMTP_URL=f"smtp://127.0.0.1:{self.smtp_port}",
            MEDIA_ROOT=str(STATE / "media"),
        )

    def _start_smtp(self) -> subprocess.Popen:
        process = subprocess.Popen(
            [sys.executable, "-m", "testing.smtp_sink", str(STATE / "smtp")],
            stdout=subprocess.PIPE,
            text=True,
            cwd=ROOT,
        )
        self.processes.append(process)
        line = process.stdout.readline()
        if not line.startswith("PORT "):
            raise RuntimeError(f"The SMTP server did not start: {line!r}")
        self.smtp_port = int(line.split()[1])
        return process

    def manage(self, *args: str) -> str:
        result = subprocess.run(
            [sys.executable, "manage.py", *args],
            cwd=ROOT,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        if result.returncode:
            raise RuntimeError(f"manage.py {' '.join(args)} failed:\n{result.stderr}")
        return result.stdout

    def _start(self, name: str, *command: str) -> subprocess.Popen:
        log = (LOGS / f"{name}.log").open("w")
        self.logs.append(log)
        process = subprocess.Popen(
            command, cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT
        )
        self.processes.append(process)
        return process

    def start(self) -> None:
        self.manage("migrate", "--noinput")
        self.manage("seed_demo")
        web = self._start(
            "web",
            sys.executable,
            "manage.py",
            "runserver",
            "--noreload",
            f"127.0.0.1:{self.port}",
        )
        # One process, no pool: two cores are shared with the web server and chromium.
        self._start(
            "worker",
            sys.executable,
            "-m",
            "celery",
            "-A",
            "config",
            "worker",
            "--pool",
            "solo",
            "--loglevel",
            "INFO",
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
        )
        deadline = time.monotonic() + 30
        while True:
            if web.poll() is not None:
                raise RuntimeError(f"The web server stopped; see {LOGS / 'web.log'}")
            try:
                urllib.request.urlopen(f"{self.url}/healthz", timeout=2)  # noqa: S310 - ours
                return
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)

    def stop(self) -> None:
        for process in reversed(self.processes):
            process.terminate()
        for process in self.processes:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        for log in self.logs:
            log.close()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tests that need the digest sent run last (a stable sort keeps the rest in order).

    Sending the next edition changes what the editors' desk shows: until that
    edition's own send time it stays the "next edition" (sent), so the
    editor's journey, which curates the next edition, must come before it.
    """
    items.sort(key=lambda item: "digest" in getattr(item, "fixturenames", ()))


@pytest.fixture(scope="session")
def stack():
    stack = Stack()
    try:
        stack.start()
        yield stack
    finally:
        stack.stop()


@pytest.fixture(scope="session")
def mailbox(stack) -> Mailbox:
    return stack.mailbox


@pytest.fixture(scope="session")
def browser():
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def new_page(browser: Browser, stack: Stack):
    """new_page(width=1280, color_scheme="light"): a page in a fresh browser context.

    Each context is a new visitor: no cookies. Closed after the test.
    """
    contexts = []

    def make(width: int = DESKTOP["width"], color_scheme: str = "light") -> Page:
        size = PHONE if width <= PHONE["width"] else {**DESKTOP, "width": width}
        context = browser.new_context(
            base_url=stack.url,
            viewport=size,
            color_scheme=color_scheme,
            timezone_id=BROWSER_TIME_ZONE,
            is_mobile=width <= PHONE["width"],
            has_touch=width <= PHONE["width"],
            device_scale_factor=2 if width <= PHONE["width"] else 1,
        )
        context.set_default_timeout(15_000)
        contexts.append(context)
        return context.new_page()

    yield make
    for context in contexts:
        context.close()


@pytest.fixture
def page(new_page) -> Page:
    return new_page()


@pytest.fixture(scope="session")
def digest(stack: Stack) -> list[Mail]:
    """The digest the morning send delivers, sent now through the real SMTP server."""
    output = stack.manage("send_digest", "--sync", "--by-hand")
    assert "Sent " in output, output
    mails = [
        m
        for m in stack.mailbox.all()
        if m.message["List-Unsubscribe"] and not m.subject.startswith("[Test]")
    ]
    assert mails, f"No digest reached the SMTP server: {output}"
    return mails


# Pages


def screenshot(page: Page, name: str, *, widths=(PHONE["width"], DESKTOP["width"])) -> None:
    """Save the whole page at a phone's and a desktop's width: NAME-375.png, NAME-1280.png.

    The viewport grows to the page's height instead of a full_page capture:
    headless Chromium leaves sandboxed iframes (the admin's email preview)
    blank in full-page captures.
    """
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    original = page.viewport_size
    for width in widths:
        page.set_viewport_size({"width": width, "height": original["height"]})
        height = page.evaluate("document.documentElement.scrollHeight")
        page.set_viewport_size({"width": width, "height": min(height, 6000)})
        page.evaluate("document.fonts.ready")
        page.screenshot(path=str(SCREENSHOTS / f"{name}-{width}.png"), animations="disabled")
    page.set_viewport_size(original)


SERIOUS = {"serious", "critical"}


def check_accessibility(
    page: Page, name: str, *, third_party: dict[str, tuple[str, str]] | None = None
) -> None:
    """Run axe-core on the page; fail on any serious or critical violation.

    `third_party` maps an axe rule id to (a fragment of the CSS selector of
    the elements it may ignore, the reason): only for markup we do not
    control (Django's admin and its vendored widgets), never our templates.
    Other elements stay checked by that rule. The full report, every impact,
    goes to test-artifacts/axe/NAME.json.
    """
    third_party = third_party or {}
    # Evaluated through the browser's devtools protocol, not added as a
    # <script>: the site's Content Security Policy rightly refuses inline
    # scripts, and the test must not loosen it to run.
    if not page.evaluate("() => typeof window.axe !== 'undefined'"):
        page.evaluate(AXE_JS.read_text() + "\n;undefined")
    violations = page.evaluate("async () => (await axe.run(document)).violations")
    AXE_REPORTS.mkdir(parents=True, exist_ok=True)
    (AXE_REPORTS / f"{name}.json").write_text(json.dumps(violations, indent=2))

    serious = []
    for violation in violations:
        if violation["impact"] not in SERIOUS:
            continue
        fragment, _reason = third_party.get(violation["id"], (None, ""))
        nodes = [
            node
            for node in violation["nodes"]
            if fragment is None or not any(fragment in str(t) for t in node["target"])
        ]
        if nodes:
            serious.append({**violation, "nodes": nodes})
    report = "\n".join(
        f"- {v['id']} ({v['impact']}): {v['help']}\n    {v['helpUrl']}\n"
        + "\n".join(
            f"    at {node['target']}: {node['failureSummary'].replace(chr(10), ' ')}"
            for node in v["nodes"]
        )
        for v in serious
    )
    assert not serious, f"Accessibility violations on {name} ({page.url}):\n{report}"


# Journeys' shared steps


def sign_up(page: Page, mailbox: Mailbox, email: str, name: str) -> None:
    """A visitor fills in the landing form, opens the emailed link, passes the test checkout."""
    page.goto("/")
    form = page.locator("form.signup")
    form.get_by_label("Email").fill(email)
    form.get_by_label("Name").fill(name)
    # signup.js fills the time zone from the browser.
    expect(form.get_by_label("Time zone")).to_have_value(BROWSER_TIME_ZONE)
    form.get_by_role("button", name=re.compile("Start my free")).click()
    expect(page.get_by_role("heading", name="Check your inbox")).to_be_visible()
    page.goto(mailbox.wait_for(email, "Continue your signup").link(r"/subscribe/continue/[^/]+/"))
    page.get_by_role("button", name=re.compile("Start my free")).click()
    expect(page.get_by_text("Local test checkout.")).to_be_visible()
    page.get_by_role("button", name="Start trial").click()
    expect(page.get_by_role("heading", name=f"Welcome, {name}")).to_be_visible()


def admin_sign_in(page: Page) -> None:
    username, password, _ = EDITOR
    page.goto("/admin/login/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Log in").click()
    expect(page).to_have_url(re.compile(r"/admin/$"))
