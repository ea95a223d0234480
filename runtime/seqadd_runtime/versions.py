"""Installed versions of the packages a report names, for provenance and benchmarks."""

from __future__ import annotations

import importlib.metadata


def package_versions(names: tuple[str, ...]) -> dict[str, str]:
    """Each package's installed version, or "not installed"."""
    versions = {}
    for name in names:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions
