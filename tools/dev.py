"""`make dev`: the emulator, every function and the Operations page on one port.

Ctrl-C stops all of it; every child runs in its own process group so nothing is left behind.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tools import localstack  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "5000")))
    parser.add_argument("--firestore-port", type=int, default=int(os.environ.get("FIRESTORE_PORT", "8080")))
    parser.add_argument("--project", default=os.environ.get("GOOGLE_CLOUD_PROJECT", "demo-mission-control"))
    args = parser.parse_args()

    log_dir = localstack.ROOT / "build" / "dev-logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    try:
        emulator = localstack.start_emulator(args.firestore_port, args.project, log_dir / "firestore.log")
    except localstack.StackError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"Firestore emulator on {emulator.host} (project {args.project})")
    try:
        stack = localstack.start_stack(emulator=emulator, port=args.port, log_dir=log_dir)
    except localstack.StackError as exc:
        emulator.stop()
        print(f"error: {exc} (logs in {log_dir})", file=sys.stderr)
        return 1
    for name, function in sorted(stack.functions.items()):
        print(f"  {name:<10} {function.url}   log: {log_dir / (name + '.log')}")
    print(f"\nOperations page and API: {stack.url}/   (AUTH_MODE=off; Ctrl-C stops everything)")

    stopped = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stopped.set())
    stopped.wait()
    print("\nstopping…")
    stack.stop()
    emulator.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
