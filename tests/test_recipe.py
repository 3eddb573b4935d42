"""`soupgan recipe`: the recipe format's checks, the pinned scans, and the tiny packaged recipe replayed end to end
(shards → MSE on 2 replicas → GAN → export → evaluate → install into a copy of the default weights)."""
import glob
import json
import os
import shutil
import subprocess

import pytest

from model.networks.generator import load_generator
from model.weights.model_source import DEFAULT_WEIGHTS, sha256_of
from pipeline.errors import InputError
from soupgan.recipes.install import install_run
from soupgan.recipes.public_scans import scan_path
from soupgan.recipes.recipe import as_flags, load_recipe, packaged_recipes, parse_recipe
from soupgan.cli import main
from soupgan.recipes.runner import RecipeRun, recipe_status, recipe_steps
from tests.test_cli import ROOT, soupgan_command

TINY = load_recipe("tiny").text


def edited(old: str, new: str) -> str:
    assert old in TINY
    return TINY.replace(old, new)


def test_the_packaged_recipes_parse_and_never_train_on_their_validation_scan():
    assert set(packaged_recipes()) >= {"tiny", "default"}
    for name in packaged_recipes():
        recipe = load_recipe(name)
        assert recipe.validation_scan not in recipe.train_scans and recipe.install
    assert load_recipe("default").validation_scan == "colin27"


@pytest.mark.parametrize("old, new, message", [
    ('validation = "nibabel-t1"', 'validation = "synthetic:0"', "synthetic:0 is the validation scan; it must not be trained on"),
    ('train = ["synthetic:0"', 'train = ["ixi-t1"', "unknown scan 'ixi-t1'"),
    ('init = "mse"', 'init = "warmup"', "init 'warmup' is neither an earlier stage nor 'shipped'"),
    ("disc_filters = 4", "disc_filter = 4", "stage gan: unknown key(s) disc_filter"),
    ("epochs = 1\nsteps_per_epoch = 2", "epochs = 0\nsteps_per_epoch = 2", "stage gan: --epochs must be at least 1"),
    ('thin-to-thin = "gan"', 'thin-to-thick = "gan"', 'thin-to-thick = \'gan\' is not a thin-to-thick stage'),
    ("patch_size = 16", "patch = 16", "[shards]: unknown key(s) patch"),
    ('name = "tiny"', 'name = "tiny', "not valid TOML"),
])
def test_a_bad_recipe_is_refused_in_one_line_before_anything_runs(old, new, message):
    with pytest.raises(InputError) as error:
        parse_recipe(edited(old, new), "tiny.toml")
    assert message in str(error.value) and "\n" not in str(error.value)


def test_held_out_scans_are_pinned_scored_whole_and_never_trained_on(tmp_path):
    replay = load_recipe("replay")
    assert replay.held_out_scans == ("nibabel-epi", "nibabel-t1") and "colin27" not in replay.train_scans
    run = RecipeRun(str(tmp_path / "run"))
    scans = {name: {"path": f"/scans/{name}.nii"} for name in (*replay.train_scans, "colin27", "nibabel-epi",
                                                                "nibabel-t1")}
    steps = dict(recipe_steps(replay, run, scans))
    held_out = steps["evaluate thin-to-thick on nibabel-epi"]
    assert held_out[:2] == ["evaluate", "/scans/nibabel-epi.nii"] and "--crop" not in held_out
    assert held_out[held_out.index("--out") + 1] == str(tmp_path / "run" / "evaluate" / "thin-to-thick" /
                                                         "held-out" / "nibabel-epi")
    assert "--crop" in steps["evaluate thin-to-thick"]
    with pytest.raises(InputError, match=r"\[evaluate\]: held-out scan synthetic:1 is also a train or validation"):
        parse_recipe(edited('held_out = ["nibabel-epi"]', 'held_out = ["synthetic:1"]'), "tiny.toml")
    with pytest.raises(InputError, match="unknown scan 'ixi-t1'"):
        parse_recipe(edited('held_out = ["nibabel-epi"]', 'held_out = ["ixi-t1"]'), "tiny.toml")


