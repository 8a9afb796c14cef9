"""``make sandbox``: the product running against the bundled Jira sandbox, left running for a
person to click through.

Starts the sandbox seeded as the demo's (project SHOP, board 1, a dozen issues, the impact
field), the Procfile's web process and worker, registers the webhook, triages the existing
issues and orders the board, then prints where everything is and how to sign in, and waits
until Ctrl-C (or SIGTERM, or ``--for`` seconds), when it stops every process it started.
"""

from __future__ import annotations

import argparse
import secrets
import signal
import sys
import tempfile
import time
from pathlib import Path
from types import FrameType

from sandbox.demo import run, say
from sandbox.seed import stated_impacts
from sandbox.stack import PERSON_BASIC, Stack


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sandbox.playground", description=__doc__)
    parser.add_argument("--flavour", choices=["cloud", "dc"], default="cloud")
    parser.add_argument("--port", type=int, default=0, help="the product's port (0: a free one)")
    parser.add_argument("--workdir", help="where the logs and stores go (default: a temporary one)")
    parser.add_argument("--for", dest="seconds", type=float, help="stop after this many seconds")
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, _stop)
    if args.workdir:
        return serve(Path(args.workdir), args)
    with tempfile.TemporaryDirectory(prefix="impact-sandbox-") as tmp:
        return serve(Path(tmp), args)


def _stop(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def serve(workdir: Path, args: argparse.Namespace) -> int:
    admin, viewer = secrets.token_urlsafe(12), secrets.token_urlsafe(12)
    env = {
        "ADMIN_TOKEN": admin,
        "VIEWER_TOKEN": viewer,
        "PLACEMENT_DELAY_SECONDS": "1",
    }
    say(f"Starting the Jira sandbox ({args.flavour}), the web process and the worker…")
    stack = Stack(workdir, flavour=args.flavour, seed="demo", env=env)
    if args.port:
        stack.port = args.port
    try:
        with stack:
            stack.register_webhook()
            for key, person, value in stated_impacts():
                stack.control("POST", f"/issues/{key}/edit", json={"as": person, "impact": value})
            run(stack, "Triaging the existing issues", "backfill", "--jql", "project = SHOP",
                "--apply", "--no-rank")  # fmt: skip
            run(stack, "Ordering the board", "rerank", "--board", "1", "--apply")
            stack.settle()
            person, password = PERSON_BASIC
            say("")
            say("Running, until Ctrl-C:")
            say(f"  priorities   {stack.app_url}/priorities")
            say(f"               sign in with the viewer token {viewer}")
            say(f"  admin pages  {stack.app_url}/admin/")
            say(f"               sign in with the admin token {admin}")
            say(f"  Jira         {stack.sandbox_url}/rest/api/2/search?jql=project%3DSHOP")
            say(f"               as a person: user {person}, password {password}")
            say("  file an issue, as people do (the webhook brings it to the product):")
            say(
                f"    curl -s -X POST {stack.sandbox_url}/_sandbox/issues -H 'Content-Type: "
                f'application/json\' -d \'{{"as": "ana", "summary": "Checkout is down '
                f'for customers", "issuetype": "Bug"}}\''
            )
            say(f"  logs         {workdir}/web.log, worker.log, sandbox.log")
            _wait(stack, args.seconds)
    except KeyboardInterrupt:
        pass
    say("Stopped: every process it started has ended.")
    return 0


def _wait(stack: Stack, seconds: float | None) -> None:
    """Until ``seconds`` pass (forever without) or one of the processes ends."""
    deadline = None if seconds is None else time.monotonic() + seconds
    while deadline is None or time.monotonic() < deadline:
        for name, process in stack.procs.items():
            if process.popen.poll() is not None:
                say(f"The {name} process ended; its log:\n{process.tail()}")
                return
        time.sleep(0.5)


if __name__ == "__main__":
    sys.exit(main())
