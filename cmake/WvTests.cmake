# Test registration. Every test is its own ctest entry with a timeout:
# those registered without one (here or anywhere else in the project) get
# WV_DEFAULT_TIMEOUT at the end of the configuration, and the test
# meta.timeouts checks that none is left without.
set(WV_DEFAULT_TIMEOUT 300 CACHE STRING
    "ctest TIMEOUT (s) of the tests registered without one")
function(wv_default_timeouts)
  get_property(tests DIRECTORY ${CMAKE_SOURCE_DIR} PROPERTY TESTS)
  foreach(t ${tests})
    get_test_property(${t} TIMEOUT tmo)
    if(NOT tmo)
      set_tests_properties(${t} PROPERTIES TIMEOUT ${WV_DEFAULT_TIMEOUT})
    endif()
  endforeach()
endfunction()
cmake_language(DEFER DIRECTORY ${CMAKE_SOURCE_DIR} CALL wv_default_timeouts)
# Order: ctest -j starts the tests of highest COST first. On a fresh clone
# (no Testing/Temporary/CTestCostData.txt yet) these are the slow suites'
# seconds as measured in make check (the larger of the release and the
# sanitizer run), so they start at once and the short tests fill the
# cores around them instead of a long one starting last. Approximate:
# only the order matters, and ctest uses its own measurements from the
# second run on. The Ceph cluster's start comes first: the suites that
# need it wait on it.
set(WV_TEST_COSTS
  cli.big_4g:340 ceph.start:300 cli.npy_interop:180 cli.remote_faults:165
  cli.repo_crash:145 cli.remote_crypt:145 cli.repo_concurrent:115
  cli.kill_atomic:112 cli.python:85 cli.pth_interop:72 cli.repo_maint:70
  cli.python_dist:160
  cli.repo_crypt:68 cli.remote_sync:68 cli.metadata_travels:63
  cli.mutate_short:59 cli.python_install:58 cli.web_view:54
  cli.keras_interop:52 cli.repo_resume:50 cli.newcomer:48
  cli.missing_input:43 cli.repo_badrefs:38 cli.convert_pairs:36
  cli.onnx_ort:28 cli.repo_rollback:27 cli.tfjs_interop:26
  cli.hardening_formats:25 cli.mxnet_interop:25 cli.sync_local:24
  cli.onnx_write:23 cli.rados_repo:23 cli.tf_bundle:21 cli.s3_repo:21
  unit.s3_clone_faults:20 unit.s3_list_many:19 cli.onnx_interop:19
  cli.layering:19 cli.dist:31)
function(wv_test_costs)
  foreach(tc ${WV_TEST_COSTS})
    string(REPLACE ":" ";" tc "${tc}")
    list(GET tc 0 t)
    list(GET tc 1 c)
    if(TEST ${t})
      set_tests_properties(${t} PROPERTIES COST ${c})
    endif()
  endforeach()
endfunction()
cmake_language(DEFER DIRECTORY ${CMAKE_SOURCE_DIR} CALL wv_test_costs)
add_test(NAME meta.timeouts COMMAND bash -c [[
ctest --show-only=json-v1 | /usr/bin/python3 -c '
import json, sys
d = json.load(sys.stdin)
bad = [t["name"] for t in d["tests"]
       if not any(p["name"] == "TIMEOUT" and float(p["value"]) > 0
                  for p in t.get("properties", []))]
print("tests without a TIMEOUT:", " ".join(bad) if bad else "none")
print(len(d["tests"]), "tests")
sys.exit(1 if bad else 0)'
]])
set_tests_properties(meta.timeouts PROPERTIES TIMEOUT 60)

