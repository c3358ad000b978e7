# Thin wrapper around CMake: `make run`, `make test`, `make bench`.
# Everything real lives in CMakeLists.txt; this file only sets up and calls.

BUILD      ?= build
ASAN_BUILD ?= build-asan
TSAN_BUILD ?= build-tsan
JOBS       ?= $(shell nproc 2>/dev/null || echo 2)
CONFIG     ?= config/host.json
# Warnings are errors in the builds make test runs (IOLOOP_WERROR).
WERROR     ?= ON

# Debian packages the build and the tests need.
PACKAGES := cmake make gcc pkg-config libjansson-dev libcmocka-dev \
            libhttp-parser-dev liburing-dev libssl-dev openssl curl wrk \
            prometheus python3-yaml

# make fuzz: clang with libFuzzer's runtime (a Recommends of clang).
FUZZ_PACKAGES := clang libclang-rt-14-dev
FUZZ_BUILD    ?= build-fuzz
FUZZ_SECONDS  ?= 60

# make deb: the Debian packages, in $(DEB_BUILD)/ (see debian/build-debs.sh).
DEB_PACKAGES := devscripts debhelper lintian fakeroot
DEB_BUILD    ?= build-deb

.PHONY: all setup build build-asan build-tsan run test bench fuzz deb clean

all: build

# $(call apt_install,PACKAGES): installs the missing ones with apt-get
# when root; otherwise prints the exact command to run and fails.
define apt_install
	@missing=$$(for p in $(1); do \
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
endef

setup:
	$(call apt_install,$(PACKAGES))

build: setup
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo \
	    -DIOLOOP_WERROR=$(WERROR)
	cmake --build $(BUILD) -j $(JOBS)

build-asan: setup
	cmake -S . -B $(ASAN_BUILD) -DCMAKE_BUILD_TYPE=Debug -DIOLOOP_SANITIZE=ON \
	    -DIOLOOP_WERROR=$(WERROR)
	cmake --build $(ASAN_BUILD) -j $(JOBS)

# Only the tests whose code runs on several threads (label "threads").
build-tsan: setup
	cmake -S . -B $(TSAN_BUILD) -DCMAKE_BUILD_TYPE=Debug -DIOLOOP_TSAN=ON \
	    -DIOLOOP_WERROR=$(WERROR)
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
	@if [ "$(IOLOOP_TEST_DEB)" = 1 ]; then \
	    $(MAKE) deb && tests/package/test_package.sh $(DEB_BUILD); \
	else \
	    echo "test: package test skipped (IOLOOP_TEST_DEB=1 runs it)"; \
	fi

# Benchmarks beside libev, libevent, libuv, nginx and the tornado demo, in
# their own build (build-bench/); not part of `make test`. BENCH_QUICK=1 for
# a fast pass. See docs/performance.md.
bench: setup
	bench/setup.sh
	cmake -S . -B build-bench -DCMAKE_BUILD_TYPE=RelWithDebInfo \
	    -DIOLOOP_BENCH=ON
	cmake --build build-bench -j $(JOBS) --target bench_all
	bench/run.sh build-bench

# Every libFuzzer harness of tests/fuzz (clang, ASan, UBSan) for
# FUZZ_SECONDS each, seeded from tests/fuzz/NAME/corpus; what it finds is
# kept in $(FUZZ_BUILD)/corpus/NAME, a crash in $(FUZZ_BUILD)/crash-*.
# `make test` only replays the seed corpora. See tests/fuzz/CMakeLists.txt.
fuzz: setup
	$(call apt_install,$(FUZZ_PACKAGES))
	CC=clang cmake -S . -B $(FUZZ_BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo \
	    -DIOLOOP_FUZZ=ON
	cmake --build $(FUZZ_BUILD) -j $(JOBS) --target fuzz_all
	@for bin in $(FUZZ_BUILD)/fuzz/fuzz_*; do \
	    name=$${bin##*/fuzz_}; dict=tests/fuzz/$$name/$$name.dict; \
	    mkdir -p $(FUZZ_BUILD)/corpus/$$name; \
	    echo "fuzz: $$name for $(FUZZ_SECONDS) s"; \
	    $$bin -max_total_time=$(FUZZ_SECONDS) -print_final_stats=1 \
	        -artifact_prefix=$(FUZZ_BUILD)/ \
	        $$( [ -f $$dict ] && echo -dict=$$dict ) \
	        $(FUZZ_BUILD)/corpus/$$name tests/fuzz/$$name/corpus || exit 1; \
	done

# ioloop-host and libioloop-dev .deb files, checked by lintian (no error).
deb: setup
	$(call apt_install,$(DEB_PACKAGES))
	debian/build-debs.sh $(DEB_BUILD)

clean:
	rm -rf $(BUILD) $(ASAN_BUILD) $(TSAN_BUILD) $(FUZZ_BUILD) build-bench \
	    $(DEB_BUILD)
