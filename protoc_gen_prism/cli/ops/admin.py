"""`prism admin`: serve the admin web application (protoc_gen_prism/admin, docs/admin.md) with uvicorn.

It binds 127.0.0.1 unless told otherwise; any other address needs a token ($PRISM_ADMIN_TOKEN, or a file
named by $PRISM_ADMIN_TOKEN_FILE or admin.token_file). Its web stack comes with the `admin` extra and is
imported only when the command runs.
"""

from __future__ import annotations

import argparse
import sys

from prism_runtime.config import load_config
from prism_runtime.errors import ConfigError

ADMIN_MODULES = ("starlette", "uvicorn", "prometheus_client")


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the command to the `prism` parser."""
    parser = commands.add_parser(
        "admin", help="serve a web page on namespaces, schema, streams, audit, keys, migrations and metrics"
    )
    parser.add_argument("--config", required=True, help="prism.yaml: backends, and its `admin:` section")
    parser.add_argument(
        "--host", default=None, help="address to bind (default 127.0.0.1; others need a token)"
    )
    parser.add_argument("--port", type=int, default=None, help="port to listen on (default 9470)")
    parser.add_argument(
        "--source",
        default=None,
        help="generated directory, .proto directory or prism.plan.json (default: admin.source of the config)",
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Serve until stopped; 1 when the web stack is missing, 2 on a config that cannot be used."""
    try:
        import uvicorn

        from protoc_gen_prism.admin.app import create_app
        from protoc_gen_prism.admin.settings import load_settings
    except ModuleNotFoundError as error:
        if (error.name or "").split(".")[0] not in ADMIN_MODULES:
            raise
        print(
            f"prism admin needs {error.name!r}, which is not installed; install it with "
            "`pip install 'protoc-gen-prism[admin]'`",
            file=sys.stderr,
        )
        return 1
    try:
        settings = load_settings(args.config, host=args.host, port=args.port, source=args.source)
        load_config(None, settings.config)  # a config connect() would refuse is refused before serving
    except ConfigError as error:
        print(f"prism admin: {error}", file=sys.stderr)
        return 2
    print(f"prism admin: http://{settings.host}:{settings.port}/ (config {settings.config})", flush=True)
    uvicorn.run(
        create_app(settings), host=settings.host, port=settings.port, log_level="warning", access_log=False
    )
    return 0
