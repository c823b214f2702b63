"""Stripe's side of the tests: recorded object shapes and a fake API over HTTP.

`FakeStripe` answers the SDK's real HTTP requests (intercepted with the
`responses` library at the requests level, at STRIPE_API_BASE) from
fixtures in stripe_fixtures/, keeps the subscriptions a test changes, and
records every request so tests can assert the parameters we sent.
`signed` builds the Stripe-Signature header as Stripe does (stripe_api.signature_header).
"""

import copy
import itertools
import json
import re
import time
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import parse_qsl, urlsplit

import requests
import responses
import stripe
from django.test import Client

if TYPE_CHECKING:
    from django.test.client import _MonkeyPatchedWSGIResponse as TestResponse

from subscriptions import stripe_api

FIXTURES = Path(__file__).parent / "stripe_fixtures"
API_BASE = "http://stripe.test"
WEBHOOK_SECRET = "whsec_test_secret"

_ids = itertools.count(1)


def load(fixture: str, /, **changes) -> dict:
    data = json.loads((FIXTURES / f"{fixture}.json").read_text())
    data.update(copy.deepcopy(changes))
    return data


def subscription(status: str = "trialing", **changes) -> dict:
    """The recorded trialing subscription, moved to `status` with the fields that go with it."""
    data = load("subscription_trialing")
    item = data["items"]["data"][0]
    now = int(time.time())
    if status == "trialing":
        data["trial_end"] = item["current_period_end"] = now + 14 * 86400
    elif status in ("active", "past_due", "unpaid"):
        data["trial_end"] = now - 86400
        item["current_period_start"] = now - 86400
        item["current_period_end"] = now + 364 * 86400
    elif status == "canceled":
        data.update(canceled_at=now, ended_at=now)
    data["status"] = status
    data.update(copy.deepcopy(changes))
    return data


def invoice(name: str = "invoice_payment_failed", **changes) -> dict:
    return load(name, **changes)


def upcoming_invoice(subscription_data: dict, **changes) -> dict:
    """The recorded upcoming invoice of this subscription's next renewal."""
    data = load("invoice_upcoming", **changes)
    period_end = subscription_data["items"]["data"][0]["current_period_end"]
    data["customer"] = subscription_data["customer"]
    data["parent"]["subscription_details"]["subscription"] = subscription_data["id"]
    if "period_start" not in changes:
        data["period_start"] = period_end
        data["period_end"] = period_end + 365 * 86400
    return data


def event(event_type: str, obj: dict, *, event_id: str | None = None) -> dict:
    return {
        "id": event_id or f"evt_test_{next(_ids):08d}",
        "object": "event",
        "api_version": stripe.api_version,
        "created": int(time.time()),
        "data": {"object": obj},
        "livemode": False,
        "pending_webhooks": 1,
        "request": {"id": None, "idempotency_key": None},
        "type": event_type,
    }


def signed(payload: str, secret: str = WEBHOOK_SECRET, timestamp: int | None = None) -> str:
    return stripe_api.signature_header(payload, secret, timestamp)


