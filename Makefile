# The two commands a new user needs (see README.md). Each first installs whatever is missing.
.PHONY: demo test setup bench clean package

# Anonymize the bundled sample clip and log what was seen: out/sample.mp4, iobox.sqlite, a report and a
# heatmap (out/heatmap.png).
demo:
	scripts/setup.sh demo
	cargo run --release -- run --record 'out/{camera}.mp4'
	cargo run --release -- report
	cargo run --release -- heatmap --out out/heatmap.png
	@echo "To see it in the dashboard: target/release/iobox user add NAME --role integrator, then target/release/iobox serve, and open http://127.0.0.1:8080"

# The whole test suite (formatting, lints, unit, property and integration tests on real media).
test:
	scripts/setup.sh test
	cargo fmt --check
	cargo clippy --release --all-targets -- -D warnings
	cargo test --release

setup:
	scripts/setup.sh test

# The Debian package (target/iobox.deb, cargo-deb), checked in a clean root and run as its unit would.
package:
	scripts/setup.sh demo
	cargo build --release
	scripts/package-check.sh

# Benchmarks: criterion micro-benchmarks and the side-by-side comparison written to BENCHMARKS.md.
bench:
	scripts/setup.sh test
	scripts/bench.sh

clean:
	cargo clean
	rm -rf out iobox.sqlite*
