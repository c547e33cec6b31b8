"""``python -m aodncore.bin.upload_to_s3 FILE [-b BUCKET] [-k KEY] [-v]``: upload one file with
:func:`aodncore.util.aws.upload_to_s3` (the key defaults to the path as given)."""

from __future__ import annotations

import argparse
import logging
from collections.abc import Sequence

from aodncore.util.aws import upload_to_s3

__all__ = ["main"]

DEFAULT_BUCKET = "aodn-dataflow-dev"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Upload a file to an S3 bucket.")
    parser.add_argument("local_file", help="file to upload")
    parser.add_argument("-b", "--bucket", default=DEFAULT_BUCKET, help=f"bucket name (default {DEFAULT_BUCKET})")
    parser.add_argument("-k", "--s3-key", default=None, help="object key (default: the file path as given)")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging of the AWS libraries")
    args = parser.parse_args(argv)
    if args.verbose:
        logging.basicConfig(level=logging.DEBUG)
        for name in ("boto3", "botocore", "s3transfer"):
            logging.getLogger(name).setLevel(logging.DEBUG)
    upload_to_s3(args.local_file, args.bucket, key=args.s3_key or args.local_file)
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
