"""`prism init [DIR]`: scaffold a project that generates with prism, protoc or buf (offline) and runs on SQLite.

Writes only what is missing: a file that exists is kept (and said to differ, if it does) unless --force.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from protoc_gen_prism.vendoring import OPTIONS, vendored_options

BUF_YAML = """\
# buf workspace: every schema lives under proto/, next to the vendored Prism vocabulary (proto/prism/).
version: v2
modules:
  - path: proto
lint:
  use:
    - STANDARD
  ignore:
    # The vendored vocabulary is Prism's, versioned by its extension numbers.
    - proto/prism
breaking:
  use:
    - FILE
"""

BUF_GEN_YAML = """\
# `buf generate`: python messages, mypy stubs and Prism into gen/, with local plugins only (no registry).
# Run it where `python3` is the Python that has protoc-gen-prism (an active virtualenv).
version: v2
inputs:
  - directory: proto
    # prism/options.proto is imported, never generated: the runtime ships prism.options_pb2.
    exclude_paths:
      - proto/prism
plugins:
  - protoc_builtin: python
    protoc_path: [python3, -m, grpc_tools.protoc]
    out: gen
  - local: protoc-gen-mypy
    out: gen
  - local: protoc-gen-prism
    out: gen
    # Prism writes one plan (and one set of package markers) for the whole request.
    strategy: all
"""

PRISM_YAML = """\
# Where each namespace's data lives (read by prism_runtime.connect(config="prism.yaml"), prism plan and
# prism provision). Without a URL for a backend, its namespaces use the embedded SQLite default below.
backends:
  sqlite: sqlite:///prism.db
  # postgres: postgresql://app@localhost:5432/app   # pip install 'prism-runtime[postgres]'
  # kafka: kafka://localhost:9092                   # pip install 'prism-runtime[kafka]'
  # nats: nats://localhost:4222                     # pip install 'prism-runtime[nats]'
# namespaces:                                        # optional: pin a namespace to a backend kind
#   example_v1_note: postgres
"""

EXAMPLE_PROTO = """\
syntax = "proto3";

package example.v1;

import "prism/options.proto";

// A note, read far more often than written: a KeyValue store, NoteStore, in example/v1/notes_prism.py.
message Note {
  option (prism.access_pattern) = "read_heavy";

  string note_id = 1 [(prism.key) = true];
  string text = 2;
}
"""

MAIN_PY = """\
\"\"\"Store a note and read it back. Run after generating: PYTHONPATH=gen python main.py\"\"\"

import asyncio

import prism_runtime
from example.v1 import notes_pb2, notes_prism


async def main() -> None:
    async with prism_runtime.connect(config="prism.yaml") as db:
        notes = notes_prism.NoteStore(db)
        await notes.put(notes_pb2.Note(note_id="n1", text="hello, prism"))
        print(await notes.get("n1"))


asyncio.run(main())
"""

GITIGNORE = """\
# The embedded SQLite database, the PII master key (never commit it), local servers, generated code.
.venv/
prism.db
prism.db-*
prism-master.key
.prism/
gen/
"""

NEXT_COMMANDS = (
    "prism generate proto -o gen          # or: buf generate",
    "prism check proto",
    "PYTHONPATH=gen python main.py",
)


def scaffold() -> dict[str, str]:
    """Return every file `prism init` writes, by path relative to the project directory."""
    return {
        "buf.yaml": BUF_YAML,
        "buf.gen.yaml": BUF_GEN_YAML,
        "prism.yaml": PRISM_YAML,
        f"proto/{OPTIONS}": vendored_options(),
        "proto/example/v1/notes.proto": EXAMPLE_PROTO,
        "main.py": MAIN_PY,
        ".gitignore": GITIGNORE,
    }


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the command to the `prism` parser."""
    parser = commands.add_parser(
        "init", help="scaffold a project: buf and prism config, an example schema, .gitignore"
    )
    parser.add_argument("dir", nargs="?", default=".", help="project directory (default: .)")
    parser.add_argument("--force", action="store_true", help="overwrite files that exist and differ")
    parser.add_argument(
        "--update-options",
        action="store_true",
        help=f"rewrite only proto/{OPTIONS} from the installed Prism (what `prism check` asks for)",
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Write the missing files, report each one, and print what to run next."""
    root = Path(args.dir)
    if root.exists() and not root.is_dir():
        print(f"prism init: {root} is not a directory", file=sys.stderr)
        return 2
    files = scaffold()
    if args.update_options:
        files = {f"proto/{OPTIONS}": files[f"proto/{OPTIONS}"]}
    kept = 0
    for name, content in files.items():
        path = root / name
        if not path.exists():
            action = "created"
        elif path.read_text() == content:
            action = "unchanged"
        elif args.force or args.update_options:
            action = "overwrote"
        else:
            kept += 1
            print(f"kept      {name} (it differs from what prism init writes; --force overwrites it)")
            continue
        if action != "unchanged":
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(content)
        print(f"{action:9} {name}")
    if args.update_options:
        return 0
    where = "" if root.resolve() == Path.cwd().resolve() else f"cd {root}\n"
    print(f"\nnext:\n{where}" + "\n".join(NEXT_COMMANDS))
    return 0
