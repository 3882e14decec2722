#!/usr/bin/env python3
"""Conformance: Hetzner's official `hcloud` Python library against `tether sandbox hetzner`.

Usage: python3 .ci/conformance/hcloud_python.py [path/to/tether]

Starts the emulator as a subprocess on a free port (it prints `listening on <url>` first),
drives servers, actions, label selectors, pagination, SSH keys, the catalog, firewalls and an
IPv4-less server through the library, and exits non-zero with a clear message on the first mismatch.
"""

import subprocess
import sys
import time
import warnings

from hcloud import APIException, Client
from hcloud.firewalls import FirewallResource, FirewallResourceLabelSelector, FirewallRule
from hcloud.images import Image
from hcloud.locations import Location
from hcloud.server_types import ServerType
from hcloud.servers import ServerCreatePublicNetwork

TOKEN = "conformance-python-token"
KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIK7zJWYdWP1Epwu6tPM9r1CezzsCuMr/lQjaE4rZWyif dev"


class Mismatch(Exception):
    """The library saw something other than what the real API would have sent."""


def expect(actual, wanted, what):
    if actual != wanted:
        raise Mismatch(f"{what}: expected {wanted!r}, got {actual!r}")


def expect_api_error(code, what, call, *args, **kwargs):
    try:
        call(*args, **kwargs)
    except APIException as e:
        expect(e.code, code, f"{what}: error code")
        return e
    raise Mismatch(f"{what}: expected APIException {code}, got success")


def start_emulator(tether):
    proc = subprocess.Popen(
        [tether, "sandbox", "hetzner", "--port", "0", "--token", TOKEN],
        stdout=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
    )
    first = proc.stdout.readline().strip()
    if not first.startswith("listening on "):
        proc.kill()
        raise Mismatch(f"the sandbox did not announce its endpoint: {first!r}")
    return proc, first.removeprefix("listening on ")


def create(client, name, labels, keys=None):
    response = client.servers.create(
        name=name,
        server_type=ServerType(name="cpx21"),
        image=Image(name="ubuntu-24.04"),
        location=Location(name="fsn1"),
        ssh_keys=keys,
        labels=labels,
    )
    expect(response.server.status, "initializing", f"{name}: status right after create")
    expect(response.action.command, "create_server", f"{name}: action")
    expect([a.command for a in response.next_actions], ["start_server"], f"{name}: next_actions")
    response.action.wait_until_finished()
    for action in response.next_actions:
        action.wait_until_finished()
    expect(response.action.status, "success", f"{name}: create action status")
    return response


def check_servers(client):
    key = client.ssh_keys.get_by_name("ops-2026")
    if key is None:
        raise Mismatch("seeded SSH key ops-2026 not found")
    servers = {
        "web-1": {"env": "prod", "tier": "web"},
        "web-2": {"env": "prod", "tier": "web", "canary": ""},
        "db-1": {"env": "prod", "tier": "db"},
        "dev-1": {"env": "dev"},
    }
    for name, labels in servers.items():
        response = create(client, name, labels, keys=[key])
        expect(response.root_password, None, f"{name}: root_password with SSH keys")
    plain = create(client, "no-keys", {"team": "ops"})
    if not plain.root_password:
        raise Mismatch("no-keys: a root_password is expected without SSH keys")
    web1 = client.servers.get_by_name("web-1")
    expect(web1.status, "running", "web-1: status after its actions")
    expect(web1.server_type.name, "cpx21", "web-1: server type")
    expect(web1.location.name, "fsn1", "web-1: location")
    expect(web1.image.name, "ubuntu-24.04", "web-1: image")
    expect(web1.labels, servers["web-1"], "web-1: labels")
    if not web1.public_net.ipv4.ip:
        raise Mismatch("web-1: no public IPv4")
    return web1


def check_selectors(client):
    cases = {
        "env=prod": {"web-1", "web-2", "db-1"},
        "env==dev": {"dev-1"},
        "env!=prod": {"dev-1", "no-keys"},
        "canary": {"web-2"},
        "!canary": {"web-1", "db-1", "dev-1", "no-keys"},
        "tier in (web,db)": {"web-1", "web-2", "db-1"},
        "tier notin (web)": {"db-1", "dev-1", "no-keys"},
        "env=prod,tier=web": {"web-1", "web-2"},
        "env=prod,!canary,tier": {"web-1", "db-1"},
    }
    for selector, wanted in cases.items():
        got = {s.name for s in client.servers.get_all(label_selector=selector)}
        expect(got, wanted, f"label_selector {selector!r}")


