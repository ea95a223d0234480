"""What a measurement ran on: the CPU and the instruction sets this model's kernels use, the
memory, and the ONNX Runtime build. Figures from two machines only compare with this beside
them: the same CPU name can come with or without VNNI or BF16, and the int8 and bf16 kernels
are several times faster with them."""

from __future__ import annotations

import os
import platform
from pathlib import Path

from seqadd_runtime.cpus import usable_cpus
from seqadd_runtime.versions import package_versions

#: CPU flags (as /proc/cpuinfo spells them) that decide which kernels ONNX Runtime and
#: OpenVINO pick for this model, and the names people know them by. x86: wide float vectors
#: (AVX2, AVX-512), 8-bit dot products (VNNI: int8 MatMul) and bfloat16 (OpenVINO's default
#: precision where present). Arm: NEON, its 8-bit dot product and matrix instructions, BF16.
INSTRUCTION_SETS = {
    "avx2": "AVX2",
    "fma": "FMA",
    "avx512f": "AVX-512",
    "avx_vnni": "AVX-VNNI",
    "avx512_vnni": "AVX-512 VNNI",
    "avx512_bf16": "AVX-512 BF16",
    "amx_int8": "AMX-INT8",
    "amx_bf16": "AMX-BF16",
    "asimd": "NEON",
    "asimddp": "NEON dot product",
    "i8mm": "Arm I8MM",
    "bf16": "Arm BF16",
    "sve": "SVE",
}
CPUINFO = Path("/proc/cpuinfo")


def cpu_flags(cpuinfo: str) -> set[str]:
    """The feature flags of the first CPU listed in /proc/cpuinfo text ("flags" on x86,
    "Features" on Arm)."""
    for line in cpuinfo.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("flags", "Features"):
            return set(value.split())
    return set()


def instruction_sets(flags: set[str]) -> list[str]:
    """The instruction sets that matter here, in INSTRUCTION_SETS order."""
    return [name for flag, name in INSTRUCTION_SETS.items() if flag in flags]


def cpu_name(cpuinfo: str) -> str:
    for line in cpuinfo.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("model name", "Model", "Hardware") and value.strip():
            return value.strip()
    return platform.processor() or platform.machine()


def onnxruntime_build() -> str:
    """ONNX Runtime's version, build and execution providers, as it reports them."""
    from seqadd_runtime.ort import onnxruntime as ort

    build = ort.get_build_info() if hasattr(ort, "get_build_info") else ""
    providers = ", ".join(ort.get_available_providers())
    build = build.strip() or "build info not reported"
    return f"onnxruntime {ort.__version__} ({build}; {providers})"


def describe_machine() -> dict:
    """The facts a benchmark report opens with."""
    try:
        cpuinfo = CPUINFO.read_text()
    except OSError:
        cpuinfo = ""
    return {
        "cpu": cpu_name(cpuinfo),
        "architecture": platform.machine(),
        "instruction_sets": instruction_sets(cpu_flags(cpuinfo)),
        "cores": os.cpu_count(),
        "usable_cpus": usable_cpus(),
        "memory_gb": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 1e9, 1),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "onnxruntime_build": onnxruntime_build(),
        "versions": package_versions(("seqadd", "numpy", "onnxruntime", "openvino")),
    }


def machine_line(machine: dict) -> str:
    """One line naming the machine, for the top of a report."""
    sets = ", ".join(machine["instruction_sets"]) or "none of " + ", ".join(INSTRUCTION_SETS)
    return (
        f"Machine: {machine['cpu']} ({machine['architecture']}), {machine['cores']} cores "
        f"({machine['usable_cpus']} usable), {machine['memory_gb']} GB; instruction sets: {sets}; "
        f"Python {machine['python']}; {machine['onnxruntime_build']}"
    )