def test_settings_become_the_commands_flags():
    flags = as_flags({"steps_per_epoch": 4, "criteria": ["thin-to-thin", "thin-to-thick"], "augment": False,
                      "flow_input": True, "consistent_input": False}, {"augment": True, "consistent_input": False})
    assert flags == ["--steps-per-epoch", "4", "--criteria", "thin-to-thin,thin-to-thick", "--no-augment",
                     "--flow-input"]


def test_a_public_scan_whose_bytes_differ_from_its_pin_is_refused(tmp_path):
    (tmp_path / "mni152_t1_1mm.nii.gz").write_bytes(b"not the template")
    with pytest.raises(InputError, match="mni152: .* has sha256 .*, not the pinned 421a10e8"):
        scan_path("mni152", str(tmp_path))
    path, pin = scan_path("nibabel-t1", str(tmp_path))  # inside the installed nibabel: no download
    assert os.path.isfile(path) and pin["sha256"].startswith("1c089f37")


@pytest.mark.slow
def test_the_tiny_recipe_runs_end_to_end_resumes_and_installs_a_new_version(tmp_path, capsys):
    run = tmp_path / "run"
    command = soupgan_command("recipe", "run", "tiny", "--run", str(run), "--data-cache", str(tmp_path / "cache"))
    first = subprocess.run(command, capture_output=True, text=True, cwd=ROOT, timeout=900)
    assert first.returncode == 0, first.stderr[-3000:]
    report = json.loads(first.stdout.strip().splitlines()[-1])
    assert list(report) == ["shards", "stage mse", "stage gan", "export thin-to-thin", "evaluate thin-to-thin",
                            "evaluate thin-to-thin on nibabel-epi"]
    assert set(report.values()) == {"ran"}
    manifest = json.load(open(run / "shards" / "manifest.json"))
    assert manifest["schema_version"] == 2 and manifest["input"]["kind"] == "flow"
    scans = json.load(open(run / "scans.json"))
    assert scans["nibabel-t1"]["role"] == "validation" and len(scans["synthetic:0"]["code_sha256"]) == 64
    assert scans["nibabel-epi"]["role"] == "held-out"
    mse_config = json.load(open(run / "stages" / "mse" / "config.json"))
    assert mse_config["replicas"] == 2 and mse_config["flow_input"] is True
    gan_config = json.load(open(run / "stages" / "gan" / "config.json"))
    assert gan_config["stage"] == "gan" and gan_config["perceptual"] == "laplacian"
    assert os.path.isfile(run / "export" / "thin-to-thin" / "soupgan_thin_to_thin_x2" / "1" / "saved_model.pb")
    metrics = json.load(open(run / "evaluate" / "thin-to-thin" / "metrics.json"))
    assert {row["method"] for row in metrics["rows"]} >= {"tricubic", "flow-guided", "baseline", "soupgan"}
    shipped_sha256 = sha256_of(os.path.join(DEFAULT_WEIGHTS, "thin-to-thin.keras"))
    assert metrics["baseline"] == {"model": "shipped", "sha256": shipped_sha256}  # the default it would replace
    held_out = json.load(open(run / "evaluate" / "thin-to-thin" / "held-out" / "nibabel-epi" / "metrics.json"))
    assert held_out["crop"] is None and {row["scale"] for row in held_out["rows"]} == {2}

    again = subprocess.run(command, capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert again.returncode == 0 and set(json.loads(again.stdout.strip().splitlines()[-1]).values()) == {"done before"}
    assert main(["recipe", "status", str(run)]) == 0
    assert [line.split("  ")[-1].split()[0] for line in capsys.readouterr().out.splitlines()] == ["done"] * len(report)
    assert main(["recipe", "report", str(run)]) == 0
    change = next(r["psnr"] for r in metrics["rows"] if r["method"] == "soupgan") - \
        next(r["psnr"] for r in metrics["rows"] if r["method"] == "baseline")
    assert "| nibabel-t1 | x2 |" in capsys.readouterr().out and f"{change:+.2f} dB |" in (run / "report.md").read_text()

    check_that_another_run_trains_on_these_shards(run / "shards", tmp_path, capsys)

    weights = tmp_path / "weights"
    shutil.copytree(DEFAULT_WEIGHTS, weights)
    before = json.load(open(weights / "model_card.json"))
    card = install_run(str(run), str(weights))
    entry = card["models"]["thin-to-thin"]
    assert entry["version"] == before["models"]["thin-to-thin"]["version"] + 1
    assert entry["sha256"] == sha256_of(str(weights / "thin-to-thin.keras"))
    assert entry["recipe_text"] == TINY and entry["training"]["stages"] == ["mse", "gan"]
    assert entry["validation"]["scores"]["x2"]["tricubic"]["psnr"] > 0 and entry["libraries"]["tensorflow"]
    epi_scores = entry["held_out"]["nibabel-epi"]["x2"]
    assert epi_scores["soupgan"]["psnr"] == round(next(row["psnr"] for row in held_out["rows"]
                                                       if row["method"] == "soupgan"), 4)
    assert entry["architecture"] == "residual, 4 filters, 1 blocks"
    assert card["models"]["thin-to-thick"] == before["models"]["thin-to-thick"]  # not in the recipe: unchanged
    assert load_generator(str(weights / "thin-to-thin.keras")).flow_input
    rendered = open(weights / "MODEL_CARD.md").read()
    assert f"## thin-to-thin (version {entry['version']})" in rendered
    assert "Quality on nibabel-epi (held out, whole slices)" in rendered
    assert entry["validation"]["baseline"]["sha256"] == shipped_sha256
    assert f"baseline: the default it replaced, sha256 {shipped_sha256[:12]}…" in rendered
    assert entry["validation"]["scores"]["x2"]["baseline"]["psnr"] > 0


def check_that_another_run_trains_on_these_shards(shards, tmp_path, capsys):
    """`recipe run --shards`: a second run of the recipe trains on the first run's finished set, checked by the
    shards job's --verify and left as it was; a recipe with other [shards] settings is refused and not pointed at
    it."""
    def files():
        return {path: open(path, "rb").read() for path in glob.glob(str(shards / "**"), recursive=True)
                if os.path.isfile(path)}

    before, cache = files(), str(tmp_path / "cache")
    other = tmp_path / "other"
    assert main(["recipe", "run", "tiny", "--run", str(other), "--data-cache", cache, "--shards", str(shards)]) == 0
    assert '"shards": "ran"' in capsys.readouterr().out
    assert files() == before and not (other / "shards").exists()
    assert json.load(open(other / "stages" / "mse" / "config.json"))["data"] == str(shards)
    assert recipe_status(str(other))[0][1].endswith(f"; trains on {shards}, made elsewhere")
    assert main(["recipe", "run", "tiny", "--run", str(other), "--data-cache", cache]) == 0  # remembered
    assert set(json.loads(capsys.readouterr().out.strip().splitlines()[-1]).values()) == {"done before"}
    with pytest.raises(InputError, match="already has its shard set .*; start another run folder"):
        RecipeRun(str(other)).use_shards(str(tmp_path / "elsewhere"))

    reseeded = tmp_path / "reseeded.toml"
    reseeded.write_text(edited("seed = 1  #", "seed = 2  #"))
    refused = subprocess.run(soupgan_command("recipe", "run", str(reseeded), "--run", str(tmp_path / "second"),
                                             "--data-cache", cache, "--shards", str(shards)),
                             capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert refused.returncode == 2 and f"{shards} was made with other settings (seed)" in refused.stderr
    assert refused.stderr.strip().endswith(f"--shards {shards} is not the set this recipe makes (above); give "
                                           "another, or leave out --shards to make the run's own")
    assert files() == before
    second = RecipeRun(str(tmp_path / "second"))  # a set that failed its check is not remembered
    assert not second.reuses_shards and second.shards == str(tmp_path / "second" / "shards")


def test_a_run_folder_takes_its_recipe_again_with_new_comments_but_not_new_settings(tmp_path):
    run = RecipeRun(str(tmp_path / "run"))
    run.start(parse_recipe(TINY))
    run.start(parse_recipe("# the same recipe, reworded\n" + TINY.replace("\n\n", "\n\n\n")))  # resumes
    assert run.read_recipe().text == TINY  # the text it was first run with stays
    with pytest.raises(InputError, match="holds the run of another recipe; choose another run folder"):
        run.start(parse_recipe(edited("epochs = 1\nsteps_per_epoch = 4", "epochs = 2\nsteps_per_epoch = 4")))


def test_status_shows_each_step_done_started_or_not_started(tmp_path, capsys):
    run = tmp_path / "run"
    (run / "stages" / "mse" / "checkpoints").mkdir(parents=True)
    (run / "recipe.toml").write_text(TINY)
    (run / "steps.json").write_text(json.dumps({"shards": {"command": [], "finished": "2026-12-07T10:00:05.1+00:00"}}))
    (run / "stages" / "mse" / "checkpoints" / "state.json").write_text(json.dumps(
        {"epoch": 0, "step": 3, "checkpoint": "epoch-0000-step-0000003.weights.h5", "best": float("inf"),
         "monitor": "val_loss"}))
    assert main(["recipe", "status", str(run)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[:2] for line in lines] == [["shards", "done"], ["stage", "mse"], ["stage", "gan"],
                                                    ["export", "thin-to-thin"], ["evaluate", "thin-to-thin"],
                                                    ["evaluate", "thin-to-thin"]]
    assert lines[0].endswith("done 2026-12-07 10:00:05 UTC")
    assert lines[1].endswith("started: epoch 0 of 1 done, 3 steps into the next; best val_loss inf")
    assert all(line.endswith("not started") for line in lines[2:])
    (run / "steps.json").write_text("{}")  # the shards step again, one of its two volumes done
    (run / "shards" / "parts").mkdir(parents=True)
    (run / "shards" / "parts" / "00001.json").write_text("{}")
    assert main(["recipe", "status", str(run)]) == 0
    assert capsys.readouterr().out.splitlines()[0].endswith("started: 1 of 2 volumes done")
    assert main(["recipe", "status", str(tmp_path)]) == 2
    assert capsys.readouterr().err.strip() == f"soupgan recipe: error: {tmp_path} is not a recipe run (no recipe.toml)"


def test_report_puts_each_scan_and_scale_against_the_installed_default(tmp_path, capsys):
    run = tmp_path / "run"
    run.mkdir()
    (run / "recipe.toml").write_text(TINY)
    assert main(["recipe", "report", str(run)]) == 2
    assert "no evaluation has finished yet" in capsys.readouterr().err

    def row(scale, method, psnr):
        return {"scale": scale, "method": method, "psnr": psnr, "ssim": psnr / 50}

    for folder, rows in ((run / "evaluate" / "thin-to-thin", [row(2, "tricubic", 30.0), row(2, "baseline", 32.5),
                                                              row(2, "soupgan", 32.75), row(3, "baseline", 29.0),
                                                              row(3, "soupgan", 28.875)]),
                         (run / "evaluate" / "thin-to-thin" / "held-out" / "nibabel-epi",
                          [row(2, "baseline", 34.0), row(2, "soupgan", 34.05)])):
        folder.mkdir(parents=True)
        (folder / "metrics.json").write_text(json.dumps({"crop": None, "rows": rows}))
    assert main(["recipe", "report", str(run)]) == 0
    text = (run / "report.md").read_text()
    assert capsys.readouterr().out.startswith(text)
    assert "| scan | scale | tricubic | baseline | soupgan | change over baseline |" in text
    assert "| nibabel-t1 | x2 | 30.00 / 0.6000 | 32.50 / 0.6500 | 32.75 / 0.6550 | +0.25 dB |" in text
    assert "| nibabel-t1 | x3 |  | 29.00 / 0.5800 | 28.88 / 0.5775 | -0.12 dB |" in text
    assert "| nibabel-epi | x2 |  | 34.00 / 0.6800 | 34.05 / 0.6810 | +0.05 dB |" in text
    assert "Worst change over the baseline: -0.12 dB (nibabel-t1 x3)." in text
    assert (run / "report.png").stat().st_size > 10_000


def test_an_unfinished_run_is_not_installed(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / "recipe.toml").write_text(TINY)
    (run / "scans.json").write_text(json.dumps({"synthetic:0": {"role": "train"}, "synthetic:1": {"role": "train"},
                                                "nibabel-t1": {"role": "validation"},
                                                "nibabel-epi": {"role": "held-out"}}))
    with pytest.raises(InputError, match="the recipe has not finished .*shards.*; run `soupgan recipe run`"):
        install_run(str(run), str(tmp_path / "weights"))
