"""`prism stack up|down|status`: real local Postgres, NATS and Kafka-protocol servers, no Docker."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

DEFAULT_DIR = ".prism/stack"
# One per server kind of prism_stack, which is imported only to run: its supervisor needs the `stack` extra,
# and `prism --help` must work without it.
_ENV = {"postgres": "PRISM_TEST_POSTGRES_DSN", "nats": "PRISM_TEST_NATS", "kafka": "PRISM_TEST_KAFKA"}


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the command to the `prism` parser."""
    parser = commands.add_parser(
        "stack", help="start, stop or list local servers (Postgres, NATS, Kafka protocol)"
    )
    parser.add_argument("action", choices=["up", "down", "status"])
    parser.add_argument(
        "--dir", default=DEFAULT_DIR, help=f"where servers keep data and state (default: {DEFAULT_DIR})"
    )
    parser.add_argument(
        "--only",
        action="append",
        choices=list(_ENV),
        help="with up: start only these servers (repeatable; default: all)",
    )
    parser.set_defaults(run=run)


def app_urls(servers: Sequence[Any]) -> str:
    """Return the lines that point an application at `servers` (prism_stack.RunningServer), URLs that
    work as printed."""
    by_kind = {server.kind: server for server in servers}
    if not by_kind:
        return ""
    default = next(by_kind[kind] for kind in _ENV if kind in by_kind)
    lines = ["# point your application at them:", f"export PRISM_URL={default.app_url}"]
    lines += ["# or, for every server, in prism.yaml:", "backends:"]
    for server in servers:
        note = "  # the local broker (Tansu) refuses idempotent producers" if server.kind == "kafka" else ""
        lines.append(f"  {server.kind}: {server.app_url}{note}")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    """Do the action and print one line per server."""
    try:
        import prism_stack as stack
    except ModuleNotFoundError as error:
        print(
            f"prism stack {args.action}: needs {error.name!r}, which is not installed; install it with "
            "`pip install 'protoc-gen-prism[stack]'`",
            file=sys.stderr,
        )
        return 1
    directory = Path(args.dir)
    try:
        if args.action == "up":
            servers = stack.up(directory, args.only or stack.ALL_KINDS)
            for server in servers:
                print(f"{server.kind:9} {server.url:55} pid {server.pid}")
            print(app_urls(servers))
            print("# point the test-suite at them:")
            for server in servers:
                print(f"export {_ENV[server.kind]}={server.url}")
        elif args.action == "down":
            stopped = stack.down(directory)
            for server in stopped:
                print(f"{server.kind:9} stopped (pid {server.pid})")
            if not stopped:
                print(f"no servers recorded in {directory}")
        else:
            statuses = stack.status(directory)
            for st in statuses:
                state = "up" if st.ok else ("running, not accepting" if st.alive else "down")
                print(f"{st.server.kind:9} {st.server.url:55} {state}")
            if not statuses:
                print(f"no servers recorded in {directory}")
            return 0 if all(st.ok for st in statuses) else 1
    except stack.StackError as error:
        print(f"prism stack {args.action}: {error}", file=sys.stderr)
        return 1
    return 0
