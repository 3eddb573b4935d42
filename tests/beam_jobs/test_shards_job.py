"""The shards job end to end on real runners: DirectRunner (in-process and multi-process) and DaskRunner."""
import glob
import gzip
import hashlib
import json
import os
import shutil
from collections import defaultdict

import nibabel as nib
import numpy as np
import pytest
import tensorflow as tf

import beam_jobs.transforms
from beam_jobs.shards import run
from tests.shard_records import count_records
from pipeline.config import code_version
from pipeline.errors import InputError
from pipeline.io.nifti_io import read_nifti
from pipeline.data.records import decode_example
from tests.beam_jobs.inputs import BAD, GOOD, JOB_FLAGS, make_inputs

DASK = "--runner=apache_beam.runners.dask.dask_runner.DaskRunner"


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    return make_inputs(str(tmp_path_factory.mktemp("shards")))


@pytest.fixture(scope="module")
def direct_run(inputs, tmp_path_factory):
    output = str(tmp_path_factory.mktemp("direct") / "out")
    return output, run([inputs, "--output", output, *JOB_FLAGS])


def read_records(output, split):
    files = sorted(tf.io.gfile.glob(os.path.join(output, split, "*.tfrecord.gz")))
    return [r.numpy() for r in tf.data.TFRecordDataset(files, compression_type="GZIP")] if files else []


def all_files(output):
    found = {}
    for folder, _, names in os.walk(output):
        for name in names:
            found[os.path.relpath(os.path.join(folder, name), output)] = open(os.path.join(folder, name), "rb").read()
    return found


def test_manifest_counts_match_the_records_read_back(direct_run):
    output, manifest = direct_run
    assert manifest == json.load(open(os.path.join(output, "manifest.json")))
    assert manifest["inputs_read"] == GOOD and manifest["inputs_failed"] == BAD
    assert manifest["schema_version"] == 2 and manifest["patch_size"] == 16 and manifest["scales"] == [2, 3]
    assert manifest["input"]["kind"] == "flow" and manifest["input"]["consistent_thin_to_thick"] is True
    assert manifest["variants"] == 1 and manifest["code_version"] == code_version()
    total = 0
    for split in ("train", "val", "test"):
        n = manifest["counts"][split]["total"]
        total += n
        on_disk = sorted(f"{split}/{name}" for name in os.listdir(os.path.join(output, split))) if n else []
        assert manifest["shards"][split] == on_disk and len(on_disk) == len(manifest["volumes"][split])
        if n:
            assert count_records(os.path.join(output, split, "*.tfrecord.gz")) == n
        per_kind = sum(v for k, v in manifest["counts"][split].items() if k != "total")
        assert per_kind == n
    assert total > 100


def test_manifest_names_the_bytes_each_volume_came_from(direct_run, inputs):
    output, manifest = direct_run
    ids = {volume for split in manifest["volumes"].values() for volume in split}
    assert set(manifest["source_sha256"]) == ids
    mr0 = read_nifti(os.path.join(inputs, "mr0.nii.gz")).volume_id
    assert manifest["source_sha256"][mr0] == hashlib.sha256(open(os.path.join(inputs, "mr0.nii.gz"), "rb").read()).hexdigest()
    assert str(inputs) not in json.dumps(manifest)  # hashes, not paths


def test_each_shard_holds_one_volume(direct_run):
    output, manifest = direct_run
    for split, shards in manifest["shards"].items():
        for shard in shards:
            ids = {decode_example(r.numpy()).volume_id for r in tf.data.TFRecordDataset(os.path.join(output, shard), compression_type="GZIP")}
            assert len(ids) == 1


def test_refuses_to_mix_with_an_earlier_shard_set(direct_run, inputs, tmp_path):
    output, _ = direct_run
    with pytest.raises(InputError, match="already holds a shard set"):
        run([inputs, "--output", output, *JOB_FLAGS])
    copy = tmp_path / "copy"
    shutil.copytree(output, copy)
    (copy / "train" / "train-00099.tfrecord.gz").write_bytes(b"stale")
    run([inputs, "--output", str(copy), *JOB_FLAGS, "--overwrite"])
    assert all_files(str(copy)) == all_files(output)


