"""The web page (web/) in a real headless Chromium, against the Python runtime: `make web-check`.

The Python side draws the queries (every stress family, users' queries, queries written with
white space and leading zeros, invalid lines), answers them with ``seqadd_runtime.Adder`` and
writes model copies with rewritten metadata (a higher doubt threshold, and files the codec
must refuse, each with the Python runtime's reason) with the onnx package. web/test/browser.js
has the page answer the same lines and reports what it did; every answer, message, confidence
and doubt is compared here. The codec's own tests run in Node (web/test/codec.test.js) on the
same files.

The run also writes docs/web.png (the page's screenshot, shown in the README) and docs/web.md
(page weight, load time, queries/s beside the Python runtime's, and the agreement figures).
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from seqadd_runtime import Adder
from seqadd_runtime.artifact import ArtifactError, ModelInfo
from seqadd_runtime.families import STRESS_FAMILIES, user_queries
from seqadd_runtime.parse import LineBatch, explain, read_query

REPO = Path(__file__).resolve().parents[1]
WEB = REPO / "web"
SHIPPED_DIR = REPO / "runtime" / "seqadd_runtime" / "models"
SHIPPED = {"addition-3d": 3, "addition-5d": 5}
FILES = ("model.onnx", "model.int8.onnx")
CHROMIUM = os.environ.get("SEQADD_CHROMIUM") or shutil.which("chromium")
NODE = shutil.which("node")
SEED = 22
#: fp32 confidences may differ in the last bits between onnxruntime builds (their kernels
#: differ). int8 ones differ more (native and WebAssembly int8 kernels round differently):
#: they are held to the file's own probe tolerance, what its export allows between engines.
FP32_TOLERANCE = 1e-6

if not CHROMIUM:
    pytest.skip(
        "NOTICE: the web page test needs Chromium (apt-get install -y chromium), which is "
        "not installed here: skipped",
        allow_module_level=True,
    )
if not NODE or not (WEB / "node_modules" / "puppeteer-core").is_dir():
    pytest.skip(
        "the web page test needs Node and web/node_modules: run it with `make web-check`",
        allow_module_level=True,
    )
onnx = pytest.importorskip("onnx", reason="writing model copies needs the onnx package")

#: Invalid lines, and lines people type that are valid, each read by the grammar's reasons.
HAND_LINES = [
    "", "   ", "\t", "12-3", "-1+2", "a+b", "1+2+3", "+3", "3+", "+", "++", "1++2", "1 2+3",
    "12 + 3 4", "535+61=596", "\u0661+\u0662", "\uff15+\uff15", "1e3+1", "0x10+1", "1,000+1",
    "1.5+2", "\x0b1+2", "1+2\x00", "'1'+2", '"1"+2', "\\+1", "1" * 300, " " * 257 + "1+1",
    "\u00e9" * 129, "1\uff0b2", "\u200b1+2", "1\u00a0+2", "\U0001f642+1", "7 + 007", "007+7",
    "0+0", "000+000", " 1+2 ", "1+2\r", "\r1+2", "\t4\t+\t5\t", "1+2\n".strip("\n"),
]  # fmt: skip


def query_lines(digits: int) -> list[str]:
    """About 6,000 lines for a model of this many digits, in a fixed shuffled order."""
    rng = np.random.default_rng([SEED, digits])
    drawn = [family.draw(300, digits, SEED) for family in STRESS_FAMILIES.values()]
    drawn.append(user_queries(rng, 1500, digits))
    a = np.concatenate([pair[0] for pair in drawn]).tolist()
    b = np.concatenate([pair[1] for pair in drawn]).tolist()
    lines = [f"{x}+{y}" for x, y in zip(a, b, strict=True)]
    # Written as people type them: white space, leading zeros, a Windows line ending.
    shapes = [" {x} + {y} ", "{x:0{d}d}+{y}", "{x}+{y}\r", "\t{x}+{y}", "{x}+ 00{y}", "{x} +{y}"]
    for index in range(0, len(lines), 20):
        shape = shapes[(index // 20) % len(shapes)]
        lines[index] = shape.format(x=a[index], y=b[index], d=digits)
    too_long = [f"{10**digits + k}+1" for k in range(50)]
    too_long += [f"1+{10 ** (digits + 1) - k}" for k in range(50)]
    alphabet = [*"0123456789+- \t", "\r", "x", "\u00e9"]
    random_lines = [
        "".join(rng.choice(alphabet, size=rng.integers(0, 2 * digits + 4), p=_weights(alphabet)))
        for _ in range(400)
    ]
    every = lines + HAND_LINES + too_long + random_lines
    return [every[i] for i in rng.permutation(len(every))]


def _weights(alphabet: list[str]) -> np.ndarray:
    """Mostly digits and one '+', so that many random lines are valid and answered."""
    weights = np.array([8.0 if c.isdigit() else 4.0 if c == "+" else 0.5 for c in alphabet])
    return weights / weights.sum()


def python_answers(path: Path, lines: list[str]) -> list[dict]:
    """The Python runtime's answer, confidence, doubt and message for every line, one batch."""
    adder = Adder.load(path, threads=1)
    data = [line.encode("utf-8") for line in lines]
    answers = adder.answer_lines(LineBatch.from_lines(data))
    rows = []
    for index, line in enumerate(data):
        if answers.parsed.valid[index]:
            text, confidence = answers.text[index].decode(), float(answers.confidence[index])
            doubtful = bool(answers.doubtful[index])
            rows.append(
                {"answer": text, "confidence": confidence, "doubtful": doubtful, "error": None}
            )
        else:
            reason = explain(line, adder.spec.digits)
            rows.append({"answer": None, "confidence": None, "doubtful": None, "error": reason})
    return rows


