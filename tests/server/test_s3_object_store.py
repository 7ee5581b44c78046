"""bemidb's S3 reader on its own, against real SeaweedFS: many threads seeking and reading one shared file object
(what DuckDB's threads do) each get exactly the bytes at their own offsets, with and without the block cache."""

from __future__ import annotations

import os
import random
from concurrent.futures import ThreadPoolExecutor

import pytest
from pyarrow.fs import S3FileSystem

from bemidb.storage.object_store import BLOCK, PARALLEL_PIECE, ObjectStoreFS

SIZE = 3 * BLOCK + 12_345  # blocks and a ragged end
THREADS = 8


@pytest.fixture
def stored(s3, bucket):
    data = os.urandom(SIZE - 4) + b"PAR1"  # a file's last bytes are checked to be Parquet's magic
    s3.client().put_object(Bucket=bucket, Key="iceberg/t/f.parquet", Body=data)
    host = s3.endpoint.split("://", 1)[1]
    arrow_fs = S3FileSystem(access_key="bemidb-test-key", secret_key="bemidb-test-secret", region="us-east-1",
                            endpoint_override=host, scheme="http", force_virtual_addressing=False)
    return arrow_fs, f"s3://{bucket}/iceberg/t/f.parquet", data


@pytest.mark.parametrize("cache_bytes", [0, 64 * BLOCK], ids=["no-cache", "block-cache"])
def test_threads_sharing_one_file_read_their_own_offsets(stored, cache_bytes):
    arrow_fs, path, data = stored
    store = ObjectStoreFS(arrow_fs, cache_bytes=cache_bytes)
    shared = store.open(path, "rb")
    assert store.size(path) == SIZE

    def reader(seed: int) -> list[str]:
        rng = random.Random(seed)
        wrong = []
        for _ in range(40):
            offset = rng.randrange(SIZE)
            length = rng.choice([1, 8, 1000, BLOCK // 3, BLOCK + 17, 2 * BLOCK])
            shared.seek(offset)
            got = shared.read(length)
            if got != data[offset:offset + length]:
                wrong.append(f"[{offset}, +{length}): {len(got)} bytes, not the file's")
            if shared.tell() != offset + len(got):
                wrong.append(f"tell() {shared.tell()} after reading [{offset}, +{len(got)})")
        return wrong

    with ThreadPoolExecutor(THREADS) as pool:
        wrong = [w for found in pool.map(reader, range(THREADS)) for w in found]
    assert wrong == []
    if cache_bytes:
        before = store.stats.requests
        shared.seek(0)
        assert shared.read(SIZE) == data
        assert store.stats.requests - before <= 1  # most of it from the cache by now


def test_a_file_that_does_not_end_like_parquet_is_refused(s3, bucket, stored):
    arrow_fs, _path, _data = stored
    s3.client().put_object(Bucket=bucket, Key="iceberg/t/bad.parquet", Body=os.urandom(BLOCK))
    store = ObjectStoreFS(arrow_fs)
    handle = store.open(f"s3://{bucket}/iceberg/t/bad.parquet", "rb")
    handle.seek(BLOCK - 8)
    with pytest.raises(OSError, match="Parquet magic"):
        handle.read(8)


def test_a_long_read_is_fetched_in_pieces_at_once_and_joined_in_order(s3, bucket, stored):
    arrow_fs, _path, _data = stored
    data = os.urandom(2 * PARALLEL_PIECE + 3 * BLOCK + 99) + b"PAR1"
    s3.client().put_object(Bucket=bucket, Key="iceberg/t/long.parquet", Body=data)
    store = ObjectStoreFS(arrow_fs, cache_bytes=4 * len(data))
    handle = store.open(f"s3://{bucket}/iceberg/t/long.parquet", "rb")
    handle.seek(5)
    assert handle.read(len(data)) == data[5:]
    assert store.stats.requests >= 1 + 3  # the look-up, then the pieces
