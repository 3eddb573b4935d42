"""One module per `soupgan` subcommand; each has `add_parser(subparsers)` and sets `run` on its arguments."""
