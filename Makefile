# weightvault: the two commands of the README are `make demo` and `make check`.
#
#   make demo    install what is needed, build, run the demo on local files
#   make check   install, build with gcc (-Werror) and with clang under
#                ASan+UBSan, run every test (unit, CLI, golden, malformed,
#                fuzz regression and a bounded fuzz run) under ctest
#   make bench   the benchmark table of the README (needs python3-torch)
#   make build   just build (build/wv, build/libweightvault.{a,so})
#   make fuzz-soak  fuzz every parser for FUZZ_SECONDS (default 600) each

JOBS ?= $(shell nproc 2>/dev/null || echo 2)
CTEST_FLAGS ?= --output-on-failure -j$(JOBS)

.PHONY: all build demo check check-release check-asan bench clean deps fuzz-soak

all: build

deps:
	@bash scripts/deps.sh build

build: deps
	cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo
	cmake --build build -j$(JOBS)

demo:
	@bash scripts/deps.sh demo
	$(MAKE) build
	bash scripts/demo.sh build

check-release:
	@bash scripts/deps.sh check
	cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo
	cmake --build build -j$(JOBS)
	cd build && ctest $(CTEST_FLAGS)

check-asan:
	@bash scripts/deps.sh check
	cmake -S . -B build-asan -DCMAKE_C_COMPILER=clang -DCMAKE_BUILD_TYPE=Debug \
	    -DWV_SANITIZE=ON -DWV_FUZZ=ON
	cmake --build build-asan -j$(JOBS)
	cd build-asan && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
	    UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 ctest $(CTEST_FLAGS)

# The sanitizer run comes last so its summary is the closing line.
check: check-release check-asan

# Longer fuzzing than the bounded run of `make check` (FUZZ_SECONDS each).
FUZZ_SECONDS ?= 600
fuzz-soak:
	@bash scripts/deps.sh check
	cmake -S . -B build-fuzz -DCMAKE_C_COMPILER=clang -DCMAKE_BUILD_TYPE=Debug \
	    -DWV_SANITIZE=ON -DWV_FUZZ=ON -DWV_FUZZ_SECONDS=$(FUZZ_SECONDS)
	cmake --build build-fuzz -j$(JOBS)
	cd build-fuzz && ctest --output-on-failure -R 'fuzz\..*\.run'

bench:
	@bash scripts/deps.sh bench
	cmake -S . -B build-bench -DCMAKE_BUILD_TYPE=Release
	cmake --build build-bench -j$(JOBS)
	bash bench/run.sh build-bench

clean:
	rm -rf build build-asan build-bench build-fuzz demo-out bench-out
