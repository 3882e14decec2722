#!/usr/bin/env bash
# Conformance: Debian's hcloud CLI (package hcloud-cli, binary `hcloud`) against
# `tether sandbox hetzner`. Usage: bash .ci/conformance/hcloud_cli.sh [path/to/tether]
#
# Starts the emulator on a free port, points the CLI at it with HCLOUD_ENDPOINT, HCLOUD_TOKEN
# and a throw-away HCLOUD_CONFIG, runs the commands an operator would, and checks their output.
# Exits non-zero with a clear message on the first mismatch; never leaves the emulator behind.
set -euo pipefail

tether=${1:-target/debug/tether}
token=conformance-cli-token
work=$(mktemp -d)
pid=

cleanup() {
  if [ -n "$pid" ]; then
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT

fail() {
  echo "hcloud-cli conformance FAILED: $*" >&2
  exit 1
}

hc() { timeout 60 hcloud "$@" </dev/null; }

# Reads JSON on stdin and prints the Python expression $1 of it (bound to `d`).
jq_py() { python3 -c 'import json, sys; d = json.load(sys.stdin); print(eval(sys.argv[1]))' "$1"; }

expect_eq() { # what, expected, actual
  [ "$2" = "$3" ] || fail "$1: expected '$2', got '$3'"
}

"$tether" sandbox hetzner --port 0 --token "$token" >"$work/sandbox.out" </dev/null &
pid=$!
for _ in $(seq 100); do
  grep -q '^listening on ' "$work/sandbox.out" 2>/dev/null && break
  sleep 0.1
done
endpoint=$(sed -n 's/^listening on //p' "$work/sandbox.out")
[ -n "$endpoint" ] || fail "the sandbox did not announce its endpoint: $(cat "$work/sandbox.out")"

unset HCLOUD_CONTEXT
export HCLOUD_ENDPOINT=$endpoint HCLOUD_TOKEN=$token HCLOUD_CONFIG=$work/cli.toml

create() { # name, labels...
  local name=$1
  shift
  local args=()
  for label in "$@"; do args+=(--label "$label"); done
  hc server create --name "$name" --type cpx21 --image ubuntu-24.04 --location fsn1 \
    --ssh-key ops-2026 "${args[@]}" >"$work/create.out" 2>&1 || fail "create $name: $(cat "$work/create.out")"
  grep -q "Server [0-9]* created" "$work/create.out" || fail "create $name printed: $(cat "$work/create.out")"
}

create web-1 k=v env=prod
create web-2 k=v
create db-1 k=w

names() { hc server list -l "$1" -o json | jq_py '" ".join(sorted(s["name"] for s in (d or [])))'; }
expect_eq "list -l k=v" "web-1 web-2" "$(names 'k=v')"
expect_eq "list -l k!=v" "db-1" "$(names 'k!=v')"
expect_eq "list -l env" "web-1" "$(names 'env')"
expect_eq "list -l 'k in (v,w),!env'" "db-1 web-2" "$(names 'k in (v,w),!env')"

describe() { hc server describe web-1 -o json | jq_py "$1"; }
expect_eq "describe status" "running" "$(describe 'd["status"]')"
expect_eq "describe type" "cpx21" "$(describe 'd["server_type"]["name"]')"
expect_eq "describe location" "fsn1" "$(describe 'd["location"]["name"]')"
expect_eq "describe datacenter" "fsn1-dc14" "$(describe 'd["datacenter"]["name"]')"
expect_eq "describe labels" "env=prod k=v" "$(describe '" ".join(f"{k}={v}" for k, v in sorted(d["labels"].items()))')"
hc server describe web-1 | grep -q "^Name:[[:space:]]*web-1$" || fail "describe (text) lacks the name"

hc server add-label web-1 tier=gold >/dev/null
expect_eq "add-label" "gold" "$(describe 'd["labels"].get("tier")')"

hc server poweroff web-1 >/dev/null
expect_eq "poweroff" "off" "$(describe 'd["status"]')"
hc server change-type web-1 cpx31 >/dev/null
expect_eq "change-type" "cpx31 160" "$(describe 'd["server_type"]["name"] + " " + str(d["primary_disk_size"])')"
hc server poweron web-1 >/dev/null
expect_eq "poweron" "running" "$(describe 'd["status"]')"

if hc server create --name web-2 --type cpx11 --image debian-12 >"$work/dup.out" 2>&1; then
  fail "a duplicate server name was accepted"
fi
grep -q "uniqueness_error" "$work/dup.out" || fail "duplicate name error: $(cat "$work/dup.out")"

hc server delete web-1 >/dev/null
for _ in $(seq 50); do
  [ "$(names 'env')" = "" ] && break
  sleep 0.1
done
expect_eq "list after delete" "" "$(names 'env')"
if hc server describe web-1 >"$work/gone.out" 2>&1; then
  fail "web-1 still exists after delete"
fi
grep -q "not found" "$work/gone.out" || fail "describe after delete: $(cat "$work/gone.out")"

types=$(hc server-type list -o noheader -o columns=name | tr -s ' \n' ' ')
for t in cpx11 cpx21 cpx31; do
  [[ " $types " == *" $t "* ]] || fail "server-type list lacks $t: $types"
done
expect_eq "location list" "ash fsn1 hel1 hil nbg1 sin" \
  "$(hc location list -o noheader -o columns=name | sort | tr '\n' ' ' | sed 's/ $//')"
hc ssh-key list -o noheader -o columns=name | grep -qx "ops-2026" || fail "ssh-key list lacks ops-2026"

echo "hcloud-cli conformance: ok"
