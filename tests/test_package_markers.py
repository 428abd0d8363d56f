"""The generated tree is regular packages: `__init__.py` and `py.typed` in every package directory."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from conftest import run_protoc, write_proto

from protoc_gen_prism.emitters.package_markers import INIT

ENTITY = """
syntax = "proto3";
package {package};
import "prism/options.proto";
message Item {{
  option (prism.access_pattern) = "read_heavy";
  string item_id = 1 [(prism.key) = true];
}}
"""


def test_every_package_directory_is_marked_and_shared_namespaces_are_left_alone(tmp_path: Path) -> None:
    src = tmp_path / "src"
    files = [
        write_proto(src, "shop/catalog/v1/catalog.proto", ENTITY.format(package="shop.catalog.v1")),
        write_proto(src, "top.proto", ENTITY.format(package="top")),
        write_proto(src, "google/shop/v1/extra.proto", ENTITY.format(package="google.shop.v1")),
        write_proto(src, "prism/shop/v1/extra.proto", ENTITY.format(package="prism.shop.v1")),
    ]
    run = run_protoc(src, files, tmp_path / "out", python=True)
    assert run.returncode == 0, run.stderr
    markers = sorted(name for name in run.files() if name.endswith(("__init__.py", "py.typed")))
    assert markers == [
        "shop/__init__.py",
        "shop/catalog/__init__.py",
        "shop/catalog/py.typed",
        "shop/catalog/v1/__init__.py",
        "shop/catalog/v1/py.typed",
        "shop/py.typed",
    ]
    assert (tmp_path / "out" / "shop/__init__.py").read_text() == INIT
    assert (tmp_path / "out" / "shop/py.typed").read_text() == ""
    # A regular package: imported from its directory, not found as a namespace package.
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            "import shop.catalog.v1.catalog_prism as m, shop; print(shop.__file__ is not None, m.ItemStore.__name__)",
        ],
        cwd=tmp_path / "out",
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.stdout.split() == ["True", "ItemStore"], done.stderr
