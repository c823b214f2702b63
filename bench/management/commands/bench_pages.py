"""Load the landing page, an article's teaser and the signup POST, against a trivial view
on the same server."""

import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from bench.benchmark import free_port
from newsletter.models import Article

# The teaser page's article: published, not free to read, so visitors get the
# teaser and the offer. Made for the run, under a slug of the bench's own.
TEASER_SLUG = "bench-teaser"
TEASER_BODY = "".join(
    f"<p>Paragraph {number} of the bench's article: "
    + " ".join(f"word{word}" for word in range(40))
    + ".</p>"
    for number in range(12)
)

# wrk sends each signup from a visitor of its own (X-Forwarded-For, trusted
# with DJANGO_BEHIND_PROXY) with an address of its own, as real signups come.
SIGNUP_SCRIPT = """
local token = "%(token)s"
local threads = 0
counter = 0
setup = function(thread)
  threads = threads + 1
  thread:set("number", threads)
end
init = function(args)
  -- A seed of this run's and this thread's own: no address or IP repeats
  -- across threads or runs (the rate-limit counters outlive a run).
  math.randomseed(%(seed)d + number * 7919)
end
request = function()
  counter = counter + 1
  local id = math.random(1, 1000000000)
  local body = "csrfmiddlewaretoken=" .. token .. "&email=reader" .. id .. "%%40example.com"
    .. "&name=Load+Test&time_zone=America%%2FNew_York"
  return wrk.format("POST", "/subscribe/", {
    ["Content-Type"] = "application/x-www-form-urlencoded",
    ["Cookie"] = "csrftoken=" .. token,
    ["X-Forwarded-For"] = "10." .. (id %% 250) .. "." .. (math.floor(id / 250) %% 250)
      .. "." .. (counter %% 250),
  }, body)
end
"""


class FakeStripe(BaseHTTPRequestHandler):
    """Stripe's API, answering instantly: the bench measures our code, not Stripe's."""

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        suffix = secrets.token_hex(6)
        if self.path.startswith("/v1/customers"):
            body = {"id": f"cus_bench{suffix}", "object": "customer"}
        elif self.path.startswith("/v1/checkout/sessions"):
            body = {
                "id": f"cs_bench{suffix}",
                "object": "checkout.session",
                "url": f"https://checkout.stripe.com/c/pay/cs_bench{suffix}",
            }
        else:
            self.send_error(404)
            return
        data = json.dumps(body).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: object) -> None:
        pass


