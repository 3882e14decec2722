"""Checks the image archive docs/deploy/image.sh built: non-root, the health check, the OCI
labels, and both binaries with their CA bundle inside. Usage: check_image.py IMAGE.tar"""

import json
import sys
import tarfile


def main(path: str) -> None:
    with tarfile.open(path) as archive:
        manifest = json.load(archive.extractfile("manifest.json"))[0]
        config = json.load(archive.extractfile(manifest["Config"]))["config"]
        files = set()
        for layer in manifest["Layers"]:
            with tarfile.open(fileobj=archive.extractfile(layer)) as inner:
                files.update(m.name.lstrip("./") for m in inner.getmembers())
    problems = []
    if config.get("User") != "10001:10001":
        problems.append(f"user is {config.get('User')!r}, not 10001:10001")
    health = (config.get("Healthcheck") or {}).get("Test")
    if health != ["CMD", "/usr/local/bin/tether", "health"]:
        problems.append(f"health check is {health!r}")
    labels = config.get("Labels") or {}
    for key in ("source", "version", "revision", "licenses", "title"):
        if not labels.get(f"org.opencontainers.image.{key}"):
            problems.append(f"label org.opencontainers.image.{key} missing")
    if config.get("Entrypoint") != ["/usr/local/bin/tether"] or config.get("Cmd") != ["run"]:
        problems.append(f"entrypoint {config.get('Entrypoint')!r} cmd {config.get('Cmd')!r}")
    for needed in (
        "usr/local/bin/tether",
        "usr/local/bin/tether-agent",
        "etc/ssl/certs/ca-certificates.crt",
        "etc/passwd",
    ):
        if needed not in files:
            problems.append(f"{needed} is not in the image")
    if problems:
        sys.exit(f"{path}:\n  " + "\n  ".join(problems))
    print(f"ok: {path}: {len(files)} files, user 10001, health check, OCI labels")


if __name__ == "__main__":
    main(sys.argv[1])
