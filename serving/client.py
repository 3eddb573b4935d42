"""gRPC client for soupgan models in TensorFlow Serving (`tensorflow-serving-api` stubs).

It checks the model is AVAILABLE (ModelService.GetModelStatus) before use, raises the channel's message
limits, sets deadlines, retries UNAVAILABLE/RESOURCE_EXHAUSTED with exponential backoff, and speaks TLS when
asked. tensorflow_model_server takes messages up to 2 GiB (it raises gRPC's 4 MB default), so a volume goes
in one request up to `max_output_voxels` (what one graph call may hold in the server's memory); a larger one,
or one over a lower `max_message_bytes` (a proxy in between: `upsample --max-message-mb`), is sent as in-plane
tiles with a halo (`model.sliding_window`): the slice axis stays whole, so the cubic prefilter is exact, and
every tile carries the whole volume's intensity window (`with_window` signature); with a halo of at least the
generator's receptive radius the tiled result equals the untiled one for a spline-input generator (a
flow-input one estimates its flow per tile: close, not equal).
"""
from __future__ import annotations

import dataclasses
import time

import grpc
import numpy as np
import tensorflow as tf
from tensorflow_serving.apis import get_model_status_pb2, model_pb2, model_service_pb2_grpc, predict_pb2
from tensorflow_serving.apis import prediction_service_pb2_grpc

from model.super_resolve import thin_volume
from pipeline.errors import InputError
from pipeline.volume import Volume
from serving.export import model_name
from serving.tiling import upsample_tiled

DEFAULT_MESSAGE_BYTES = 2**31 - 1  # tensorflow_model_server's limit (ServerBuilder::SetMaxMessageSize(kint32max))
MESSAGE_HEADROOM = 64 * 1024  # protobuf framing, names and shapes around the tensor bytes
RETRIED = (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.RESOURCE_EXHAUSTED)
AVAILABLE = get_model_status_pb2.ModelVersionStatus.AVAILABLE


@dataclasses.dataclass
class ClientOptions:
    timeout_s: float = 120.0  # deadline of each call
    retries: int = 3  # extra attempts on UNAVAILABLE / RESOURCE_EXHAUSTED
    backoff_s: float = 0.5  # first wait; doubles each retry
    max_message_bytes: int = DEFAULT_MESSAGE_BYTES  # the server's limit: tile above it
    max_output_voxels: int = 32_000_000  # per request: ~2 GB of the default generator's activations on the server
    halo: int = 24  # in-plane voxels of context per tile side (>= the generator's receptive radius)
    tls: bool = False
    root_certificates: bytes | None = None


class ServingClient:
    """Calls one TF Serving address; errors come out as one-line `InputError`s."""

    def __init__(self, address: str, options: ClientOptions | None = None):
        self.address, self.options = address, options or ClientOptions()
        channel_options = [("grpc.max_send_message_length", -1), ("grpc.max_receive_message_length", -1)]
        if self.options.tls:
            credentials = grpc.ssl_channel_credentials(root_certificates=self.options.root_certificates)
            self.channel = grpc.secure_channel(address, credentials, options=channel_options)
        else:
            self.channel = grpc.insecure_channel(address, options=channel_options)
        self.predictions = prediction_service_pb2_grpc.PredictionServiceStub(self.channel)
        self.models = model_service_pb2_grpc.ModelServiceStub(self.channel)

    def close(self) -> None:
        self.channel.close()

    def _call(self, method, request, what: str):
        """One RPC with deadline and retries; gRPC failures become one-line errors."""
        wait = self.options.backoff_s
        for attempt in range(self.options.retries + 1):
            try:
                return method(request, timeout=self.options.timeout_s)
            except grpc.RpcError as err:
                code = err.code()
                if code in RETRIED and attempt < self.options.retries:
                    time.sleep(wait)  # backoff before the next attempt, not a wait for a race
                    wait *= 2
                    continue
                raise self._error(code, err.details(), what) from None

    def _error(self, code, details: str, what: str) -> InputError:
        details = _reason(details or "")
        if code == grpc.StatusCode.NOT_FOUND:
            return InputError(f"{what}: not served at {self.address} ({details})")
        if code == grpc.StatusCode.UNAVAILABLE:
            return InputError(f"no TF Serving reachable at {self.address} after {self.options.retries + 1} tries "
                              f"({details})")
        if code == grpc.StatusCode.DEADLINE_EXCEEDED:
            return InputError(f"{what}: the deadline of {self.options.timeout_s:g} s passed at {self.address}")
        return InputError(f"{what}: {code.name} from {self.address}: {details}")

    def check_available(self, name: str) -> None:
        """Refuse a model that is not AVAILABLE (unknown, loading, or unloaded)."""
        request = get_model_status_pb2.GetModelStatusRequest(model_spec=model_pb2.ModelSpec(name=name))
        status = self._call(self.models.GetModelStatus, request, f"model {name}")
        states = [version.state for version in status.model_version_status]
        if AVAILABLE not in states:
            raise InputError(f"model {name} at {self.address} is not AVAILABLE (states {states})")

    def predict(self, name: str, inputs: dict[str, np.ndarray], signature: str = "serving_default") -> np.ndarray:
        request = predict_pb2.PredictRequest(model_spec=model_pb2.ModelSpec(name=name, signature_name=signature))
        for key, value in inputs.items():
            request.inputs[key].CopyFrom(tf.make_tensor_proto(value))
        response = self._call(self.predictions.Predict, request, f"model {name}")
        return tf.make_ndarray(response.outputs["volume"])

    def upsample_array(self, thick: np.ndarray, scale: float, criterion: str) -> np.ndarray:
        """A thick volume [Z, H, W] (slice axis first, raw intensities) → the thin one, tiled when needed."""
        name = model_name(scale)
        self.check_available(name)

        def run(volume, window):
            if window is None:
                return self.predict(name, {"volume": volume})
            return self.predict(name, {"volume": volume, "window": window}, "with_window")

        budget = min((self.options.max_message_bytes - MESSAGE_HEADROOM) // 4, self.options.max_output_voxels)
        return upsample_tiled(thick, scale, criterion, run, budget, self.options.halo)


def _reason(details: str) -> str:
    """The line of a gRPC error that says why: a graph assertion's own message where there is one."""
    marker = "assertion failed: ["
    if marker in details:
        return details.split(marker, 1)[1].split("]", 1)[0]
    lines = [line for line in details.splitlines() if line.strip()]
    return lines[0] if lines else ""


def upsample_remote(volume: Volume, client: ServingClient, scale: float, criterion: str,
                    axis: int | None = None) -> Volume:
    """`model.super_resolve.super_resolve`'s result, computed by a TF Serving export of the same generator."""
    axis = volume.slice_axis(axis)
    return thin_volume(volume, client.upsample_array(np.moveaxis(volume.data, axis, 0), scale, criterion),
                       scale, criterion, axis)
