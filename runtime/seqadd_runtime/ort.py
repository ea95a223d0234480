"""ONNX Runtime, imported with its telemetry off.

onnxruntime 1.29 and later send usage telemetry from Linux too: a device identifier written
under ~/.cache/Microsoft/DeveloperTools/ and DNS queries for a telemetry host some seconds into
a run. A tool for edge machines must not phone home or write outside what it was asked to
write, so the documented opt-out is set before the library initializes (the package's
``__init__`` sets it, so it runs before this module), and the runtime switch is turned off as
well, for a process that imported onnxruntime before seqadd.
"""

from __future__ import annotations

from seqadd_runtime import signals

# Imported when a model first loads, which may be while a stop signal arrives: held until the
# native library has initialized (interrupted, it fails with "initialization failed").
with signals.held():
    import onnxruntime

onnxruntime.disable_telemetry_events()

__all__ = ["onnxruntime"]
