#!/usr/bin/env bash
# Everything the demo and the tests need on a fresh machine of this kind (Debian, root, Python 3.11+, Java 17,
# Maven), idempotent: a second run only checks.
#   1. .venv with the package installed editable, with its test extras
#   2. kcat, prometheus, promtool and chromium from Debian's packages (apt-get update only when something is missing)
#   3. the Kafka broker's jars, fetched with Maven into the jar cache (deploy/local/kafka.sh fetch)
# The broker itself is started on demand: by `touchpoint demo`/`run`, and by the tests' fixture.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$ROOT"
PYTHON=${PYTHON:-python3}

step() { echo "==> $*"; }

# 1. Python environment. The stamp records the pyproject.toml it was installed from, so a dependency
#    change reinstalls and an unchanged tree skips pip entirely.
stamp=.venv/.touchpoint-installed
want=$(sha256sum pyproject.toml | cut -d' ' -f1)
if [[ ! -x .venv/bin/python ]]; then
    step "creating .venv"
    "$PYTHON" -m venv .venv
fi
if [[ ! -f $stamp || "$(cat "$stamp")" != "$want" || ! -x .venv/bin/touchpoint ]]; then
    step "installing touchpoint-pipeline (editable) with test dependencies"
    # setuptools' build warnings are noise here; the full log is kept for when pip fails.
    if ! { .venv/bin/python -m pip install --upgrade pip && .venv/bin/python -m pip install -e '.[test]'; } \
        >.venv/pip.log 2>&1; then
        tail -n 40 .venv/pip.log >&2
        echo "bootstrap: pip install failed; full log in $ROOT/.venv/pip.log" >&2
        exit 1
    fi
    echo "$want" >"$stamp"
else
    step "Python environment up to date (.venv)"
fi

# 2. Debian tools: kcat (independent Kafka client), prometheus + promtool (metrics tests, rule checks);
#    Java and Maven too, should this machine lack them (they run and fetch the broker).
missing=()
command -v java >/dev/null 2>&1 || missing+=(default-jre-headless)
command -v mvn >/dev/null 2>&1 || missing+=(maven)
command -v kcat >/dev/null 2>&1 || missing+=(kcat)
if ! command -v prometheus >/dev/null 2>&1 || ! command -v promtool >/dev/null 2>&1; then
    missing+=(prometheus)
fi
# Headless Chromium for the tests that render pages (driven by Playwright through its executable_path:
# Playwright's own browser download cannot work on these machines).
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
if ((${#missing[@]})); then
    step "installing Debian packages: ${missing[*]}"
    if [[ $(id -u) -ne 0 ]]; then
        echo "bootstrap: need root to apt-get install ${missing[*]} (or install them yourself)" >&2
        exit 1
    fi
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    # Debian's prometheus package starts a system service; the tests start their own instances.
    if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet prometheus 2>/dev/null; then
        systemctl stop prometheus || true
    fi
else
    step "kcat, prometheus, promtool, chromium, java and mvn present"
fi

# 3. Kafka jars (cached between runs).
step "Kafka jars"
bash deploy/local/kafka.sh fetch
echo "==> ready"
