"""One module per ``emovid`` subcommand; each defines ``register(subparsers)``."""