class FakeStripe:
    def __init__(self, mock: responses.RequestsMock) -> None:
        self.mock = mock
        self.subscriptions: dict[str, dict] = {}
        self.invoices: dict[str, dict] = {}
        self.sessions: dict[str, dict] = {}
        self.prices: list[dict] = []
        self.products: dict[str, dict] = {}
        # What create_preview answers per subscription id (default: the
        # recorded upcoming invoice of that subscription at the list price).
        self.previews: dict[str, dict] = {}
        self.customers: dict[str, dict] = {}
        self.charges: dict[str, dict] = {}
        self.payment_methods: dict[str, dict] = {}
        # Customer balances in cents (negative: credit), as balance transactions leave them.
        self.balances: dict[str, int] = {}
        self.fail_next: int = 0  # answer this many requests with a 500
        self.time_out_next: int = 0  # let this many requests time out (no answer)
        self._register()

    # --- What a test sets up -------------------------------------------------------

    def set_subscription(self, data: dict) -> dict:
        self.subscriptions[data["id"]] = data
        return data

    def set_invoice(self, data: dict) -> dict:
        """Stripe's copy of an invoice: what an invoice event's handler fetches."""
        self.invoices[data["id"]] = data
        return data

    def set_charge(self, data: dict) -> dict:
        self.charges[data["id"]] = data
        return data

    def set_card(self, payment_method_id: str, fingerprint: str) -> dict:
        """A card payment method with this fingerprint (the recorded one, renamed)."""
        card = load("payment_method", id=payment_method_id)
        card["card"]["fingerprint"] = fingerprint
        self.payment_methods[payment_method_id] = card
        return card

    def complete_session(self, session_id: str, subscription_data: dict) -> dict:
        self.set_subscription(subscription_data)
        session = self.sessions[session_id]
        session.update(
            status="complete",
            payment_status="no_payment_required",
            subscription=subscription_data["id"],
            url=None,
        )
        return session

    def pay_session(self, session_id: str) -> dict:
        """The buyer pays a payment-mode session (a gift) on Stripe's page."""
        session = self.sessions[session_id]
        session.update(status="complete", payment_status="paid", amount_total=4600, url=None)
        return session

    # --- What a test asserts -----------------------------------------------------------

    def requests(self, method: str, path: str) -> list[dict]:
        """Parameters of each request to `path`, flattened as Stripe's form encoding sends them."""
        found = []
        for call in self.mock.calls:
            url = urlsplit(call.request.url)
            if call.request.method == method and url.path == path:
                body = call.request.body or ""
                if isinstance(body, bytes):
                    body = body.decode()
                params = dict(parse_qsl(url.query, keep_blank_values=True)) | dict(
                    parse_qsl(body, keep_blank_values=True)
                )
                params["_idempotency_key"] = call.request.headers.get("Idempotency-Key", "")
                found.append(params)
        return found

    def count(self, method: str, path_pattern: str) -> int:
        pattern = re.compile(path_pattern)
        return sum(
            1
            for call in self.mock.calls
            if call.request.method == method
            and pattern.fullmatch(str(urlsplit(call.request.url).path))
        )

    # --- The API -------------------------------------------------------------------------

    def _register(self) -> None:
        routes = [
            ("POST", r"/v1/customers", self._create_customer),
            (
                "POST",
                r"/v1/customers/(?P<id>[\w]+)/balance_transactions",
                self._create_balance_transaction,
            ),
            ("GET", r"/v1/customers/(?P<id>[\w]+)", self._get_customer),
            ("GET", r"/v1/charges/(?P<id>[\w]+)", self._get_charge),
            ("GET", r"/v1/payment_methods/(?P<id>[\w]+)", self._get_payment_method),
            ("POST", r"/v1/customers/(?P<id>[\w]+)", self._update_customer),
            ("POST", r"/v1/checkout/sessions", self._create_session),
            ("GET", r"/v1/checkout/sessions/(?P<id>[\w]+)", self._get_session),
            ("GET", r"/v1/subscriptions/(?P<id>[\w]+)", self._get_subscription),
            ("POST", r"/v1/subscriptions/(?P<id>[\w]+)", self._update_subscription),
            ("GET", r"/v1/subscriptions", self._list_subscriptions),
            ("POST", r"/v1/invoices/create_preview", self._preview_invoice),
            ("GET", r"/v1/invoices", self._list_invoices),
            ("POST", r"/v1/invoices/(?P<id>[\w]+)/finalize", self._finalize_invoice),
            ("GET", r"/v1/invoices/(?P<id>[\w]+)", self._get_invoice),
            ("POST", r"/v1/billing_portal/sessions", self._create_portal_session),
            ("GET", r"/v1/prices", self._list_prices),
            ("POST", r"/v1/prices", self._create_price),
            ("GET", r"/v1/products/(?P<id>[\w-]+)", self._get_product),
            ("POST", r"/v1/products", self._create_product),
        ]
        for method, path, handler in routes:
            url = re.compile(re.escape(API_BASE) + path + r"(\?.*)?$")
            self.mock.add_callback(method, url, callback=self._wrap(handler, path))

    def _wrap(self, handler, path):
        pattern = re.compile(path)

        def callback(request):
            if self.time_out_next:
                self.time_out_next -= 1
                # What requests raises when Stripe does not answer in time.
                raise requests.exceptions.ReadTimeout("Read timed out (injected)")
            if self.fail_next:
                self.fail_next -= 1
                return 500, {}, json.dumps({"error": {"type": "api_error", "message": "Boom"}})
            url = urlsplit(request.url)
            match = pattern.fullmatch(url.path)
            body = request.body or ""
            if isinstance(body, bytes):
                body = body.decode()
            params = dict(parse_qsl(url.query, keep_blank_values=True)) | dict(
                parse_qsl(body, keep_blank_values=True)
            )
            assert match is not None
            status, data = handler(params, **match.groupdict())
            return status, {"Request-Id": f"req_{next(_ids)}"}, json.dumps(data)

        return callback

    @staticmethod
    def _missing(kind: str, object_id: str) -> tuple[int, dict]:
        error = load("error_resource_missing")
        error["error"]["message"] = f"No such {kind}: '{object_id}'"
        return 404, error

    def _create_customer(self, params):
        return 200, load(
            "customer",
            id=f"cus_test{next(_ids):06d}",
            email=params.get("email"),
            name=params.get("name"),
            metadata={"subscriber_id": params.get("metadata[subscriber_id]")},
        )

    def _get_customer(self, params, id):
        return 200, load("customer", id=id, balance=self.balances.get(id, 0))

    def _create_balance_transaction(self, params, id):
        amount = int(params["amount"])
        self.balances[id] = self.balances.get(id, 0) + amount
        return 200, load(
            "customer_balance_transaction",
            id=f"cbtxn_test{next(_ids):06d}",
            customer=id,
            amount=amount,
            description=params.get("description"),
            ending_balance=self.balances[id],
        )

    def _get_charge(self, params, id):
        return (200, self.charges[id]) if id in self.charges else self._missing("charge", id)

    def _get_payment_method(self, params, id):
        if id not in self.payment_methods:
            return self._missing("payment_method", id)
        return 200, self.payment_methods[id]

    def _update_customer(self, params, id):
        return 200, load("customer", id=id, email=params.get("email"))

    def _create_session(self, params):
        session_id = f"cs_test_{next(_ids):06d}"
        metadata = {
            key[len("metadata[") : -1]: value
            for key, value in params.items()
            if key.startswith("metadata[")
        }
        session = load(
            "checkout_session_open",
            id=session_id,
            mode=params.get("mode", "subscription"),
            customer=params.get("customer"),
            customer_email=params.get("customer_email"),
            client_reference_id=params.get("client_reference_id"),
            metadata=metadata or {"subscriber_id": None},
            success_url=params["success_url"],
            cancel_url=params["cancel_url"],
            url=f"https://checkout.stripe.com/c/pay/{session_id}",
        )
        self.sessions[session_id] = session
        return 200, session

    def _get_session(self, params, id):
        return (
            (200, self.sessions[id])
            if id in self.sessions
            else self._missing("checkout.session", id)
        )

    def _get_subscription(self, params, id):
        if id not in self.subscriptions:
            return self._missing("subscription", id)
        return 200, self.subscriptions[id]

    def _update_subscription(self, params, id):
        if id not in self.subscriptions:
            return self._missing("subscription", id)
        subscription = self.subscriptions[id]
        if "cancel_at_period_end" in params:
            subscription["cancel_at_period_end"] = params["cancel_at_period_end"] == "true"
        if "items[0][quantity]" in params:
            item = subscription["items"]["data"][0]
            assert params["items[0][id]"] == item["id"], "the subscription's own item"
            item["quantity"] = int(params["items[0][quantity]"])
        if params.get("pause_collection") == "":
            subscription["pause_collection"] = None
        elif "pause_collection[behavior]" in params:
            resumes_at = params.get("pause_collection[resumes_at]")
            subscription["pause_collection"] = {
                "behavior": params["pause_collection[behavior]"],
                "resumes_at": int(resumes_at) if resumes_at else None,
            }
        return 200, subscription

    def cancel_route(self) -> None:
        """Answer DELETE /v1/subscriptions/{id} by cancelling the kept subscription.

        Not registered by default: tests of cancellation add their own answers.
        """
        url = re.compile(re.escape(API_BASE) + r"/v1/subscriptions/(?P<id>[\w]+)(\?.*)?$")
        path = r"/v1/subscriptions/(?P<id>[\w]+)"
        self.mock.add_callback("DELETE", url, callback=self._wrap(self._cancel_subscription, path))

    def _cancel_subscription(self, params, id):
        if id not in self.subscriptions:
            return self._missing("subscription", id)
        subscription = self.subscriptions[id]
        now = int(time.time())
        subscription.update(status="canceled", canceled_at=now, ended_at=now)
        return 200, subscription

    def _preview_invoice(self, params):
        subscription_id = params["subscription"]
        if subscription_id not in self.subscriptions:
            return self._missing("subscription", subscription_id)
        if subscription_id in self.previews:
            return 200, self.previews[subscription_id]
        subscription = self.subscriptions[subscription_id]
        preview = upcoming_invoice(subscription)
        return 200, preview

    def _list_invoices(self, params):
        mine = [
            i
            for i in self.invoices.values()
            if i["parent"]["subscription_details"]["subscription"] == params.get("subscription")
            and i["status"] == params.get("status", i["status"])
        ]
        return 200, {"object": "list", "data": mine, "has_more": False, "url": "/v1/invoices"}

    def _finalize_invoice(self, params, id):
        if id not in self.invoices:
            return self._missing("invoice", id)
        invoice = self.invoices[id]
        if invoice["status"] != "draft":
            error = load("error_resource_missing")
            error["error"].update(code="invoice_not_editable", message="Already finalized")
            return 400, error
        invoice.update(status="open", auto_advance=params.get("auto_advance") == "true")
        return 200, invoice

    def _get_invoice(self, params, id):
        if id not in self.invoices:
            return self._missing("invoice", id)
        return 200, self.invoices[id]

    def _list_subscriptions(self, params):
        if "customer" not in params:
            return self._list_all_subscriptions(params)
        mine = [s for s in self.subscriptions.values() if s["customer"] == params.get("customer")]
        mine.sort(key=lambda s: s["created"], reverse=True)
        return 200, {
            "object": "list",
            "data": mine[:1],
            "has_more": len(mine) > 1,
            "url": "/v1/subscriptions",
        }

    def _list_all_subscriptions(self, params):
        """Stripe's default listing (not canceled), on a price if asked, customers expanded."""
        found = [
            copy.deepcopy(s)
            for s in sorted(self.subscriptions.values(), key=lambda s: s["id"])
            if s["status"] != "canceled"
            and params.get("price") in (None, s["items"]["data"][0]["price"]["id"])
        ]
        if params.get("expand[0]") == "data.customer":
            for sub in found:
                sub["customer"] = self.customers.get(
                    sub["customer"], load("customer", id=sub["customer"])
                )
        start = params.get("starting_after")
        if start:
            found = found[[s["id"] for s in found].index(start) + 1 :]
        limit = int(params.get("limit", 10))
        return 200, {
            "object": "list",
            "data": found[:limit],
            "has_more": len(found) > limit,
            "url": "/v1/subscriptions",
        }

    def _create_portal_session(self, params):
        return 200, load(
            "billing_portal_session", customer=params["customer"], return_url=params["return_url"]
        )

    def _list_prices(self, params):
        wanted = params.get("lookup_keys[0]")
        found = [p for p in self.prices if wanted in (None, p.get("lookup_key"))]
        return 200, {"object": "list", "data": found, "has_more": False, "url": "/v1/prices"}

    def _create_price(self, params):
        fixture = "price_team" if params.get("billing_scheme") == "tiered" else "price"
        price = load(fixture, id=f"price_test{next(_ids):06d}", product=params["product"])
        if "lookup_key" in params:
            price["lookup_key"] = params["lookup_key"]
        self.prices.append(price)
        return 200, price

    def _get_product(self, params, id):
        return (200, self.products[id]) if id in self.products else self._missing("product", id)

    def _create_product(self, params):
        product = load("product", id=params["id"], name=params["name"])
        self.products[product["id"]] = product
        return 200, product


def post_webhook(client: Client, payload: str | bytes, signature: str | None) -> "TestResponse":
    """POST a payload to the real webhook endpoint, with this Stripe-Signature (None: none)."""
    headers = {} if signature is None else {"Stripe-Signature": signature}
    return client.post(
        "/stripe/webhook/", data=payload, content_type="application/json", headers=headers
    )
