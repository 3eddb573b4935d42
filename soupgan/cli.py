"""`soupgan` console script: one subcommand per module in `soupgan.commands`, over pipeline/, beam_jobs/,
model/ and serving/.

Bad input prints one line on stderr and exits 2; a file-system failure while running (a full disk) one line
and exit 1; Ctrl-C exits 130 and SIGTERM 143, both after the same cleanup (no partial output); success exits 0.
"""
from __future__ import annotations

import argparse
import contextlib
import signal
import sys
import threading

from soupgan.tensorflow_env import apply_tensorflow_defaults

apply_tensorflow_defaults()

from pipeline.errors import InputError
from soupgan.commands import demo, degrade, evaluate, export, info, recipe, shards, train, upsample

EXIT_FAILED, EXIT_BAD_INPUT, EXIT_INTERRUPTED, EXIT_TERMINATED = 1, 2, 130, 143
COMMANDS = (demo, info, degrade, shards, train, export, upsample, evaluate, recipe)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="soupgan",
        description="3D MRI/CT super-resolution along the slice axis (SOUP-GAN): thick slices in, thin slices out.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for command in COMMANDS:
        command.add_parser(commands)
    return parser


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised in the main thread so that every cleanup runs as it does for Ctrl-C."""


def _raise_terminated(signum, frame):
    raise Terminated()


@contextlib.contextmanager
def sigterm_as_interrupt():
    """Turn SIGTERM into `Terminated` while a command runs (main thread only, where signals are delivered)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, _raise_terminated)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if args.command == "shards":
        args.shards_args = argv[argv.index("shards") + 1 :]  # its own parser, then Beam's, read them all
    elif extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    try:
        with sigterm_as_interrupt():
            args.run(args)
    except InputError as err:
        print(f"soupgan {args.command}: error: {err}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except Terminated:
        print(f"soupgan {args.command}: terminated", file=sys.stderr)
        return EXIT_TERMINATED
    except KeyboardInterrupt:
        print(f"soupgan {args.command}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except OSError as err:  # the file system failed under a checked output (a full disk, a removed folder)
        where = f"{err.filename}: " if err.filename else ""
        print(f"soupgan {args.command}: error: {where}{err.strerror or err}", file=sys.stderr)
        return EXIT_FAILED
    return 0


if __name__ == "__main__":
    sys.exit(main())
