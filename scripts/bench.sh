#!/usr/bin/env bash
# Benchmarks: criterion micro-benchmarks, then the side-by-side comparisons written into BENCHMARKS.md.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! .venv-bench/bin/deface --version >/dev/null 2>&1; then
  python3 -m venv .venv-bench
  .venv-bench/bin/pip install -q --disable-pip-version-check deface==1.5.0 onnxruntime==1.31.1 pillow
fi
command -v /usr/bin/time >/dev/null || { sudo=""; [ "$(id -u)" -eq 0 ] || sudo=sudo; $sudo apt-get install -y -qq time >/dev/null; }
cargo build --release
cargo bench --bench pipeline -- --noplot
.venv-bench/bin/python scripts/bench.py "$@"
