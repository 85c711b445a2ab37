#!/usr/bin/env bash
# One-time (and idempotent) set-up on a fresh machine: Python venv with pinned packages,
# Delta Lake jars from Maven Central into .cache/, spark-submit defaults and, when Apache Maven
# is installed, the Kafka broker and Spark Kafka connector jars (lakehouse setup --with-kafka).
# A second run with nothing changed takes seconds and needs no network.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3.11}
if ! command -v "$PYTHON" >/dev/null 2>&1; then
  echo "setup: $PYTHON not found (Python 3.11 is required)" >&2
  exit 1
fi
if ! command -v java >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "setup: installing Java 17 (openjdk-17-jre-headless)"
    apt-get update -qq && apt-get install -y -qq openjdk-17-jre-headless >/dev/null
  else
    echo "setup: Java 17 is required (e.g. apt-get install openjdk-17-jre-headless)" >&2
    exit 1
  fi
fi

# PostgreSQL server binaries for the local warehouse (lakehouse warehouse start): Debian's package
if ! ls /usr/lib/postgresql/*/bin/pg_ctl >/dev/null 2>&1 && ! command -v pg_ctl >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "setup: installing PostgreSQL (postgresql) for the local warehouse"
    apt-get update -qq && apt-get install -y -qq postgresql >/dev/null
  else
    echo "setup: PostgreSQL server not found: the local warehouse needs it" \
      "(apt-get install postgresql)" >&2
  fi
fi

if [ ! -x .venv/bin/python ]; then
  echo "setup: creating .venv"
  "$PYTHON" -m venv .venv
fi
stamp=".venv/.installed-$(cat requirements.lock pyproject.toml | sha1sum | cut -c1-12)"
if [ ! -f "$stamp" ]; then
  echo "setup: installing pinned packages (requirements.lock); the first time takes a few minutes"
  .venv/bin/python -m pip install -q --upgrade pip
  .venv/bin/python -m pip install -q -r requirements.lock
  .venv/bin/python -m pip install -q --no-deps -e .
  rm -f .venv/.installed-*
  touch "$stamp"
fi
if command -v mvn >/dev/null 2>&1; then
  .venv/bin/lakehouse setup --with-kafka
else
  echo "setup: Apache Maven (mvn) not found: the Kafka jars are skipped (the batch lakehouse does" \
    "not need them); for Kafka: apt-get install maven && .venv/bin/lakehouse setup --with-kafka" >&2
  .venv/bin/lakehouse setup
fi
