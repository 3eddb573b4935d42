"""`soupgan shards` as users run it: exit codes, one-line errors, and s3:// in and out."""
import json
import os
import subprocess
import sys
import textwrap

import nibabel as nib
import numpy as np
import pytest

from tests.beam_jobs.inputs import BAD, GOOD, JOB_FLAGS, make_inputs
from tests.conftest import phantom
from tests.dicom_factory import write_series
from tests.s3_server import local_s3
from tests.test_cli import ROOT, soupgan


@pytest.mark.slow
def test_only_bad_inputs_exit_2(tmp_path):
    (tmp_path / "empty.nii.gz").write_bytes(b"")
    result = soupgan("shards", tmp_path / "empty.nii.gz", "--output", tmp_path / "out", *JOB_FLAGS)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1] == "soupgan shards: error: no input volume could be read (1 failed); reasons in the dead letters"
    assert "empty file" in (tmp_path / "out" / "dead_letters.jsonl").read_text()
    missing = soupgan("shards", tmp_path / "nothing-here", "--output", tmp_path / "out2")
    assert missing.returncode == 2 and missing.stderr.strip() == (  # one line: no notice from Beam's import
        f"soupgan shards: error: no input volume found in {tmp_path / 'nothing-here'}: no such file or folder, "
        "or nothing matched")
    assert soupgan("shards", tmp_path, "--output", tmp_path / "o", "--scales", "1").returncode == 2


def test_progress_and_summary_on_the_console(tmp_path):
    inputs = make_inputs(str(tmp_path))
    result = soupgan("shards", inputs, "--output", tmp_path / "out", *JOB_FLAGS)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stderr.count("soupgan.shards: volume ") == GOOD  # one progress line per volume, hashed id only
    assert inputs not in "".join(line for line in result.stderr.splitlines() if "soupgan.shards" in line)
    assert f"volumes_read={GOOD}" in result.stderr and f"volumes_failed={BAD}" in result.stderr
    assert result.stdout.startswith(f"{GOOD} volume(s) read, {BAD} failed; patch pairs: ")


TF_READER = textwrap.dedent(
    """
    import json, os, sys
    sys.path.insert(0, {root!r})
    from pipeline.data.dataset import register_filesystems
    from tests.shard_records import count_records
    register_filesystems(["s3://"])
    import tensorflow as tf
    manifest = json.loads(tf.io.gfile.GFile("s3://soupgan/shards/manifest.json").read())
    counts = {{split: count_records(f"s3://soupgan/shards/{{split}}/*.tfrecord.gz") if manifest["shards"][split] else 0
              for split in ("train", "val", "test")}}
    print("RESULT", json.dumps([counts, {{s: manifest["counts"][s]["total"] for s in counts}}]), flush=True)
    os._exit(0)
    """
)