def python_speed(path: Path, batch1: list[str], batch128: list[str]) -> dict:
    """Queries/s of Adder.add in this process: one line per call, 128 lines per call. Doubtful
    answers are returned, as the page shows them (the default would refuse them)."""
    adder = Adder.load(path, threads=1, doubtful="answer")
    adder.add(batch128[:128])
    started = time.perf_counter()
    for line in batch1:
        adder.add([line])
    single = len(batch1) / (time.perf_counter() - started)
    started = time.perf_counter()
    for at in range(0, len(batch128), 128):
        adder.add(batch128[at : at + 128])
    return {"batch1": single, "batch128": len(batch128) / (time.perf_counter() - started)}


def rewrite(source: Path, target: Path, changes: dict[str, object | None]) -> dict[str, str]:
    """A copy of a model whose seqadd metadata entries are changed (None removes one, "*"
    removes them all); returns the copy's whole metadata."""
    model = onnx.load(str(source))
    metadata = {entry.key: entry.value for entry in model.metadata_props}
    for key, value in changes.items():
        if key == "*":
            metadata = {k: v for k, v in metadata.items() if not k.startswith("seqadd.")}
        elif value is None:
            metadata.pop("seqadd." + key, None)
        else:
            metadata["seqadd." + key] = json.dumps(value)
    del model.metadata_props[:]
    onnx.helper.set_model_props(model, metadata)
    target.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(target))
    return metadata


def doubt_threshold(confidences: list[float]) -> float:
    """A threshold between the lowest twentieth and the lowest half of these confidences,
    halfway across the widest gap there, so that a difference in the last bits cannot move an
    answer across it."""
    values = sorted(set(confidences))
    low, high = len(values) // 20, len(values) // 2
    index = max(range(low, high), key=lambda i: values[i + 1] - values[i])
    assert values[index + 1] - values[index] > 4 * FP32_TOLERANCE, values[low : high + 1]
    return (values[index] + values[index + 1]) / 2


