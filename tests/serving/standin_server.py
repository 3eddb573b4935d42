"""TEST STAND-IN for tensorflow_model_server (whose C++ binary cannot be installed here): a gRPC
PredictionService + ModelService on 127.0.0.1, built from the `tensorflow-serving-api` stubs, that serves the
SavedModels under a model base by name / version / signature and, like the real server, refuses messages
over 2 GiB (`message_limit`: lower, as a proxy in front of it would). `delay_s` makes every Predict slow, to
exercise client deadlines."""
from __future__ import annotations

import os
import threading
from concurrent import futures

import grpc
import tensorflow as tf
from tensorflow_serving.apis import get_model_status_pb2, model_service_pb2_grpc, predict_pb2
from tensorflow_serving.apis import prediction_service_pb2_grpc

MESSAGE_LIMIT = 2**31 - 1  # tensorflow_model_server's: ServerBuilder::SetMaxMessageSize(kint32max)


class StandInModelServer(prediction_service_pb2_grpc.PredictionServiceServicer,
                         model_service_pb2_grpc.ModelServiceServicer):
    def __init__(self, base: str, delay_s: float = 0.0, message_limit: int = MESSAGE_LIMIT):
        self.base, self.delay_s = base, delay_s
        self.loaded, self.requests = {}, 0
        self.server = grpc.server(futures.ThreadPoolExecutor(max_workers=2), options=[
            ("grpc.max_receive_message_length", message_limit), ("grpc.max_send_message_length", message_limit)])
        prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(self, self.server)
        model_service_pb2_grpc.add_ModelServiceServicer_to_server(self, self.server)
        self.port = self.server.add_insecure_port("127.0.0.1:0")
        self._released = threading.Event()

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def __enter__(self):
        self.server.start()
        return self

    def __exit__(self, *exc):
        self._released.set()
        self.server.stop(grace=None)

    def _versions(self, name: str) -> list[int]:
        folder = os.path.join(self.base, name)
        return sorted(int(v) for v in os.listdir(folder) if v.isdigit()) if os.path.isdir(folder) else []

    def _model(self, spec, context):
        versions = self._versions(spec.name)
        version = spec.version.value if spec.HasField("version") else (versions[-1] if versions else None)
        if version not in versions:
            context.abort(grpc.StatusCode.NOT_FOUND, f"Servable not found for request: Latest({spec.name})")
        key = (spec.name, version)
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
        self.requests += 1
        if self.delay_s:
            self._released.wait(self.delay_s)
        model, version = self._model(request.model_spec, context)
        name = request.model_spec.signature_name or "serving_default"
        if name not in model.signatures:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"signature {name} not found")
        inputs = {key: tf.constant(tf.make_ndarray(value)) for key, value in request.inputs.items()}
        try:
            outputs = model.signatures[name](**inputs)
        except tf.errors.InvalidArgumentError as err:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, err.message)
        response = predict_pb2.PredictResponse()
        response.model_spec.name, response.model_spec.signature_name = request.model_spec.name, name
        response.model_spec.version.value = version
        for key, value in outputs.items():
            response.outputs[key].CopyFrom(tf.make_tensor_proto(value.numpy()))
        return response