def check_pagination(client):
    first = client.servers.get_list(page=1, per_page=2)
    expect(len(first.servers), 2, "page 1 size")
    p = first.meta.pagination
    expect((p.page, p.per_page, p.next_page, p.last_page, p.total_entries), (1, 2, 2, 3, 5), "page 1 meta")
    last = client.servers.get_list(page=3, per_page=2)
    expect(len(last.servers), 1, "page 3 size")
    expect(last.meta.pagination.next_page, None, "page 3 next_page")
    every = client.servers.get_all()
    expect(len({s.id for s in every}), 5, "get_all distinct servers")
    running = client.servers.get_all(status=["running"])
    expect(len(running), 5, "status=running filter")
    expect(client.servers.get_all(status=["off", "stopping"]), [], "status=off,stopping filter")


def check_update_power_and_type(client, server):
    server.update(labels={"env": "prod", "version": "2"})
    expect(client.servers.get_by_id(server.id).labels, {"env": "prod", "version": "2"}, "labels replaced")
    expect_api_error("server_not_stopped", "change_type while running", server.change_type,
                     ServerType(name="cpx31"), upgrade_disk=True)
    server.power_off().wait_until_finished()
    expect(client.servers.get_by_id(server.id).status, "off", "status after power_off")
    expect_api_error("invalid_server_type", "change_type to a smaller disk", server.change_type,
                     ServerType(name="cpx11"), upgrade_disk=False)
    server.change_type(ServerType(name="cpx31"), upgrade_disk=True).wait_until_finished()
    changed = client.servers.get_by_id(server.id)
    expect((changed.server_type.name, changed.primary_disk_size), ("cpx31", 160), "after change_type")
    server.power_on().wait_until_finished()
    expect(client.servers.get_by_id(server.id).status, "running", "status after power_on")
    actions = [a.command for a in server.get_actions(sort=["command:desc", "id"])]
    expect(actions, sorted(actions, reverse=True), "server actions sorted by command:desc")
    for command in ("create_server", "start_server", "stop_server", "change_server_type"):
        if command not in actions:
            raise Mismatch(f"server actions lack {command}: {actions}")
    running = server.get_actions_list(status=["running"], per_page=1)
    expect(running.actions, [], "no running actions once all finished")


def check_errors(client):
    e = expect_api_error("uniqueness_error", "duplicate name", client.servers.create, name="web-1",
                         server_type=ServerType(name="cpx11"), image=Image(name="debian-12"))
    expect(e.message, "server name is already used", "duplicate name message")
    e = expect_api_error("invalid_input", "underscore in name", client.servers.create, name="bad_name",
                         server_type=ServerType(name="cpx11"), image=Image(name="debian-12"))
    expect([f["name"] for f in e.details["fields"]], ["name"], "invalid_input details.fields")
    expect_api_error("not_found", "missing server", client.servers.get_by_id, 424242)


def check_delete(client):
    server = client.servers.get_by_name("dev-1")
    action = server.delete()
    expect(action.command, "delete_server", "delete action")
    action.wait_until_finished()
    expect_api_error("not_found", "deleted server", client.servers.get_by_id, server.id)
    expect(client.servers.get_by_name("dev-1"), None, "get_by_name after delete")


def check_catalog_and_keys(client):
    types = {t.name for t in client.server_types.get_all()}
    for wanted in ("cpx11", "cpx21", "cpx31"):
        if wanted not in types:
            raise Mismatch(f"server type {wanted} missing from {sorted(types)}")
    cpx21 = client.server_types.get_by_name("cpx21")
    fsn1 = [p for p in cpx21.prices if p["location"] == "fsn1"]
    expect(len(fsn1), 1, "cpx21 priced in fsn1")
    expect(fsn1[0]["price_monthly"]["net"], "7.5500000000", "cpx21 fsn1 monthly net")
    expect({l.name for l in client.locations.get_all()}, {"fsn1", "nbg1", "hel1", "ash", "hil", "sin"}, "locations")
    expect(client.locations.get_by_name("hel1").network_zone, "eu-central", "hel1 zone")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        expect(len(client.datacenters.get_all()), 6, "datacenters (deprecated, still served)")
    image = client.images.get_by_name_and_architecture("debian-12", "x86")
    expect((image.os_flavor, image.architecture), ("debian", "x86"), "debian-12 x86 image")
    expect(len(client.images.get_all(name="ubuntu-24.04")), 2, "ubuntu-24.04 for both architectures")
    key = client.ssh_keys.create(name="dev", public_key=KEY, labels={"k": "v"})
    expect(client.ssh_keys.get_by_fingerprint(key.fingerprint).name, "dev", "get_by_fingerprint")
    expect_api_error("uniqueness_error", "duplicate SSH key", client.ssh_keys.create, name="dev2", public_key=KEY)
    key.delete()
    expect(client.ssh_keys.get_by_name("dev"), None, "deleted SSH key")


