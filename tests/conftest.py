"""Fixtures every test folder may use: the S3 and MongoDB test servers (started once per session, on
first use) and remote stores on them."""

from tests.remote_stores import remote_store  # noqa: F401
from tests.servers.mongo import mongo_db_name, mongo_uri  # noqa: F401
from tests.servers.s3 import fake_aws_env, s3_bucket, s3_endpoint, s3_server  # noqa: F401
