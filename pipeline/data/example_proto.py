"""`tf.train.Example` without TensorFlow: the same messages (feature.proto and example.proto, field for field)
built in a private protobuf descriptor pool, so records are encoded and decoded, byte for byte as
TensorFlow's classes do, on machines without TensorFlow (the portable trainer under JAX)."""
from __future__ import annotations

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

_PACKAGE = "soupgan.example"
_Field = descriptor_pb2.FieldDescriptorProto


def _file_descriptor() -> descriptor_pb2.FileDescriptorProto:
    proto = descriptor_pb2.FileDescriptorProto(name="soupgan/example.proto", package=_PACKAGE, syntax="proto3")
    for name, kind in (("BytesList", _Field.TYPE_BYTES), ("FloatList", _Field.TYPE_FLOAT),
                       ("Int64List", _Field.TYPE_INT64)):
        message = proto.message_type.add(name=name)
        field = message.field.add(name="value", number=1, type=kind, label=_Field.LABEL_REPEATED)
        if kind != _Field.TYPE_BYTES:
            field.options.packed = True
    feature = proto.message_type.add(name="Feature")
    feature.oneof_decl.add(name="kind")
    for number, name in enumerate(("bytes_list", "float_list", "int64_list"), start=1):
        feature.field.add(name=name, number=number, type=_Field.TYPE_MESSAGE, label=_Field.LABEL_OPTIONAL,
                          type_name=f".{_PACKAGE}.{name.title().replace('_', '')}", oneof_index=0)
    features = proto.message_type.add(name="Features")
    entry = features.nested_type.add(name="FeatureEntry")
    entry.options.map_entry = True
    entry.field.add(name="key", number=1, type=_Field.TYPE_STRING, label=_Field.LABEL_OPTIONAL)
    entry.field.add(name="value", number=2, type=_Field.TYPE_MESSAGE, label=_Field.LABEL_OPTIONAL,
                    type_name=f".{_PACKAGE}.Feature")
    features.field.add(name="feature", number=1, type=_Field.TYPE_MESSAGE, label=_Field.LABEL_REPEATED,
                       type_name=f".{_PACKAGE}.Features.FeatureEntry")
    example = proto.message_type.add(name="Example")
    example.field.add(name="features", number=1, type=_Field.TYPE_MESSAGE, label=_Field.LABEL_OPTIONAL,
                      type_name=f".{_PACKAGE}.Features")
    return proto


def _message_classes() -> dict[str, type]:
    pool = descriptor_pool.DescriptorPool()
    pool.Add(_file_descriptor())
    return {name: message_factory.GetMessageClass(pool.FindMessageTypeByName(f"{_PACKAGE}.{name}"))
            for name in ("Example", "Features", "Feature", "BytesList", "FloatList", "Int64List")}


_CLASSES = _message_classes()
Example, Features, Feature = _CLASSES["Example"], _CLASSES["Features"], _CLASSES["Feature"]
BytesList, FloatList, Int64List = _CLASSES["BytesList"], _CLASSES["FloatList"], _CLASSES["Int64List"]
