"""Supervise local servers: launch on a free loopback port, wait until ready, stop, and track them.

Each server kind lives in a module of its own (`postgres_server`, `nats_server`, `kafka_broker`) that knows
its binary, its command line and its readiness probe; this module does what they share. Processes are
inspected with psutil and the state file (`<dir>/stack.json`) is guarded by a filelock, so `up`/`down`
from several processes do not trample each other.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import os
import re
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Final, Literal, get_args
from urllib.parse import urlsplit

import filelock
import psutil

ServerKind = Literal["postgres", "nats", "kafka"]
ALL_KINDS: Final[tuple[ServerKind, ...]] = get_args(ServerKind)
STATE_FILE: Final = "stack.json"
HOST: Final = "127.0.0.1"

# The module that starts each kind, imported only when that kind is started.
_STARTERS: Final[dict[ServerKind, str]] = {
    "postgres": "prism_stack.postgres_server",
    "nats": "prism_stack.nats_server",
    "kafka": "prism_stack.kafka_broker",
}
_STOP_SIGNAL: Final[dict[ServerKind, signal.Signals]] = {
    "postgres": signal.SIGINT,  # "fast shutdown": roll back open transactions, then exit
    "nats": signal.SIGTERM,
    "kafka": signal.SIGTERM,
}
# Basename of argv[0] of each server process, checked before signalling a pid read from stack.json.
_PROCESS_NAME: Final[dict[ServerKind, str]] = {
    "postgres": "postgres",
    "nats": "nats-server",
    "kafka": "tansu",
}
_DEFAULT_TIMEOUT: Final[dict[ServerKind, float]] = {"postgres": 60.0, "nats": 20.0, "kafka": 20.0}
START_MARKER: Final = "=== prism stack: starting "
_PORT_IN_USE: Final = re.compile(r"address (already )?in use|addrinuse", re.IGNORECASE)
_PORT_ATTEMPTS: Final = 3
_LOG_TAIL_LINES: Final = 30

# Servers started by this process, so their exit status is reaped (a zombie still looks alive).
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


class NotReady(Exception):
    """A probe reached the server, but it does not serve yet."""


@dataclass(frozen=True)
class RunningServer:
    """One server started by this package; `url` is what clients connect to."""

    kind: ServerKind
    url: str
    pid: int
    data_dir: Path

    @property
    def host(self) -> str:
        """Return the host the server listens on."""
        return urlsplit(self.url).hostname or HOST

    @property
    def port(self) -> int:
        """Return the port the server listens on."""
        port = urlsplit(self.url).port
        if port is None:
            raise StackError(self.kind, f"url {self.url!r} has no port")
        return port

    @property
    def app_url(self) -> str:
        """Return the URL an application (`PRISM_URL`, `prism.yaml`) connects with, as it is.

        The local Kafka-protocol broker (Tansu) refuses idempotent producers, so its URL turns them off.
        """
        return f"{self.url}?idempotence=false" if self.kind == "kafka" else self.url

    @property
    def address(self) -> str:
        """Return `host:port`, e.g. a Kafka bootstrap server."""
        return f"{self.host}:{self.port}"

    @property
    def log_path(self) -> Path:
        """Return the server's log file."""
        return self.data_dir / f"{self.kind}.log"

    def to_json(self) -> dict[str, object]:
        """Return the entry written to the state file."""
        data = asdict(self)
        data["data_dir"] = str(self.data_dir)
        return data

    @classmethod
    def from_json(cls, data: dict[str, object]) -> RunningServer:
        """Read an entry of the state file."""
        kind, url, pid, data_dir = data.get("kind"), data.get("url"), data.get("pid"), data.get("data_dir")
        if not (isinstance(url, str) and isinstance(pid, int) and isinstance(data_dir, str)):
            raise StackError("stack", f"malformed server entry in {STATE_FILE}: {data!r}")
        return cls(kind=as_kind(kind), url=url, pid=pid, data_dir=Path(data_dir))


@dataclass(frozen=True)
class ServerStatus:
    """Whether a recorded server's process is alive and its port accepts connections."""

    server: RunningServer
    alive: bool
    accepting: bool

    @property
    def ok(self) -> bool:
        """Return whether the server is alive and accepting."""
        return self.alive and self.accepting


@dataclass(frozen=True)
class Account:
    """The unprivileged user a server runs as when we are root."""

    uid: int
    gid: int


Probe = Callable[[str, int, float], None]


def start(
    kind: ServerKind, data_dir: Path | str, *, timeout: float | None = None, port: int | None = None
) -> RunningServer:
    """Start a server of `kind` whose data lives in `data_dir`, on `port` or a free loopback port.

    A restart on the same directory and port is the same server to its clients.
    """
    starter: Callable[..., RunningServer] = importlib.import_module(_STARTERS[as_kind(kind)]).start
    return starter(data_dir, timeout=timeout, port=port)


def stop(server: RunningServer, *, timeout: float = 15.0) -> None:
    """Stop `server` gracefully, then kill its process group if it is still there after `timeout`.

    A pid that no longer belongs to a process of the expected program (reused after a reboot) is left alone.
    """
    pid = server.pid
    if not is_alive(pid) or not _is_expected_process(pid, server.kind):
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


def crash(server: RunningServer, *, timeout: float = 15.0) -> None:
    """Kill `server` and every process of its group with SIGKILL, as a machine or OOM-killer crash would.

    For fault tests: the data dir is left as the crash leaves it and the process is reaped, so
    `start(kind, data_dir, port=server.port)` restarts the server in place.
    """
    if not is_alive(server.pid) or not _is_expected_process(server.pid, server.kind):
        _forget(server.pid)
        return
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(server.pid, signal.SIGKILL)  # started with start_new_session: pgid == pid
    with contextlib.suppress(ProcessLookupError):
        os.kill(server.pid, signal.SIGKILL)
    if not _wait_gone(server.pid, timeout):
        raise StackError(server.kind, f"pid {server.pid} is still running after SIGKILL")
    _forget(server.pid)


