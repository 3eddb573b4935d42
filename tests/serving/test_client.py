"""The gRPC client against the test stand-in server: same result as in-process inference, one request up to
the server's 2 GiB, parts under a proxy's 4 MB equal to the untiled result, metadata checked before anything is
sent, and one-line errors for an unknown model, the other criterion, a batching server, a server down, a
deadline, a bad message limit."""
import socket

import numpy as np
import pytest

from model.inference.super_resolve import super_resolve
from pipeline.errors import InputError
from pipeline.volume import Volume
from serving.client import ClientOptions, ServingClient, upsample_remote
from serving.export import export_scale
from tests.conftest import phantom
from tests.serving.standin_server import StandInModelServer
from tests.generators import random_generator


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    generator = random_generator(seed=1)
    base = str(tmp_path_factory.mktemp("base"))
    for scale in (2.0, 4.0):
        export_scale(generator, base, scale, "thin-to-thin")
    with StandInModelServer(base) as server:
        yield generator, server


def test_client_result_equals_in_process_inference(served):
    generator, server = served
    volume = Volume(phantom((30, 28, 8)) * 1.2 - 1000.0, np.diag([0.7, 0.7, 5.0, 1.0]), "CT")
    client = ServingClient(server.address)
    remote = upsample_remote(volume, client, 2.0, "thin-to-thin")
    local = super_resolve(volume, generator, 2.0)
    np.testing.assert_allclose(remote.affine, local.affine)
    assert np.abs(remote.data - local.data).max() <= 1e-4 * np.ptp(local.data)


@pytest.mark.slow
def test_a_volume_over_the_message_limit_is_tiled_with_the_untiled_result(served):
    generator, server = served
    thick = np.moveaxis(phantom((128, 128, 48), seed=2), 2, 0)  # 48 slices of 128² → 189 thin: 12 MB reply
    untiled = super_resolve(Volume(thick, np.diag([4.0, 1.0, 1.0, 1.0])), generator, 4.0, axis=0).data
    before = server.requests
    whole = ServingClient(server.address).upsample_array(thick, 4.0, "thin-to-thin")
    assert server.requests - before == 2  # the metadata, then one volume: tensorflow_model_server takes up to 2 GiB
    proxy_limit = 4 * 1024 * 1024
    with StandInModelServer(server.base, message_limit=proxy_limit) as proxied:  # gRPC's default, as a proxy may keep
        options = ClientOptions(max_message_bytes=proxy_limit)
        tiled = ServingClient(proxied.address, options).upsample_array(thick, 4.0, "thin-to-thin")
        assert proxied.requests > 4  # it had to tile: no message over 4 MB reached the server
    before = server.requests
    capped = ServingClient(server.address, ClientOptions(max_output_voxels=1_000_000))
    tiled_by_voxels = capped.upsample_array(thick, 4.0, "thin-to-thin")  # 3.1 M output voxels: over the cap
    assert server.requests - before > 4
    for result in (whole, tiled, tiled_by_voxels):
        assert result.shape == untiled.shape == (189, 128, 128)
        assert np.abs(result - untiled).max() <= 1e-4 * np.ptp(untiled)


def test_unknown_model_server_down_and_deadline_give_one_line_errors(served, tmp_path):
    _, server = served
    client = ServingClient(server.address)
    with pytest.raises(InputError, match=r"model soupgan_thin_to_thin_x3: not served at 127\.0\.0\.1"):
        client.upsample_array(np.zeros((4, 8, 8), np.float32), 3.0, "thin-to-thin")
    with socket.socket() as probe:  # a port held but never listened on: connections are refused, and no other
        probe.bind(("127.0.0.1", 0))  # test can take it meanwhile
        down = ServingClient(f"127.0.0.1:{probe.getsockname()[1]}",
                             ClientOptions(retries=1, backoff_s=0.05, timeout_s=2))
        with pytest.raises(InputError, match="no TF Serving reachable at 127.0.0.1:.* after 2 tries"):
            down.check_available("soupgan_thin_to_thin_x2")
    with StandInModelServer(str(tmp_path), delay_s=5.0) as slow:
        export_scale(served[0], str(tmp_path), 2.0, "thin-to-thin")
        late = ServingClient(slow.address, ClientOptions(timeout_s=0.5))
        with pytest.raises(InputError, match="deadline of 0.5 s passed"):
            late.predict("soupgan_thin_to_thin_x2", {"volume": np.zeros((3, 8, 8), np.float32)})
    with pytest.raises(InputError, match="INVALID_ARGUMENT .* at least 2 slices"):
        client.predict("soupgan_thin_to_thin_x2", {"volume": np.zeros((1, 8, 8), np.float32)})


@pytest.mark.slow
def test_upsample_cli_queries_the_server(served, tmp_path):
    from pipeline.io.encoding import in_input_range
    from pipeline.io.nifti_io import read_nifti, write_nifti
    from tests.test_cli import soupgan

    generator, server = served
    volume = Volume(phantom((30, 28, 8)), np.diag([1.0, 1.0, 4.0, 1.0]), "MR")
    write_nifti(volume, str(tmp_path / "thick.nii.gz"))
    result = soupgan("upsample", tmp_path / "thick.nii.gz", tmp_path / "thin.nii.gz", "--scale", "4",
                     "--server", server.address)
    assert result.returncode == 0, result.stderr
    thin = read_nifti(str(tmp_path / "thin.nii.gz"))
    local = in_input_range(super_resolve(volume, generator, 4.0), volume)  # the CLI writes no negative MR
    np.testing.assert_allclose(thin.affine, local.affine)
    assert np.abs(thin.data - local.data).max() <= 1e-4 * np.ptp(local.data)
    missing = soupgan("upsample", tmp_path / "thick.nii.gz", tmp_path / "x.nii.gz", "--scale", "3",
                      "--server", server.address)
    assert missing.returncode == 2 and "not served at" in missing.stderr.strip().splitlines()[-1]
    bad = soupgan("upsample", tmp_path / "thick.nii.gz", tmp_path / "y.nii.gz", "--scale", "4",
                  "--server", server.address, "--max-message-mb", "0")
    assert bad.returncode == 2 and bad.stderr.strip().splitlines()[-1].endswith("--max-message-mb 0: must be > 0")
