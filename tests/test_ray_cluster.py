"""seqadd-batch on a real Ray cluster with no shared disk, and on S3-compatible storage.

One machine plays a cluster: a head node with no CPUs (so every worker runs elsewhere) and a
worker node started by ``unshare --mount`` in its own mount namespace, with a tmpfs over the
test's data folder, so it cannot see the driver's files, as a real worker machine cannot.
Token authentication is on (Ray's default), the token shared through RAY_AUTH_TOKEN_PATH.
An S3 server (moto, in server mode on 127.0.0.1) plays object storage. Needs root (mount
namespaces) and the `unshare` tool; skips with the reason otherwise.

The tests run in file order on one cluster: the last ones kill worker nodes.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import ARTIFACTS, BIN
from test_ray import descendants

ray = pytest.importorskip("ray", reason="needs the ray extra")
pytestmark = [
    pytest.mark.cluster,
    pytest.mark.skipif(os.geteuid() != 0, reason="a worker in its own mount namespace needs root"),
    pytest.mark.skipif(shutil.which("unshare") is None, reason="needs unshare (util-linux)"),
]
RAY = str(BIN / "ray")
#: Small object stores: three nodes on a small machine.
STORE = str(80 * 1024 * 1024)
#: Fast detection of a dead node (Ray's defaults take about half a minute).
SYSTEM_CONFIG = json.dumps(
    {"health_check_period_ms": 1000, "health_check_failure_threshold": 3,
     "health_check_timeout_ms": 1000, "health_check_initial_delay_ms": 1000}
)  # fmt: skip


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Cluster:
    """Head, worker nodes and the S3 server of one test module, with their environment."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.data = root / "data"  # what the isolated worker cannot see
        self.data.mkdir()
        self.port = free_port()
        self.address = f"127.0.0.1:{self.port}"
        token = root / "auth_token"
        token.write_text(os.urandom(16).hex())
        token.chmod(0o600)
        self.s3_port = free_port()
        self.env = os.environ | {
            "RAY_AUTH_MODE": "token",
            "RAY_AUTH_TOKEN_PATH": str(token),
            "RAY_BACKEND_LOG_LEVEL": "fatal",
            "RAY_USAGE_STATS_ENABLED": "0",
            "AWS_ENDPOINT_URL": f"http://127.0.0.1:{self.s3_port}",
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_REGION": "us-east-1",
            "AWS_DEFAULT_REGION": "us-east-1",
            "PYTHONUNBUFFERED": "1",
        }
        self.workers: list[subprocess.Popen] = []
        self.s3 = None

    def start(self) -> None:
        self.s3 = subprocess.Popen(
            [str(BIN / "moto_server"), "-H", "127.0.0.1", "-p", str(self.s3_port)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=self.env,
        )  # fmt: skip
        subprocess.run(
            [RAY, "start", "--head", "--num-cpus", "0", "--port", str(self.port),
             "--node-ip-address", "127.0.0.1", "--temp-dir", str(self.root / "ray"),
             "--object-store-memory", STORE, "--include-dashboard", "false",
             "--disable-usage-stats", "--system-config", SYSTEM_CONFIG],
            check=True, capture_output=True, env=self.env, timeout=300,
        )  # fmt: skip

    def add_worker(self, ip: str, *, isolated: bool, cpus: int = 1) -> subprocess.Popen:
        """A worker node at ``ip`` (one of 127.0.0.0/8, so the driver, on the head's address,
        attaches to the head's raylet); ``isolated``: the data folder hidden under a tmpfs."""
        start = (
            f"{RAY} start --address {self.address} --node-ip-address {ip} --num-cpus {cpus} "
            f"--object-store-memory {STORE} --temp-dir {self.root}/ray-{ip} --block"
        )
        if isolated:
            start = f"mount -t tmpfs tmpfs {self.data} && exec {start}"
            argv = ["unshare", "--mount", "--propagation", "private", "sh", "-c", start]
        else:
            argv = ["sh", "-c", f"exec {start}"]
        node = subprocess.Popen(
            argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=self.env,
            start_new_session=True,
        )  # fmt: skip
        self.workers.append(node)
        self.wait_for_cpus(self.cpus_now() + cpus)
        return node

    def cpus_now(self) -> float:
        result = self.driver("print(ray.cluster_resources().get('CPU', 0))")
        return float(result.stdout.split()[-1])

    def wait_for_cpus(self, cpus: float, timeout: float = 240) -> None:
        deadline = time.monotonic() + timeout
        while self.cpus_now() < cpus:
            assert time.monotonic() < deadline, f"the cluster never reached {cpus} CPUs"
            time.sleep(1)

    def driver(self, code: str, timeout: float = 300) -> subprocess.CompletedProcess:
        """A Python driver connected to the cluster, running ``code`` (ray imported)."""
        script = f"import ray\nray.init(address={self.address!r}, log_to_driver=False)\n{code}"
        result = subprocess.run(
            [sys.executable, "-c", script], capture_output=True, text=True, env=self.env,
            timeout=timeout,
        )  # fmt: skip
        assert result.returncode == 0, result.stderr[-3000:]
        return result

    def batch(self, *args: str, timeout: float = 600) -> subprocess.CompletedProcess:
        return subprocess.run(
            [str(BIN / "seqadd-batch"), "--address", self.address, *args],
            capture_output=True, env=self.env, timeout=timeout,
        )  # fmt: skip

    def stop(self) -> None:
        subprocess.run([RAY, "stop", "--force"], capture_output=True, env=self.env)
        for node in self.workers:
            with_suppressed_kill(node)
        if self.s3:
            self.s3.kill()
            self.s3.wait()


def with_suppressed_kill(node: subprocess.Popen) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(node.pid, signal.SIGKILL)
    node.wait()


def raylet_of(node: subprocess.Popen) -> int:
    """The pid of the raylet that a `ray start --block` process started."""
    pids = [pid for pid in descendants(node.pid, "raylet") if "ray::" not in cmdline(pid)]
    assert pids, "the node's raylet is running"
    return pids[0]


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
    except OSError:
        return ""


@pytest.fixture(scope="module")
def cluster():
    # A short path: Ray's socket names must fit in 107 bytes.
    root = Path(tempfile.mkdtemp(prefix="sq"))
    nodes = Cluster(root)
    try:
        nodes.start()
        # Two CPUs: a Ray Data read task (one CPU) beside an answering actor (half of one).
        nodes.add_worker("127.0.0.2", isolated=True, cpus=2)
        yield nodes
    finally:
        nodes.stop()
        shutil.rmtree(root, ignore_errors=True)


def write_queries(folder: Path, lines: int = 60_000) -> dict[str, bytes]:
    """Two files: one with invalid and empty lines and no final newline, one big enough to be
    cut into several chunks."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(7)
    a, b = rng.integers(0, 1000, (2, lines))
    files = {
        "mixed.txt": b"535+61\n\nx+1\n12 + 7\n1234+1\n999+999",
        "big.txt": "".join(
            f"{x}+{y}\n" for x, y in zip(a.tolist(), b.tolist(), strict=True)
        ).encode(),
    }
    for name, data in files.items():
        (folder / name).write_bytes(data)
    return files


def expected_answers(folder: Path, name: str, model: str) -> bytes:
    run = subprocess.run(
        [str(BIN / "seqadd-run"), "--model", model, "-f", str(folder / name)], capture_output=True
    )
    return run.stdout


def driver_only_model(cluster: Cluster) -> str:
    """A copy of the 3-digit model in the data folder, which the worker node cannot see."""
    folder = cluster.data / "model"
    if not folder.exists():
        folder.mkdir()
        shutil.copy(ARTIFACTS / "addition-3d" / "model.onnx", folder / "model.onnx")
    return str(folder)


def s3(cluster: Cluster, code: str) -> str:
    """Run boto3 ``code`` (``client`` is an S3 client of the test server); its stdout."""
    script = "import boto3\nclient = boto3.client('s3')\n" + textwrap.dedent(code)
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=cluster.env
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


def put_queries(cluster: Cluster, bucket: str, prefix: str, files: dict[str, bytes]) -> None:
    staged = cluster.data / f"upload-{bucket}"
    staged.mkdir(exist_ok=True)
    for name, data in files.items():
        (staged / name).write_bytes(data)
    s3(
        cluster,
        f"""
        import pathlib
        client.create_bucket(Bucket={bucket!r})
        for path in sorted(pathlib.Path({str(staged)!r}).iterdir()):
            client.upload_file(str(path), {bucket!r}, {prefix!r} + path.name)
        """,
    )


def get_objects(cluster: Cluster, bucket: str, prefix: str) -> dict[str, bytes]:
    listing = s3(
        cluster,
        f"""
        import base64, json
        pages = client.get_paginator('list_objects_v2').paginate(Bucket={bucket!r},
                                                                Prefix={prefix!r})
        found = {{}}
        for page in pages:
            for item in page.get('Contents', []):
                if item['Key'].endswith('/'):  # pyarrow's empty "directory" marker
                    continue
                body = client.get_object(Bucket={bucket!r}, Key=item['Key'])['Body'].read()
                found[item['Key'][len({prefix!r}):]] = base64.b64encode(body).decode()
        print(json.dumps(found))
        """,
    )
    import base64

    return {key: base64.b64decode(value) for key, value in json.loads(listing).items()}


def test_the_worker_node_cannot_see_the_drivers_files(cluster):
    """The isolation the other tests rely on: a task on the worker node does not see a file
    that the driver sees, and every CPU of the cluster is the worker node's."""
    probe = cluster.data / "probe.txt"
    probe.write_text("seen\n")
    result = cluster.driver(
        textwrap.dedent(
            f"""
            import os
            @ray.remote(num_cpus=0.5)
            def look():
                return ray.get_runtime_context().get_node_id(), os.path.exists({str(probe)!r})
            node, seen = ray.get(look.remote())
            print(node != ray.get_runtime_context().get_node_id(), seen)
            """
        )
    )
    assert os.path.exists(probe)
    assert result.stdout.split()[-2:] == ["True", "False"], "another node, blind to the file"


def test_local_inputs_and_a_driver_only_model_on_a_worker_that_sees_neither(cluster):
    inputs = cluster.data / "local-in"
    files = write_queries(inputs)
    model = driver_only_model(cluster)
    out = cluster.data / "local-out"
    result = cluster.batch(str(inputs), "-o", str(out), "--model", model, "--chunk-bytes", "50000")
    assert result.returncode == 1, result.stderr.decode()[-3000:]  # invalid lines, as seqadd-run
    assert "mixed.txt:3: unexpected character 'x'" in result.stderr.decode()
    assert sorted(p.name for p in out.iterdir()) == sorted(f"{n}.answers.txt" for n in files)
    for name in files:
        assert (out / f"{name}.answers.txt").read_bytes() == expected_answers(inputs, name, model)


def test_s3_inputs_to_a_local_output(cluster):
    files = write_queries(cluster.data / "s3-src")
    put_queries(cluster, "queries", "in/", files)
    out = cluster.data / "from-s3"
    model = driver_only_model(cluster)
    result = cluster.batch("s3://queries/in/", "-o", str(out), "--model", model,
                           "--chunk-bytes", "50000")  # fmt: skip
    assert result.returncode == 1, result.stderr.decode()[-3000:]
    for name in files:
        expected = expected_answers(cluster.data / "s3-src", name, model)
        assert (out / f"{name}.answers.txt").read_bytes() == expected


def test_local_inputs_to_s3_and_s3_to_s3_commit_with_a_success_marker(cluster):
    inputs = cluster.data / "to-s3"
    files = write_queries(inputs)
    model = driver_only_model(cluster)
    s3(cluster, "client.create_bucket(Bucket='answers')")
    for source, prefix in ((str(inputs), "from-local/"), ("s3://queries/in/", "from-s3/")):
        if source.startswith("s3://"):
            put_queries(cluster, "queries", "in/", files)  # idempotent: same bucket and keys
        result = cluster.batch(source, "-o", f"s3://answers/{prefix}", "--model", model,
                               "--chunk-bytes", "50000", "--format", "jsonl")  # fmt: skip
        assert result.returncode == 1, result.stderr.decode()[-3000:]
        written = get_objects(cluster, "answers", prefix)
        assert sorted(written) == sorted([*(f"{n}.jsonl" for n in files), "_SUCCESS"]), prefix
        for name in files:
            alone = subprocess.run(
                [str(BIN / "seqadd-run"), "--model", model, "-f", str(inputs / name),
                 "--format", "jsonl"], capture_output=True,
            )  # fmt: skip
            assert written[f"{name}.jsonl"] == alone.stdout, (prefix, name)


def test_a_failed_s3_write_says_why_and_an_existing_prefix_is_refused(cluster):
    model = driver_only_model(cluster)
    put_queries(cluster, "fails", "in/", {"a.txt": b"1+1\n" * 1000})
    # The output's bucket does not exist: the workers fail writing their parts.
    result = cluster.batch("s3://fails/in/", "-o", "s3://no-such-bucket/out/", "--model", model)
    assert result.returncode == 2
    lines = result.stderr.decode().strip().splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith("seqadd-batch: cannot write s3://no-such-bucket/out/"), lines
    assert "bucket does not exist" in lines[0]
    s3(cluster, "client.put_object(Bucket='fails', Key='taken/x', Body=b'')")
    result = cluster.batch("s3://fails/in/a.txt", "-o", "s3://fails/taken/", "--model", model)
    assert result.returncode == 2 and "it exists" in result.stderr.decode()


def test_answer_dataset_reads_s3_through_the_isolated_worker(cluster):
    put_queries(cluster, "api", "q/", {"q.txt": b"535+61\nx\n999+999\n"})
    result = cluster.driver(
        textwrap.dedent(
            f"""
            from seqadd_ray import answer_dataset
            rows = answer_dataset(ray.data.read_text("s3://api/q/"),
                                  model={driver_only_model(cluster)!r}, concurrency=1).take_all()
            print([(r["text"], r["answer"]) for r in rows])
            """
        )
    )
    assert result.stdout.strip().splitlines()[-1] == (
        "[('535+61', '596'), ('x', None), ('999+999', '1998')]"
    )


def test_a_killed_worker_node_with_another_alive_still_completes(cluster):
    inputs = cluster.data / "fault-in"
    write_queries(inputs, lines=150_000)
    # Three workers: Ray spreads them, so the spare gets one; once it is gone, the isolated
    # node (two CPUs, four workers' worth) takes its place.
    spare = cluster.add_worker("127.0.0.3", isolated=False, cpus=1)
    out = cluster.data / "fault-out"
    model = driver_only_model(cluster)
    process = subprocess.Popen(
        [str(BIN / "seqadd-batch"), "--address", cluster.address, str(inputs), "-o", str(out),
         "--model", model, "--chunk-bytes", "50000", "--workers", "3"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=cluster.env,
    )  # fmt: skip
    killed = threading.Event()

    def kill_spare_when_busy() -> None:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and process.poll() is None:
            if descendants(spare.pid, "ChunkAnswerer"):
                time.sleep(1.0)  # let it take a chunk
                os.kill(raylet_of(spare), signal.SIGKILL)
                killed.set()
                return
            time.sleep(0.2)

    killer = threading.Thread(target=kill_spare_when_busy)
    killer.start()
    _, stderr = process.communicate(timeout=600)
    killer.join()
    with_suppressed_kill(spare)
    assert killed.is_set(), "the spare node's raylet was killed mid-run"
    assert process.returncode == 1, stderr.decode()[-3000:]
    for name in ("big.txt", "mixed.txt"):
        expected = expected_answers(inputs, name, model)
        assert (out / f"{name}.answers.txt").read_bytes() == expected


def test_losing_the_only_worker_node_ends_within_the_wait_and_leaves_nothing(cluster):
    """Last: it kills the isolated worker node. The output is on S3, where parts were
    already written when the node dies: none of them, and no _SUCCESS, is left."""
    inputs = cluster.data / "lost-in"
    write_queries(inputs, lines=200_000)
    s3(cluster, "client.create_bucket(Bucket='lost')")
    node = cluster.workers[0]
    process = subprocess.Popen(
        [str(BIN / "seqadd-batch"), "--address", cluster.address, str(inputs), "-o", "s3://lost/out/",
         "--model", driver_only_model(cluster), "--chunk-bytes", "20000", "--wait", "10"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=cluster.env,
    )  # fmt: skip
    deadline = time.monotonic() + 300
    while process.poll() is None and time.monotonic() < deadline:
        if descendants(node.pid, "ChunkAnswerer"):
            break
        time.sleep(0.2)
    time.sleep(1.0)
    assert process.poll() is None, "still running when the node is killed"
    with_suppressed_kill(node)
    killed_at = time.monotonic()
    _, stderr = process.communicate(timeout=300)
    lines = stderr.decode().strip().splitlines()
    assert process.returncode == 2, lines
    assert lines[-1].startswith("seqadd-batch: no Ray node could host a worker"), lines
    # The wait (10 s) after Ray notices the node is gone, plus time to stop: not forever.
    assert time.monotonic() - killed_at < 120
    assert get_objects(cluster, "lost", "out/") == {}
