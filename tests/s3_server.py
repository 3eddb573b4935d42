"""A real S3-compatible server (moto) on 127.0.0.1 for object-storage tests; a stand-in for AWS S3 only."""
from __future__ import annotations

import contextlib
import os

CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_REGION": "us-east-1"}


@contextlib.contextmanager
def local_s3(bucket: str):
    """Yield (endpoint, boto3 client, env for subprocesses) with `bucket` created; stops the server after."""
    import boto3
    import requests
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)  # the system picks a free port
    server.start()
    try:
        port = server.get_host_and_port()[1]
        endpoint = f"http://127.0.0.1:{port}"
        requests.post(f"{endpoint}/moto-api/reset", timeout=30).raise_for_status()  # moto's state is per process
        client = boto3.client("s3", endpoint_url=endpoint, aws_access_key_id="testing", aws_secret_access_key="testing", region_name="us-east-1")
        client.create_bucket(Bucket=bucket)
        env = dict(os.environ, **CREDENTIALS, AWS_ENDPOINT_URL_S3=endpoint, S3_ENDPOINT=endpoint, S3_USE_HTTPS="0",
                   S3_VERIFY_SSL="0", AWS_EC2_METADATA_DISABLED="true")
        yield endpoint, client, env
    finally:
        server.stop()
