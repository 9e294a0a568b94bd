# The two commands most people need:
#   make run    install what is missing, build (Release) and start the server on config/samokoder.json
#   make test   install what is missing, build with warnings as errors, run every test
# Everything else is for developers; see docs/.

JOBS        ?= $(shell nproc)
BUILD_DIR   ?= build
ASAN_DIR    ?= build-asan
FUZZ_DIR    ?= build-fuzz
CONFIG      ?= config/samokoder.json
CMAKE_FLAGS ?=
BENCH_DIR   ?= build-bench
BENCH_ARGS  ?=

.PHONY: run test build deps deps-test test-asan test-fuzz bench bench-smoke smoke format tidy clean

deps:
	@scripts/install-deps.sh build

deps-test:
	@scripts/install-deps.sh test

$(BUILD_DIR)/CMakeCache.txt:
	cmake -S . -B $(BUILD_DIR) -DCMAKE_BUILD_TYPE=Release -DSAMOKODER_WERROR=ON $(CMAKE_FLAGS)

build: $(BUILD_DIR)/CMakeCache.txt
	cmake --build $(BUILD_DIR) -j$(JOBS)

run: deps
	@$(MAKE) --no-print-directory build
	exec $(BUILD_DIR)/bin/samokoder serve --config $(CONFIG)

test: deps-test
	@$(MAKE) --no-print-directory build
	cd $(BUILD_DIR) && ctest --output-on-failure -j2 --timeout 600
	@$(MAKE) --no-print-directory test-asan
	@$(MAKE) --no-print-directory test-fuzz

# The plugin ABI, hot-reload, host-service, LLM gateway and runs tests again under AddressSanitizer and
# UndefinedBehaviorSanitizer: a build that registers only those suites and compiles only what they need
# (threads meet in all five: leases and reloads, timers, child reapers, streams, the gateway, the
# run engine's workers and event hub). The providers' wire formats are single-threaded parsing; the
# fuzzers cover their event-stream parser instead, which keeps `make test` inside its time budget.
ASAN_SUITES ?= abi;reload;services;llm;runs
# frozen_sdk_tests (label abi) proves a 1.0 plugin still loads, a build-time property the main pass
# checks; under ASan it would only compile the SQLite backend a second time.
ASAN_SKIP_TESTS ?= llm_openai_tests;llm_openai_wire_tests;llm_anthropic_tests;llm_common_tests;llm_gateway_providers_tests;frozen_sdk_tests
ASAN_TARGETS ?= abi_tests reload_tests services_tests process_tests model_server_tests llm_json_schema_tests \
                llm_gateway_tests llm_gateway_reload_tests llm_api_tests runs_api_tests
# -O1, as the ASan documentation advises for usable speed, and line tables only: symbolized stack
# traces at a fraction of the compile time of -O2 with full debug info. Debug keeps assertions on.
ASAN_OPT_FLAGS ?= -O1 -g1
test-asan:
	cmake -S . -B $(ASAN_DIR) -DCMAKE_BUILD_TYPE=Debug "-DCMAKE_CXX_FLAGS_DEBUG=$(ASAN_OPT_FLAGS)" -DSAMOKODER_WERROR=ON \
	  -DSAMOKODER_SANITIZE=address,undefined "-DSAMOKODER_TEST_SUITES=$(ASAN_SUITES)" \
	  "-DSAMOKODER_SKIP_TESTS=$(ASAN_SKIP_TESTS)" $(CMAKE_FLAGS)
	cmake --build $(ASAN_DIR) -j$(JOBS) --target $(ASAN_TARGETS)
	cd $(ASAN_DIR) && ASAN_OPTIONS=detect_leaks=1 ctest --output-on-failure -j2 --timeout 600

# The libFuzzer targets (path normalisation, request JSON, JWT verification, the SSE parser), briefly: a clang tree that
# builds only them, each run for 10 seconds from its seed corpus.
test-fuzz:
	CC=clang CXX=clang++ cmake -S . -B $(FUZZ_DIR) -DCMAKE_BUILD_TYPE=RelWithDebInfo \
	  -DSAMOKODER_BUILD_FUZZERS=ON -DSAMOKODER_TEST_SUITES=fuzz $(CMAKE_FLAGS)
	cmake --build $(FUZZ_DIR) -j$(JOBS) --target samokoder_fuzzers
	cd $(FUZZ_DIR) && ctest --output-on-failure -j2 -L fuzz --timeout 120

# Benchmarks (docs/performance.md): a Release build with the benchmark programs, then the harness
# (bench/run_bench.py) against nginx and the FastAPI reference; writes bench/results/latest.{md,json}.
bench:
	@scripts/install-deps.sh bench
	cmake -S . -B $(BENCH_DIR) -DCMAKE_BUILD_TYPE=Release -DSAMOKODER_BUILD_BENCH=ON -DSAMOKODER_WERROR=ON $(CMAKE_FLAGS)
	cmake --build $(BENCH_DIR) -j$(JOBS) --target bench_harness
	/usr/bin/python3 bench/run_bench.py --build-dir $(BENCH_DIR) $(BENCH_ARGS)

# The same harness with tiny durations on the test build (it is the `bench` label of `make test`):
# proves the harness still works, asserts no number.
bench-smoke: deps-test
	@$(MAKE) --no-print-directory build
	cd $(BUILD_DIR) && ctest -L bench --no-tests=error --output-on-failure

# Against real model providers, outside CI: one prompt per provider whose key is set (OPENAI_API_KEY,
# ANTHROPIC_API_KEY, OLLAMA_URL) through `samokoder llm ping`, then the end-to-end test's description
# through the whole agent pipeline (scripts/smoke_pipeline.py); says SKIPPED for what has no key.
smoke: deps
	@$(MAKE) --no-print-directory build
	@scripts/smoke.sh

format:
	git ls-files '*.cpp' '*.hpp' '*.h' | xargs clang-format -i

# clang-tidy needs one command per file, which test programs compiled in unity batches do not have:
# it reads the compile database of a configure (no build) without the batches, pointed at the build's
# generated files, and without the g++ flags clang refuses (-fno-gnu-unique on plugins, -Wshadow=local,
# -Wno-error=restrict).
TIDY_CONFIGURE_DIR = $(BUILD_DIR)/tidy-configure
TIDY_DB_DIR = $(BUILD_DIR)/tidy-db
tidy: build
	cmake -S . -B $(TIDY_CONFIGURE_DIR) -DCMAKE_BUILD_TYPE=Release -DSAMOKODER_WERROR=ON \
	  -DSAMOKODER_UNITY_TESTS=OFF $(CMAKE_FLAGS) > /dev/null
	mkdir -p $(TIDY_DB_DIR)
	sed -e 's|$(abspath $(TIDY_CONFIGURE_DIR))|$(abspath $(BUILD_DIR))|g' -e 's/ -fno-gnu-unique//g' \
	  -e 's/ -Wshadow=local//g' -e 's/ -Wno-error=restrict//g' \
	  $(TIDY_CONFIGURE_DIR)/compile_commands.json > $(TIDY_DB_DIR)/compile_commands.json
	git ls-files 'kernel/*.cpp' 'plugins/*.cpp' | xargs clang-tidy -p $(TIDY_DB_DIR) --quiet

clean:
	rm -rf $(BUILD_DIR) $(ASAN_DIR)
