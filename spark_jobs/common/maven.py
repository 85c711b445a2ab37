"""Resolve Maven artifacts (with their runtime dependencies) once into the project cache.

For jars that are not Spark packages (the Kafka broker) or that must be filtered before use (the
Spark Kafka connector), Apache Maven resolves them from Maven Central into a Maven repository
inside the project cache (``<cache>/m2``), and the resolved jar list is recorded in
``<cache>/<name>-<hash>.txt`` (hash of the coordinates). Later calls read that list and never
start Maven, so a second run is instant and needs no network.

Needs ``mvn`` (Apache Maven 3.6+) on the ``PATH`` for the first resolution only.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path
from xml.sax.saxutils import escape

from spark_jobs.settings import CACHE_DIR

log = logging.getLogger("lakehouse")

#: pinned so the goal resolves the same way offline (no plugin-prefix lookup on Maven Central)
DEPENDENCY_PLUGIN = "org.apache.maven.plugins:maven-dependency-plugin:3.8.1"
_JAR_PATH = re.compile(r":(/\S+\.jar)\b")


def _list_file(name: str, coordinates: list[str], cache_dir: Path) -> Path:
    digest = hashlib.sha1(",".join(sorted(coordinates)).encode()).hexdigest()[:12]
    return cache_dir / f"{name}-{digest}.txt"


def record_artifacts(
    name: str, coordinates: list[str], jars: list[str], cache_dir: Path = CACHE_DIR
) -> Path:
    """Record a jar list for ``coordinates`` (what :func:`cached_artifacts` reads back)."""
    cache_dir.mkdir(parents=True, exist_ok=True)
    listing = _list_file(name, coordinates, cache_dir)
    partial = listing.with_name(f".{listing.name}.{os.getpid()}")
    partial.write_text("\n".join(jars) + "\n")
    partial.replace(listing)  # atomic: a reader never sees half a list
    return listing


def cached_artifacts(name: str, coordinates: list[str], cache_dir: Path = CACHE_DIR) -> list[str]:
    """Jar paths recorded for ``coordinates``; empty when not resolved (or a jar is gone)."""
    listing = _list_file(name, coordinates, cache_dir)
    if not listing.exists():
        return []
    jars = [line for line in listing.read_text().splitlines() if line]
    return jars if jars and all(Path(j).is_file() for j in jars) else []


def _pom(coordinates: list[str]) -> str:
    deps = []
    for coordinate in coordinates:
        parts = coordinate.split(":")
        if len(parts) != 3:
            raise ValueError(f"expected group:artifact:version, got {coordinate!r}")
        group, artifact, version = (escape(p) for p in parts)
        deps.append(
            f"    <dependency><groupId>{group}</groupId><artifactId>{artifact}</artifactId>"
            f"<version>{version}</version></dependency>"
        )
    return (
        '<project xmlns="http://maven.apache.org/POM/4.0.0">\n'
        "  <modelVersion>4.0.0</modelVersion>\n"
        "  <groupId>lakehouse.local</groupId><artifactId>resolve</artifactId><version>1</version>\n"
        "  <dependencies>\n" + "\n".join(deps) + "\n  </dependencies>\n</project>\n"
    )


def resolve_artifacts(name: str, coordinates: list[str], cache_dir: Path = CACHE_DIR) -> list[str]:
    """Resolve ``group:artifact:version`` coordinates and their runtime dependencies.

    Args:
        name: prefix of the list file (``<cache>/<name>-<hash>.txt``).
        coordinates: Maven coordinates, e.g. ``["org.apache.kafka:kafka_2.13:4.4.0"]``.
        cache_dir: the project cache (default ``LAKEHOUSE_CACHE_DIR`` or ``./.cache``).

    Returns:
        Absolute paths (symlinks resolved) of every jar, in Maven's order; cached after the
        first call.

    Raises:
        RuntimeError: ``mvn`` is missing, or Maven could not resolve (no network, bad coordinate);
            the message carries the tail of Maven's output.
    """
    jars = cached_artifacts(name, coordinates, cache_dir)
    if jars:
        return jars
    mvn = shutil.which("mvn")
    if mvn is None:
        raise RuntimeError("Apache Maven (mvn) is needed once to resolve " + ", ".join(coordinates))
    cache_dir.mkdir(parents=True, exist_ok=True)
    repo = (cache_dir / "m2").resolve()
    log.info("SETUP resolving %s with Maven into %s", ", ".join(coordinates), repo)
    with tempfile.TemporaryDirectory(prefix="lakehouse-mvn-") as tmp:
        Path(tmp, "pom.xml").write_text(_pom(coordinates))
        out = Path(tmp, "deps.txt")
        command = [
            mvn,
            "-B",
            "-q",
            f"-Dmaven.repo.local={repo}",
            f"{DEPENDENCY_PLUGIN}:list",
            "-DincludeScope=runtime",
            "-DoutputAbsoluteArtifactFilename=true",
            f"-DoutputFile={out}",
        ]
        result = subprocess.run(command, cwd=tmp, capture_output=True, text=True, check=False)
        if result.returncode != 0 or not out.exists():
            tail = "\n".join((result.stdout + result.stderr).splitlines()[-20:])
            raise RuntimeError(f"Maven could not resolve {coordinates}:\n{tail}")
        jars = [
            str(Path(m.group(1)).resolve())
            for m in map(_JAR_PATH.search, out.read_text().splitlines())
            if m
        ]
    if not jars:
        raise RuntimeError(f"Maven resolved no jars for {coordinates}")
    record_artifacts(name, coordinates, jars, cache_dir)
    return jars
