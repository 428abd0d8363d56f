"""protoc-gen-prism: the compiler side of Prism (request -> model -> plan -> emitters -> response)."""

__version__ = "0.1.0"