def up(dir: Path | str, kinds: Iterable[ServerKind] = ALL_KINDS) -> list[RunningServer]:
    """Make sure each server of `kinds` runs from `<dir>/<kind>`; state goes to `<dir>/stack.json`.

    Servers already recorded there and still healthy are kept; returns all servers of `kinds`.
    """
    wanted = list(dict.fromkeys(as_kind(k) for k in kinds))
    root = prepare_dir(dir)
    with _locked(root):
        servers = {s.kind: s for s in _load_state(root)}
        result: list[RunningServer] = []
        for kind in wanted:
            current = servers.get(kind)
            if current is not None:
                if status_of(current).ok:
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
    """Stop every server recorded in `<dir>/stack.json` and remove the file; data dirs are kept."""
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
    """Return whether each server recorded in `<dir>/stack.json` is alive and accepting connections."""
    return [status_of(server) for server in _load_state(Path(dir))]


def status_of(server: RunningServer) -> ServerStatus:
    """Return the status of one server."""
    alive = is_alive(server.pid) and _is_expected_process(server.pid, server.kind)
    return ServerStatus(server=server, alive=alive, accepting=_accepting(server.host, server.port))


# Launching


class _EarlyExit(Exception):
    def __init__(self, returncode: int) -> None:
        self.returncode = returncode


class _Timeout(Exception):
    def __init__(self, reason: str) -> None:
        self.reason = reason


def launch(
    kind: ServerKind,
    data_dir: Path,
    argv: Callable[[int], list[str]],
    *,
    url: Callable[[int], str],
    probe: Probe,
    timeout: float | None,
    account: Account | None = None,
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
    port: int | None = None,
) -> RunningServer:
    """Run `argv(port)` in its own session until `probe` answers; on a free port, retry a lost port race."""
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
            log.write(f"{START_MARKER}{' '.join(args)}\n".encode())
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
            tail = log_tail(log_path)
            if attempt < attempts and _PORT_IN_USE.search(tail):
                continue  # lost the race for the free port: try another one
            raise StackError(kind, f"exited with status {exc.returncode} while starting", tail) from None
        except _Timeout as exc:
            with contextlib.suppress(StackError):
                stop(server, timeout=5.0)
            raise StackError(
                kind,
                f"not ready on {server.url} within {limit:g}s (last error: {exc.reason})",
                log_tail(log_path),
            ) from None
        except BaseException:  # e.g. KeyboardInterrupt: do not leave a half-started server behind
            with contextlib.suppress(StackError):
                stop(server, timeout=5.0)
            raise
        return server
    raise StackError(kind, f"no free port after {attempts} attempts")


def _wait_ready(server: RunningServer, proc: subprocess.Popen[bytes], probe: Probe, timeout: float) -> None:
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
        except (OSError, NotReady, TimeoutError, ValueError) as exc:
            reason = f"{type(exc).__name__}: {exc}"
        time.sleep(min(delay, max(deadline - time.monotonic(), 0.0)))
        delay = min(delay * 2, 0.25)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


def prepare_dir(path: Path | str) -> Path:
    """Return `path` made absolute, created if missing."""
    directory = Path(path).expanduser().absolute()
    directory.mkdir(parents=True, exist_ok=True)
    return directory


def log_tail(log_path: Path, lines: int = _LOG_TAIL_LINES) -> str:
    """Return the last `lines` lines of the most recent start recorded in `log_path`."""
    try:
        text = log_path.read_text(errors="replace")
    except OSError:
        return ""
    marker = text.rfind(START_MARKER)
    if marker >= 0:
        text = text[marker:]
    return "\n".join(text.rstrip().splitlines()[-lines:])


# Processes


def is_alive(pid: int) -> bool:
    """Return whether `pid` runs (a zombie does not)."""
    child = _CHILDREN.get(pid)
    if child is not None:
        return child.poll() is None  # also reaps it
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False
    except psutil.AccessDenied:
        return True


def _is_expected_process(pid: int, kind: ServerKind) -> bool:
    if pid in _CHILDREN:
        return True  # started by this process (and its cmdline may still be empty right after exec)
    try:
        cmdline = psutil.Process(pid).cmdline()
    except psutil.NoSuchProcess:
        return False
    except psutil.AccessDenied:
        return True
    argv0 = cmdline[0] if cmdline else ""
    return Path(argv0.split()[0] if argv0 else "").name == _PROCESS_NAME[kind]


def _wait_gone(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while is_alive(pid):
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


# State file


@contextlib.contextmanager
def _locked(root: Path, timeout: float = 300.0) -> Iterator[None]:
    """Serialise `up`/`down` on one stack dir (`<dir>/.stack.lock`) across processes."""
    try:
        with filelock.FileLock(root / ".stack.lock", timeout=timeout):
            yield
    except filelock.Timeout:
        raise StackError("stack", f"{root} is locked by another `prism stack` command") from None


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


def as_kind(value: object) -> ServerKind:
    """Return `value` as a server kind, or raise StackError naming the kinds."""
    for kind in ALL_KINDS:
        if value == kind:
            return kind
    raise StackError("stack", f"unknown server kind {value!r}; expected one of {', '.join(ALL_KINDS)}")


def executable(path: Path) -> bool:
    """Return whether `path` is an executable file."""
    return path.is_file() and os.access(path, os.X_OK)
