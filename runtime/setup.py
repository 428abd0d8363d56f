"""The runtime's one C extension, optional: without a compiler, prism_runtime runs on the Python encoder.

Everything else about the package is in pyproject.toml.
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "prism_runtime._wire",
            sources=[
                f"native/{name}.c" for name in ("module", "rows", "check", "json_list", "pgcopy", "buffer")
            ],
            depends=["native/wire.h"],
            extra_compile_args=["-O2", "-std=c11", "-Wall", "-Wextra", "-Wno-missing-field-initializers"],
            optional=True,
        )
    ]
)
