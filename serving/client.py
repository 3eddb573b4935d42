"""gRPC client for soupgan models in TensorFlow Serving (`tensorflow-serving-api` stubs).

Before it sends a volume it checks the model is AVAILABLE (ModelService.GetModelStatus) and reads its
`metadata` signature, refusing a model that computes another criterion or scale than asked; the model's
receptive field and input kind then decide how a volume too large for one request is cut
(`serving.tiling`: in-plane tiles for a spline-input model, slabs of whole slices for a flow-guided one,
either equal to one call). It raises the channel's message limits, sets deadlines, retries
UNAVAILABLE/RESOURCE_EXHAUSTED with exponential backoff (a server restarting), and speaks TLS when asked.
tensorflow_model_server takes messages up to 2 GiB (it raises gRPC's 4 MB default), so a volume goes in one
request up to `max_output_voxels` (64 M by default, ~2.6 GB at the server); a proxy's lower limit is
`max_message_bytes` (`upsample --max-message-mb`).
"""
from __future__ import annotations

import dataclasses
import json
import time

import grpc
import numpy as np
import tensorflow as tf
from tensorflow_serving.apis import get_model_status_pb2, model_pb2, model_service_pb2_grpc, predict_pb2
from tensorflow_serving.apis import prediction_service_pb2_grpc

from model.inference.super_resolve import thin_volume
from pipeline.config import THIN_TO_THICK, THIN_TO_THIN
from pipeline.errors import InputError
from pipeline.volume import Volume
from serving.export import METADATA_FORMAT, legacy_model_name, model_name
from serving.tiling import PART_OUTPUT_VOXELS, upsample_in_parts

DEFAULT_MESSAGE_BYTES = 2**31 - 1  # tensorflow_model_server's limit (ServerBuilder::SetMaxMessageSize(kint32max))
MESSAGE_HEADROOM = 64 * 1024  # protobuf framing, names and shapes around the tensor bytes
RETRIED = (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.RESOURCE_EXHAUSTED)
AVAILABLE = get_model_status_pb2.ModelVersionStatus.AVAILABLE
BATCHING_MARKERS = ("Batching Run()", "0th dimension does not equal", "larger than maximum input batch size",
                    "have different shapes and padding is turned off")  # TF Serving's batching session


@dataclasses.dataclass
class ClientOptions:
    timeout_s: float = 120.0  # deadline of each call
    retries: int = 3  # extra attempts on UNAVAILABLE / RESOURCE_EXHAUSTED
    backoff_s: float = 0.5  # first wait; doubles each retry
    max_message_bytes: int = DEFAULT_MESSAGE_BYTES  # the server's limit: tile above it
    max_output_voxels: int = PART_OUTPUT_VOXELS  # per request (and never above the model's own limit)
    tls: bool = False
    root_certificates: bytes | None = None