@pytest.mark.slow
def test_s3_inputs_and_outputs_end_to_end(tmp_path):
    """Beam reads volumes from and writes shards to s3:// (moto on 127.0.0.1); tf.data reads them back."""
    pytest.importorskip("moto")
    inputs = make_inputs(str(tmp_path))
    with local_s3("soupgan") as (endpoint, client, env):
        for folder, _, names in os.walk(inputs):
            for name in names:
                path = os.path.join(folder, name)
                client.upload_file(path, "soupgan", "inputs/" + os.path.relpath(path, inputs))
        flags = [f"--s3_endpoint_url={endpoint}", "--s3_access_key_id=testing", "--s3_secret_access_key=testing", "--s3_region_name=us-east-1"]
        command = [sys.executable, "-m", "soupgan", "shards", "s3://soupgan/inputs", "--output", "s3://soupgan/shards", *JOB_FLAGS, *flags]
        result = subprocess.run(command, env=env, capture_output=True, text=True, cwd=ROOT, timeout=600)
        assert result.returncode == 0, result.stderr[-3000:]
        manifest = json.loads(client.get_object(Bucket="soupgan", Key="shards/manifest.json")["Body"].read())
        assert manifest["inputs_read"] == GOOD and manifest["inputs_failed"] == BAD
        dead = client.get_object(Bucket="soupgan", Key="shards/dead_letters.jsonl")["Body"].read().decode()
        assert "s3://soupgan/inputs/corrupt.nii.gz" in dead
        reader = subprocess.run([sys.executable, "-c", TF_READER.format(root=ROOT)], env=env, capture_output=True, text=True, timeout=300)
        assert reader.returncode == 0, reader.stderr[-2000:]
        line = next(l for l in reader.stdout.splitlines() if l.startswith("RESULT"))
        read_back, expected = json.loads(line[len("RESULT "):])
        assert read_back == expected and sum(expected.values()) > 0

        def shard_objects():
            listed = client.list_objects_v2(Bucket="soupgan", Prefix="shards/")["Contents"]
            return {item["Key"]: item["ETag"] for item in listed if ".tfrecord.gz" in item["Key"]}

        before = shard_objects()
        client.delete_object(Bucket="soupgan", Key="shards/manifest.json")  # as if killed before the end
        client.put_object(Bucket="soupgan", Key="shards/train/train-00042.tfrecord.gz", Body=b"stale")
        resumed = subprocess.run(command + ["--resume"], env=env, capture_output=True, text=True, cwd=ROOT, timeout=600)
        assert resumed.returncode == 0, resumed.stderr[-3000:]
        assert f"{GOOD} volume(s) done before with these settings and code; 1 stale file(s) deleted" in resumed.stderr
        assert resumed.stderr.count("done before, ") == GOOD and "soupgan.pairs" not in resumed.stderr
        assert shard_objects() == before  # every shard reused as it was, the stale one gone
        again = json.loads(client.get_object(Bucket="soupgan", Key="shards/manifest.json")["Body"].read())
        assert again == manifest


def test_fractional_scales_make_their_own_pairs_and_bad_ones_are_one_line(tmp_path):
    """`--scales 2.5,3` on an MR phantom and a CT series: x2.5 pairs are counted and stored as such, read back
    without TensorFlow; a scale that is no small ratio is refused in one line."""
    from pipeline.data.records import decode_example
    from pipeline.io.tfrecord_framing import read_gzip_records

    folder = tmp_path / "inputs"
    folder.mkdir()
    nib.save(nib.Nifti1Image(phantom((48, 36, 36), seed=1), np.eye(4)), str(folder / "mr.nii.gz"))
    write_series(str(folder / "ct"), np.round(phantom((36, 36, 48), seed=2) * 2 - 1024), pixel_spacing=(1.0, 1.0),
                 slice_step=1.0)
    out = tmp_path / "out"
    result = soupgan("shards", folder, "--output", out, "--patch-size", "16", "--scales", "2.5,3", "--criteria",
                     "thin-to-thin,thin-to-thick", "--split", "1,0,0")
    assert result.returncode == 0, result.stderr[-2000:]
    manifest = json.load(open(out / "manifest.json"))
    assert manifest["scales"] == [2.5, 3]
    counts = manifest["counts"]["train"]
    assert counts["thin-to-thin/x2.5"] > 0 and counts["thin-to-thick/x2.5"] > 0 and counts["thin-to-thin/x3"] > 0
    scales = [decode_example(record).scale for shard in manifest["shards"]["train"]
              for record in read_gzip_records(str(out / shard))]
    assert sorted(set(scales)) == [2.5, 3.0] and len(scales) == counts["total"]
    refused = soupgan("shards", folder, "--output", tmp_path / "o", "--scales", "2,2.33")
    assert refused.returncode == 2
    assert refused.stderr.strip().splitlines()[-1] == ("soupgan shards: error: argument --scales: scale 2.33 is not a "
                                                        "ratio p/q with q <= 8 (like 2.5 or 3.75)")
