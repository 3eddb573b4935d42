"""`soupgan` console script: one subcommand per module in `soupgan.commands`, over pipeline/, beam_jobs/,
model/ and serving/.

Bad input prints one line on stderr and exits 2; success exits 0.
"""
from __future__ import annotations

import argparse
import sys

from soupgan.tensorflow_env import apply_tensorflow_defaults

apply_tensorflow_defaults()

from pipeline.errors import InputError
from soupgan.commands import demo, degrade, evaluate, export, info, shards, train, upsample

EXIT_BAD_INPUT = 2
COMMANDS = (demo, info, degrade, shards, train, export, upsample, evaluate)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="soupgan",
        description="3D MRI/CT super-resolution along the slice axis (SOUP-GAN): thick slices in, thin slices out.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for command in COMMANDS:
        command.add_parser(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if args.command == "shards":
        args.shards_args = argv[argv.index("shards") + 1 :]  # its own parser, then Beam's, read them all
    elif extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    try:
        args.run(args)
    except InputError as err:
        print(f"soupgan {args.command}: error: {err}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print(f"soupgan {args.command}: interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
