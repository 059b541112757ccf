#!/usr/bin/env bash
# Installs what iobox needs and is missing, and nothing else. Safe to run again.
#
#   scripts/setup.sh demo   build and run dependencies
#   scripts/setup.sh test   also what the test suite needs (MQTT broker, headless browser, PostgreSQL 15)
#
# Debian 12 / Ubuntu 22.04+. Uses sudo for apt when not run as root.
set -euo pipefail
cd "$(dirname "$0")/.."

what=${1:-demo}
ORT_VERSION=1.31.1

say() { printf '\033[1m[setup]\033[0m %s\n' "$*"; }

apt_packages=(
  pkg-config libclang-dev build-essential
  libgstreamer1.0-dev libgstreamer-plugins-base1.0-dev libgstrtspserver-1.0-dev
  gstreamer1.0-tools gstreamer1.0-plugins-base gstreamer1.0-plugins-good gstreamer1.0-plugins-bad
  gstreamer1.0-plugins-ugly gstreamer1.0-libav gstreamer1.0-rtsp
  python3 python3-venv
)
if [ "$what" = test ]; then
  apt_packages+=(mosquitto chromium chromium-driver postgresql-15 openssl)
fi

missing=()
for p in "${apt_packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  say "installing Debian packages: ${missing[*]}"
  sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if ! command -v cargo >/dev/null 2>&1; then
  if [ -x "$HOME/.cargo/bin/cargo" ]; then
    export PATH="$HOME/.cargo/bin:$PATH"
  else
    say "installing the Rust toolchain with rustup"
    command -v curl >/dev/null || { sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"; $sudo apt-get install -y -qq curl >/dev/null; }
    curl -sSf https://sh.rustup.rs | sh -s -- -y --profile minimal >/dev/null
    export PATH="$HOME/.cargo/bin:$PATH"
  fi
fi
if [ "$what" = test ] && command -v rustup >/dev/null 2>&1; then
  for c in rustfmt clippy; do
    rustup component list --installed 2>/dev/null | grep -q "^$c" || { say "adding the Rust component $c"; rustup component add "$c" >/dev/null; }
  done
fi
rustc_minor=$(rustc --version | sed -E 's/rustc 1\.([0-9]+).*/\1/')
if [ "$rustc_minor" -lt 92 ]; then
  say "Rust 1.92 or newer is needed (found $(rustc --version)); run: rustup update stable"
  exit 1
fi

# ONNX Runtime: the shared library from the official PyPI wheel, in a project virtualenv.
if ! .venv/bin/python -c "import onnxruntime, sys; sys.exit(onnxruntime.__version__ != '$ORT_VERSION')" 2>/dev/null; then
  say "installing onnxruntime==$ORT_VERSION into .venv"
  python3 -m venv .venv
  .venv/bin/pip install -q --disable-pip-version-check "onnxruntime==$ORT_VERSION"
fi
lib=$(.venv/bin/python -c "import onnxruntime, os; print(os.path.join(os.path.dirname(onnxruntime.__file__), 'capi', 'libonnxruntime.so.$ORT_VERSION'))")
mkdir -p .ort
if [ "$(readlink -f .ort/libonnxruntime.so 2>/dev/null)" != "$(readlink -f "$lib")" ]; then
  ln -sf "$lib" .ort/libonnxruntime.so
  say "ONNX Runtime library: .ort/libonnxruntime.so -> $lib"
fi