#: Files the codec must refuse, made from addition-3d's fp32 file (format 2): the changes to
#: its metadata. The page's message must be the Python runtime's (ModelInfo.from_metadata).
REFUSED = {
    "no-metadata": {"*": None},
    "format-1": {"format": 1},
    "format-3": {"format": 3},
    "format-as-text": {"format": "2"},
    "without-doubt": {"doubt": None},
    "doubt-as-list": {"doubt": [0.5]},
    "doubt-without-threshold": {"doubt": {"level": 0.5}},
    "threshold-as-text": {"doubt": {"threshold": "0.5"}},
    "threshold-above-1": {"doubt": {"threshold": 1.5}},
    "calibration-as-list": {"doubt": {"threshold": 0.5, "calibration": []}},
    "probes-as-list": {"probes": [{"query": "1+1"}]},
    "probes-unequal": {
        "probes": {"queries": ["1+1"], "answers": [], "confidence": [], "tolerance": 0}
    },
    "tolerances-as-list": {
        "probes": {
            "queries": ["1+1"], "answers": ["2"], "confidence": [0.9], "tolerance": 0,
            "tolerances": [0.1],
        }
    },
    "missing-digits": {"digits": None},
    "digits-as-text": {"digits": "3"},
    "second-look-as-text": {"doubt": {"threshold": 0.5, "second_look": "true"}},
}  # fmt: skip
#: Copies answered in the browser with a doubt threshold high enough to flag some answers,
#: and a second look for each of them: (model, file, lines taken from its queries).
DOUBT_COPIES = (("addition-3d", "model.onnx"), ("addition-5d", "model.onnx"))
DOUBT_LINES = 1500


def refusal(metadata: dict[str, str]) -> str:
    """The Python runtime's reason for refusing this metadata."""
    with pytest.raises(ArtifactError) as refused:
        ModelInfo.from_metadata(metadata)
    return str(refused.value)