def firewall_ids(client, name):
    return [(f.firewall.id, f.status) for f in client.servers.get_by_name(name).public_net.firewalls]


def wait_applied(client, name, firewall_id):
    for _ in range(200):
        if firewall_ids(client, name) == [(firewall_id, "applied")]:
            return
        time.sleep(0.05)
    raise Mismatch(f"{name}: firewall {firewall_id} never applied: {firewall_ids(client, name)}")


def check_firewalls(client):
    selector = FirewallResource(type="label_selector",
                                label_selector=FirewallResourceLabelSelector(selector="fleet=acme"))
    created = client.firewalls.create(
        name="acme",
        labels={"fleet": "acme"},
        rules=[FirewallRule(direction="in", protocol="icmp", source_ips=["0.0.0.0/0", "::/0"])],
        resources=[selector],
    )
    firewall = created.firewall
    expect([a.command for a in created.actions], ["apply_firewall"], "firewall create actions")
    for action in created.actions:
        action.wait_until_finished()
    v6 = client.servers.create(
        name="v6-only",
        server_type=ServerType(name="cpx21"),
        image=Image(name="ubuntu-24.04"),
        location=Location(name="fsn1"),
        labels={"fleet": "acme"},
        public_net=ServerCreatePublicNetwork(enable_ipv4=False, enable_ipv6=True),
    )
    v6.action.wait_until_finished()
    server = client.servers.get_by_name("v6-only")
    expect(server.public_net.ipv4, None, "v6-only: no IPv4")
    if not server.public_net.ipv6.ip:
        raise Mismatch("v6-only: no IPv6 network")
    wait_applied(client, "v6-only", firewall.id)
    expect(firewall_ids(client, "web-1"), [], "web-1 (no fleet label) is not covered")
    ssh = FirewallRule(direction="in", protocol="tcp", port="22", source_ips=["192.0.2.0/24"])
    actions = firewall.set_rules([ssh])
    expect([a.command for a in actions], ["set_firewall_rules", "apply_firewall"], "set_rules actions")
    for action in actions:
        action.wait_until_finished()
    again = client.firewalls.get_by_name("acme")
    expect([(r.protocol, r.port, r.source_ips) for r in again.rules], [("tcp", "22", ["192.0.2.0/24"])],
           "rules after set_rules")
    expect([r.label_selector.selector for r in again.applied_to], ["fleet=acme"], "applied_to")
    expect([r.server.id for r in again.applied_to[0].applied_to_resources], [server.id],
           "applied_to_resources")
    expect([f.name for f in client.firewalls.get_all(label_selector="fleet=acme")], ["acme"],
           "firewalls by label selector")
    expect_api_error("resource_in_use", "delete while applied", firewall.delete)
    expect_api_error("firewall_already_applied", "apply twice", firewall.apply_to_resources, [selector])
    for action in firewall.remove_from_resources([selector]):
        action.wait_until_finished()
    expect(firewall_ids(client, "v6-only"), [], "v6-only after remove_from_resources")
    firewall.delete()
    expect(client.firewalls.get_by_name("acme"), None, "deleted firewall")


def main():
    tether = sys.argv[1] if len(sys.argv) > 1 else "target/debug/tether"
    proc, url = start_emulator(tether)
    try:
        client = Client(token=TOKEN, api_endpoint=url, poll_interval=0.05)
        expect_api_error("unauthorized", "wrong token", Client(token="wrong", api_endpoint=url).servers.get_all)
        web1 = check_servers(client)
        check_selectors(client)
        check_pagination(client)
        check_update_power_and_type(client, web1)
        check_errors(client)
        check_delete(client)
        check_catalog_and_keys(client)
        check_firewalls(client)
    except (Mismatch, APIException) as e:
        print(f"hcloud-python conformance FAILED: {e}", file=sys.stderr)
        return 1
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
    print("hcloud-python conformance: ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
