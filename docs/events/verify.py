"""Verifies a tether lifecycle event delivery: the Tether-Signature header against the raw body.

Standard library only. As a module: `verify(header, body, secrets)`. As a command:

    python3 verify.py '<Tether-Signature header>' < body.json   # secrets in TETHER_EVENTS_SECRETS

exits 0 when the delivery verifies and 1 with the reason otherwise. tether's tests run it
against signatures tether made (see docs/events.md).
"""

import hashlib
import hmac
import os
import sys
import time


def verify(header: str, body: bytes, secrets: list[str], tolerance: int = 300) -> None:
    """Raises ValueError unless `header` signs `body` under one of `secrets`, dated within
    `tolerance` seconds of now."""
    parts = [p.split("=", 1) for p in header.split(",") if "=" in p]
    t = next((v for k, v in parts if k == "t"), None)
    signatures = [v for k, v in parts if k == "v1"]
    if t is None or not signatures:
        raise ValueError("malformed Tether-Signature header")
    signed = t.encode() + b"." + body
    expected = [hmac.new(s.encode(), signed, hashlib.sha256).hexdigest() for s in secrets]
    if not any(hmac.compare_digest(e, s) for e in expected for s in signatures):
        raise ValueError("no signature matches")
    if abs(time.time() - int(t)) > tolerance:
        raise ValueError("timestamp outside the tolerance")


if __name__ == "__main__":
    secrets = [s for s in os.environ.get("TETHER_EVENTS_SECRETS", "").split(",") if s]
    try:
        verify(sys.argv[1], sys.stdin.buffer.read(), secrets)
    except (ValueError, IndexError) as e:
        print(f"refused: {e}", file=sys.stderr)
        sys.exit(1)
    print("verified")
