#!/usr/bin/env bash
# Installs everything EdgeFleet needs on a fresh clone and builds it.
#   bash scripts/bootstrap.sh              # Node deps + build (enough for the demo)
#   bash scripts/bootstrap.sh --test-deps  # also the system packages the tests use
set -euo pipefail
cd "$(dirname "$0")/.."

if [[ "${1:-}" == "--test-deps" ]]; then
  missing=()
  command -v mosquitto >/dev/null 2>&1 || missing+=(mosquitto)
  command -v mosquitto_pub >/dev/null 2>&1 || missing+=(mosquitto-clients)
  command -v chromium >/dev/null 2>&1 || missing+=(chromium)
  # nats-server: the 3-node broker cluster of hub/test/broker/nats.test.ts and test/e2e/nats-cluster.test.ts (EF-4.12).
  command -v nats-server >/dev/null 2>&1 || missing+=(nats-server)
  # nginx: the artifact origin (a CDN stand-in) of test/e2e/artifact-origin.test.ts.
  command -v nginx >/dev/null 2>&1 || missing+=(nginx)
  # postgresql: throwaway clusters (initdb/pg_ctl) for the hub's PostgreSQL store and leader election (test/support/postgres.mjs).
  compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null || missing+=(postgresql)
  # libfaketime: the chaos suite's clock jumps on an agent (test/chaos).
  command -v faketime >/dev/null 2>&1 || missing+=(faketime)
  # prlimit: the hub raises its own file-descriptor limit with it (hub/test/fd-limit.test.ts).
  command -v prlimit >/dev/null 2>&1 || missing+=(util-linux)
  if ((${#missing[@]})); then
    if [[ $(id -u) -eq 0 ]]; then
      apt-get update -qq
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
    else
      echo "bootstrap: please install: ${missing[*]} (apt-get install -y ${missing[*]})" >&2
    fi
  fi
  # Reference Python with NumPy: hub/test/feed reads a dataset export with it (docs/examples/read_dataset.py).
  if ! .venv-ref/bin/python -c 'import numpy' >/dev/null 2>&1; then
    python3 -m venv .venv-ref && .venv-ref/bin/python -m pip install -q numpy
  fi
  # nats-py: hub/test/stream/feed.test.ts runs docs/examples/jetstream_feed.py with it (EF-9.13).
  if ! .venv-ref/bin/python -c 'import nats' >/dev/null 2>&1; then
    .venv-ref/bin/python -m pip install -q nats-py || echo "bootstrap: nats-py not installed (the JetStream feed example test is skipped)" >&2
  fi
fi

if ! command -v pnpm >/dev/null 2>&1 || [[ "$(pnpm -v)" != 10.* ]]; then
  # corepack's signature check fails on some machines; npm's global install works everywhere.
  npm install -g pnpm@10 >/dev/null
fi

# better-sqlite3 compiles from source: point node-gyp at this node's headers instead of downloading them.
export npm_config_nodedir="${npm_config_nodedir:-$(dirname "$(dirname "$(command -v node)")")}"
# onnxruntime-node's install script only fetches GPU providers; its CPU build ships in the package.
export ONNXRUNTIME_NODE_INSTALL=skip
pnpm install --frozen-lockfile --reporter=silent
pnpm -s build