class ServingClient:
    """Calls one TF Serving address; errors come out as one-line `InputError`s."""

    def __init__(self, address: str, options: ClientOptions | None = None):
        self.address, self.options = address, options or ClientOptions()
        backoff_ms = max(50, int(self.options.backoff_s * 1000))  # re-dial a restarting server as often as we retry
        channel_options = [("grpc.max_send_message_length", -1), ("grpc.max_receive_message_length", -1),
                           ("grpc.initial_reconnect_backoff_ms", backoff_ms),
                           ("grpc.min_reconnect_backoff_ms", backoff_ms),
                           ("grpc.max_reconnect_backoff_ms", backoff_ms * 2 ** self.options.retries)]
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
                    backoff(wait)
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
        if any(marker in details for marker in BATCHING_MARKERS):
            return InputError(f"{what}: {self.address} batches requests (--enable_batching), and a whole volume is "
                              "not a batch; serve soupgan models without batching")
        return InputError(f"{what}: {code.name} from {self.address}: {details}")

    def check_available(self, name: str) -> None:
        """Refuse a model that is not AVAILABLE (unknown, loading, or unloaded)."""
        request = get_model_status_pb2.GetModelStatusRequest(model_spec=model_pb2.ModelSpec(name=name))
        status = self._call(self.models.GetModelStatus, request, f"model {name}")
        states = [version.state for version in status.model_version_status]
        if AVAILABLE not in states:
            raise InputError(f"model {name} at {self.address} is not AVAILABLE (states {states})")

    def _serves(self, name: str) -> bool:
        try:
            self.check_available(name)
        except InputError:
            return False
        return True

    def metadata(self, name: str) -> dict:
        """The servable's own account of what it computes (`serving.export.servable_metadata`)."""
        try:
            answer = self.predict(name, {}, "metadata", output="metadata")
        except InputError as err:
            if "metadata" in str(err) and "not found" in str(err):
                raise InputError(f"model {name} at {self.address} has no metadata signature (exported before soupgan "
                                 "0.3.0?); export it again with `soupgan export`") from None
            raise
        metadata = json.loads(answer.item())
        if metadata.get("format") != METADATA_FORMAT:
            raise InputError(f"model {name} at {self.address}: metadata format {metadata.get('format')!r}, this "
                             f"client reads {METADATA_FORMAT}")
        return metadata

    def servable(self, scale: float, criterion: str) -> tuple[str, dict]:
        """The name and metadata of the model for this scale and criterion, or a one-line refusal: not served
        (naming a model of the other criterion or an old export if the server has one), or one whose metadata
        says it computes something else."""
        name = model_name(scale, criterion)
        try:
            self.check_available(name)
        except InputError as err:
            if "not served" not in str(err):
                raise
            candidates = [model_name(scale, other) for other in (THIN_TO_THIN, THIN_TO_THICK) if other != criterion]
            others = [other for other in (*candidates, legacy_model_name(scale)) if self._serves(other)]
            if others:
                raise InputError(f"{err}; it serves {', '.join(others)} (another criterion, or an export from before "
                                 "soupgan 0.3.0)") from None
            raise
        metadata = self.metadata(name)
        if metadata["criterion"] != criterion or abs(metadata["scale"] - scale) > 1e-6:
            raise InputError(f"model {name} at {self.address} computes {metadata['criterion']} at "
                             f"x{metadata['scale']:g}, not {criterion} at x{scale:g}")
        return name, metadata

    def predict(self, name: str, inputs: dict[str, np.ndarray], signature: str = "serving_default",
                output: str = "volume") -> np.ndarray:
        request = predict_pb2.PredictRequest(model_spec=model_pb2.ModelSpec(name=name, signature_name=signature))
        for key, value in inputs.items():
            request.inputs[key].CopyFrom(tf.make_tensor_proto(value))
        response = self._call(self.predictions.Predict, request, f"model {name}")
        return tf.make_ndarray(response.outputs[output])

    def upsample_array(self, thick: np.ndarray, scale: float, criterion: str) -> np.ndarray:
        """A thick volume [Z, H, W] (slice axis first, raw intensities) → the thin one, in parts when needed."""
        name, metadata = self.servable(scale, criterion)

        def run(volume, window):
            if window is None:
                return self.predict(name, {"volume": volume})
            return self.predict(name, {"volume": volume, "window": window}, "with_window")

        budget = min((self.options.max_message_bytes - MESSAGE_HEADROOM) // 4, self.options.max_output_voxels,
                     metadata["max_output_voxels"])
        return upsample_in_parts(thick, scale, criterion, run, budget, metadata)


def backoff(seconds: float) -> None:
    """The wait before a retry (its own function, so a test can restart a server as the wait begins)."""
    time.sleep(seconds)


def _reason(details: str) -> str:
    """The line of a gRPC error that says why: a graph assertion's own message where there is one."""
    marker = "assertion failed: ["
    if marker in details:
        return details.split(marker, 1)[1].split("]", 1)[0]
    lines = [line for line in details.splitlines() if line.strip()]
    return lines[0] if lines else ""


def upsample_remote(volume: Volume, client: ServingClient, scale: float, criterion: str,
                    axis: int | None = None) -> Volume:
    """`model.inference.super_resolve.super_resolve`'s result, computed by a TF Serving export of the same generator."""
    axis = volume.slice_axis(axis)
    return thin_volume(volume, client.upsample_array(np.moveaxis(volume.data, axis, 0), scale, criterion),
                       scale, criterion, axis)
