"""seqadd on Ray Data: a local cluster started inside the test session (num_cpus=2)."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import signal
import subprocess
import tempfile
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


def descendants(pid: int, text: str) -> list[int]:
    """Processes below ``pid`` whose command line contains ``text`` (not another test's)."""
    parents: dict[int, int] = {}
    lines: dict[int, str] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            parents[int(entry.name)] = int(
                (entry / "stat").read_text().rsplit(")", 1)[1].split()[1]
            )
            lines[int(entry.name)] = (entry / "cmdline").read_bytes().decode(errors="replace")
        except (OSError, IndexError, ValueError):
            continue
    found = []
    for child, line in lines.items():
        ancestor = parents.get(child)
        while ancestor and ancestor != pid:
            ancestor = parents.get(ancestor)
        if ancestor == pid and text in line:
            found.append(child)
    return found


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


needs_openvino = pytest.mark.skipif(
    importlib.util.find_spec("openvino") is None, reason="needs the openvino extra"
)


@needs_openvino
def test_the_engine_option_answers_as_seqadd_run_does_with_that_engine(tmp_path: Path):
    inputs = tmp_path / "in"
    inputs.mkdir()
    (inputs / "q.txt").write_bytes(
        b"".join(f"{i * 7 % 1000}+{i % 997}\n".encode() for i in range(3000))
    )
    result = run_batch(str(inputs), "-o", str(tmp_path / "out"), "--format", "jsonl",
                       "--engine", "openvino")  # fmt: skip
    assert result.returncode == 0, result.stderr.decode()[-2000:]
    alone = command("seqadd-run", "--model", MODEL, "-f", str(inputs / "q.txt"),
                    "--format", "jsonl", "--engine", "openvino")  # fmt: skip
    assert (tmp_path / "out" / "q.txt.jsonl").read_bytes() == alone.stdout


def test_an_engine_missing_on_the_driver_is_one_line_before_ray_starts(tmp_path: Path):
    shim = tmp_path / "shim" / "openvino"
    shim.mkdir(parents=True)
    (shim / "__init__.py").write_text("raise ImportError('No module named openvino')\n")
    (tmp_path / "q.txt").write_bytes(b"1+1\n")
    result = run_batch(
        str(tmp_path / "q.txt"), "-o", str(tmp_path / "out"), "--engine", "openvino",
        env=os.environ | {"PYTHONPATH": str(shim.parent)},
    )  # fmt: skip
    lines = result.stderr.decode().splitlines()
    assert (result.returncode, len(lines)) == (2, 1), lines
    assert lines[0] == "seqadd-batch: the openvino engine needs pip install 'seqadd[openvino]'"
    assert not (tmp_path / "out").exists()


@needs_openvino
def test_the_api_answers_in_the_engine_asked_for(cluster):
    from seqadd_ray import answer_dataset
    from seqadd_runtime import Adder

    queries = [f"{i * 13 % 1000}+{i}" for i in range(500)]
    dataset = ray.data.from_items([{"text": q, "id": i} for i, q in enumerate(queries)])
    rows = sorted(
        answer_dataset(dataset, model=MODEL, concurrency=1, engine="openvino").take_all(),
        key=lambda r: r["id"],
    )
    with Adder.load(MODEL, engine="openvino", threads=1, doubtful="answer") as adder:
        a, b = (np.array([int(q.split("+")[side]) for q in queries]) for side in (0, 1))
        sums, confidence = adder.add_arrays(a, b)
    assert [r["answer"] for r in rows] == [str(value) for value in sums]
    np.testing.assert_array_equal([r["confidence"] for r in rows], confidence.astype(np.float64))


def test_a_fifo_input_is_refused_at_once_instead_of_waiting_forever(tmp_path: Path):
    fifo = tmp_path / "queries.fifo"
    os.mkfifo(fifo)
    result = run_batch(str(fifo), "-o", str(tmp_path / "out"), timeout=60)
    assert result.returncode == 2
    assert result.stderr.decode().splitlines() == [
        f"seqadd-batch: cannot read {fifo}: not a regular file"
    ]
    assert not (tmp_path / "out").exists()


def in_own_mount(tmp_path: Path, mount: str, *args: str) -> subprocess.CompletedProcess:
    """seqadd-batch with ``tmp_path/mnt`` replaced by a fresh tmpfs (``mount`` its options):
    as root, permissions do not stop a write, a read-only or full file system does."""
    if os.geteuid() != 0 or not shutil.which("unshare"):
        pytest.skip("needs root and unshare for a private read-only or tiny file system")
    (tmp_path / "mnt").mkdir()
    script = f'mount -t tmpfs -o {mount} tmpfs "$1" && shift && exec "$@"'
    argv = ["unshare", "--mount", "--propagation", "private", "sh", "-c", script, "sh",
            str(tmp_path / "mnt"), str(BIN / "seqadd-batch"), "--model", MODEL, *args]  # fmt: skip
    env = os.environ | {"PYTHONUNBUFFERED": "1"}
    return subprocess.run(argv, capture_output=True, env=env, timeout=900)


def test_a_read_only_output_parent_is_one_line_before_ray_starts(tmp_path: Path):
    write_inputs(tmp_path / "in")
    out = tmp_path / "mnt" / "out"
    result = in_own_mount(tmp_path, "ro,size=1m", str(tmp_path / "in"), "-o", str(out))
    assert result.returncode == 2
    assert result.stderr.decode().splitlines() == [
        f"seqadd-batch: cannot write {out}: Read-only file system"
    ]


def test_a_full_output_disk_is_one_line_naming_the_output(tmp_path: Path):
    write_inputs(tmp_path / "in")  # big.txt's answers are about 600 KB
    out = tmp_path / "mnt" / "out"
    result = in_own_mount(tmp_path, "size=64k", str(tmp_path / "in"), "-o", str(out), *CHUNK)
    assert result.returncode == 2, result.stderr.decode()[-2000:]
    lines = result.stderr.decode().strip().splitlines()
    assert lines[-1] == f"seqadd-batch: cannot write {out}: No space left on device", lines


def test_sigterm_after_ray_started_is_143_in_one_line_and_leaves_no_staging(tmp_path: Path):
    inputs = write_inputs(tmp_path / "in")
    for copy in range(3):
        (tmp_path / "in" / f"big{copy}.txt").write_bytes((tmp_path / "in" / "big.txt").read_bytes())
    del inputs
    out = tmp_path / "out"
    process = subprocess.Popen(
        [str(BIN / "seqadd-batch"), "--model", MODEL, *CHUNK, str(tmp_path / "in"), "-o",
         str(out)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        env=os.environ | {"PYTHONUNBUFFERED": "1"},
    )  # fmt: skip
    deadline = time.monotonic() + 300
    while process.poll() is None and time.monotonic() < deadline:
        if descendants(process.pid, "ChunkAnswerer"):
            break
        time.sleep(0.2)
    assert process.poll() is None, "still running once its Ray workers are up"
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=300)
    assert process.returncode == 143, stderr.decode()[-2000:]
    lines = [line for line in stderr.decode().splitlines() if "logging.cc" not in line]
    assert lines == ["seqadd-batch: interrupted"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in"], "no output, no staging"


def test_a_local_ray_needs_no_home_and_keeps_its_files_private(tmp_path: Path):
    """Without --address: HOME unwritable and unused; Ray's session files in a private folder
    that is gone at the end (not ~/.ray, not /tmp/ray); token authentication on."""
    write_inputs(tmp_path / "in")
    home = tmp_path / "no-home"  # does not exist
    scratch = Path(tempfile.mkdtemp(prefix="sq"))  # short: Ray's socket paths must fit
    env = {"HOME": str(home), "TMPDIR": str(scratch)}
    for name in ("RAY_AUTH_MODE", "RAY_AUTH_TOKEN", "RAY_AUTH_TOKEN_PATH"):
        env[name] = ""
    result = subprocess.run(
        [str(BIN / "seqadd-batch"), "--model", MODEL, str(tmp_path / "in" / "mixed.txt"),
         "-o", str(tmp_path / "out")], capture_output=True, env=os.environ | env, timeout=900,
    )  # fmt: skip
    assert result.returncode == 1, result.stderr.decode()[-2000:]
    assert not home.exists()
    assert list(scratch.iterdir()) == [], "the private folder is removed at the end"
    scratch.rmdir()
    assert (tmp_path / "out" / "mixed.txt.answers.txt").read_bytes().splitlines()[0] == b"596"


def test_a_chunk_whose_file_is_gone_or_shorter_names_the_file(tmp_path: Path):
    from seqadd_ray.chunks import read_chunk, scan
    from seqadd_runtime.errors import InputError

    path = tmp_path / "q.txt"
    path.write_bytes(b"1+1\n" * 1000)
    (chunk,) = scan(str(path), 0)
    path.write_bytes(b"1+1\n")
    with pytest.raises(InputError, match=f"cannot read {path}: it changed during the run"):
        read_chunk(chunk)
    path.unlink()
    with pytest.raises(InputError, match=f"cannot read {path}: No such file or directory"):
        read_chunk(chunk)


def test_first_line_is_the_cause_raised_on_a_worker_not_rays_advice(cluster, tmp_path: Path):
    """A failure inside a Ray Data actor comes back wrapped twice; the one line is ours."""
    from seqadd_ray.failures import first_line

    path = tmp_path / "gone.txt"

    class Reader:
        def __call__(self, batch):
            from seqadd_ray.chunks import Chunk, read_chunk

            read_chunk(Chunk(0, 0, str(path), 0, 10, 1))
            return batch

    dataset = ray.data.from_items([{"x": 1}]).map_batches(
        Reader, compute=ray.data.ActorPoolStrategy(size=1), num_cpus=0.5
    )
    with pytest.raises(Exception) as caught:
        dataset.take_all()
    assert first_line(caught.value) == f"cannot read {path}: No such file or directory"


@pytest.fixture(scope="module")
def half_doubtful_model(tmp_path_factory) -> tuple[Path, list[str]]:
    """The 3-digit file with its doubt threshold at the median confidence of some queries,
    so about half of their answers are doubtful; and those queries."""
    onnx = pytest.importorskip("onnx", reason="editing a model needs onnx")
    from seqadd_runtime import Adder

    queries = [f"{a}+{b}" for a in range(0, 1000, 37) for b in range(5, 1000, 91)]
    a = np.array([int(q.split("+")[0]) for q in queries])
    b = np.array([int(q.split("+")[1]) for q in queries])
    with Adder.load(MODEL, doubtful="answer") as adder:
        threshold = float(np.median(adder.add_arrays(a, b)[1]))
    model = onnx.load(ARTIFACTS / "addition-3d" / "model.onnx")
    for prop in model.metadata_props:
        if prop.key == "seqadd.doubt":
            prop.value = json.dumps({"threshold": threshold, "calibration": {}})
    path = tmp_path_factory.mktemp("doubt") / "half.onnx"
    onnx.save(model, path)
    return path, queries


@pytest.mark.parametrize("doubtful", ["reject", "mark"])
def test_doubtful_answers_are_treated_as_seqadd_run_treats_them(
    tmp_path: Path, half_doubtful_model, doubtful
):
    model, queries = half_doubtful_model
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "q.txt").write_text("\n".join(queries) + "\n")
    args = ["--doubtful", doubtful, "--format", "jsonl"]
    result = command(
        "seqadd-batch", "--model", str(model), str(tmp_path / "in"), "-o", str(tmp_path / "out"),
        *args,
    )  # fmt: skip
    alone = command(
        "seqadd-run", "--model", str(model), "-f", str(tmp_path / "in" / "q.txt"), *args
    )
    assert (tmp_path / "out" / "q.txt.jsonl").read_bytes() == alone.stdout
    assert result.returncode == alone.returncode == (1 if doubtful == "reject" else 0)
    rows = [json.loads(line) for line in alone.stdout.decode().splitlines()]
    doubtful_count = sum(
        1 for row in rows if row.get("doubtful") or "doubtful answer" in (row["error"] or "")
    )
    assert 0 < doubtful_count < len(rows)
    assert f"{doubtful_count:,} of {len(rows):,} answers were doubtful" in result.stderr.decode()


def test_the_api_marks_or_withholds_doubtful_answers(cluster, half_doubtful_model):
    from seqadd_ray import answer_dataset

    model, queries = half_doubtful_model
    dataset = ray.data.from_items([{"text": q, "id": i} for i, q in enumerate(queries)])
    for doubtful in ("mark", "reject"):
        rows = sorted(
            answer_dataset(dataset, model=str(model), concurrency=1, doubtful=doubtful).take_all(),
            key=lambda r: r["id"],
        )
        flagged = [r for r in rows if r["doubtful"]]
        assert 0 < len(flagged) < len(rows)
        if doubtful == "mark":
            assert all(r["answer"] and r["error"] is None for r in rows)
        else:
            assert all(r["answer"] is None and "doubtful answer" in r["error"] for r in flagged)
