"""`seqadd-bench`: measures `seqadd-run` on this machine against its limit and its peers.

A package of its own beside the runtime, so that measuring never widens what answering
needs: it uses :mod:`seqadd_runtime` and, where installed, OpenVINO (the ``peers`` extra);
:mod:`seqadd_runtime` never imports it (its entry point only starts it by name).
"""
