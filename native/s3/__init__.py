"""A minimal S3 client (SigV4 over httpx) for tiering volumes to S3-compatible storage and for
FetchAndWriteNeedle's remote reads. Blocking; call it from worker threads."""

from native.s3._client import S3Client, S3Error, S3Options
from native.s3._sigv4 import Credentials, sign_headers

__all__ = ["S3Client", "S3Error", "S3Options", "Credentials", "sign_headers"]
