#!/usr/bin/env python3
"""Conformance: Stripe's official `stripe` Python library against the Stripe emulator's API,
and deliveries signed by it against `tether billing serve`.

Usage: python3 .ci/conformance/stripe_python.py [path/to/tether]

Starts the Stripe emulator (`tether sandbox stripe`) with a few subscriptions and drives its
API with the library: `stripe.Subscription.retrieve` (with `expand`), `stripe.Subscription.list`
paged with `auto_paging_iter` over every status, and the library's errors for an unknown id
and for the read rate limit (429). Then seeds a temporary fleet repository, starts the receiver
on a free port, reading subscriptions from the emulator (both print `listening on <url>`
first), signs subscription events with the library's own signing code
(`stripe.WebhookSignature._compute_signature`, checked by `stripe.Webhook.construct_event`)
and checks: a signed event is applied and committed with its trailer; a tampered body, a wrong
secret and a stale timestamp are refused; a replayed delivery and a redelivered event change
nothing. Exits non-zero with a clear message on the first mismatch.
"""

import json
import os
import pathlib
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

import stripe

SECRET = "whsec_conformance_secret"
API_KEY = "sk_test_conformance"
SUBSCRIPTIONS = [
    "sub_conformance:cus_conformance:pro_monthly",
    "sub_conf2:cus_conf2:pro_monthly:past_due",
    "sub_conf3:cus_conf3:pro_monthly:canceled",
    "sub_conf4:cus_conf4:pro_monthly:unpaid",
]
ROOT = pathlib.Path(__file__).resolve().parents[2]
MAPPING = """statuses:
  active: present
  trialing: present
  past_due: present
  unpaid: off
  paused: off
  canceled: absent
  incomplete: absent
  incomplete_expired: absent
prices:
  - lookupKey: pro_monthly
    plan: pro
    type: cpx21
    location: fsn1
    runtime: 1.4.2
"""


class Mismatch(Exception):
    """The receiver answered something other than what Stripe's documentation requires."""


def expect(actual, wanted, what):
    if actual != wanted:
        raise Mismatch(f"{what}: expected {wanted!r}, got {actual!r}")


def git(repo, *args):
    return subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True, text=True).stdout


def seed(tmp):
    repo = tmp / "fleet"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    shutil.copy(ROOT / "fleet" / "fleet.yaml", repo / "fleet.yaml")
    git(repo, "add", "fleet.yaml")
    git(repo, "-c", "user.name=seed", "-c", "user.email=seed@example.com", "commit", "-q", "-m", "seed")
    (tmp / "mapping.yaml").write_text(MAPPING)
    (tmp / "billing.yaml").write_text("listen: 127.0.0.1:0\nrepo: fleet\nbranch: main\nmapping: mapping.yaml\n")
    return repo


def launch(args, env, what):
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True, env=env)
    first = proc.stdout.readline().strip()
    if not first.startswith("listening on "):
        proc.kill()
        raise Mismatch(f"{what} did not announce its endpoint: {first!r}")
    return proc, first.removeprefix("listening on ")


def start_stripe(tether):
    args = [tether, "sandbox", "stripe", "--key", API_KEY]
    for sub in SUBSCRIPTIONS:
        args += ["--subscription", sub]
    return launch(args, dict(os.environ), "the Stripe emulator")


def start(tether, tmp, api):
    env = dict(os.environ, STRIPE_WEBHOOK_SECRET=SECRET, STRIPE_API_KEY=API_KEY, STRIPE_API_URL=api)
    return launch([tether, "billing", "serve", "--config", str(tmp / "billing.yaml")], env, "the receiver")


def check_api(api):
    """The library's retrieve, list and errors against the emulator."""
    client = stripe.StripeClient(API_KEY, base_addresses={"api": api}, max_network_retries=0)
    sub = client.subscriptions.retrieve("sub_conformance", params={"expand": ["items.data.price.product"]})
    expect((sub.id, sub.status), ("sub_conformance", "active"), "retrieve")
    expect(sub["items"].data[0].price.product.object, "product", "retrieve with expand[]=items.data.price.product")
    expect(sub["items"].data[0].price.lookup_key, "pro_monthly", "the price's lookup key")
    listed = [s.id for s in client.subscriptions.list(params={"status": "all", "limit": 2}).auto_paging_iter()]
    expect(sorted(listed), sorted(s.split(":")[0] for s in SUBSCRIPTIONS), "list with status=all, paged by 2")
    active = [s.id for s in client.subscriptions.list(params={"limit": 100}).auto_paging_iter()]
    expect("sub_conf3" in active, False, "a canceled subscription listed without status=all")
    try:
        client.subscriptions.retrieve("sub_missing")
        raise Mismatch("an unknown subscription was retrieved")
    except stripe.InvalidRequestError as e:
        expect((e.http_status, e.code), (404, "resource_missing"), "the library's error for an unknown id")
    try:
        stripe.StripeClient("sk_test_wrong", base_addresses={"api": api}).subscriptions.retrieve("sub_conformance")
        raise Mismatch("a wrong key was accepted")
    except stripe.AuthenticationError:
        pass


