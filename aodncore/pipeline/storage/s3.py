"""A store in an S3 bucket (boto3; transient failures retried with tenacity)."""

from __future__ import annotations

import http.client
import os
import posixpath
import ssl
from typing import TYPE_CHECKING, Any

import botocore.exceptions
from tenacity import Retrying, retry_if_exception, stop_after_attempt, wait_exponential

from aodncore.pipeline.exceptions import InvalidStoreUrlError
from aodncore.pipeline.files import RemotePipelineFile, RemotePipelineFileCollection
from aodncore.util.misc import format_exception
from aodncore.util.s3_util import is_transient_error

from .base import BaseStorageBroker, open_file, patch_points, removed_on_error

if TYPE_CHECKING:
    from aodncore.pipeline.files import PipelineFile

__all__ = ["S3StorageBroker"]


class S3StorageBroker(BaseStorageBroker):
    """Store files in an S3 bucket below the key ``prefix``.

    The client comes from ``boto3.client('s3')``; an S3-compatible endpoint is selected with ``AWS_ENDPOINT_URL``.
    Transient failures are retried with tenacity following :attr:`retry_kwargs` (``tries`` attempts,
    ``delay`` seconds before the first retry multiplied by ``backoff`` each time). Client errors that are not
    transient (missing bucket, access denied...) fail at once.
    """

    retry_kwargs = {
        "tries": 3,
        "delay": 5,
        "backoff": 2,
        "exceptions": (botocore.exceptions.ClientError, botocore.exceptions.ConnectionError,
                       http.client.IncompleteRead, ssl.SSLError),
    }

    def __init__(self, bucket: str, prefix: str) -> None:
        super().__init__()
        self.bucket = bucket
        self.prefix = (prefix or "").lstrip("/")
        self.s3_client = patch_points().boto3.client("s3")

    def __repr__(self) -> str:
        return f"{self.__class__.__name__}(bucket='{self.bucket}', prefix='{self.prefix}')"

    def _should_retry(self, exc: BaseException) -> bool:
        exceptions = tuple(self.retry_kwargs.get("exceptions", ()))
        if not isinstance(exc, exceptions):
            return False
        return not isinstance(exc, botocore.exceptions.ClientError) or is_transient_error(exc)

    def _retry(self, func, *args, **kwargs):
        retrying = Retrying(
            stop=stop_after_attempt(max(int(self.retry_kwargs.get("tries", 1)), 1)),
            wait=wait_exponential(multiplier=self.retry_kwargs.get("delay", 0),
                                  exp_base=self.retry_kwargs.get("backoff", 1)),
            retry=retry_if_exception(self._should_retry),
            reraise=True,
        )
        return retrying(func, *args, **kwargs)

    def _pre_run_hook(self):
        try:
            self._retry(self.s3_client.head_bucket, Bucket=self.bucket)
        except Exception as e:
            raise InvalidStoreUrlError(f"unable to access S3 bucket '{self.bucket}': {format_exception(e)}") from e

    def _post_run_hook(self):
        pass

    def _upload_file(self, pipeline_file: PipelineFile, dest_path_attr: str) -> None:
        key = self._get_absolute_dest_path(pipeline_file, dest_path_attr)

        def upload():
            with open_file(pipeline_file.src_path, "rb") as f:
                self.s3_client.upload_fileobj(f, Bucket=self.bucket, Key=key,
                                              ExtraArgs={"ContentType": pipeline_file.mime_type})

        self._retry(upload)

    def _delete_file(self, pipeline_file: PipelineFile, dest_path_attr: str) -> None:
        key = self._get_absolute_dest_path(pipeline_file, dest_path_attr)
        self._retry(self.s3_client.delete_object, Bucket=self.bucket, Key=key)

    def _download_file(self, remote_pipeline_file: RemotePipelineFile) -> None:
        key = os.path.join(self.prefix, remote_pipeline_file.dest_path)

        def download():
            local_path = remote_pipeline_file.local_path
            with removed_on_error(local_path), open_file(local_path, "wb") as f:
                self.s3_client.download_fileobj(Bucket=self.bucket, Key=key, Fileobj=f)

        self._retry(download)

    def _get_is_overwrite(self, pipeline_file: PipelineFile, abs_path: str) -> bool:
        # S3 lists keys in lexicographic order, so an exact match is always on the first page
        result = self._retry(self.s3_client.list_objects_v2, Bucket=self.bucket, Prefix=abs_path)
        return any(obj.get("Key") == abs_path for obj in result.get("Contents", []))

    def _run_query(self, query):
        list_prefix = os.path.join(self.prefix, query) if self.prefix else query
        contents: list[dict] = []
        kwargs: dict[str, Any] = {"Bucket": self.bucket, "Prefix": list_prefix}
        while True:
            result = self._retry(self.s3_client.list_objects_v2, **kwargs)
            contents.extend(result.get("Contents", []))
            token = result.get("NextContinuationToken")
            if result.get("IsTruncated") is not True or not token:
                break
            kwargs["ContinuationToken"] = token
        # every listed key starts with the prefix, so the relative paths are as distinct as the keys: the
        # collection's uniqueness scan (quadratic in the listing size) is skipped
        return _listing_to_collection(contents, self.prefix, validate_unique=False)

    @staticmethod
    def result_to_remote_pipelinefile_collection(result, prefix: str = "") -> RemotePipelineFileCollection:
        """Convert a ``list_objects_v2`` result into a collection; keys are made relative to ``prefix``."""
        return _listing_to_collection(result.get("Contents", []), prefix, validate_unique=True)


def _listing_to_collection(contents: list[dict], prefix: str, validate_unique: bool) -> RemotePipelineFileCollection:
    """Collection of the ``list_objects_v2`` entries ``contents``; keys are made relative to ``prefix``."""
    base = os.path.join(prefix, "") if prefix else ""
    collection = RemotePipelineFileCollection()
    for obj in contents:
        key = obj["Key"]
        dest_path = key[len(base):] if base and key.startswith(base) else key
        collection.add(RemotePipelineFile(dest_path=dest_path, name=posixpath.basename(key),
                                          last_modified=obj.get("LastModified"), size=obj.get("Size")),
                       validate_unique=validate_unique)
    return collection
