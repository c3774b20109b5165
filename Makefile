# weightvault: the two commands of the README are `make demo` and `make check`.
#
#   make demo    install what is needed, build, run the demo on local files
#   make check   install, build with gcc (-Werror) and with clang under
#                ASan+UBSan, run every test (unit, CLI, golden, malformed,
#                fuzz regression and a bounded fuzz run) under ctest; then
#                a minimal build (every optional part off: no libcurl,
#                librados, libhdf5, libsodium) and its fast tests (unit and
#                CLI, without the framework interop suites); every half
#                runs even when an earlier one fails, and the closing
#                summary names each half's failed tests and wall time
#   make install wv, libweightvault (.so, .a), weightvault.h, weightvault.pc,
#                the wv(1) man page and bash completion under PREFIX
#                (default /usr/local); DESTDIR=... stages them elsewhere.
#                Built in build-install/ without the tests, and so without
#                fault injection (the test builds of make check and make
#                build have it: their unit tests arm it)
#   make uninstall  remove what make install installed (its manifest)
#   make bench   the benchmark table of the README (needs python3-torch)
#   make build   just build (build/wv, build/libweightvault.{a,so})
#   make fuzz-soak  fuzz every parser for FUZZ_SECONDS (default 600) each

JOBS ?= $(shell nproc 2>/dev/null || echo 2)
# Tests run two per core: most CLI suites spend their time waiting on
# child processes, fsync, the Ceph cluster or a kill timer, and with one
# per core the cores sat ~40% idle through make check. The suites that
# must not overlap say so themselves (cmake/WvTests.cmake: the Ceph
# suites' RESOURCE_LOCKs, big_4g's PROCESSORS), and the slowest start
# first (their COST there).
TEST_JOBS ?= $(shell echo $$(( $$(nproc 2>/dev/null || echo 2) * 2 )))
CTEST_FLAGS ?= --output-on-failure -j$(TEST_JOBS)

PREFIX ?= /usr/local
# the build directories of the three halves of make check
BUILD_DIR ?= build
ASAN_DIR ?= build-asan
MIN_DIR ?= build-minimal
# make install's (a release build without tests or fault injection)
INSTALL_DIR ?= build-install
# the optional parts, all off, for the minimal build
MIN_OPTS = -DWV_WITH_S3=OFF -DWV_WITH_RADOS=OFF -DWV_WITH_HDF5=OFF \
           -DWV_WITH_CRYPTO=OFF
# its fast tests: unit and CLI (those needing a part are not registered
# there), without the framework interop, Python and web suites
MIN_TESTS = -R '^(unit|cli|meta)\.' -LE '^(interop|python|web)$$'

.PHONY: all build demo check check-release check-asan check-minimal bench clean \
        deps fuzz-soak \
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

# (its build needs only scripts/deps.sh minimal; its tests what check needs)
check-minimal:
	@bash scripts/deps.sh check
	cmake -S . -B $(MIN_DIR) -DCMAKE_BUILD_TYPE=RelWithDebInfo $(MIN_OPTS)
	cmake --build $(MIN_DIR) -j$(JOBS)
	cd $(MIN_DIR) && ctest $(CTEST_FLAGS) $(MIN_TESTS)

# Every half runs whatever the earlier ones gave; the summary comes last.
check:
	@mkdir -p $(BUILD_DIR) && touch $(BUILD_DIR)/.check-stamp; \
	t0=$$(date +%s); rel=0; $(MAKE) --no-print-directory check-release || rel=$$?; \
	t1=$$(date +%s); asan=0; $(MAKE) --no-print-directory check-asan || asan=$$?; \
	t2=$$(date +%s); min=0; $(MAKE) --no-print-directory check-minimal || min=$$?; \
	t3=$$(date +%s); \
	bash scripts/check-summary.sh $(BUILD_DIR)/.check-stamp \
	    "release (gcc -Werror):$$rel:$$((t1 - t0)):$(BUILD_DIR)" \
	    "sanitizers (clang ASan+UBSan):$$asan:$$((t2 - t1)):$(ASAN_DIR)" \
	    "minimal (no s3, rados, hdf5, crypto):$$min:$$((t3 - t2)):$(MIN_DIR)"

# DESTDIR stages the tree (packaging, tests); ldconfig only for the real one.
install: deps
	cmake -S . -B $(INSTALL_DIR) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DWV_TESTS=OFF \
	    -DCMAKE_INSTALL_PREFIX=$(PREFIX)
	cmake --build $(INSTALL_DIR) -j$(JOBS)
	DESTDIR='$(DESTDIR)' cmake --install $(INSTALL_DIR)
	@if [ -z '$(DESTDIR)' ] && [ "$$(id -u)" = 0 ] && command -v ldconfig >/dev/null; then \
	    ldconfig; fi

# The manifest lists the files without DESTDIR: give the same DESTDIR.
uninstall:
	@test -f $(INSTALL_DIR)/install_manifest.txt || { echo "make uninstall: nothing installed from $(INSTALL_DIR)/"; exit 1; }
	sed 's|^|$(DESTDIR)|' $(INSTALL_DIR)/install_manifest.txt | xargs -d '\n' rm -fv

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
	cmake -S . -B build-bench -DCMAKE_BUILD_TYPE=Release -DWV_TESTS=OFF
	cmake --build build-bench -j$(JOBS)
	bash bench/run.sh build-bench

clean:
	rm -rf build build-asan build-minimal build-install build-bench build-fuzz \
	    build-python demo-out bench-out
