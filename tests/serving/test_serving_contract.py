"""What a TF Serving deployment of soupgan promises, against the test stand-in server: one name per criterion and
scale, metadata the client checks before it sends a volume, exact parts for flow-guided models, TLS, many
clients at once, and a server that dies or restarts under a run."""
import datetime
import ipaddress
import os
import threading
from concurrent.futures import ThreadPoolExecutor

import grpc
import numpy as np
import pytest
import tensorflow as tf
from tensorflow_serving.apis import prediction_log_pb2

import serving.client as client_module
from model.inference.super_resolve import super_resolve
from pipeline.errors import InputError
from pipeline.io.nifti_io import write_nifti
from pipeline.volume import Volume
from serving.client import ClientOptions, ServingClient
from serving.export import WARMUP_FILE, export_scale, write_models_config
from tests.conftest import phantom
from tests.generators import random_generator
from tests.serving.standin_server import StandInModelServer, batching_error
from tests.test_cli import soupgan

THICK = np.moveaxis(phantom((30, 28, 8), seed=3) * 1.2 - 1000.0, 2, 0).astype(np.float32)  # slice axis first, HU


@pytest.fixture(scope="module")
def both_criteria(tmp_path_factory):
    """Both criteria at scales 2 and 4 in one base, as `soupgan export` run once per criterion leaves them."""
    generator = random_generator(seed=4)
    base = str(tmp_path_factory.mktemp("both"))
    names = [export_scale(generator, base, scale, criterion).name
             for criterion in ("thin-to-thin", "thin-to-thick") for scale in (2.0, 4.0)]
    write_models_config(base, names)
    return generator, base, names


def expected(generator, scale, criterion, thick=THICK):
    return super_resolve(Volume(thick, np.diag([4.0, 0.8, 0.8, 1.0]), "CT"), generator, scale, criterion, axis=0).data


def close(result, reference):
    return result.shape == reference.shape and np.abs(result - reference).max() <= 1e-4 * np.ptp(reference)


def test_both_criteria_serve_side_by_side_under_four_names(both_criteria):
    generator, base, names = both_criteria
    assert sorted(names) == ["soupgan_thin_to_thick_x2", "soupgan_thin_to_thick_x4", "soupgan_thin_to_thin_x2",
                             "soupgan_thin_to_thin_x4"]
    with StandInModelServer(base) as server:
        client = ServingClient(server.address)
        for criterion in ("thin-to-thin", "thin-to-thick"):
            for scale in (2.0, 4.0):
                name, metadata = client.servable(scale, criterion)
                assert (metadata["criterion"], metadata["scale"]) == (criterion, scale)
                assert metadata["receptive_field"] == list(generator.receptive_field)
                assert close(client.upsample_array(THICK, scale, criterion), expected(generator, scale, criterion))


@pytest.mark.slow
def test_the_wrong_criterion_or_a_mislabelled_model_is_refused(both_criteria, tmp_path):
    generator, base, _ = both_criteria
    only_thick = tmp_path / "thick_only"
    export_scale(generator, str(only_thick), 4.0, "thin-to-thick")
    with StandInModelServer(str(only_thick)) as server:
        with pytest.raises(InputError, match="soupgan_thin_to_thin_x4: not served .*; it serves soupgan_thin_to_thick_x4"):
            ServingClient(server.address).upsample_array(THICK, 4.0, "thin-to-thin")
        write_nifti(Volume(np.moveaxis(THICK, 0, 2), np.diag([0.8, 0.8, 4.0, 1.0]), "CT"), str(tmp_path / "t.nii.gz"))
        result = soupgan("upsample", tmp_path / "t.nii.gz", tmp_path / "o.nii.gz", "--scale", "4", "--server",
                         server.address)
        assert result.returncode == 2 and len(result.stderr.strip().splitlines()) == 1
        assert "it serves soupgan_thin_to_thick_x4" in result.stderr and not (tmp_path / "o.nii.gz").exists()
    os.rename(only_thick / "soupgan_thin_to_thick_x4", only_thick / "soupgan_thin_to_thin_x4")  # a wrong models.config
    with StandInModelServer(str(only_thick)) as server:
        with pytest.raises(InputError, match="computes thin-to-thick at x4, not thin-to-thin at x4"):
            ServingClient(server.address).upsample_array(THICK, 4.0, "thin-to-thin")
    os.rename(only_thick / "soupgan_thin_to_thin_x4", only_thick / "soupgan_thin_to_thick_x2")
    with StandInModelServer(str(only_thick)) as server:
        with pytest.raises(InputError, match="computes thin-to-thick at x4, not thin-to-thick at x2"):
            ServingClient(server.address).upsample_array(THICK, 2.0, "thin-to-thick")


