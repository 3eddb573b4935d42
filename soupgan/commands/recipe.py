"""`soupgan recipe`: run a declarative training recipe end to end (shards → train stages → export → evaluate)
into a run folder that keeps every artefact, and install a finished run's generators as the default weights."""
from __future__ import annotations

import argparse
import json

from soupgan.console import show_progress


def add_parser(commands) -> None:
    parser = commands.add_parser("recipe", help="run a training recipe end to end, or install its result")
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    listing = actions.add_parser("list", help="the packaged recipes")
    listing.set_defaults(run=list_recipes)
    show = actions.add_parser("show", help="print a recipe")
    show.add_argument("recipe", help="a packaged recipe's name or a .toml file")
    show.set_defaults(run=show_recipe)
    run = actions.add_parser("run", help="run (or resume) a recipe into a run folder")
    run.add_argument("recipe", help="a packaged recipe's name or a .toml file")
    run.add_argument("--run", dest="folder", required=True, metavar="FOLDER", help="the run folder (rerun to resume)")
    run.add_argument("--data-cache", metavar="FOLDER",
                     help="where public scans are fetched to (default $SOUPGAN_DATA or ~/.cache/soupgan/data)")
    run.add_argument("--shards", metavar="FOLDER",
                     help="train on this finished shard set (another run's RUN/shards, say) instead of making one: "
                          "it must be what this recipe's [shards] make from its scans with this code (checked, "
                          "nothing in it changed; once checked, the run keeps training on it)")
    run.set_defaults(run=run_recipe)
    status = actions.add_parser("status", help="how far a run has come: each step done, started or not started")
    status.add_argument("run_folder", metavar="RUN", help="a `soupgan recipe run` folder")
    status.set_defaults(run=show_status)
    report = actions.add_parser("report", help="a run's scores against the installed default (report.md, report.png)")
    report.add_argument("run_folder", metavar="RUN", help="a `soupgan recipe run` folder")
    report.set_defaults(run=show_report)
    install = actions.add_parser("install", help="ship a finished run's generators as the default weights")
    install.add_argument("run_folder", metavar="RUN", help="a finished `soupgan recipe run` folder")
    install.set_defaults(run=install_recipe)


def list_recipes(args: argparse.Namespace) -> None:
    from soupgan.recipes.recipe import load_recipe, packaged_recipes

    for name in packaged_recipes():
        recipe = load_recipe(name)
        print(f"{name:10s} {len(recipe.stages)} stage(s), installs {', '.join(recipe.install)}; "
              f"validation {recipe.validation_scan}")


def show_recipe(args: argparse.Namespace) -> None:
    from soupgan.recipes.recipe import load_recipe

    print(load_recipe(args.recipe).text, end="")


def run_recipe(args: argparse.Namespace) -> None:
    from soupgan.recipes.public_scans import CACHE
    from soupgan.recipes.recipe import load_recipe
    from soupgan.recipes.runner import run_recipe as run

    show_progress()
    print(json.dumps(run(load_recipe(args.recipe), args.folder, args.data_cache or CACHE, args.shards)))


def show_status(args: argparse.Namespace) -> None:
    from soupgan.recipes.runner import recipe_status

    steps = recipe_status(args.run_folder)
    width = max(len(step) for step, _ in steps)
    for step, state in steps:
        print(f"{step:{width}s}  {state}")


def show_report(args: argparse.Namespace) -> None:
    from soupgan.recipes.report import write_report

    text, png = write_report(args.run_folder)
    print(text)
    print(f"figure: {png}")


def install_recipe(args: argparse.Namespace) -> None:
    from soupgan.recipes.install import install_run

    card = install_run(args.run_folder)
    print(json.dumps({criterion: {"version": entry.get("version"), "sha256": entry["sha256"]}
                      for criterion, entry in card["models"].items()}))