@pytest.fixture(scope="module")
def web_run(tmp_path_factory) -> dict:
    """Everything the page did in Chromium, beside what the Python runtime says."""
    models = tmp_path_factory.mktemp("web-models")
    lines = {name: query_lines(digits) for name, digits in SHIPPED.items()}
    expected, cases, shipped_thresholds = {}, [], {}
    for name in SHIPPED:
        for file in FILES:
            shipped_thresholds[name, file] = Adder.load(SHIPPED_DIR / name / file).doubt_threshold
            (models / name).mkdir(exist_ok=True)
            (models / name / file).symlink_to((SHIPPED_DIR / name / file).resolve())
            expected[name, file] = python_answers(SHIPPED_DIR / name / file, lines[name])
            cases.append({"name": name, "file": file, "lines": lines[name]})
    thresholds = {}
    for name, file in DOUBT_COPIES:
        confidences = [
            r["confidence"] for r in expected[name, file][:DOUBT_LINES] if r["error"] is None
        ]
        thresholds[name, file] = doubt_threshold(confidences)
        copy = models / f"doubt-{name}" / file
        doubt = {"threshold": thresholds[name, file], "second_look": True}
        rewrite(SHIPPED_DIR / name / file, copy, {"doubt": doubt})
        expected[f"doubt-{name}", file] = python_answers(copy, lines[name][:DOUBT_LINES])
        cases.append({"name": f"doubt-{name}", "file": file, "lines": lines[name][:DOUBT_LINES]})
    metadata, messages = {}, {}
    for folder, changes in REFUSED.items():
        source = SHIPPED_DIR / "addition-3d" / "model.onnx"
        metadata[folder] = rewrite(source, models / folder / "model.onnx", changes)
        messages[folder] = refusal(metadata[folder])

    codec_lines = [
        (line, digits) for name, digits in SHIPPED.items() for line in lines[name][:3000]
    ]
    reprs = sorted({ch for line in HAND_LINES for ch in line} | set(HAND_LINES[:20]))
    (models / "expected-codec.json").write_text(
        json.dumps(
            {
                "shipped": {
                    f"{n}/{f}": {"digits": d, "threshold": shipped_thresholds[n, f]}
                    for n, d in SHIPPED.items()
                    for f in FILES
                },
                "metadata": {f"{folder}/model.onnx": m for folder, m in metadata.items()},
                "copies": {f"doubt-{n}/{f}": t for (n, f), t in thresholds.items()},
                "refused": {f"{folder}/model.onnx": m for folder, m in messages.items()},
                "queries": [
                    {"line": line, "digits": digits, "reading": read_query(line.encode(), digits)}
                    for line, digits in codec_lines
                ],
                "reprs": [[text, repr(text)] for text in reprs],
            }
        )
    )
    started = time.perf_counter()
    node_test = subprocess.run(
        [NODE, "--test", "test/codec.test.js"],
        cwd=WEB,
        env=os.environ | {"SEQADD_WEB_MODELS": str(models)},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    node_seconds = time.perf_counter() - started

    speed_lines = {
        name: [
            line
            for line in lines[name]
            if isinstance(read_query(line.encode(), digits), tuple) and "\r" not in line
        ][: 128 * 20]
        for name, digits in SHIPPED.items()
    }
    speed = [
        {"name": n, "file": f, "batch1": speed_lines[n][:300], "batch128": speed_lines[n]}
        for n in SHIPPED
        for f in FILES
    ]
    screenshot = REPO / "docs" / "web.png"
    server = subprocess.Popen(
        [sys.executable, str(WEB / "serve.py"), "--port", "0", "--models", str(models)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        banner = server.stdout.readline()
        assert banner.startswith("seqadd web page: http://127.0.0.1:"), (
            banner + server.stderr.read()
        )
        url = banner.split()[3]
        job = {
            "url": url + "?model=addition-5d/model.onnx",
            "chromium": CHROMIUM,
            "screenshot": str(screenshot),
            "cases": cases,
            "refused": [{"name": folder, "file": "model.onnx"} for folder in REFUSED],
            "speed": speed,
        }
        job_path, out_path = models / "job.json", models / "out.json"
        job_path.write_text(json.dumps(job))
        started = time.perf_counter()
        browser = subprocess.run(
            [NODE, "test/browser.js", str(job_path), str(out_path)],
            cwd=WEB,
            capture_output=True,
            text=True,
            timeout=1200,
            check=False,
        )
        browser_seconds = time.perf_counter() - started
        assert browser.returncode == 0, browser.stderr[-3000:]
        page = json.loads(out_path.read_text())
    finally:
        server.terminate()
        server.wait(timeout=30)
    python = {
        (s["name"], s["file"]): python_speed(
            SHIPPED_DIR / s["name"] / s["file"], s["batch1"], s["batch128"]
        )
        for s in speed
    }
    return {
        "models": models,
        "expected": expected,
        "thresholds": thresholds,
        "shipped_thresholds": shipped_thresholds,
        "messages": messages,
        "node_test": node_test,
        "node_seconds": node_seconds,
        "browser_seconds": browser_seconds,
        "page": page,
        "python_speed": python,
        "screenshot": screenshot,
    }


def compare(case: dict, expected: list[dict]) -> dict:
    """The page's answers beside Python's: lines whose validity or message differ, answers that
    differ (with the exact sum), lines whose answers agree but not their doubt, and the largest
    confidence gap where the answers agree."""
    digits = case["info"]["digits"]
    messages, answers, doubt, gap = [], [], [], 0.0
    for got, want in zip(case["answers"], expected, strict=True):
        if got["error"] != want["error"]:
            messages.append((got, want))
        elif got["answer"] != want["answer"]:
            a, b = read_query(got["query"].encode(), digits)
            answers.append((got["query"], got["answer"], want["answer"], str(a + b)))
        elif want["confidence"] is not None:
            gap = max(gap, abs(got["confidence"] - want["confidence"]))
        if got["answer"] == want["answer"] and got["doubtful"] != want["doubtful"]:
            doubt.append((got, want))
    return {"messages": messages, "answers": answers, "doubt": doubt, "gap": gap}


def test_codec_in_node(web_run):
    result = web_run["node_test"]
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert "# fail 0" in result.stdout and "# pass 7" in result.stdout, result.stdout[-1000:]


def shipped_cases(run: dict, file: str) -> list[dict]:
    """The shipped files' cases: format 2, with the threshold the Python runtime reads."""
    cases = [c for c in run["page"]["cases"] if c["name"] in SHIPPED and c["file"] == file]
    assert len(cases) == len(SHIPPED)
    for case in cases:
        assert len(case["answers"]) >= 5000
        threshold = run["shipped_thresholds"][case["name"], case["file"]]
        assert case["info"]["format"] == 2 and case["info"]["doubtThreshold"] == threshold
    return cases


def test_every_message_equals_the_python_runtimes(web_run):
    page = web_run["page"]
    assert page["console"] == [], page["console"]
    for case in shipped_cases(web_run, "model.onnx") + shipped_cases(web_run, "model.int8.onnx"):
        expected = web_run["expected"][case["name"], case["file"]]
        result = compare(case, expected)
        assert result["messages"] == [], f"{case['name']}/{case['file']}: {result['messages'][:5]}"
        invalid = sum(row["error"] is not None for row in expected)
        assert 300 <= invalid <= len(expected) - 5000, invalid


def test_every_fp32_answer_and_doubt_equals_the_python_runtimes(web_run):
    for case in shipped_cases(web_run, "model.onnx"):
        result = compare(case, web_run["expected"][case["name"], case["file"]])
        assert result["answers"] == [], f"{case['name']}: {result['answers'][:5]}"
        assert result["doubt"] == [], f"{case['name']}: {result['doubt'][:5]}"
        assert result["gap"] <= FP32_TOLERANCE, (case["name"], result["gap"])


def test_every_int8_answer_and_doubt_equals_the_python_runtimes(web_run):
    """7-bit int8 weights: native onnxruntime on this CPU and its WebAssembly build give the
    same answers; confidences differ within the file's probe tolerance."""
    for case in shipped_cases(web_run, "model.int8.onnx"):
        result = compare(case, web_run["expected"][case["name"], case["file"]])
        assert result["answers"] == [], f"{case['name']}: {result['answers'][:5]}"
        assert result["doubt"] == [], f"{case['name']}: {result['doubt'][:5]}"
        tolerance = Adder.load(SHIPPED_DIR / case["name"] / case["file"]).info.probes.tolerance
        assert result["gap"] <= tolerance, (case["name"], result["gap"])


def doubt_case(page: dict, name: str, file: str) -> dict:
    wanted = (f"doubt-{name}", file)
    return next(case for case in page["cases"] if (case["name"], case["file"]) == wanted)


def test_the_page_flags_exactly_the_answers_python_flags(web_run):
    """On copies whose threshold flags some answers, each asked again as b+a: the page's
    answers and doubt are Answers' (the second look taken where Python takes it)."""
    page = web_run["page"]
    for name, file in DOUBT_COPIES:
        case = doubt_case(page, name, file)
        threshold = web_run["thresholds"][name, file]
        assert case["info"]["format"] == 2 and case["info"]["doubtThreshold"] == threshold
        assert case["info"]["secondLook"] is True
        expected = web_run["expected"][f"doubt-{name}", file]
        result = compare(case, expected)
        assert result["messages"] == result["answers"] == result["doubt"] == []
        doubtful = [row["doubtful"] for row in expected]
        assert [row["doubtful"] for row in case["answers"]] == doubtful
        assert 0 < doubtful.count(True) < doubtful.count(False)
        # Below the copy's threshold, answers were asked again: some came back surer.
        first_looks = web_run["expected"][name, file][:DOUBT_LINES]
        surer = [
            got for got, first in zip(case["answers"], first_looks, strict=True)
            if got["error"] is None and got["confidence"] > first["confidence"] + FP32_TOLERANCE
        ]  # fmt: skip
        assert surer, "no second look was taken"


def test_a_refused_model_says_why_on_the_page_in_the_python_runtimes_words(web_run):
    assert {refusal["name"] for refusal in web_run["page"]["refused"]} == set(REFUSED)
    for refusal in web_run["page"]["refused"]:
        message = web_run["messages"][refusal["name"]]
        assert refusal["message"] == message
        assert refusal["status"] == message


def test_the_page_is_cross_origin_isolated_and_served_locally(web_run):
    page = web_run["page"]
    assert page["firstLoad"]["crossOriginIsolated"] is True
    assert page["firstLoad"]["ortVersion"] == _npm_version("onnxruntime-web")
    assert set(page["weight"]) >= {"/", "/app.js", "/codec.js", "/ort/ort-wasm-simd-threaded.wasm"}
    assert web_run["screenshot"].stat().st_size > 10_000


def test_report(web_run):
    """docs/web.md, from this run's figures (written last: every check above passed first)."""
    text = report(web_run)
    (REPO / "docs" / "web.md").write_text(text)
    assert "| addition-5d | model.int8.onnx |" in text


def _npm_version(package: str) -> str:
    return json.loads((WEB / "node_modules" / package / "package.json").read_text())["version"]


def _python_ort_version() -> str:
    import onnxruntime

    return onnxruntime.__version__


def _cpu() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


REPORT = """# seqadd in the browser

`make web` serves a static page (`web/`) on 127.0.0.1 that loads a shipped model with
[onnxruntime-web](https://www.npmjs.com/package/onnxruntime-web) (WebAssembly) and answers
the queries typed into its box, one per line: each answer, its confidence (the product of
each character's top probability, as the Python runtime computes it), whether it is
doubtful (its confidence is below the threshold the file names, after a second look at
b+a: contract format 2), and
the runtime's own message for an invalid line. Nothing is fetched from the network:
onnxruntime-web's files come from `web/node_modules` (`npm ci`), the models from the
package's `models/` folder.

![the page answering](web.png)

`web/codec.js` reads everything about the model from the ONNX file's own metadata (parsed
from the file's bytes: onnxruntime-web does not expose it), checks the contract version
and refuses a file it does not understand with one error naming why.

This page is written by `make web-check` (tests/test_web.py) from its own run: {cpu},
{cores} cores, shared with other work; {browser} headless; Python {python}.
Figures move between runs.

## Versions: the same files on two onnxruntime builds

The Python runtime runs onnxruntime {ort_python} (native); the page runs onnxruntime-web
{ort_web} (WebAssembly, SIMD; npm, pinned in `web/package-lock.json`). The files are the
shipped ones, unchanged, and both sides run them on one thread, at most 128 rows per run,
the same rows together (int8 files quantize each run's activations together, so the rows of
a run move each other's probabilities).

- Every line is read alike: the same lines valid, the same message for every invalid one.
- fp32: every answer is the same; confidences differ in the last bits at most (the gap
  column: the largest confidence difference where the answers agree; the test allows
  {tolerance:.0e}).
- int8: every answer is the same too (the test requires it). The files' weights are
  quantized to 7 bits, so native onnxruntime's int8 kernels on a CPU without VNNI (like
  this one) no longer round differently from WebAssembly's on any answer here; confidences
  still differ more than fp32's (the gap column), within the file's own probe tolerance.
- Doubt: every answer is flagged doubtful exactly where the Python runtime flags it
  (`Answers.doubtful`: confidence below the file's threshold, compared in float32, after
  the second look: an answer below it is asked again as b+a and the surer answer kept).

| model | file | threshold | lines | invalid | doubtful | differ: msg, answer, doubt | gap | load |
|---|---|---:|---:|---:|---:|---:|---:|---:|
{rows}

Lines: every stress family of `seqadd_runtime.families` (300 each), 1,500 users' queries,
some written with white space, leading zeros or a Windows line ending, and invalid lines
(hand-written, operands one digit too long, random characters).

Doubt, on copies of the fp32 files rewritten with a higher threshold and a second look (the
shipped fp32 files' thresholds flag few answers or none): the page asks again and flags
exactly as Python does.

| model | file | threshold | lines | doubtful |
|---|---|---:|---:|---:|
{doubt_rows}

## Page weight

First visit: {raw:.1f} MB raw, {packed:.1f} MB gzipped (level 9), nearly all of it
onnxruntime-web's WebAssembly. The page itself is a few kilobytes.

| file | bytes | gzipped |
|---|---:|---:|
{weight_rows}

## Load time and speed

On loopback, from navigation to the first answers shown: {ready:.0f} ms (fetching and
compiling the WebAssembly, fetching the model, creating the session, answering the box).
Loading another model: the load column above.

Queries per second, one thread: the page's `answer()` (parse, encode, run, decode) in
Chromium beside the Python runtime's `Adder.add` in the test's process, on the same valid
lines, one line per call (batch 1) and 128 lines per call (batch 128).

| model | file | page, 1 | Python, 1 | page, 128 | Python, 128 | page/Python at 128 |
|---|---|---:|---:|---:|---:|---:|
{speed_rows}

## Run it

```
make web        # npm ci in web/ once, then serves http://127.0.0.1:8022/
make web-check  # Chromium (apt) when missing, npm ci, then this test
```

`python3 web/serve.py --port N --models FOLDER` serves another port or folder of models.
The page takes `?model=addition-3d/model.int8.onnx` and `?threads=N` (one thread by
default; more need the cross-origin isolation headers the server sends).
"""


def report(run: dict) -> str:
    page = run["page"]
    weight = page["weight"]
    rows = []
    for case in page["cases"]:
        if case["name"] not in SHIPPED:
            continue
        result = compare(case, run["expected"][case["name"], case["file"]])
        invalid = sum(a["error"] is not None for a in case["answers"])
        flagged = sum(bool(a["doubtful"]) for a in case["answers"])
        rows.append(
            f"| {case['name']} | {case['file']} | {case['info']['doubtThreshold']:.6g} | "
            f"{len(case['answers']):,} | {invalid:,} | {flagged:,} | "
            f"{len(result['messages'])}, {len(result['answers'])}, {len(result['doubt'])} | "
            f"{result['gap']:.1e} | {case['loadMs']:.0f} ms |"
        )
    speed_rows = []
    for s in page["speed"]:
        py = run["python_speed"][s["name"], s["file"]]
        speed_rows.append(
            f"| {s['name']} | {s['file']} | {s['batch1']:,.0f} | {py['batch1']:,.0f} | "
            f"{s['batch128']:,.0f} | {py['batch128']:,.0f} | "
            f"{s['batch128'] / py['batch128']:.2f}x |"
        )
    weight_rows = [
        f"| `{path}` | {w['raw']:,} | {w['gzip']:,} |"
        for path, w in sorted(weight.items(), key=lambda item: -item[1]["raw"])
    ]
    doubt_rows = []
    for name, file in DOUBT_COPIES:
        case = doubt_case(page, name, file)
        flagged = sum(bool(a["doubtful"]) for a in case["answers"])
        doubt_rows.append(
            f"| {name} | {file} | {run['thresholds'][name, file]:.6f} | "
            f"{len(case['answers']):,} | {flagged:,} |"
        )
    return REPORT.format(
        cpu=_cpu(),
        cores=os.cpu_count(),
        browser=page["browser"],
        python=platform.python_version(),
        ort_python=_python_ort_version(),
        ort_web=page["firstLoad"]["ortVersion"],
        tolerance=FP32_TOLERANCE,
        rows="\n".join(rows),
        doubt_rows="\n".join(doubt_rows),
        raw=sum(w["raw"] for w in weight.values()) / 1e6,
        packed=sum(w["gzip"] for w in weight.values()) / 1e6,
        weight_rows="\n".join(weight_rows),
        ready=page["firstLoad"]["readyMs"],
        speed_rows="\n".join(speed_rows),
    )
