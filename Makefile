# Thin wrapper around CMake: `make run`, `make test`, `make bench`.
# Everything real lives in CMakeLists.txt; this file only sets up and calls.

BUILD      ?= build
ASAN_BUILD ?= build-asan
TSAN_BUILD ?= build-tsan
JOBS       ?= $(shell nproc 2>/dev/null || echo 2)
CONFIG     ?= config/host.json

# Debian packages the build and the tests need.
PACKAGES := cmake make gcc pkg-config libjansson-dev libcmocka-dev \
            libhttp-parser-dev liburing-dev curl wrk

.PHONY: all setup build build-asan build-tsan run test bench clean

all: build

# Installs missing packages with apt-get when root; otherwise prints the
# exact command to run and fails.
setup:
	@missing=$$(for p in $(PACKAGES); do \
	    dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | \
	        grep -q '^install ok installed$$' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	    if [ "$$(id -u)" = 0 ]; then \
	        echo "setup: installing" $$missing; \
	        apt-get update -qq && \
	        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	    else \
	        echo "setup: missing Debian packages; run:"; \
	        echo "  sudo apt-get install -y" $$missing; \
	        exit 1; \
	    fi; \
	fi

build: setup
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo
	cmake --build $(BUILD) -j $(JOBS)

build-asan: setup
	cmake -S . -B $(ASAN_BUILD) -DCMAKE_BUILD_TYPE=Debug -DIOLOOP_SANITIZE=ON
	cmake --build $(ASAN_BUILD) -j $(JOBS)

# Only the tests whose code runs on several threads (label "threads").
build-tsan: setup
	cmake -S . -B $(TSAN_BUILD) -DCMAKE_BUILD_TYPE=Debug -DIOLOOP_TSAN=ON
	cmake --build $(TSAN_BUILD) -j $(JOBS) --target threaded_tests

run: build
	./$(BUILD)/ioloop-host --config $(CONFIG)

test: build build-asan build-tsan
	ctest --test-dir $(BUILD) --output-on-failure -j $(JOBS)
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
	UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	    ctest --test-dir $(ASAN_BUILD) --output-on-failure -j $(JOBS)
	TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1:die_after_fork=0 \
	    ctest --test-dir $(TSAN_BUILD) -L threads --output-on-failure \
	    -j $(JOBS)

# Benchmarks beside libev, libevent, libuv, nginx and the tornado demo, in
# their own build (build-bench/); not part of `make test`. BENCH_QUICK=1 for
# a fast pass. See docs/performance.md.
bench: setup
	bench/setup.sh
	cmake -S . -B build-bench -DCMAKE_BUILD_TYPE=RelWithDebInfo \
	    -DIOLOOP_BENCH=ON
	cmake --build build-bench -j $(JOBS) --target bench_all
	bench/run.sh build-bench

clean:
	rm -rf $(BUILD) $(ASAN_BUILD) $(TSAN_BUILD) build-bench
