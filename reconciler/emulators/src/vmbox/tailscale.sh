#!/bin/sh
# tailscale, as a VM in a box has it: `tailscale up` joins the Tailscale emulator with the auth
# key it is given (`--auth-key=file:PATH` or `--auth-key=KEY`) and `--hostname`, the way the real
# client joins the control plane. The emulator's address and this server's id are in
# /etc/tether-box/tailscale.env, written when the box was made. The key is never printed.
set -eu
. /etc/tether-box/tailscale.env
command="${1:-}"
[ $# -gt 0 ] && shift
case "$command" in
up)
    key=""
    host="$(hostname)"
    for arg in "$@"; do
        case "$arg" in
            --auth-key=file:*) key="$(cat "${arg#--auth-key=file:}")" ;;
            --auth-key=*) key="${arg#--auth-key=}" ;;
            --hostname=*) host="${arg#--hostname=}" ;;
        esac
    done
    [ -n "$key" ] || { echo "tailscale up: no auth key given" >&2; exit 1; }
    case "$key$host" in
        *[!A-Za-z0-9-]*) echo "tailscale up: the key or hostname has characters a real one never has" >&2; exit 1 ;;
    esac
    printf '{"serverId":%s,"hostname":"%s","authKey":"%s"}' "$SERVER_ID" "$host" "$key" |
        curl -fsS -X POST -H 'content-type: application/json' --data-binary @- \
            "$TS_EMULATOR_URL/_emulator/join" >/dev/null
    echo "tailscale up: joined as $host"
    ;;
version) echo "box (the Tailscale emulator's join)" ;;
*) echo "tailscale: \`$command\` is not provided in the box" >&2; exit 2 ;;
esac