def test_a_model_without_metadata_is_refused_before_any_volume_is_sent(tmp_path):
    class Old(tf.Module):  # an export of soupgan 0.2.0 had serving_default and with_window only
        @tf.function(input_signature=[tf.TensorSpec([None, None, None], tf.float32)])
        def serve(self, volume):
            return {"volume": volume}

    old = Old()
    tf.saved_model.save(old, str(tmp_path / "soupgan_thin_to_thin_x2" / "1"), signatures={"serving_default": old.serve})
    with StandInModelServer(str(tmp_path)) as server:
        client = ServingClient(server.address)
        with pytest.raises(InputError, match="has no metadata signature .*export it again"):
            client.upsample_array(THICK, 2.0, "thin-to-thin")
        assert server.requests == 1  # the metadata request only
    os.rename(tmp_path / "soupgan_thin_to_thin_x2", tmp_path / "soupgan_x2")  # as 0.2.0 named it
    with StandInModelServer(str(tmp_path)) as server:
        with pytest.raises(InputError, match=r"not served .*; it serves soupgan_x2 \(another criterion, or an export "
                                             r"from before soupgan 0.3.0\)"):
            ServingClient(server.address).upsample_array(THICK, 2.0, "thin-to-thin")
        assert server.requests == 0


def test_tf_servings_batching_rules_refuse_whole_volumes_so_no_batching_is_shipped(both_criteria):
    """Batching concatenates requests along dim 0: a volume's slices would be taken for a batch. The rules, as
    TF Serving's batching session applies them, refuse every signature here, so exports ship no batching file."""
    _, base, _ = both_criteria
    version = os.path.join(base, "soupgan_thin_to_thin_x4", "1")
    requests = [prediction_log_pb2.PredictionLog.FromString(record).predict_log.request
                for record in tf.data.TFRecordDataset(os.path.join(version, WARMUP_FILE)).as_numpy_iterator()]
    signatures = tf.saved_model.load(version).signatures
    refusals = {}
    for request in requests:  # the warm-up records: 6 slices each
        inputs = {key: tf.make_ndarray(value) for key, value in request.inputs.items()}
        outputs = {k: v.numpy() for k, v in signatures[request.model_spec.signature_name](**inputs).items()}
        refusals[request.model_spec.signature_name] = (batching_error(inputs, None, 4),
                                                       batching_error(inputs, None, 32) or
                                                       batching_error(inputs, outputs, 32))
    assert refusals["serving_default"][0] == "Task size 6 is larger than maximum input batch size 4"
    assert refusals["serving_default"][1].startswith("Batched output tensor's 0th dimension does not equal")  # 21 ≠ 6
    assert refusals["with_window"] == ("Batching Run() input tensors must have equal 0th-dimension size",) * 2
    assert batching_error({}, None, 4) == "Batching Run() must have at least one input tensor"  # metadata
    assert not os.path.exists(os.path.join(base, "batching_parameters.txt"))
    with StandInModelServer(base, max_batch_size=32) as batching:
        with pytest.raises(InputError, match=r"batches requests \(--enable_batching\).*without batching"):
            ServingClient(batching.address).upsample_array(THICK, 4.0, "thin-to-thin")


@pytest.mark.slow
def test_a_flow_guided_model_sent_in_slabs_under_a_proxy_limit_equals_one_call(tmp_path):
    generator = random_generator(seed=5)
    generator.flow_input = True
    export_scale(generator, str(tmp_path), 4.0, "thin-to-thin")
    thick = np.moveaxis(phantom((40, 44, 23), seed=6), 2, 0).astype(np.float32)
    proxy_limit = 300_000  # bytes: 58 k voxels after the client's 64 KiB headroom, 8 thick slices of 40 x 44 a call
    with StandInModelServer(str(tmp_path), message_limit=proxy_limit) as server:
        parts = ServingClient(server.address, ClientOptions(max_message_bytes=proxy_limit)).upsample_array(
            thick, 4.0, "thin-to-thin")
        assert server.requests >= 4  # metadata + at least three slabs
    signature = tf.saved_model.load(os.path.join(str(tmp_path), "soupgan_thin_to_thin_x4", "1")).signatures
    whole = signature["serving_default"](volume=tf.constant(thick))["volume"].numpy()
    assert parts.shape == whole.shape == (89, 40, 44)
    assert np.abs(parts - whole).max() <= 1e-5 * np.ptp(whole)


