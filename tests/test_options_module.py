"""The shipped prism.options_pb2 matches proto/prism/options.proto and works with this protobuf runtime."""

from __future__ import annotations

import subprocess
import sys

from conftest import ROOT


def test_options_module_is_current() -> None:
    done = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "gen_options_module.py"), "--check-module"],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_generated_pb2_imports_options_module(generated: object) -> None:
    from acme.users.v1 import users_pb2  # type: ignore[import-not-found]

    from prism import options_pb2

    field = users_pb2.UserProfile.DESCRIPTOR.fields_by_name["email"]
    assert field.GetOptions().Extensions[options_pb2.pii] == "email"
    message = users_pb2.UserProfile.DESCRIPTOR.GetOptions()
    assert message.Extensions[options_pb2.access_pattern] == "read_heavy"