def event(event_id, created, status):
    return json.dumps({
        "id": event_id, "object": "event", "type": "customer.subscription.created",
        "created": created, "livemode": False, "api_version": "2024-06-20",
        "data": {"object": {
            "id": "sub_conformance", "object": "subscription", "customer": "cus_conformance",
            "status": status, "metadata": {},
            "items": {"object": "list", "data": [{"id": "si_1", "price": {
                "id": "price_1", "lookup_key": "pro_monthly", "product": "prod_1"}}]},
        }},
    })


def header(payload, secret=SECRET, timestamp=None):
    """The Stripe-Signature header the library computes, checked by the library itself."""
    timestamp = int(time.time()) if timestamp is None else timestamp
    signature = stripe.WebhookSignature._compute_signature(f"{timestamp}.{payload}", secret)
    value = f"t={timestamp},v1={signature}"
    if secret == SECRET and timestamp > time.time() - 300:
        stripe.Webhook.construct_event(payload, value, secret)
    return value


def post(url, payload, signature):
    request = urllib.request.Request(
        url + "/stripe", data=payload.encode(), method="POST",
        headers={"Content-Type": "application/json", "Stripe-Signature": signature},
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"null")


def check(url, repo):
    payload = event("evt_conformance_1", int(time.time()), "active")
    signed = header(payload)
    status, body = post(url, payload, signed)
    expect((status, body.get("status")), (200, "applied"), "a delivery signed by the stripe library")
    message = git(repo, "log", "-1", "--format=%B", "main")
    if "Tether-Stripe-Event: evt_conformance_1 sub_conformance" not in message:
        raise Mismatch(f"the commit lacks the event trailer:\n{message}")
    tip = git(repo, "rev-parse", "main")

    status, _ = post(url, payload.replace("cus_conformance", "cus_attacker"), signed)
    expect(status, 400, "a tampered body under the original signature")
    status, _ = post(url, payload, header(payload, secret="whsec_someone_else"))
    expect(status, 400, "a signature made with another endpoint's secret")
    stale = int(time.time()) - 600
    status, body = post(url, payload, header(payload, timestamp=stale))
    expect(status, 400, "a timestamp 600 s old (tolerance 300 s)")
    try:
        stripe.Webhook.construct_event(payload, header(payload, timestamp=stale), SECRET)
        raise Mismatch("the stripe library itself accepted the stale timestamp")
    except stripe.error.SignatureVerificationError:
        pass

    status, body = post(url, payload, signed)
    expect((status, body.get("status")), (200, "replay"), "the same delivery sent again (a replay)")
    status, body = post(url, payload, header(payload, timestamp=int(time.time()) - 5))
    expect((status, body.get("status")), (200, "duplicate"), "Stripe's retry of the event (new signature)")
    expect(git(repo, "rev-parse", "main"), tip, "the fleet branch after refused and repeated deliveries")

    with urllib.request.urlopen(url + "/metrics", timeout=10) as response:
        metrics = response.read().decode()
    for line in ['tether_billing_deliveries_total{outcome="bad_signature"} 3', "tether_billing_commits_total 1"]:
        if line not in metrics:
            raise Mismatch(f"/metrics lacks `{line}`")


def main():
    tether = sys.argv[1] if len(sys.argv) > 1 else str(ROOT / "target" / "debug" / "tether")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = pathlib.Path(tmp)
        repo = seed(tmp)
        procs = []
        try:
            emulator, api = start_stripe(tether)
            procs.append(emulator)
            check_api(api)
            receiver, url = start(tether, tmp, api)
            procs.append(receiver)
            check(url, repo)
        except Mismatch as e:
            print(f"stripe conformance: {e}", file=sys.stderr)
            return 1
        finally:
            for proc in procs:
                proc.terminate()
                proc.wait(timeout=10)
    print(f"stripe conformance: stripe {stripe.VERSION} retrieves, lists (paged, every status, expanded) and reads errors from the emulator; signatures accepted; tampered, wrong-secret and stale refused; replay and redelivery changed nothing")
    return 0


if __name__ == "__main__":
    sys.exit(main())
