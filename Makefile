# Saker: the two entry points are `make run` and `make test` (both as root on Debian).
CARGO ?= cargo
SAKER := target/release/saker

.PHONY: setup build run test test-unit lint bench matrix fuzz fuzz-smoke rule-tests

setup:
	./scripts/setup-debian.sh

build: setup
	$(CARGO) build --release --workspace

# Live detection with the built-in rules; text alerts on stdout (-o json_output=true for JSON).
run: build
	$(SAKER) run

# The whole suite: unit, replay-vs-sysdig, live probe, containers, outputs, deploy.
# Root/kernel tests are #[ignore = "needs root"] (a plain `cargo test` lists them as ignored);
# here they run too, and SAKER_TEST_STRICT=1 makes a missing tool a failure, never a skip.
test: export SAKER_TEST_STRICT = 1
test: build
	$(CARGO) test --release --workspace -- --include-ignored --test-threads=2
	$(MAKE) rule-tests
	python3 -m pytest -q -p no:cacheprovider tests/deploy
	$(MAKE) fuzz-smoke
	python3 tests/kernel-matrix/matrix.py

# Rule unit tests (no root): the built-in rules' fixtures, then the upstream rules' (docs/testing-rules.md).
rule-tests: build
	$(SAKER) test --coverage --junit target/rule-tests-builtin.xml
	$(SAKER) test -r ../shared/falco-rules/falco_rules.yaml --junit target/rule-tests-upstream.xml tests/rules/upstream

# Only the kernel matrix (5.10, 6.1, 6.12 under QEMU): KERNELS=6.1 ATTACH=tracepoint make matrix
matrix: build
	python3 tests/kernel-matrix/matrix.py --kernels $${KERNELS:-5.10,6.1,6.12} --attach $${ATTACH:-auto}

# libFuzzer targets (fuzz/): a short run in `make test`, a long one in `make fuzz`.
FUZZ_SMOKE_SECS ?= 20
FUZZ_SECS ?= 3600
fuzz-smoke: setup
	./fuzz/run.sh $(FUZZ_SMOKE_SECS)

fuzz: setup
	FUZZ_MERGE=1 ./fuzz/run.sh $(FUZZ_SECS)

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

bench: build
	./bench/run
