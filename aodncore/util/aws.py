"""``upload_to_s3``: copy one local file to an S3 bucket, reporting on standard output (classic helper script use).

Credentials come from the standard AWS chain (or the named profile); ``AWS_ENDPOINT_URL`` selects an S3-compatible
endpoint.
"""

from __future__ import annotations

import os

__all__ = ["upload_to_s3"]


def upload_to_s3(local_file: str, bucket_name: str, bucket_prefix: str | None = None, key: str | None = None,
                 aws_profile: str | None = None) -> None:
    """Upload ``local_file`` to ``s3://<bucket_name>/<key>`` and print the outcome.

    ``key`` defaults to the file's base name, under ``<bucket_prefix>/`` when a prefix is given. A missing file or
    missing credentials are only reported (``The file <f> was not found`` / ``Credentials not available``); any
    other error propagates.
    """
    import boto3
    from botocore.exceptions import NoCredentialsError

    key = key or os.path.basename(local_file)
    if bucket_prefix:
        key = f"{bucket_prefix.rstrip('/')}/{key}"
    client = boto3.session.Session(profile_name=aws_profile).client("s3")
    try:
        client.upload_file(local_file, bucket_name, key)
    except FileNotFoundError:
        print(f"The file {local_file} was not found")
        return
    except NoCredentialsError:
        print("Credentials not available")
        return
    print(f"Upload Successful: {local_file} to {bucket_name}/{key}")
