#!/usr/bin/env python3
"""Conformance: a Tailscale API client nobody on tether wrote, against tether's emulator.

The client is the `tailscale` package on PyPI (frenck/python-tailscale, async, aiohttp). It
hard-codes https://api.tailscale.com/api/v2/ but takes the caller's aiohttp session; the session
below sends each request to the emulator instead, changing only scheme, host and port. All else
is the package's own code: auth headers, the OAuth token exchange, paths, bodies, and parsing the
JSON into its models.

Usage: tailscale_python.py <emulator-url> <api-token> [<oauth-client-id> <oauth-client-secret>]
The emulator must hold one online, tagged device; the script deletes it at the end.
"""

import asyncio
import ipaddress
import sys
from datetime import datetime

import aiohttp
from tailscale import (
    Tailscale,
    TailscaleNotFoundError,
    TailscalePermissionError,
    TailscaleUnauthorizedError,
)
from yarl import URL

RESULTS = {"passed": 0, "failed": 0}


def check(name, condition, detail=""):
    """Records one check and prints it."""
    RESULTS["passed" if condition else "failed"] += 1
    print(f"{'ok  ' if condition else 'FAIL'} {name}{'' if condition else f': {detail}'}")


class ToEmulator:
    """An aiohttp session look-alike that sends the package's requests to the emulator."""

    def __init__(self, session, base):
        self._session = session
        self._base = URL(base)

    def request(self, method, url, **kwargs):
        url = URL(url)
        if url.host != "api.tailscale.com":
            raise AssertionError(f"the package called {url}, not the real API")
        moved = url.with_scheme(self._base.scheme).with_host(self._base.host).with_port(self._base.port)
        return self._session.request(method, moved, **kwargs)


async def expect_error(name, kind, call):
    try:
        await call
    except kind:
        check(name, True)
    except Exception as error:  # noqa: BLE001 - any other error is a failed check
        check(name, False, f"{type(error).__name__}: {error}")
    else:
        check(name, False, "no error")


async def devices_and_keys(api):
    devices = await api.devices()
    check("one seeded device is listed", len(devices) == 1, devices)
    device_id, device = next(iter(devices.items()))
    v4, v6 = (ipaddress.ip_address(a) for a in device.addresses)
    check("device is keyed by its numeric id", device_id == device.device_id and device_id.isdigit())
    check("nodeId has the API's shape", device.node_id.startswith("n") and device.node_id.endswith("CNTRL"))
    check("name is a MagicDNS name", device.name.startswith(f"{device.hostname}.") and device.name.endswith(".ts.net"))
    check("IPv4 is in 100.64.0.0/10", v4 in ipaddress.ip_network("100.64.0.0/10"), v4)
    check("IPv6 is in fd7a:115c:a1e0::/48", v6 in ipaddress.ip_network("fd7a:115c:a1e0::/48"), v6)
    check("tagged, authorized and online", device.tags and device.authorized and device.connected_to_control)
    check("no lastSeen while online", device.last_seen is None, device.last_seen)
    check("tagged devices never expire", device.key_expiry_disabled is True)
    check("created parses as a time", isinstance(device.created, datetime))
    check("linux, not ephemeral, not external", (device.os, device.is_ephemeral, device.is_external) == ("linux", False, False))
    check("fields=all brings connectivity", device.client_connectivity is not None and device.enabled_routes == [])
    same = await api.device(device.node_id)
    check("device by nodeId matches the list", same.device_id == device_id and same.addresses == device.addresses)

    await api.set_device_tags(device.node_id, tags=["tag:agent", "tag:agent-us"])
    check("tags are replaced", (await api.device(device_id)).tags == ["tag:agent", "tag:agent-us"])
    await api.authorize_device(device.node_id, authorized=False)
    check("device can be deauthorized", (await api.device(device_id)).authorized is False)
    await api.authorize_device(device.node_id, authorized=True)

    created = await api.create_key(description="conformance check", expiry_seconds=3600, preauthorized=True, tags=["tag:agent"])
    check("the new key's secret is returned once", created.key.startswith(f"tskey-auth-{created.key_id}-"))
    check("capabilities round-trip", created.capabilities.devices.create.tags == ["tag:agent"] and created.capabilities.devices.create.preauthorized)
    fetched = await api.key(created.key_id)
    check("a fetched key has no secret", fetched.key == "" and not fetched.invalid)
    check("the key is listed", created.key_id in [k.key_id for k in await api.keys()])
    await api.delete_key(created.key_id)
    revoked = await api.key(created.key_id)
    check("a revoked key is invalid", revoked.invalid and revoked.revoked is not None)
    await expect_error("unknown devices are 404", TailscaleNotFoundError, api.device("nDoesNotExistCNTRL"))
    return device_id


async def main(url, token, client_id=None, client_secret=None):
    async with aiohttp.ClientSession() as session:
        redirect = ToEmulator(session, url)
        api = Tailscale(api_key=token, session=redirect)
        device_id = await devices_and_keys(api)
        await expect_error("a wrong token is 401", TailscaleUnauthorizedError, Tailscale(api_key="tskey-api-wrong", session=redirect).devices())
        if client_id:
            oauth = Tailscale(oauth_client_id=client_id, oauth_client_secret=client_secret, session=redirect)
            check("OAuth client lists devices", device_id in await oauth.devices())
            await expect_error("OAuth client without auth_keys scope is 403", TailscalePermissionError, oauth.create_key(tags=["tag:agent"]))
            await oauth.close()
        await api.delete_device(device_id)
        check("device is deleted", device_id not in await api.devices())
    print(f"{RESULTS['passed']} passed, {RESULTS['failed']} failed")
    return RESULTS["failed"] == 0


if __name__ == "__main__":
    if len(sys.argv) not in (3, 5):
        sys.exit(__doc__)
    sys.exit(0 if asyncio.run(main(*sys.argv[1:])) else 1)
