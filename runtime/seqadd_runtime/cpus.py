"""How many CPUs this process may really use.

``os.cpu_count()`` counts the host's cores; under ``taskset`` or in a container limited to
one CPU on a 64-core host, starting 64 workers only adds threads and memory. The usable
count is the smallest of the affinity mask and the cgroup's CPU quota.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

CGROUP_V2_MAX = Path("/sys/fs/cgroup/cpu.max")
CGROUP_V1_QUOTA = Path("/sys/fs/cgroup/cpu/cpu.cfs_quota_us")
CGROUP_V1_PERIOD = Path("/sys/fs/cgroup/cpu/cpu.cfs_period_us")


def _quota_cpus() -> int | None:
    """CPUs allowed by the cgroup quota (rounded up), or None when there is no quota."""
    try:
        if CGROUP_V2_MAX.is_file():
            quota, period = CGROUP_V2_MAX.read_text().split()[:2]
            if quota == "max":
                return None
            return max(1, math.ceil(int(quota) / int(period)))
        if CGROUP_V1_QUOTA.is_file():
            quota = int(CGROUP_V1_QUOTA.read_text())
            if quota <= 0:
                return None
            return max(1, math.ceil(quota / int(CGROUP_V1_PERIOD.read_text())))
    except (OSError, ValueError):
        return None
    return None


def usable_cpus() -> int:
    try:
        count = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not on Linux
        count = os.cpu_count() or 1
    quota = _quota_cpus()
    return max(1, min(count, quota) if quota else count)