def test_resume_reuses_finished_volumes_and_makes_the_rest(direct_run, inputs, tmp_path, monkeypatch):
    output, manifest = direct_run
    copy = tmp_path / "copy"
    shutil.copytree(output, copy)
    redo = manifest["shards"]["train"][0]  # a job killed while making this volume, after a stale file appeared
    index = int(redo[-len("00000.tfrecord.gz"):][:5])
    os.remove(copy / redo)
    os.remove(copy / "parts" / f"{index:05d}.json")
    os.remove(copy / "manifest.json")
    (copy / redo).with_name(os.path.basename(redo) + ".tmp-0123").write_bytes(b"half")
    (copy / "train" / "train-00099.tfrecord.gz").write_bytes(b"stale")
    with pytest.raises(InputError, match="already holds an unfinished shard set; .* pass --resume .* or --overwrite"):
        run([inputs, "--output", str(copy), *JOB_FLAGS])
    with pytest.raises(InputError, match="--overwrite starts again and --resume continues: pass one of them"):
        run([inputs, "--output", str(copy), *JOB_FLAGS, "--resume", "--overwrite"])
    made = []
    real = beam_jobs.transforms.patch_pairs
    monkeypatch.setattr(beam_jobs.transforms, "patch_pairs", lambda volume, config: made.append(volume) or real(volume, config))
    assert run([inputs, "--output", str(copy), *JOB_FLAGS, "--resume"]) == manifest
    assert all_files(str(copy)) == all_files(output)  # the same bytes, and nothing stale left
    good_made = [volume for volume in made if volume.shape != (12, 40, 40)]  # the too-small input fails again
    assert len(good_made) == 1 and good_made[0].volume_id in manifest["volumes"]["train"]

    made.clear()  # other settings: nothing is reused, and no shard of the old split assignment survives
    changed = run([inputs, "--output", str(copy), *JOB_FLAGS, "--resume", "--seed", "5"])
    assert len(made) == GOOD + 1 and changed["seed"] == 5
    on_disk = sorted(os.path.relpath(path, copy) for path in glob.glob(str(copy / "*" / "*.tfrecord.gz*")))
    assert on_disk == sorted(shard for shards in changed["shards"].values() for shard in shards)
    parts = [json.load(open(path)) for path in sorted(glob.glob(str(copy / "parts" / "*.json")))]
    assert len(parts) == GOOD and len({part["key"] for part in parts}) == 1
    assert sorted(part["summary"]["shard"] for part in parts) == on_disk


def test_a_volume_that_fails_on_resume_leaves_nothing_of_its_earlier_shard(direct_run, inputs, tmp_path):
    output, manifest = direct_run
    copy, sources = tmp_path / "copy", tmp_path / "inputs"
    shutil.copytree(output, copy)
    shutil.copytree(inputs, sources)
    broken = read_nifti(os.path.join(inputs, "mr1.nii.gz")).volume_id
    (sources / "mr1.nii.gz").write_bytes(b"no longer a scan")
    resumed = run([str(sources), "--output", str(copy), *JOB_FLAGS, "--resume"])
    assert resumed["inputs_read"] == GOOD - 1 and broken not in resumed["source_sha256"]
    on_disk = sorted(os.path.relpath(path, copy) for path in glob.glob(str(copy / "*" / "*.tfrecord.gz*")))
    assert on_disk == sorted(shard for shards in resumed["shards"].values() for shard in shards)
    assert len(glob.glob(str(copy / "parts" / "*.json"))) == GOOD - 1

    shutil.rmtree(copy / "parts")  # a finished set from before parts existed
    with pytest.raises(InputError, match="made without parts/ .* pass --overwrite to make it again"):
        run([str(sources), "--output", str(copy), *JOB_FLAGS, "--resume"])


def test_no_volume_lands_in_two_splits(direct_run):
    output, manifest = direct_run
    ids = defaultdict(set)
    for split in ("train", "val", "test"):
        for record in read_records(output, split):
            pair = decode_example(record)
            assert pair.input.shape == (16, 16, 16)
            ids[split].add(pair.volume_id)
        assert ids[split] == set(manifest["volumes"][split])
    assert not (ids["train"] & ids["val"]) and not (ids["train"] & ids["test"]) and not (ids["val"] & ids["test"])
    assert sum(len(v) for v in ids.values()) == GOOD


def test_bad_inputs_are_dead_letters_with_reasons(direct_run, inputs):
    output, _ = direct_run
    letters = [json.loads(line) for line in open(os.path.join(output, "dead_letters.jsonl"))]
    by_name = {os.path.relpath(letter["source"], inputs): letter for letter in letters}
    assert set(by_name) == {"corrupt.nii.gz", "empty.nii", "nested/too_small.nii.gz", "nested/gap_series"}
    assert by_name["nested/gap_series"]["reason"].startswith("gap_series: gap of 5.000 mm")
    assert by_name["corrupt.nii.gz"]["stage"] == "read" and "truncated gzip" in by_name["corrupt.nii.gz"]["reason"]
    assert by_name["empty.nii"]["reason"] == "empty.nii: empty file"
    assert by_name["nested/too_small.nii.gz"]["stage"] == "patch" and "smaller than a 16^3 patch" in by_name["nested/too_small.nii.gz"]["reason"]


