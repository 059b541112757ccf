#!/usr/bin/env bash
# Builds the .deb (cargo-deb) and checks it the way a box would use it, without installing it on this
# machine: the package's metadata and dependencies (dpkg --dry-run against this system), its files and modes
# in a clean root (dpkg-deb -x), the systemd unit (systemd-analyze verify), then `iobox run --serve` from that
# root as the unit runs it (an unprivileged user, no new privileges, its config, a state folder of its own),
# scraping /metrics and /healthz. `make package` runs it; it needs target/release/iobox.
set -euo pipefail
cd "$(dirname "$0")/.."
say() { printf '\033[1m[package]\033[0m %s\n' "$*"; }
fail() { printf '\033[1;31m[package] FAIL:\033[0m %s\n' "$*"; exit 1; }

command -v cargo-deb >/dev/null || { say "installing cargo-deb"; cargo install cargo-deb --locked >/dev/null; }
[ -x target/release/iobox ] || cargo build --release
say "building the package"
cargo deb --no-build --strip --fast -o target/iobox.deb >/dev/null
deb=target/iobox.deb

say "dpkg --dry-run -i (metadata, dependencies on this system)"
dpkg --dry-run -i "$deb" >/dev/null || fail "dpkg refuses the package"
dpkg-deb -I "$deb" | grep -q "conffiles" || fail "no conffiles"

root=$(mktemp -d)
state=$(mktemp -d)
trap 'kill "${pid:-}" 2>/dev/null || true; rm -rf "$root" "$state"' EXIT
chmod 0755 "$root"
dpkg-deb -x "$deb" "$root"
mode() { stat -c '%a' "$root/$1"; }
[ "$(mode usr/bin/iobox)" = 755 ] || fail "usr/bin/iobox is $(mode usr/bin/iobox)"
[ "$(mode etc/iobox/iobox.toml)" = 640 ] || fail "etc/iobox/iobox.toml is $(mode etc/iobox/iobox.toml)"
for f in usr/lib/iobox/libonnxruntime.so.1.31.1 usr/share/iobox/models/manifest.toml \
         usr/share/iobox/models/retinaface_mnet025.onnx usr/lib/systemd/system/iobox.service usr/share/doc/iobox/copyright; do
  [ -f "$root/$f" ] || fail "$f missing"
done
size=$(stat -c %s "$root/usr/bin/iobox")
[ "$size" -lt 80000000 ] || fail "the binary is not stripped ($size bytes)"
unit="$root/usr/lib/systemd/system/iobox.service"
for want in "ExecStart=/usr/bin/iobox run --serve --config /etc/iobox/iobox.toml" "User=iobox" "NoNewPrivileges=yes" \
            "ProtectSystem=strict" "PrivateTmp=yes" "DevicePolicy=closed" "DeviceAllow=char-video4linux rw" \
            "Restart=on-failure" "StandardOutput=journal" "StateDirectory=iobox"; do
  grep -qxF "$want" "$unit" || fail "the unit lacks $want"
done
say "systemd-analyze verify"
# The binary is not installed on this machine: that one complaint is expected, any other is not.
out=$(systemd-analyze verify "$unit" 2>&1 | grep -v "/usr/bin/iobox" | grep -v "^$" || true)
[ -z "$out" ] || fail "systemd-analyze verify: $out"

say "iobox doctor and iobox run --serve from the package's root, as the unit runs it"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
dash=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
sed -e "s|/usr/share/iobox|$root/usr/share/iobox|; s|/usr/lib/iobox|$root/usr/lib/iobox|" \
    -e "s|/var/lib/iobox|$state|" -e "s|127.0.0.1:9464|127.0.0.1:$port|" -e "s|127.0.0.1:8080|127.0.0.1:$dash|" \
    "$root/etc/iobox/iobox.toml" > "$state/iobox.toml"
chmod 0755 "$state"; chown -R nobody:nogroup "$state" 2>/dev/null || true
as_unit=(setpriv --reuid=nobody --regid=nogroup --clear-groups --no-new-privs env -i PATH=/usr/bin:/bin IOBOX_LOG=info HOME="$state")
[ "$(id -u)" -eq 0 ] || as_unit=(env IOBOX_LOG=info)
(cd "$state" && "${as_unit[@]}" "$root/usr/bin/iobox" doctor --config "$state/iobox.toml") || fail "iobox doctor"
(cd "$state" && exec "${as_unit[@]}" "$root/usr/bin/iobox" run --serve --config "$state/iobox.toml" >"$state/log" 2>&1) &
pid=$!
for _ in $(seq 1 240); do
  frames=$(curl -sf "http://127.0.0.1:$port/metrics" | sed -n 's/^iobox_camera_frames_processed_total{camera="example"} //p' || true)
  [ -n "$frames" ] && [ "$frames" -gt 0 ] && break
  kill -0 "$pid" 2>/dev/null || { cat "$state/log"; fail "iobox run ended"; }
  sleep 0.5
done
[ -n "${frames:-}" ] && [ "$frames" -gt 0 ] || { cat "$state/log"; fail "no frames in /metrics"; }
curl -sf "http://127.0.0.1:$port/healthz" | grep -q '"status":"ok"' || fail "/healthz is not ok"
curl -sf "http://127.0.0.1:$dash/login" >/dev/null || fail "the dashboard does not answer"
[ "$(stat -c %a "$state/iobox.sqlite")" = 600 ] || fail "the database is not 0600"
kill -TERM "$pid"; wait "$pid" || true
say "ok: $(dpkg-deb -f "$deb" Package) $(dpkg-deb -f "$deb" Version), $(du -h "$deb" | cut -f1); /metrics answered with $frames frames of the test camera"
