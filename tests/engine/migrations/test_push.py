"""`envsync push`: names, versions and content checked against the bucket before anything goes up."""

from __future__ import annotations

import uuid
from pathlib import Path

import boto3
import pytest

from envsync.migrations.push import PREFIX, PushError, push


@pytest.fixture
def bucket(moto_server):
    s3 = boto3.client("s3", endpoint_url=moto_server.endpoint_url, region_name="us-east-1",
                      aws_access_key_id="testing", aws_secret_access_key="testing")
    name = f"envsync-dev-migrations-{uuid.uuid4().hex[:8]}"
    s3.create_bucket(Bucket=name)
    s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})
    s3.put_object(Bucket=name, Key=PREFIX + "V1__first.sql", Body=b"CREATE TABLE a (id INT);\n")
    s3.put_object(Bucket=name, Key=PREFIX + "V3__third.sql", Body=b"CREATE TABLE c (id INT);\n")
    return s3, name


def files(folder: Path, **scripts: str):
    folder.mkdir(exist_ok=True)
    paths = []
    for name, body in scripts.items():
        (folder / name).write_text(body)
        paths.append(folder / name)
    return paths


def keys(s3, bucket):
    return sorted(o["Key"][len(PREFIX):] for o in s3.list_objects_v2(Bucket=bucket, Prefix=PREFIX)["Contents"])


def test_a_later_version_goes_up_and_an_unchanged_one_is_left_as_it_is(bucket, tmp_path):
    s3, name = bucket
    paths = files(tmp_path / "s", **{"V4__fourth.sql": "CREATE TABLE d (id INT);\n"})
    pushed = push(s3, name, paths)
    assert [(p.name, p.action) for p in pushed] == [("V4__fourth.sql", "uploaded")] and pushed[0].version_id
    # pushed again, checked out with CRLF: the same script (same checksum), left as it is
    again = files(tmp_path / "crlf", **{"V4__fourth.sql": "CREATE TABLE d (id INT);\r\n"})
    assert [(p.name, p.action) for p in push(s3, name, again)] == [("V4__fourth.sql", "unchanged")]
    assert keys(s3, name) == ["V1__first.sql", "V3__third.sql", "V4__fourth.sql"]


def test_every_problem_is_named_and_nothing_is_uploaded(bucket, tmp_path):
    s3, name = bucket
    paths = files(tmp_path / "s", **{"V2__late.sql": "SELECT 1;\n",             # before V3: out of order
                                     "V3.0__again.sql": "SELECT 1;\n",          # version 3 is V3__third.sql
                                     "V1__first.sql": "CREATE TABLE a (id BIGINT);\n",  # changed
                                     "v5__lower.sql": "SELECT 1;\n",            # near-miss name
                                     "V6__ok.sql": "SELECT 1;\n", "V6.0__twin.sql": "SELECT 2;\n",
                                     "V7__use.sql": "USE other;\n"})
    with pytest.raises(PushError) as raised:
        push(s3, name, paths)
    message = str(raised.value)
    for expected in ("V2__late.sql: older than V3__third.sql", "V3.0__again.sql: version 3 is already V3__third.sql",
                     "V1__first.sql: the bucket holds it with content envsync push did not upload",
                     "v5__lower.sql: not a migration script",
                     "V6.0__twin.sql and V6__ok.sql have the same version", "V7__use.sql: statement 1 (line 1): USE"):
        assert expected in message, (expected, message)
    assert keys(s3, name) == ["V1__first.sql", "V3__third.sql"]


def test_replace_fixes_a_script_in_place(bucket, tmp_path):
    s3, name = bucket
    paths = files(tmp_path / "s", **{"V3__third.sql": "CREATE TABLE c (id BIGINT);\n"})
    assert [p.action for p in push(s3, name, paths, replace=True)] == ["uploaded"]
    body = s3.get_object(Bucket=name, Key=PREFIX + "V3__third.sql")["Body"].read()
    assert body == b"CREATE TABLE c (id BIGINT);\n"
