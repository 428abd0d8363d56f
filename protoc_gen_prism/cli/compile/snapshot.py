"""`prism snapshot`: save the compiled schema as an image, the baseline `prism breaking --against` reads."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from protoc_gen_prism.images import ImageError, compile_image, write_image

DEFAULT_IMAGE = "prism.image.binpb"


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the command to the `prism` parser."""
    parser = commands.add_parser(
        "snapshot",
        help="write the schema as an image (FileDescriptorSet with source info) for prism breaking",
    )
    parser.add_argument("proto_root", help="directory containing the .proto files (also the include root)")
    parser.add_argument("-o", "--out", default=DEFAULT_IMAGE, help=f"image file (default: {DEFAULT_IMAGE})")
    parser.add_argument("-I", "--include", action="append", default=[], help="extra include directory")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Compile and write the image."""
    try:
        image = compile_image(Path(args.proto_root), [Path(p) for p in args.include])
    except ImageError as error:
        print(f"prism snapshot: {error}", file=sys.stderr)
        return 2
    write_image(image, Path(args.out))
    print(f"prism snapshot: {len(image.targets)} file(s) from {args.proto_root} -> {args.out}")
    return 0
