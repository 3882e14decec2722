#!/bin/sh
# Makes a bare fleet repository shaped as billing automation leaves it, for timing
# `tether agent add` at fleet size N: fleet.yaml, then N commits that each add one agent spec
# (agents/<customer>/<name>.yaml, as `tether agent add` writes it) with the subscription and
# idempotency-key trailers billing writes. git fast-import builds it in seconds.
#
#   reconciler/benches/billing-repo.sh DIR N
#
# docs/benchmarks.md ("`tether agent add` at 10,000 agents") shows how it is timed.
set -eu
dir=$1
n=$2
git init -q --bare --initial-branch=main "$dir"
awk -v n="$n" '
function blob(path, text) {
    printf "M 100644 inline %s\ndata %d\n%s\n", path, length(text), text
}
function commit(message, when) {
    printf "commit refs/heads/main\ncommitter tether billing <billing@tether.invalid> %d +0000\ndata %d\n%s\n", when, length(message), message
}
BEGIN {
    t = 1700000000
    commit("fleet: bench", t)
    blob("fleet.yaml", "apiVersion: tether/v1\nkind: Fleet\nmetadata: {name: bench}\nspec:\n  defaults: {server: {type: cpx21, location: fsn1, image: ubuntu-24.04}}\n  tailscale: {tags: [\"tag:agent\"]}\n  policy: {prune: true, maxDeletionsPerRun: 100, maxDeletionPercent: 10}\n  catalog: {serverTypes: [cpx11, cpx21, cpx31], locations: [fsn1, nbg1], images: [ubuntu-24.04]}\n")
    for (i = 0; i < n; i++) {
        sub_id = sprintf("sub_%05d", i)
        name = sprintf("sub-%05d", i)
        customer = sprintf("cus-%04d", int(i / 7))
        commit(sprintf("agent add %s (subscription %s)\n\nTether-Subscription: %s\nTether-Idempotency-Key: evt_%05d\n", name, sub_id, sub_id, i), t + 1 + i)
        blob(sprintf("agents/%s/%s.yaml", customer, name), sprintf("# Written by `tether agent add` for subscription %s.\napiVersion: tether/v1\nkind: Agent\nmetadata:\n  name: %s\n  labels: {customer: \"%s\", plan: \"pro\"}\nspec:\n  subscription: %s\n  runtime:\n    version: \"1.4.2\"\n", sub_id, name, customer, sub_id))
    }
}' | git -C "$dir" fast-import --quiet
git -C "$dir" gc -q