def make_certificate() -> tuple[bytes, bytes]:
    """A self-signed certificate for 127.0.0.1 and localhost, and its key (PEM)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "soupgan test server")])
    now = datetime.datetime.now(datetime.timezone.utc)
    certificate = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
                   .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
                   .not_valid_after(now + datetime.timedelta(hours=1))
                   .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost"),
                                                               x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                                  critical=False)
                   .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
                   .sign(key, hashes.SHA256()))
    pem = certificate.public_bytes(serialization.Encoding.PEM)
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    return pem, key_pem


@pytest.mark.slow
def test_tls_round_trip_with_a_certificate_the_test_makes(both_criteria, tmp_path):
    generator, base, _ = both_criteria
    pem, key = make_certificate()
    (tmp_path / "ca.pem").write_bytes(pem)
    with StandInModelServer(base, credentials=grpc.ssl_server_credentials([(key, pem)])) as server:
        secure = ServingClient(server.address, ClientOptions(tls=True, root_certificates=pem))
        assert close(secure.upsample_array(THICK, 2.0, "thin-to-thick"), expected(generator, 2.0, "thin-to-thick"))
        plain = ServingClient(server.address, ClientOptions(retries=0, timeout_s=5))
        with pytest.raises(InputError, match="no TF Serving reachable|UNAVAILABLE"):
            plain.upsample_array(THICK, 2.0, "thin-to-thick")  # a plaintext client cannot talk to a TLS server
        write_nifti(Volume(np.moveaxis(THICK, 0, 2), np.diag([0.8, 0.8, 4.0, 1.0]), "CT"), str(tmp_path / "t.nii.gz"))
        result = soupgan("upsample", tmp_path / "t.nii.gz", tmp_path / "o.nii.gz", "--scale", "2", "--criterion",
                         "thin-to-thick", "--server", server.address, "--tls-ca", tmp_path / "ca.pem")
        assert result.returncode == 0, result.stderr
    bad = soupgan("upsample", tmp_path / "t.nii.gz", tmp_path / "p.nii.gz", "--scale", "2", "--server",
                  "127.0.0.1:1", "--tls-ca", tmp_path / "t.nii.gz")
    assert bad.returncode == 2 and bad.stderr.strip().endswith("not a PEM certificate")


def test_concurrent_clients_each_get_the_in_process_result(both_criteria):
    generator, base, _ = both_criteria
    volumes = [np.ascontiguousarray(THICK[:, : 20 + 2 * i]) for i in range(4)]  # four different shapes
    references = [expected(generator, 4.0, "thin-to-thin", volume) for volume in volumes]
    with StandInModelServer(base) as server:
        def one(index):
            client = ServingClient(server.address)
            try:
                return client.upsample_array(volumes[index], 4.0, "thin-to-thin")
            finally:
                client.close()

        with ThreadPoolExecutor(4) as pool:
            results = list(pool.map(one, range(4)))
    assert all(close(result, reference) for result, reference in zip(results, references))


def test_a_server_that_dies_mid_request_gives_one_line_and_a_restart_is_retried_through(both_criteria, monkeypatch):
    generator, base, _ = both_criteria
    with StandInModelServer(base, delay_s=30.0) as slow:
        client = ServingClient(slow.address, ClientOptions(retries=2, backoff_s=0.01, timeout_s=20))
        client.servable(2.0, "thin-to-thin")  # metadata read before the server slows the volume down
        slow.predicting.clear()
        outcome = {}

        def run():
            try:
                client.upsample_array(THICK, 2.0, "thin-to-thin")
            except InputError as err:
                outcome["error"] = str(err)

        worker = threading.Thread(target=run)
        worker.start()
        assert slow.predicting.wait(20)
        slow.predicting.clear()
        slow.stop()  # killed with the request in flight
        worker.join(30)
    assert not worker.is_alive() and "\n" not in outcome["error"]
    assert outcome["error"].startswith(f"no TF Serving reachable at {slow.address} after 3 tries")

    restarted, wait = {}, client_module.backoff
    with StandInModelServer(base) as gone:
        port = gone.port  # a port whose server is down when the run starts, and back at the first retry

    def back_up(seconds):  # the client's backoff, with the server restarted as it begins
        if not restarted:
            restarted["server"] = StandInModelServer(base, port=port).__enter__()
        wait(seconds)

    monkeypatch.setattr(client_module, "backoff", back_up)
    try:
        client = ServingClient(f"127.0.0.1:{port}", ClientOptions(retries=3, backoff_s=0.2))
        result = client.upsample_array(THICK, 2.0, "thin-to-thin")
    finally:
        if restarted:
            restarted["server"].stop()
    assert restarted and close(result, expected(generator, 2.0, "thin-to-thin"))