# ---- optional parts (CMakeLists.txt: WV_WITH_*) -------------------------------
# The tests that need a part, by name. One the build left out is not
# registered at all (nor its program built: the unit files and fuzz
# harnesses that call the part's internals); those registered carry the
# part as a label: `ctest -L hdf5` runs them, `ctest -LE hdf5` the others.
set(WV_NEEDS_s3 "^unit\\.(s3_|http_|xmlfiles_)|^cli\\.(s3_repo|remote_.*|http_inspect|python|python_dist)$|^fuzz\\.s3xml\\.")
set(WV_NEEDS_rados "^unit\\.(rados|librados)_|^cli\\.(rados_repo|librados_lazy|remote_.*)$")
set(WV_NEEDS_hdf5 "^unit\\.(keras_|index_load_formats$|threads_keras_)|^cli\\.(keras_.*|tfjs_write|global_options|big_4g|convert_pairs|hardening_formats|metadata_travels|newcomer|tf_bundle)$|^golden\\.h5/|^malformed\\.keras/|^fuzz\\.keras(_layout)?\\.")
# (crypto: encryption, signatures, trusted keys; some of these scripts
# check plain repositories too, and skip with the rest)
set(WV_NEEDS_crypto "^unit\\.(crypt_|readtensor_encrypted$|dist_encrypted_signed$)|^cli\\.(repo_crypt|remote_crypt|repo_rollback|repo_verify_ro|repo_badrefs|sync_local|newcomer|web_view)$|^fuzz\\.crypt\\.")
string(JOIN " " WV_FEATURES_STR ${WV_FEATURES})
set(WV_PART_s3 ${WV_WITH_S3})
set(WV_PART_rados ${WV_WITH_RADOS})
set(WV_PART_hdf5 ${WV_WITH_HDF5})
set(WV_PART_crypto ${WV_WITH_CRYPTO})
# wv_test_parts(NAME OK LABELS): OK false when test NAME needs a part this
# build left out; LABELS the parts it needs.
function(wv_test_parts name ok labels)
  set(l)
  set(yes TRUE)
  foreach(p s3 rados hdf5 crypto)
    if(name MATCHES "${WV_NEEDS_${p}}")
      list(APPEND l ${p})
      if(NOT WV_PART_${p})
        set(yes FALSE)
      endif()
    endif()
  endforeach()
  set(${ok} ${yes} PARENT_SCOPE)
  set(${labels} "${l}" PARENT_SCOPE)
endfunction()
# wv_add_test(NAME COMMAND...): add_test with the labels of its parts, or
# nothing when one is missing (if(TEST NAME) tells).
function(wv_add_test name)
  wv_test_parts(${name} ok labels)
  if(ok)
    add_test(NAME ${name} COMMAND ${ARGN})
    if(labels)
      set_property(TEST ${name} APPEND PROPERTY LABELS ${labels})
    endif()
  endif()
endfunction()

