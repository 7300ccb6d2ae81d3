# Saker: the two entry points are `make run` and `make test` (both as root on Debian).
CARGO ?= cargo
SAKER := target/release/saker

.PHONY: setup build run test test-unit lint bench matrix

setup:
	./scripts/setup-debian.sh

build: setup
	$(CARGO) build --release --workspace

# Live detection with the built-in rules; text alerts on stdout (-o json_output=true for JSON).
run: build
	$(SAKER) run

# The whole suite: unit, replay-vs-sysdig, live probe, containers, outputs, deploy.
test: build
	$(CARGO) test --release --workspace -- --test-threads=2
	python3 -m pytest -q -p no:cacheprovider tests/deploy
	python3 tests/kernel-matrix/matrix.py

# Only the kernel matrix (5.10, 6.1, 6.12 under QEMU): KERNELS=6.1 ATTACH=tracepoint make matrix
matrix: build
	python3 tests/kernel-matrix/matrix.py --kernels $${KERNELS:-5.10,6.1,6.12} --attach $${ATTACH:-auto}

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

bench: build
	./bench/run
