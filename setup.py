"""soupgan: 3D MRI/CT slice super-resolution (SOUP-GAN) — Beam preprocessing, Keras 3 GAN, TF Serving.

The dependency pins live here and only here; README.md explains each one. This file also works as
Apache Beam's ``--setup_file`` so that remote workers (Dataflow, Flink, Spark) get the same code.
"""
import re

from setuptools import find_packages, setup

TENSORFLOW = "2.16.2"  # tensorflow-io 0.37.1 is built against TF 2.16 only; its ops fail to load on >= 2.17
BEAM = "2.77.0"

INSTALL_REQUIRES = [
    f"tensorflow=={TENSORFLOW}",
    "tensorflow-io==0.37.1",  # s3://, hdfs://, az://, http(s):// for tf.io.gfile and tf.data
    "tensorflow-serving-api==2.16.1",  # PredictionService gRPC stubs matching TF 2.16
    "keras>=3.15,<3.16",  # Keras 3 line that runs on TF 2.16.2
    f"apache-beam[tfrecord]=={BEAM}",  # Beam's TFRecord IO and its crcmod fallback
    "google-crc32c>=1.5",  # the CRC32C of TFRecord framing (pipeline/io/tfrecord_framing.py), written and read
    "protobuf>=4.25,<5",  # records without TensorFlow (pipeline/data/example_proto.py); TF 2.16 allows < 5
    "nibabel>=5.2,<6",
    "pydicom>=3.0,<4",
    "numpy>=1.26,<2",  # TF 2.16 wheels are built against NumPy 1.x
    "scipy>=1.11,<2",
    "scikit-image>=0.24,<0.27",  # TV-L1 optical flow of the flow-guided slice interpolation (pipeline.method.slice_flow)
    "matplotlib>=3.8",  # training curves and comparison figures saved as PNG (Agg backend, no display)
]

EXTRAS_REQUIRE = {
    "gpu": [f"tensorflow[and-cuda]=={TENSORFLOW}"],
    "gcp": [f"apache-beam[gcp]=={BEAM}"],
    "aws": [f"apache-beam[aws]=={BEAM}"],
    "dask": [f"apache-beam[dask]=={BEAM}"],
    "bench": ["tf-keras==2.16.0"],  # Keras 2 for the authors' package in benchmarks/bench_upsample.py
    "test": [
        "pytest>=8",
        "pytest-xdist>=3.5",  # two test processes (pytest.ini): many tests wait on subprocesses, not on a core
        "moto[server]>=5",  # local S3-compatible server for the s3:// round trip
        f"apache-beam[aws,dask]=={BEAM}",  # s3:// through Beam and the DaskRunner, both tested
    ],
}

setup(
    name="soupgan",
    version=re.search(r'__version__ = "([^"]+)"', open("soupgan/__init__.py", encoding="utf-8").read()).group(1),
    description="3D MRI/CT super-resolution along the slice axis (SOUP-GAN), from Beam shards to TF Serving",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    python_requires=">=3.11,<3.13",  # keras 3.15 needs 3.11; TF 2.16 wheels stop at 3.12
    packages=find_packages(include=["pipeline*", "model*", "serving*", "beam_jobs*", "soupgan*"]),
    package_data={"model": ["default_weights/*.keras", "default_weights/*.json", "default_weights/*.md"],
                  "soupgan": ["recipes/*.toml"]},
    install_requires=INSTALL_REQUIRES,
    extras_require=EXTRAS_REQUIRE,
    entry_points={"console_scripts": ["soupgan=soupgan.cli:main"]},
)
