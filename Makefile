# weightvault: the two commands of the README are `make demo` and `make check`.
#
#   make demo    install what is needed, build, run the demo on local files
#   make check   install, build with gcc (-Werror) and with clang under
#                ASan+UBSan, run every test (unit, CLI, golden, malformed,
#                fuzz regression and a bounded fuzz run) under ctest; both
#                halves run even when the first fails, and the closing
#                summary names each half's failed tests and wall time
#   make install wv, libweightvault (.so, .a), weightvault.h, weightvault.pc,
#                the wv(1) man page and bash completion under PREFIX
#                (default /usr/local); DESTDIR=... stages them elsewhere
#   make uninstall  remove what make install installed (its manifest)
#   make bench   the benchmark table of the README (needs python3-torch)
#   make build   just build (build/wv, build/libweightvault.{a,so})
#   make fuzz-soak  fuzz every parser for FUZZ_SECONDS (default 600) each

JOBS ?= $(shell nproc 2>/dev/null || echo 2)
CTEST_FLAGS ?= --output-on-failure -j$(JOBS)

PREFIX ?= /usr/local
# the build directories of the two halves of make check
BUILD_DIR ?= build
ASAN_DIR ?= build-asan

.PHONY: all build demo check check-release check-asan bench clean deps fuzz-soak \
        install uninstall

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
	cmake -S . -B $(BUILD_DIR) -DCMAKE_BUILD_TYPE=RelWithDebInfo
	cmake --build $(BUILD_DIR) -j$(JOBS)
	cd $(BUILD_DIR) && ctest $(CTEST_FLAGS)

check-asan:
	@bash scripts/deps.sh check
	cmake -S . -B $(ASAN_DIR) -DCMAKE_C_COMPILER=clang -DCMAKE_BUILD_TYPE=Debug \
	    -DWV_SANITIZE=ON -DWV_FUZZ=ON
	cmake --build $(ASAN_DIR) -j$(JOBS)
	cd $(ASAN_DIR) && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
	    UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 ctest $(CTEST_FLAGS)

# Both halves run whatever the first one gave; the summary comes last.
check:
	@mkdir -p $(BUILD_DIR) && touch $(BUILD_DIR)/.check-stamp; \
	t0=$$(date +%s); rel=0; $(MAKE) --no-print-directory check-release || rel=$$?; \
	t1=$$(date +%s); asan=0; $(MAKE) --no-print-directory check-asan || asan=$$?; \
	t2=$$(date +%s); \
	bash scripts/check-summary.sh $(BUILD_DIR)/.check-stamp \
	    "release (gcc -Werror):$$rel:$$((t1 - t0)):$(BUILD_DIR)" \
	    "sanitizers (clang ASan+UBSan):$$asan:$$((t2 - t1)):$(ASAN_DIR)"

# DESTDIR stages the tree (packaging, tests); ldconfig only for the real one.
install: build
	cmake -S . -B build -DCMAKE_INSTALL_PREFIX=$(PREFIX)
	cmake --build build -j$(JOBS)
	DESTDIR='$(DESTDIR)' cmake --install build
	@if [ -z '$(DESTDIR)' ] && [ "$$(id -u)" = 0 ] && command -v ldconfig >/dev/null; then \
	    ldconfig; fi

# The manifest lists the files without DESTDIR: give the same DESTDIR.
uninstall:
	@test -f build/install_manifest.txt || { echo "make uninstall: nothing installed from build/"; exit 1; }
	sed 's|^|$(DESTDIR)|' build/install_manifest.txt | xargs -d '\n' rm -fv

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
	rm -rf build build-asan build-bench build-fuzz build-python demo-out bench-out
