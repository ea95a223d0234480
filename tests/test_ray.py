"""seqadd on Ray Data: a local cluster started inside the test session (num_cpus=2)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import ARTIFACTS, BIN, command

ray = pytest.importorskip("ray", reason="needs the ray extra")
MODEL = str(ARTIFACTS / "addition-3d")


@pytest.fixture(scope="module")
def cluster():
    """A local Ray instance for the API tests (the command starts its own)."""
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    ray.data.DataContext.get_current().enable_progress_bars = False
    yield
    ray.shutdown()


def write_inputs(folder: Path) -> dict[str, list[bytes]]:
    """Three files: valid and invalid lines, no final newline, and one big enough to be cut
    into several chunks."""
    folder.mkdir()
    rng = np.random.default_rng(3)
    a, b = rng.integers(0, 1000, 150_000), rng.integers(0, 1000, 150_000)
    files = {
        "mixed.txt": [b"535+61", b"", b"x+1", b"12 + 7", b"1234+1", b"999+999"],
        "big.txt": [f"{x}+{y}".encode() for x, y in zip(a.tolist(), b.tolist(), strict=True)],
        "empty.txt": [],
    }
    for name, lines in files.items():
        data = b"\n".join(lines) + (b"\n" if name == "big.txt" else b"")
        (folder / name).write_bytes(data)
    return files


#: Small chunks, so that even these small files are cut into several.
CHUNK = ("--chunk-bytes", "100000")


def run_batch(*args: str, **kwargs) -> subprocess.CompletedProcess:
    return command("seqadd-batch", "--model", MODEL, *CHUNK, *args, **kwargs)


@pytest.mark.parametrize("output_format", ["text", "tsv", "jsonl"])
def test_every_file_gets_aligned_answers_in_order(tmp_path: Path, output_format):
    inputs = write_inputs(tmp_path / "in")
    out = tmp_path / "out"
    result = run_batch(str(tmp_path / "in"), "-o", str(out), "--format", output_format)
    assert result.returncode == 1, result.stderr.decode()[-2000:]  # invalid lines, as seqadd-run
    stderr = result.stderr.decode()
    assert "mixed.txt:2: empty line" in stderr and "mixed.txt:3: unexpected character 'x'" in stderr
    assert "mixed.txt:5: operand '1234' has 4 digits" in stderr
    extension = {"text": "answers.txt", "tsv": "tsv", "jsonl": "jsonl"}[output_format]
    assert sorted(p.name for p in out.iterdir()) == sorted(f"{n}.{extension}" for n in inputs)
    for name, lines in inputs.items():
        written = (out / f"{name}.{extension}").read_bytes().splitlines()
        assert len(written) == len(lines), name
        # The same bytes seqadd-run writes for the same file.
        alone = command(
            "seqadd-run", "--model", MODEL, "-f", str(tmp_path / "in" / name),
            "--format", output_format,
        )  # fmt: skip
        assert (out / f"{name}.{extension}").read_bytes() == alone.stdout, name
    if output_format == "jsonl":
        records = [json.loads(line) for line in (out / "big.txt.jsonl").read_text().splitlines()]
        assert [r["line"] for r in records] == list(range(1, len(records) + 1))


def test_a_file_that_cannot_be_read_fails_the_run_before_anything_is_written(tmp_path: Path):
    write_inputs(tmp_path / "in")
    out = tmp_path / "out"
    missing = str(tmp_path / "nope.txt")
    result = run_batch(str(tmp_path / "in" / "mixed.txt"), missing, "-o", str(out))
    assert result.returncode == 2
    lines = result.stderr.decode().strip().splitlines()
    assert lines == [f"seqadd-batch: cannot read {missing}: No such file or directory"]
    assert list(tmp_path.iterdir()) == [tmp_path / "in"], "no output folder, complete or not"


def test_an_existing_output_folder_is_refused(tmp_path: Path):
    write_inputs(tmp_path / "in")
    (tmp_path / "out").mkdir()
    result = run_batch(str(tmp_path / "in"), "-o", str(tmp_path / "out"))
    assert result.returncode == 2 and "it exists" in result.stderr.decode()


def test_a_killed_worker_is_replaced_and_the_output_is_still_complete(tmp_path: Path):
    inputs = write_inputs(tmp_path / "in")
    for copy in range(3):  # more chunks, so the run lasts long enough to lose a worker
        (tmp_path / "in" / f"big{copy}.txt").write_bytes((tmp_path / "in" / "big.txt").read_bytes())
    out = tmp_path / "out"
    env = os.environ | {"PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen(
        [str(BIN / "seqadd-batch"), "--model", MODEL, *CHUNK,
         str(tmp_path / "in"), "-o", str(out), "--workers", "2"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
    )  # fmt: skip
    killed = threading.Event()

    def kill_one_worker() -> None:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and process.poll() is None:
            listing = subprocess.run(["pgrep", "-f", "ChunkAnswerer"], capture_output=True)
            pids = [int(pid) for pid in listing.stdout.split()]
            if pids:
                time.sleep(1.0)  # let it start answering a chunk
                os.kill(pids[0], signal.SIGKILL)
                killed.set()
                return
            time.sleep(0.2)

    killer = threading.Thread(target=kill_one_worker)
    killer.start()
    _, stderr = process.communicate(timeout=600)
    killer.join()
    assert killed.is_set(), "a worker was killed mid-run"
    assert process.returncode == 1, stderr.decode()[-2000:]
    big = (tmp_path / "in" / "big.txt").read_bytes().count(b"\n")
    for name in ("big0.txt", "big1.txt", "big2.txt", "big.txt"):
        answers = (out / f"{name}.answers.txt").read_bytes().splitlines()
        assert len(answers) == big, name
    assert len((out / "mixed.txt.answers.txt").read_bytes().splitlines()) == len(
        inputs["mixed.txt"]
    )


def test_the_api_adds_answer_confidence_and_error_columns(cluster):
    from seqadd_ray import answer_dataset

    queries = ["535+61", "x", "999+999", "1-1"] * 50
    dataset = ray.data.from_items([{"text": q, "id": i} for i, q in enumerate(queries)])
    rows = sorted(
        answer_dataset(dataset, model=MODEL, concurrency=1).take_all(), key=lambda r: r["id"]
    )
    assert [r["answer"] for r in rows[:4]] == ["596", None, "1998", None]
    assert rows[0]["error"] is None and "unexpected character 'x'" in rows[1]["error"]
    assert "negative" in rows[3]["error"]
    assert 0 < rows[0]["confidence"] <= 1 and np.isnan(rows[1]["confidence"])
    assert len(rows) == len(queries)
