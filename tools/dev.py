"""`make dev`: the emulator, every function and the Operations page on one port.

    make dev                 AUTH_MODE=off: no sign-in (the page says so)
    make dev AUTH=emulator   the Firebase Auth emulator too; the functions run
                             AUTH_MODE=firebase and accept its tokens (a demo- project only)

An emulator named by FIRESTORE_EMULATOR_HOST is used instead of starting one. Every
function's log lines (LOG_FORMAT=text: one readable line per request) are echoed here
and kept in build/dev-logs/. Ctrl-C stops all of it; so does a failure to start: every
child runs in its own process group and nothing is left behind.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import signal
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tools import localstack  # noqa: E402


def follow(paths: dict[str, Path], stopped: threading.Event) -> None:
    """Echoes what each function writes to its log file, prefixed with its name."""
    handles = {}
    for name, path in paths.items():
        path.touch()
        handle = open(path, errors="replace")
        handle.seek(0, os.SEEK_END)
        handles[name] = handle
    width = max(map(len, paths), default=0)
    while not stopped.is_set():
        quiet = True
        for name, handle in handles.items():
            for line in iter(handle.readline, ""):
                quiet = False
                print(f"{name:<{width}} | {line.rstrip()}", flush=True)
        if quiet:
            time.sleep(0.2)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "5000")))
    parser.add_argument("--firestore-port", type=int, default=int(os.environ.get("FIRESTORE_PORT", "8080")))
    parser.add_argument("--auth", choices=["off", "emulator"], default=os.environ.get("AUTH") or "off")
    parser.add_argument("--auth-port", type=int, default=int(os.environ.get("AUTH_EMULATOR_PORT", "9099")))
    parser.add_argument("--project", default=os.environ.get("GOOGLE_CLOUD_PROJECT", "demo-mission-control"))
    args = parser.parse_args()

    log_dir = localstack.ROOT / "build" / "dev-logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    # The functions write the request lines (with status, time and run id); the router's
    # own access log would print each request a second time.
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    env = {"LOG_FORMAT": "text"}
    with contextlib.ExitStack() as cleanup:
        try:
            if os.environ.get("FIRESTORE_EMULATOR_HOST"):
                emulator = localstack.emulator_from_env_or_start(args.project)
                print(f"Firestore emulator: using the running one at {emulator.host} (project {emulator.project})")
            else:
                emulator = localstack.start_emulator(args.firestore_port, args.project, log_dir / "firestore.log")
                cleanup.callback(emulator.stop)
                print(f"Firestore emulator on {emulator.host} (project {emulator.project})")
            if args.auth == "emulator":
                if not emulator.project.startswith("demo-"):
                    raise localstack.StackError(f"AUTH=emulator needs a demo- project (not {emulator.project})")
                auth = localstack.start_auth_emulator(args.auth_port, emulator.project, log_dir / "auth-emulator.log")
                cleanup.callback(auth.stop)
                env.update(AUTH_MODE="firebase", FIREBASE_AUTH_EMULATOR_HOST=auth.host)
                print(f"Firebase Auth emulator on {auth.host} (accounts: {auth.url}/emulator/v1/projects/{auth.project}/accounts)")
            stack = localstack.start_stack(emulator=emulator, port=args.port, log_dir=log_dir, env=env)
            cleanup.callback(stack.stop)
        except (localstack.StackError, OSError) as exc:
            print(f"error: {exc} (logs in {log_dir})", file=sys.stderr)
            print("stopped everything this command had started.", file=sys.stderr)
            return 1
        except KeyboardInterrupt:
            return 130

        for name, function in sorted(stack.functions.items()):
            print(f"  {name:<10} {function.url}   log: {log_dir / (name + '.log')}")
        mode = "AUTH_MODE=firebase, sign in with an emulator account" if args.auth == "emulator" else "AUTH_MODE=off"
        sweep = f"sweep every {stack.sweeper.interval_seconds:g}s" if stack.sweeper else "no sweep timer"
        print(f"\nOperations page and API: {stack.url}/   ({mode}; {sweep}; Ctrl-C stops everything)\n", flush=True)

        stopped = threading.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: stopped.set())
        paths = {name: log_dir / f"{name}.log" for name in stack.functions}
        threading.Thread(target=follow, args=(paths, stopped), daemon=True).start()
        stopped.wait()
        print("\nstopping…")
    return 0


if __name__ == "__main__":
    sys.exit(main())
