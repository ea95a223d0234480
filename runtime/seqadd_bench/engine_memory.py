"""Where each engine's memory goes: `python -m seqadd_bench.engine_memory [MODEL]`.

For each installed engine, a fresh process loads the model step by step as seqadd-run does
(the interpreter with numpy, the engine's library, the model loaded or compiled, one run of
128 rows) and reports its resident memory after each step, in MB. The streaming peak that
`seqadd-bench` reports is this floor plus the pipeline's batches in flight.
"""

from __future__ import annotations

import subprocess
import sys

from seqadd_runtime.models import resolve_model

#: One engine's steps, run in a fresh interpreter; prints "step MB" lines.
_STEPS = r"""
import sys

def resident(step):
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS:"):
            print(f"{step} {int(line.split()[1]) / 1024:.0f}", flush=True)

path, engine = sys.argv[1], sys.argv[2]
resident("interpreter")
import numpy as np
resident("numpy")
if engine == "onnxruntime":
    from seqadd_runtime.ort import onnxruntime
    resident("library imported")
    from seqadd_runtime.engine import ModelEngine
    loaded = ModelEngine.load(path, threads=1)
    resident("model loaded")
else:
    from seqadd_runtime.openvino_engine import OpenVinoEngine, import_openvino
    import_openvino()
    resident("library imported")
    loaded = OpenVinoEngine.load(path, threads=1)
    resident(f"model compiled ({loaded.precision})")
loaded.probabilities(np.zeros((128, loaded.info.spec.query_length), np.int32))
resident("one run of 128 rows")
"""


def engine_steps(path: str, engine: str) -> list[tuple[str, str]]:
    """(step, resident MB) of one engine loading one model file, in a fresh process."""
    result = subprocess.run(
        [sys.executable, "-c", _STEPS, path, engine], capture_output=True, text=True, check=True
    )
    return [tuple(line.rsplit(" ", 1)) for line in result.stdout.splitlines()]


def main(argv: list[str]) -> None:
    from seqadd_runtime.openvino_engine import import_openvino

    model = argv[0] if argv else "addition-3d"
    path = str(resolve_model(model, False))
    engines = ["onnxruntime"] + (["openvino"] if import_openvino() is not None else [])
    print(f"resident memory (MB) of one process loading {model}, step by step")
    for engine in engines:
        steps = engine_steps(path, engine)
        print(f"{engine}: " + ", ".join(f"{step} {mb}" for step, mb in steps))


if __name__ == "__main__":
    main(sys.argv[1:])