class Command(BaseCommand):
    help = (
        "Measure requests/s and p99 of the landing page, an article teaser and signup "
        "under load (gunicorn + wrk)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--seconds", type=int, default=10)
        parser.add_argument("--connections", type=int, default=32)
        parser.add_argument("--web-workers", type=int, default=os.cpu_count() or 2)
        parser.add_argument("--json", dest="json_path", type=Path)

    def handle(self, *args: str, seconds: int, connections: int, web_workers: int,
               json_path: Path | None, **options: object) -> None:  # fmt: skip
        if not shutil.which("wrk"):
            raise CommandError("wrk not found: install Debian's wrk package (apt-get install wrk).")
        stripe = ThreadingHTTPServer(("127.0.0.1", free_port()), FakeStripe)
        threading.Thread(target=stripe.serve_forever, daemon=True).start()
        port = free_port()
        env = os.environ | {
            "DJANGO_DEBUG": "0",
            "DJANGO_SECRET_KEY": secrets.token_urlsafe(50),
            "DJANGO_ALLOWED_HOSTS": "127.0.0.1",
            "DJANGO_SECURE_SSL_REDIRECT": "0",
            "DJANGO_BEHIND_PROXY": "1",
            "SITE_URL": f"http://127.0.0.1:{port}",
            "STRIPE_SECRET_KEY": "sk_test_bench",
            "BENCH_STRIPE_API_BASE": f"http://127.0.0.1:{stripe.server_port}",
            "STRIPE_PRICE_ID": "price_bench",
            # collectstatic and gunicorn run under this command's settings
            # (bench.settings: the site's URLs plus the trivial view).
            "DJANGO_SETTINGS_MODULE": settings.SETTINGS_MODULE,
        }
        python = sys.executable
        teaser = teaser_article()
        subprocess.run(  # noqa: S603 - our own manage.py, fixed arguments
            [python, "manage.py", "collectstatic", "--noinput", "-v0"], env=env, check=True
        )
        server = subprocess.Popen(  # noqa: S603 - our own gunicorn, fixed arguments
            [
                python, "-m", "gunicorn", "bench.wsgi:application",
                "--bind", f"127.0.0.1:{port}", "--workers", str(web_workers),
                "--log-level", "warning",
            ],
            env=env,
        )  # fmt: skip
        base = f"http://127.0.0.1:{port}"
        try:
            self.wait_for(base + "/bench/trivial/")
            token = secrets.token_hex(16)  # a CSRF secret: cookie and form carry the same
            with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
                script.write(SIGNUP_SCRIPT % {"token": token, "seed": secrets.randbelow(2**31)})
            runs = [
                ("Trivial Django view (baseline)", base + "/bench/trivial/", None),
                ("Landing page `GET /`", base + "/", None),
                ("Article teaser `GET /articles/<slug>/`", base + teaser.get_absolute_url(), None),
                ("Signup `POST /subscribe/`", base + "/subscribe/", script.name),
            ]
            results = []
            for name, url, lua in runs:
                self.stderr.write(f"Loading {url} for {seconds} s...")
                results.append({"page": name, **self.wrk(url, lua, seconds, connections)})
            os.unlink(script.name)
        finally:
            server.send_signal(signal.SIGTERM)
            server.wait(timeout=30)
            stripe.shutdown()
            teaser.delete()
        baseline = results[0]["rps"]
        self.stdout.write(
            "| Page | Requests/s | p50 | p99 | Share of the baseline | Non-2xx/3xx |\n"
            "|---|---|---|---|---|---|"
        )
        for r in results:
            # bench_report computes the same share for docs/performance.md.
            self.stdout.write(
                f"| {r['page']} | {r['rps']:,.0f} | {r['p50_ms']} ms | {r['p99_ms']} ms "
                f"| {r['rps'] / baseline:.2f} | {r['errors']} |"
            )
        if json_path:
            summary = {"connections": connections, "seconds": seconds, "web_workers": web_workers}
            json_path.write_text(json.dumps({**summary, "pages": results}))

    def wait_for(self, url: str) -> None:
        import urllib.request

        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(url, timeout=1) as response:  # noqa: S310
                    if response.status == 200:
                        return
            except OSError:
                time.sleep(0.2)
        raise CommandError(f"The web server did not answer at {url}")

    def wrk(self, url: str, script: str | None, seconds: int, connections: int) -> dict:
        command = ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--latency"]
        if script:
            command += ["-s", script]
        output = subprocess.run(  # noqa: S603 - wrk with fixed arguments
            [*command, url], capture_output=True, text=True, check=True
        ).stdout
        errors = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
        return {
            "rps": float(wrk_value(output, r"Requests/sec:\s+([\d.]+)")[0]),
            "p50_ms": latency_ms(output, "50%"),
            "p99_ms": latency_ms(output, "99%"),
            "errors": int(errors.group(1)) if errors else 0,
        }


def teaser_article() -> Article:
    """A published article that is not free to read (again, if a crashed run left it)."""
    article, _ = Article.objects.update_or_create(
        slug=TEASER_SLUG,
        defaults={
            "title": "The bench's article",
            "dek": "What a visitor who is not a member sees: the opening and the offer.",
            "body": TEASER_BODY,
            "status": Article.Status.PUBLISHED,
            "free_to_read": False,
        },
    )
    return article


def wrk_value(output: str, pattern: str) -> tuple[str, ...]:
    """The groups of `pattern` in wrk's report; a CommandError if wrk did not print it."""
    match = re.search(pattern, output)
    if match is None:
        raise CommandError(f"Unexpected wrk output (no {pattern!r}):\n{output}")
    return match.groups()


def latency_ms(output: str, percentile: str) -> float:
    value, unit = wrk_value(output, rf"{percentile}\s+([\d.]+)(us|ms|s)")
    return round(float(value) * {"us": 0.001, "ms": 1, "s": 1000}[unit], 2)
