"""TEST STAND-IN for tensorflow_model_server (whose C++ binary cannot be installed here): a gRPC
PredictionService + ModelService on 127.0.0.1, built from the `tensorflow-serving-api` stubs, that serves the
SavedModels under a model base by name / version / signature and, like the real server, refuses messages
over 2 GiB (`message_limit`: lower, as a proxy in front of it would).

- `delay_s` makes every Predict of a volume slow (not the metadata), to exercise client deadlines and a server
  killed mid-request; `predicting` is set when such a Predict starts.
- `max_batch_size` plays `--enable_batching`: each request is checked as TF Serving's batching session
  checks a one-task batch (tensorflow_serving/batching/batching_util.cc ComputeTensorBatchSize, and
  batching_session.cc: the task size against max_batch_size, each output's dim 0 against the task's).
- `credentials` (grpc.ssl_server_credentials) serves TLS; `port` reopens a stopped server's port."""
from __future__ import annotations

import os
import threading
from concurrent import futures

import grpc
import tensorflow as tf
from tensorflow_serving.apis import get_model_status_pb2, model_service_pb2_grpc, predict_pb2
from tensorflow_serving.apis import prediction_service_pb2_grpc

MESSAGE_LIMIT = 2**31 - 1  # tensorflow_model_server's: ServerBuilder::SetMaxMessageSize(kint32max)


def batching_error(inputs: dict, outputs: dict | None, max_batch_size: int) -> str | None:
    """What TF Serving's batching session says of a one-task batch (None: it passes): inputs checked before
    the run, outputs (when given) after it."""
    if outputs is None:
        if not inputs:
            return "Batching Run() must have at least one input tensor"
        sizes = {value.shape[0] if value.ndim else None for value in inputs.values()}
        if None in sizes:
            return "Batching Run() input tensors must have at least one dimension"
        if len(sizes) > 1:
            return "Batching Run() input tensors must have equal 0th-dimension size"
        size = sizes.pop()
        if size > max_batch_size:
            return f"Task size {size} is larger than maximum input batch size {max_batch_size}"
        return None
    size = next(iter(inputs.values())).shape[0]
    for value in outputs.values():
        if value.ndim == 0:
            return "Batched output tensor has 0 dimensions"
        if value.shape[0] != size:
            return ("Batched output tensor's 0th dimension does not equal the sum of the 0th dimension sizes of "
                    "the input tensors")
    return None


class StandInModelServer(prediction_service_pb2_grpc.PredictionServiceServicer,
                         model_service_pb2_grpc.ModelServiceServicer):
    def __init__(self, base: str, delay_s: float = 0.0, message_limit: int = MESSAGE_LIMIT,
                 max_batch_size: int | None = None, credentials: grpc.ServerCredentials | None = None,
                 port: int = 0, workers: int = 16):
        self.base, self.delay_s, self.max_batch_size = base, delay_s, max_batch_size
        self.loaded, self.requests = {}, 0
        self._lock = threading.Lock()
        self.predicting = threading.Event()
        self.server = grpc.server(futures.ThreadPoolExecutor(max_workers=workers), options=[
            ("grpc.max_receive_message_length", message_limit), ("grpc.max_send_message_length", message_limit)])
        prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(self, self.server)
        model_service_pb2_grpc.add_ModelServiceServicer_to_server(self, self.server)
        address = f"127.0.0.1:{port}"
        self.port = (self.server.add_secure_port(address, credentials) if credentials
                     else self.server.add_insecure_port(address))
        self._released = threading.Event()

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def __enter__(self):
        self.server.start()
        return self

    def __exit__(self, *exc):
        self.stop()

    def stop(self) -> None:
        """Stop at once, aborting requests in flight (a crashed or killed server)."""
        self._released.set()
        self.server.stop(grace=None).wait()

    def _versions(self, name: str) -> list[int]:
        folder = os.path.join(self.base, name)
        return sorted(int(v) for v in os.listdir(folder) if v.isdigit()) if os.path.isdir(folder) else []

    def _model(self, spec, context):
        versions = self._versions(spec.name)
        version = spec.version.value if spec.HasField("version") else (versions[-1] if versions else None)
        if version not in versions:
            context.abort(grpc.StatusCode.NOT_FOUND, f"Servable not found for request: Latest({spec.name})")
        key = (spec.name, version)
        with self._lock:  # one load per servable, as the server's loader does
            if key not in self.loaded:
                self.loaded[key] = tf.saved_model.load(os.path.join(self.base, spec.name, str(version)))
        return self.loaded[key], version

    def GetModelStatus(self, request, context):
        versions = self._versions(request.model_spec.name)
        if not versions:
            context.abort(grpc.StatusCode.NOT_FOUND, f"Could not find any versions of model {request.model_spec.name}")
        response = get_model_status_pb2.GetModelStatusResponse()
        for version in versions:
            response.model_version_status.add(version=version, state=get_model_status_pb2.ModelVersionStatus.AVAILABLE)
        return response

    def Predict(self, request, context):
        with self._lock:
            self.requests += 1
        if request.inputs:
            self.predicting.set()
            if self.delay_s:
                self._released.wait(self.delay_s)
        model, version = self._model(request.model_spec, context)
        name = request.model_spec.signature_name or "serving_default"
        if name not in model.signatures:
            context.abort(grpc.StatusCode.FAILED_PRECONDITION, f'Serving signature key "{name}" not found.')
        arrays = {key: tf.make_ndarray(value) for key, value in request.inputs.items()}
        if self.max_batch_size is not None and (error := batching_error(arrays, None, self.max_batch_size)):
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, error)
        try:
            outputs = {key: value.numpy() for key, value in
                       model.signatures[name](**{key: tf.constant(value) for key, value in arrays.items()}).items()}
        except tf.errors.InvalidArgumentError as err:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, err.message)
        if self.max_batch_size is not None and (error := batching_error(arrays, outputs, self.max_batch_size)):
            context.abort(grpc.StatusCode.FAILED_PRECONDITION, error)
        response = predict_pb2.PredictResponse()
        response.model_spec.name, response.model_spec.signature_name = request.model_spec.name, name
        response.model_spec.version.value = version
        for key, value in outputs.items():
            response.outputs[key].CopyFrom(tf.make_tensor_proto(value))
        return response


def main() -> None:
    """`python -m tests.serving.standin_server BASE [--port P]`: serve BASE until stopped (benchmarks run it in a
    process of its own); prints the address once it listens."""
    import argparse
    import signal

    parser = argparse.ArgumentParser(description=main.__doc__.splitlines()[0])
    parser.add_argument("base")
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()
    with StandInModelServer(args.base, port=args.port) as server:
        stopped = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stopped.set())
        print(server.address, flush=True)
        stopped.wait()


if __name__ == "__main__":
    main()
