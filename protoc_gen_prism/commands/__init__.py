"""One module per `prism` subcommand; each exposes `register(subparsers)`."""
