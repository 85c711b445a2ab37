#!/usr/bin/env bash
# Stop the local Airflow started by scripts/airflow_up.sh: every process of its session (API
# server, scheduler, DAG processor, triggerer, task workers and the spark-submit/JVM processes of
# running tasks). TERM first, then KILL whatever is left after AIRFLOW_DOWN_GRACE seconds (task
# supervisors ignore a plain TERM while their task runs).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -f .env ]; then
  set -a
  # shellcheck disable=SC1091
  . ./.env
  set +a
fi
AIRFLOW_HOME=${AIRFLOW_HOME:-$(pwd)/airflow_home}
PIDFILE="$AIRFLOW_HOME/airflow.pid"
GRACE=${AIRFLOW_DOWN_GRACE:-20}

if [ ! -f "$PIDFILE" ]; then
  echo "airflow-down: not running (no $PIDFILE)"
  exit 0
fi
sid=$(cat "$PIDFILE")
# pids of the session's processes, space-separated ("" when none is left)
members() { { ps -o pid= -s "$sid" 2>/dev/null || true; } | xargs; }

pids=$(members)
if [ -n "$pids" ]; then
  echo "airflow-down: stopping session $sid (processes: $pids)"
  # shellcheck disable=SC2086
  kill -TERM $pids 2>/dev/null || true
  for _ in $(seq "$GRACE"); do
    [ -z "$(members)" ] && break
    sleep 1
  done
  for _ in 1 2 3; do
    pids=$(members)
    [ -z "$pids" ] && break
    echo "airflow-down: killing what is left: $pids"
    # shellcheck disable=SC2086
    kill -KILL $pids 2>/dev/null || true
    sleep 1
  done
fi
if [ -n "$(members)" ]; then
  echo "airflow-down: processes still alive in session $sid: $(members)" >&2
  exit 1
fi
rm -f "$PIDFILE"
echo "airflow-down: stopped"