# Unit tests: one runner binary; each TEST_IMPL(name) becomes a ctest entry.
# The files that call a missing part's internals are left out of it.
file(GLOB WV_UNIT_SOURCES CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/tests/unit/*.c)
foreach(pf s3:t_s3 s3:t_http s3:t_s3xml rados:t_rados hdf5:t_keras
        crypto:t_crypt)
  string(REPLACE ":" ";" pf "${pf}")
  list(GET pf 0 p)
  list(GET pf 1 f)
  if(NOT WV_PART_${p})
    list(REMOVE_ITEM WV_UNIT_SOURCES ${CMAKE_SOURCE_DIR}/tests/unit/${f}.c)
  endif()
endforeach()
add_executable(wvtest ${CMAKE_SOURCE_DIR}/tests/harness/runner.c
               ${WV_UNIT_SOURCES})
target_include_directories(wvtest PRIVATE ${CMAKE_SOURCE_DIR}/src/core
                           ${CMAKE_SOURCE_DIR}/src/json ${CMAKE_SOURCE_DIR}/src/tensor
                           ${CMAKE_SOURCE_DIR}/src/formats
                           ${CMAKE_SOURCE_DIR}/src/store ${CMAKE_SOURCE_DIR}/src/repo
                           ${CMAKE_SOURCE_DIR}/src/codec
                           ${CMAKE_SOURCE_DIR}/src/net
                           ${CMAKE_SOURCE_DIR}/tests/harness)
target_compile_definitions(wvtest PRIVATE
  WV_FIXTURES="${WV_FIXTURES}" WV_TEST_DATA="${CMAKE_SOURCE_DIR}/tests/data")
target_link_libraries(wvtest PRIVATE weightvault_static)
foreach(src ${WV_UNIT_SOURCES})
  file(STRINGS ${src} lines REGEX "^TEST_IMPL\\(")
  foreach(line ${lines})
    string(REGEX REPLACE "^TEST_IMPL\\(([a-z0-9_]+)\\).*" "\\1" tname "${line}")
    wv_add_test(unit.${tname} wvtest ${tname})
    if(NOT TEST unit.${tname})
      continue()
    endif()
    # (77: the test skipped itself, WVTEST_SKIP)
    set_tests_properties(unit.${tname} PROPERTIES TIMEOUT 120
      SKIP_RETURN_CODE 77 ENVIRONMENT "WV_STATE_DIR=${CMAKE_BINARY_DIR}/test-state")
  endforeach()
endforeach()

# unit.s3_dist, unit.rados_dist: 4 writer processes and ~50 region reads,
# each a few round trips to the cluster (about 60 s on S3 on 2 busy cores).
foreach(t unit.s3_dist unit.rados_dist)
  if(TEST ${t})
    set_tests_properties(${t} PROPERTIES TIMEOUT 300)
  endif()
endforeach()

# unit.threads_keras_pth_parallel: two threads load and save Keras and
# .pth files 40 rounds each (slow under the sanitizers; issue 15).
if(TEST unit.threads_keras_pth_parallel)
  set_tests_properties(unit.threads_keras_pth_parallel PROPERTIES TIMEOUT 600)
endif()

# The writer and checker processes of cli.dist (multi-writer checkpoints,
# public API only).
add_executable(dist_writer ${CMAKE_SOURCE_DIR}/tests/cli/dist_writer.c)
target_link_libraries(dist_writer PRIVATE weightvault_static)

set(WV_TEST_ENV
  "WV=$<TARGET_FILE:wv>"
  "WV_DIST_WRITER=$<TARGET_FILE:dist_writer>"
  "WVTEST=$<TARGET_FILE:wvtest>"
  "WV_FIXTURES=${WV_FIXTURES}"
  "WV_SRC=${CMAKE_SOURCE_DIR}"
  "PYTHON=/usr/bin/python3"
  # what clients remember of encrypted repositories (src/repo/state.c):
  # kept in the build tree, never in the user's home
  "WV_STATE_DIR=${CMAKE_BINARY_DIR}/test-state"
  # the optional parts built in (cli.build_parts)
  "WV_BUILD=${CMAKE_BINARY_DIR}"
  "WV_BUILD_FEATURES=${WV_FEATURES_STR}"
  # (a suite about a missing one skips otherwise: cli.repo_nocrypto)
  "WV_HAVE_CRYPTO=${WV_HAVE_CRYPTO}")

# CLI scenario scripts: tests/cli/<name>.sh
file(GLOB WV_CLI_TESTS CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/tests/cli/*.sh)
foreach(t ${WV_CLI_TESTS})
  get_filename_component(name ${t} NAME_WE)
  wv_add_test(cli.${name} bash ${t})
  if(NOT TEST cli.${name})
    continue()
  endif()
  set_tests_properties(cli.${name} PROPERTIES TIMEOUT 300
                       ENVIRONMENT "${WV_TEST_ENV}")
  # cli.big_*: files over 4 GiB through every format (disk-bound). It
  # counts as two of ctest's -j slots: wv and its Python checker both
  # stream 4.5 GiB at once, and fewer suites should overlap it.
  if(name MATCHES "^big_")
    set_tests_properties(cli.${name} PROPERTIES TIMEOUT 1500 PROCESSORS 2)
  endif()
  # The Python package: its tests, and installing it into a fresh venv
  # (which may build the library once more with cmake).
  if(name MATCHES "^python")
    set_property(TEST cli.${name} APPEND PROPERTY LABELS python)
  endif()
  # Label interop: the suites that check files against the real frameworks
  # (torch, numpy, mxnet, onnx, tfjs through Python or node): the slow ones
  # make check-minimal leaves to the other halves.
  if(name MATCHES "_interop$|^(cast_numpy|pth_objects)$")
    set_property(TEST cli.${name} APPEND PROPERTY LABELS interop)
  endif()
  if(name STREQUAL "python_install")
    set_tests_properties(cli.${name} PROPERTIES TIMEOUT 900)
  endif()
  # cli.python: about 85 s alone, but one run under load 20 took 280 s of
  # the default 300
  if(name STREQUAL "python")
    set_tests_properties(cli.${name} PROPERTIES TIMEOUT 600)
  endif()
  # cli.python_dist: three runs of 4 torch writer processes (local, S3,
  # RADOS), each importing torch
  if(name STREQUAL "python_dist")
    set_tests_properties(cli.${name} PROPERTIES TIMEOUT 900)
  endif()
  # cli.repo_nocrypto: a build with WV_WITH_CRYPTO=OFF (skipped, exit 77,
  # in one with encryption).
  if(name STREQUAL "repo_nocrypto")
    set_tests_properties(cli.${name} PROPERTIES SKIP_RETURN_CODE 77)
  endif()
  # cli.tfjs_interop, cli.tfjs_write, cli.onnx_ort: tfjs / onnxruntime-node from npm at
  # test time, kept in the build dir (skipped, exit 77, when the registry
  # cannot be reached).
  if(name STREQUAL "tfjs_interop" OR name STREQUAL "tfjs_write" OR
     name STREQUAL "onnx_ort")
    set_tests_properties(cli.${name} PROPERTIES SKIP_RETURN_CODE 77)
  endif()
  # cli.web_view: wv serve / wv report loaded by headless Chromium (label
  # web; skipped, exit 77, without chromium); screenshots and the report
  # are kept in the build dir's web-artifacts/.
  if(name STREQUAL "web_view")
    set_property(TEST cli.${name} APPEND PROPERTY LABELS web)
    set_tests_properties(cli.${name} PROPERTIES TIMEOUT 600
      SKIP_RETURN_CODE 77 ENVIRONMENT
      "${WV_TEST_ENV};WV_WEB_ARTIFACTS=${CMAKE_BINARY_DIR}/web-artifacts")
  endif()
endforeach()

# Golden tests: every real fixture must read exactly as numpy sees it.
file(GLOB_RECURSE WV_GOLDEN CONFIGURE_DEPENDS
     ${WV_FIXTURES}/safetensors/*.safetensors ${WV_FIXTURES}/npy/*.npy
     ${WV_FIXTURES}/npy/*.npz ${WV_FIXTURES}/pth/*.pt ${WV_FIXTURES}/pth/*.pth
     ${WV_FIXTURES}/h5/*.h5 ${WV_FIXTURES}/h5/*.keras
     ${WV_FIXTURES}/mxnet/*.params ${WV_FIXTURES}/mxnet/*.v0
     ${WV_FIXTURES}/gguf/*.gguf)
# Without any fixture there would be no golden test at all: one that fails
# naming the missing directory stands in for them.
if(NOT WV_GOLDEN)
  add_test(NAME golden.fixtures COMMAND sh -c
           "echo 'FAIL: missing input ${WV_FIXTURES} (no fixture files)'; exit 1")
  set_tests_properties(golden.fixtures PROPERTIES TIMEOUT 10)
endif()
foreach(f ${WV_GOLDEN})
  file(RELATIVE_PATH rel ${WV_FIXTURES} ${f})
  wv_add_test(golden.${rel} bash ${CMAKE_SOURCE_DIR}/tests/golden.sh ${f})
  if(NOT TEST golden.${rel})
    continue()
  endif()
  set_tests_properties(golden.${rel} PROPERTIES TIMEOUT 120
                       ENVIRONMENT "${WV_TEST_ENV}")
endforeach()

# make install: cmake --install into a DESTDIR, then the tree, the SONAME,
# the man page, the completion and pkg-config links (tests/install.sh). Not
# in sanitizer builds: their archive needs the sanitizer runtime to link.
if(NOT WV_SANITIZE)
  add_test(NAME install.destdir COMMAND bash ${CMAKE_SOURCE_DIR}/tests/install.sh)
  set_tests_properties(install.destdir PROPERTIES TIMEOUT 300 LABELS install
    ENVIRONMENT "WV_BUILD=${CMAKE_BINARY_DIR};WV_SRC=${CMAKE_SOURCE_DIR};WV_VERSION=${PROJECT_VERSION};CMAKE=${CMAKE_COMMAND};CC=${CMAKE_C_COMPILER}")
endif()

# Malformed files: each must be refused with the message in its .expect file.
file(GLOB_RECURSE WV_MALFORMED CONFIGURE_DEPENDS
     ${CMAKE_SOURCE_DIR}/tests/data/malformed/*.bin)
foreach(f ${WV_MALFORMED})
  file(RELATIVE_PATH rel ${CMAKE_SOURCE_DIR}/tests/data/malformed ${f})
  wv_add_test(malformed.${rel} bash ${CMAKE_SOURCE_DIR}/tests/malformed.sh
              ${f})
  if(NOT TEST malformed.${rel})
    continue()
  endif()
  set_tests_properties(malformed.${rel} PROPERTIES TIMEOUT 60
                       ENVIRONMENT "${WV_TEST_ENV}")
endforeach()

# Fuzz harnesses: fuzz/fuzz_<target>.c. Every build runs the kept corpus and
# crash files through the harness (regression); clang builds with WV_FUZZ
# also run libFuzzer for a bounded time.
file(GLOB WV_FUZZ_SOURCES CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/fuzz/fuzz_*.c)
if(WV_FUZZ AND CMAKE_C_COMPILER_ID STREQUAL "Clang")
  # Coverage instrumentation for the library itself: without it libFuzzer
  # only sees the harness's own edges and fuzzes blind.
  target_compile_options(wv_obj PRIVATE -fsanitize=fuzzer-no-link)
  target_link_options(weightvault_static INTERFACE -fsanitize=fuzzer-no-link)
  target_link_options(weightvault PRIVATE -fsanitize=fuzzer-no-link)
endif()
# (10 s at the sanitizer build's -O1 run more inputs than the 15 s at -O0
# did: 1.6 to 2.3 times the executions per second, CMakeLists.txt)
set(WV_FUZZ_SECONDS 10 CACHE STRING
    "Seconds of fuzzing per harness in ctest (make fuzz-soak for longer)")
foreach(src ${WV_FUZZ_SOURCES})
  get_filename_component(name ${src} NAME_WE)
  string(REGEX REPLACE "^fuzz_" "" target ${name})
  wv_test_parts(fuzz.${target}.regress ok labels)
  if(NOT ok)
    continue()
  endif()
  add_executable(${name}_regress ${src}
                 ${CMAKE_SOURCE_DIR}/fuzz/regression_driver.c)
  target_include_directories(${name}_regress PRIVATE
                             ${CMAKE_SOURCE_DIR}/src/core
                             ${CMAKE_SOURCE_DIR}/src/json
                             ${CMAKE_SOURCE_DIR}/src/tensor
                             ${CMAKE_SOURCE_DIR}/src/formats
                             ${CMAKE_SOURCE_DIR}/src/repo
                             ${CMAKE_SOURCE_DIR}/src/store
                             ${CMAKE_SOURCE_DIR}/src/codec
                             ${CMAKE_SOURCE_DIR}/src/net
                             ${CMAKE_SOURCE_DIR}/tests/harness)
  target_link_libraries(${name}_regress PRIVATE weightvault_static)
  wv_add_test(fuzz.${target}.regress ${name}_regress
              ${CMAKE_SOURCE_DIR}/fuzz/corpora/${target})
  set_tests_properties(fuzz.${target}.regress PROPERTIES TIMEOUT 300)
  if(WV_FUZZ AND CMAKE_C_COMPILER_ID STREQUAL "Clang")
    add_executable(${name} ${src})
    target_include_directories(${name} PRIVATE ${CMAKE_SOURCE_DIR}/src/core
                               ${CMAKE_SOURCE_DIR}/src/json
                               ${CMAKE_SOURCE_DIR}/src/tensor
                               ${CMAKE_SOURCE_DIR}/src/formats
                               ${CMAKE_SOURCE_DIR}/src/repo
                               ${CMAKE_SOURCE_DIR}/src/store
                               ${CMAKE_SOURCE_DIR}/src/codec
                               ${CMAKE_SOURCE_DIR}/src/net
                               ${CMAKE_SOURCE_DIR}/tests/harness)
    target_compile_options(${name} PRIVATE -fsanitize=fuzzer)
    target_link_options(${name} PRIVATE -fsanitize=fuzzer)
    target_link_libraries(${name} PRIVATE weightvault_static)
    wv_add_test(fuzz.${target}.run
             bash ${CMAKE_SOURCE_DIR}/fuzz/run.sh $<TARGET_FILE:${name}>
                     ${CMAKE_SOURCE_DIR}/fuzz/corpora/${target}
                     ${CMAKE_BINARY_DIR}/fuzz-work/${target} ${WV_FUZZ_SECONDS})
    set_tests_properties(fuzz.${target}.run PROPERTIES
                         TIMEOUT 200)
  endif()
endforeach()

# Suites that need a Ceph cluster (the s3:// and rados:// backends, push and
# pull to them) run against one started by the fixture below
# (scripts/ceph-dev.sh: a mon, an OSD and radosgw on loopback) and stopped
# after them. The credentials are the fixed test users of that script.
# A build without both s3 and rados has no such suite, and no cluster.
if(NOT WV_WITH_S3 AND NOT WV_WITH_RADOS)
  return()
endif()
set(WV_CEPH_DIR ${CMAKE_BINARY_DIR}/ceph)
add_test(NAME ceph.start COMMAND bash ${CMAKE_SOURCE_DIR}/tests/ceph_fixture.sh
         start ${WV_CEPH_DIR})
add_test(NAME ceph.stop COMMAND bash ${CMAKE_SOURCE_DIR}/tests/ceph_fixture.sh
         stop ${WV_CEPH_DIR})
set_tests_properties(ceph.start PROPERTIES FIXTURES_SETUP ceph TIMEOUT 600)
set_tests_properties(ceph.stop PROPERTIES FIXTURES_CLEANUP ceph TIMEOUT 120)
set(WV_CEPH_ENV
  "CEPH_CONF=${WV_CEPH_DIR}/ceph.conf"
  "WV_CEPH_DIR=${WV_CEPH_DIR}"
  "WV_CEPH_SCRIPT=${CMAKE_SOURCE_DIR}/scripts/ceph-dev.sh"
  "AWS_ACCESS_KEY_ID=WVALICEACCESSKEY0001"
  "AWS_SECRET_ACCESS_KEY=wvalicesecretkey000000000000000000000001"
  "AWS_DEFAULT_REGION=us-east-1"
  "AWS_ENDPOINT_URL=http://127.0.0.1:7480"
  "S3_ENDPOINT=http://127.0.0.1:7480"
  "WV_S3_B_ACCESS_KEY_ID=WVBOBACCESSKEY000001"
  "WV_S3_B_SECRET_ACCESS_KEY=wvbobsecretkey00000000000000000000000001")
get_property(wv_all_tests DIRECTORY PROPERTY TESTS)
set(wv_ceph_locks)
foreach(t ${wv_all_tests})
  # (cli.python: its S3 round trip; cli.python_dist: S3 and RADOS runs)
  if(t MATCHES "^(unit|cli)\\.(s3|rados|remote|ceph)" OR
     t MATCHES "^cli\\.python(_dist)?$")
    set_property(TEST ${t} APPEND PROPERTY ENVIRONMENT ${WV_CEPH_ENV})
    set_tests_properties(${t} PROPERTIES FIXTURES_REQUIRED ceph
                         SKIP_RETURN_CODE 77)
    if(t MATCHES "^cli\\.remote_")
      set_tests_properties(${t} PROPERTIES TIMEOUT 900)
    endif()
    # each holds a lock of its own (ceph:NAME), cli.remote_faults all of
    # them (below)
    if(NOT t STREQUAL "cli.remote_faults")
      set_tests_properties(${t} PROPERTIES RESOURCE_LOCK ceph:${t})
      list(APPEND wv_ceph_locks ceph:${t})
    endif()
  endif()
endforeach()
# cli.remote_faults kills radosgw: nothing else may use the cluster
# meanwhile. It takes every other cluster suite's lock, so it runs alone
# on the cluster while those run beside one another as before, and the
# suites without the cluster beside it (RUN_SERIAL, which this replaces,
# idled every other ctest -j slot for its 160 s).
if(TEST cli.remote_faults)
  set_tests_properties(cli.remote_faults PROPERTIES
                       RESOURCE_LOCK "${wv_ceph_locks}")
endif()

