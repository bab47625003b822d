"""A thin HTTP proxy in front of localstripe that makes its answers parse as Stripe's.

localstripe (PyPI, 1.15.10) is the Stripe-compatible server the tests run against.
Where it differs from the Stripe API in a way async-stripe or Stripe.js notices, this
proxy bridges it, and does nothing else:

* PaymentIntent objects (alone, in lists, or nested) get the fields Stripe always
  sends and localstripe omits, with Stripe's documented values:
  ``amount_capturable`` (the amount while ``requires_capture``, else 0),
  ``amount_received`` (the amount once ``succeeded``, else 0),
  ``confirmation_method`` (``"automatic"``), ``payment_method_types``
  (``["card"]``); and ``latest_charge`` is the charge's id, as Stripe sends it
  unexpanded, not the charge object.
* ``POST /v1/payment_intents/{id}/confirm`` with a ``payment_method`` (what
  Stripe.js sends) is done as localstripe needs it: the payment method is set on
  the intent first, then the intent is confirmed. Like Stripe, a new attempt after
  a declined one is allowed (localstripe would keep the declined charge and refuse);
  an intent that is no longer waiting for a card is refused with Stripe's
  ``payment_intent_unexpected_state``.

Everything else (webhook registration under ``/_config/``, refunds, cancels) passes
through unchanged. localstripe sends its webhooks directly, not through here.

Usage: python localstripe_proxy.py --port 8421 --upstream http://127.0.0.1:8420
"""

import argparse
import json
import urllib.parse

from aiohttp import ClientSession, web

WAITING_FOR_CARD = ("requires_payment_method", "requires_confirmation")


def fill_payment_intent(obj):
    """Adds what Stripe sends and localstripe leaves out, recursively."""
    if isinstance(obj, list):
        for item in obj:
            fill_payment_intent(item)
        return obj
    if not isinstance(obj, dict):
        return obj
    for value in obj.values():
        fill_payment_intent(value)
    if obj.get("object") == "payment_intent":
        amount = obj.get("amount", 0)
        status = obj.get("status")
        obj.setdefault("amount_capturable", amount if status == "requires_capture" else 0)
        obj.setdefault("amount_received", amount if status == "succeeded" else 0)
        obj.setdefault("confirmation_method", "automatic")
        obj.setdefault("payment_method_types", ["card"])
        charge = obj.get("latest_charge")
        if isinstance(charge, dict):
            obj["latest_charge"] = charge.get("id")
    return obj


def stripe_error(status, code, message):
    body = {"error": {"type": "invalid_request_error", "code": code, "message": message}}
    return web.json_response(body, status=status)


class Proxy:
    def __init__(self, upstream):
        self.upstream = upstream.rstrip("/")
        self.session = None

    async def forward(self, method, path, headers, body=None, query=None):
        url = self.upstream + path
        if query:
            url += "?" + query
        async with self.session.request(method, url, headers=headers, data=body) as response:
            raw = await response.read()
            content_type = response.headers.get("Content-Type", "")
            return response.status, content_type, raw

    @staticmethod
    def pass_headers(request):
        keep = ("authorization", "content-type", "stripe-version", "idempotency-key")
        return {k: v for k, v in request.headers.items() if k.lower() in keep}

    def respond(self, status, content_type, raw):
        if content_type.startswith("application/json"):
            try:
                body = fill_payment_intent(json.loads(raw))
            except ValueError:
                return web.Response(status=status, body=raw, content_type="application/json")
            return web.json_response(body, status=status)
        return web.Response(status=status, body=raw, headers={"Content-Type": content_type} if content_type else None)

    async def confirm(self, request, intent_id, form):
        headers = self.pass_headers(request)
        auth = {"Authorization": headers.get("Authorization", headers.get("authorization", ""))}
        status, content_type, raw = await self.forward(
            "GET", f"/v1/payment_intents/{intent_id}", auth)
        if status != 200:
            return self.respond(status, content_type, raw)
        intent = json.loads(raw)
        if intent.get("status") not in WAITING_FOR_CARD:
            return stripe_error(
                400, "payment_intent_unexpected_state",
                f"This PaymentIntent's status is {intent.get('status')}; it cannot be confirmed.")
        update = {"payment_method": form["payment_method"], "latest_charge": None}
        status, content_type, raw = await self.forward(
            "POST", f"/v1/payment_intents/{intent_id}",
            {**auth, "Content-Type": "application/json"}, json.dumps(update).encode())
        if status != 200:
            return self.respond(status, content_type, raw)
        status, content_type, raw = await self.forward(
            "POST", f"/v1/payment_intents/{intent_id}/confirm", auth)
        return self.respond(status, content_type, raw)

    async def handle(self, request):
        body = await request.read()
        path = request.path
        parts = path.strip("/").split("/")
        if (request.method == "POST" and len(parts) == 4 and parts[:2] == ["v1", "payment_intents"]
                and parts[3] == "confirm"):
            form = dict(urllib.parse.parse_qsl(body.decode()))
            if form.get("payment_method"):
                return await self.confirm(request, parts[2], form)
        status, content_type, raw = await self.forward(
            request.method, path, self.pass_headers(request), body or None, request.query_string)
        return self.respond(status, content_type, raw)


async def start(app):
    app["proxy"].session = ClientSession()
    yield
    await app["proxy"].session.close()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--upstream", required=True)
    args = parser.parse_args()
    proxy = Proxy(args.upstream)
    app = web.Application()
    app["proxy"] = proxy
    app.cleanup_ctx.append(start)
    app.router.add_route("*", "/{tail:.*}", proxy.handle)
    web.run_app(app, host="127.0.0.1", port=args.port, print=None)


if __name__ == "__main__":
    main()
