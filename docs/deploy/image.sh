#!/usr/bin/env bash
# Builds the tether container image without any registry: `FROM scratch` with buildah (Debian's
# package), holding only `tether`, `tether-agent`, the shared libraries they load (found with
# ldd), the CA certificates and a passwd entry for user 10001. No base image is pulled and no
# command runs inside the image while it is built, so it works offline and as root with
#   buildah --storage-driver vfs
#
#   bash docs/deploy/image.sh BIN_DIR OUTPUT.tar [VERSION]
#
# BIN_DIR holds the built `tether` and `tether-agent` (e.g. target/release); OUTPUT.tar is an
# image archive (Docker's format, which keeps the HEALTHCHECK that OCI's drops) tagged
# `tether:VERSION`: `podman load -i OUTPUT.tar`, or `skopeo copy docker-archive:OUTPUT.tar
# docker://…` to push it to your registry. docs/install.md describes the image.
set -euo pipefail
bin_dir=${1:?usage: image.sh BIN_DIR OUTPUT.tar [VERSION]}
output=${2:?usage: image.sh BIN_DIR OUTPUT.tar [VERSION]}
for bin in tether tether-agent; do
  [ -x "$bin_dir/$bin" ] || { echo "missing $bin_dir/$bin: build it first (cargo build --release -p tether --no-default-features --bins)" >&2; exit 1; }
done
version=${3:-$("$bin_dir/tether" --version | awk '{print $2}')}
revision=$(git rev-parse HEAD 2>/dev/null || echo unknown)
buildah=(buildah --storage-driver vfs)
export BUILDAH_FORMAT=docker

root=$(mktemp -d)
trap 'rm -rf "$root"; [ -n "${ctr:-}" ] && "${buildah[@]}" rm "$ctr" >/dev/null 2>&1 || true' EXIT
install -d -m 0755 "$root/usr/local/bin" "$root/etc/ssl/certs" "$root/etc/tether" "$root/tmp"
install -d -m 0750 -o 10001 -g 10001 "$root/var/lib/tether" "$root/var/lib/tether/cache"
install -m 0755 "$bin_dir/tether" "$bin_dir/tether-agent" "$root/usr/local/bin/"
# The dynamic loader and every library either binary loads, at the paths ldd reports.
libs=$(for bin in tether tether-agent; do
  ldd "$bin_dir/$bin" | awk '$1 ~ /^\// {print $1} $3 ~ /^\// {print $3}'
done | sort -u)
for lib in $libs; do
  install -D -m 0644 "$(readlink -f "$lib")" "$root$lib"
done
install -m 0644 /etc/ssl/certs/ca-certificates.crt "$root/etc/ssl/certs/"
printf 'root:x:0:0:root:/root:/sbin/nologin\ntether:x:10001:10001:tether:/var/lib/tether:/sbin/nologin\n' > "$root/etc/passwd"
printf 'root:x:0:\ntether:x:10001:\n' > "$root/etc/group"
chmod 1777 "$root/tmp"

ctr=$("${buildah[@]}" from scratch)
"${buildah[@]}" copy "$ctr" "$root/" / >/dev/null
"${buildah[@]}" config \
  --user 10001:10001 \
  --workingdir /var/lib/tether \
  --entrypoint '["/usr/local/bin/tether"]' \
  --cmd run \
  --port 9180/tcp \
  --stop-signal SIGTERM \
  --healthcheck 'CMD /usr/local/bin/tether health' \
  --healthcheck-interval 30s \
  --healthcheck-timeout 10s \
  --healthcheck-retries 3 \
  --env TETHER_CONFIG=/etc/tether/tether.yaml \
  --env TETHER_LISTEN=0.0.0.0:9180 \
  --env TETHER_LOG_FORMAT=json \
  --env TETHER_CACHE_DIR=/var/lib/tether/cache \
  --env SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt \
  --label org.opencontainers.image.title=tether \
  --label org.opencontainers.image.description="GitOps reconciler for agent VMs on Hetzner Cloud and Tailscale" \
  --label org.opencontainers.image.source=https://github.com/tether-fleet/tether \
  --label org.opencontainers.image.documentation=https://github.com/tether-fleet/tether/blob/main/docs/install.md \
  --label org.opencontainers.image.licenses=MIT \
  --label org.opencontainers.image.version="$version" \
  --label org.opencontainers.image.revision="$revision" \
  "$ctr"
rm -f "$output"
"${buildah[@]}" commit --quiet --format docker "$ctr" "docker-archive:$output:tether:$version" >/dev/null
echo "built $output (tether $version, $revision)"