def test_records_carry_hashed_ids_only(direct_run, inputs):
    output, _ = direct_run
    for split in ("train", "val", "test"):
        for name, content in all_files(os.path.join(output, split)).items():
            raw = gzip.decompress(content)
            assert inputs.encode() not in raw and b"Doe^Jane" not in raw and b"mr0" not in raw


@pytest.mark.slow
def test_multiprocess_direct_runner_gives_byte_identical_output(direct_run, inputs, tmp_path):
    output, _ = direct_run
    again = str(tmp_path / "out")
    run([inputs, "--output", again, *JOB_FLAGS, "--direct_num_workers=2", "--direct_running_mode=multi_processing"])
    assert all_files(again) == all_files(output)


@pytest.mark.slow
def test_dask_runner_on_a_two_worker_local_cluster(direct_run, inputs, tmp_path):
    distributed = pytest.importorskip("distributed")
    output, _ = direct_run
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1", dashboard_address=None) as cluster:
        dask_output = str(tmp_path / "dask")
        manifest = run([inputs, "--output", dask_output, *JOB_FLAGS, DASK, f"--dask_client_address={cluster.scheduler_address}"])
    assert manifest["inputs_read"] == GOOD
    assert all_files(dask_output) == all_files(output)  # every shard, the manifest and the dead letters


def test_dask_reads_each_volume_once(inputs, tmp_path, monkeypatch):
    """Beam's DaskRunner recomputes anything consumed twice; the job must still read each volume once."""
    distributed = pytest.importorskip("distributed")
    calls = []
    real = beam_jobs.transforms.read_source
    monkeypatch.setattr(beam_jobs.transforms, "read_source", lambda source: calls.append(source.path) or real(source))
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False, host="127.0.0.1", protocol="tcp://", dashboard_address=None) as cluster:
        run([inputs, "--output", str(tmp_path / "out"), *JOB_FLAGS, DASK, f"--dask_client_address={cluster.scheduler_address}"])
    assert len(calls) == GOOD + BAD and len(set(calls)) == GOOD + BAD


def test_verify_accepts_the_set_its_inputs_make_and_names_the_first_difference(inputs, tmp_path):
    sources = tmp_path / "good"  # a DICOM series and NIfTI files, all readable
    shutil.copytree(os.path.join(inputs, "ct_series"), sources / "ct_series")
    for name in ("mr0.nii.gz", "mr1.nii.gz"):
        shutil.copyfile(os.path.join(inputs, name), sources / name)
    output = tmp_path / "out"
    manifest = run([str(sources), "--output", str(output), *JOB_FLAGS])
    before = all_files(str(output))

    def verify(*extra, folder=sources):
        return run([str(folder), "--output", str(output), *JOB_FLAGS, "--verify", *extra])

    assert verify() == manifest and all_files(str(output)) == before  # nothing written
    with pytest.raises(InputError, match=r"was made with other settings \(seed\)"):
        verify("--seed", "5")
    with pytest.raises(InputError, match="--verify changes nothing: leave out --resume and --overwrite"):
        verify("--resume")
    changed = tmp_path / "changed"
    shutil.copytree(sources, changed)
    image = nib.load(changed / "mr1.nii.gz")
    nib.save(nib.Nifti1Image(np.asarray(image.dataobj) * 1.01, image.affine), changed / "mr1.nii.gz")
    with pytest.raises(InputError, match=r"input 3 of 3 is not the bytes .* was made from"):
        verify(folder=changed)
    shutil.copyfile(os.path.join(inputs, "mr2.nii.gz"), changed / "mr2.nii.gz")
    with pytest.raises(InputError, match=r"was made from 3 volume\(s\) with 0 failed, not from these 4"):
        verify(folder=changed)

    with pytest.raises(InputError, match=r"1 input\(s\) matched no volume \(no such file or folder"):
        run([str(sources), str(tmp_path / "gone.nii.gz"), "--output", str(output), *JOB_FLAGS, "--verify"])
    split = next(split for split, shards in manifest["shards"].items() if shards)
    stray = output / split / f"{split}-00099.tfrecord.gz"
    stray.write_bytes(b"a shard of another job")  # training reads every shard of a split folder
    with pytest.raises(InputError, match=rf"holds 1 shard file\(s\) no volume of it made, e.g. .*{split}-00099"):
        verify()
    stray.unlink()
    assert verify() == manifest

    part = output / "parts" / "00000.json"
    record = json.loads(part.read_text())
    part.write_text(json.dumps({**record, "key": "0" * 64}))
    with pytest.raises(InputError, match="was made by other code"):
        verify()
    part.write_text(json.dumps(record))
    os.remove(output / record["summary"]["shard"])
    with pytest.raises(InputError, match=f"lacks {record['summary']['shard']}, the shard of input 1"):
        verify()
    os.remove(output / "manifest.json")
    with pytest.raises(InputError, match="holds no finished shard set"):
        verify()
