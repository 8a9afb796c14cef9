"""``python -m sandbox --host 127.0.0.1 --port 0 --flavour cloud|dc --seed demo|empty``,
``--no-field`` to start without the impact field, and ``--jira-version 10.3.6`` to play another
Data Center version (9.12.15 by default; 10 and later have the new webhook API).

Prints ``SANDBOX_URL=http://127.0.0.1:PORT`` once listening, then serves until interrupted.
"""

from __future__ import annotations

import argparse
import sys

from sandbox.app import is_loopback_host, make_server
from sandbox.hooks import HookDispatcher
from sandbox.seed import SEEDS, SandboxState
from sandbox.state import Flavour


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sandbox", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1", help="a loopback address")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--flavour", choices=[f.value for f in Flavour], default="cloud")
    parser.add_argument("--seed", choices=SEEDS, default="demo")
    parser.add_argument(
        "--no-field",
        action="store_true",
        help="start without the impact field, as a Jira that jira-impact setup has not set up",
    )
    parser.add_argument(
        "--jira-version",
        help="the Data Center version to play, e.g. 10.3.6 (default 9.12.15)",
    )
    parser.add_argument("--retries", type=int, default=5, help="webhook delivery retries")
    parser.add_argument(
        "--backoff", type=float, default=0.2, help="seconds x attempt between retries"
    )
    args = parser.parse_args(argv)
    if not is_loopback_host(args.host):
        parser.error(f"--host must be a loopback address, not {args.host!r}")
    if args.jira_version and args.flavour != "dc":
        parser.error("--jira-version goes with --flavour dc")
    try:
        state = SandboxState(
            flavour=args.flavour,
            seed=args.seed,
            with_field=not args.no_field,
            version=args.jira_version,
        )
    except ValueError as exc:
        parser.error(str(exc))
    dispatcher = HookDispatcher(max_retries=args.retries, backoff=args.backoff)
    server = make_server(state, host=args.host, port=args.port, dispatcher=dispatcher)
    print(f"SANDBOX_URL={state.base_url}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
        dispatcher.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
