# topowire - top-level build. `make` builds the programs with the libraries installed (and,
# when pkg-config cannot find one, names it and its Debian package and stops), `make deps`
# installs the Debian packages, `make test` runs every suite (plain and under ASan+UBSan),
# `make demo` runs the local demo cluster, `make bench` the benchmarks. The packages are listed
# once, in mk/packages; demo, test, bench, image, lint and fuzz install their own with mk/deps.sh.

VERSION  := $(shell cat VERSION 2>/dev/null || echo 0.0.0)
CC       ?= cc
PKGS     := $(shell mk/deps.sh --modules lib)
TESTPKGS := $(shell mk/deps.sh --modules test)

# SAN=1 builds everything again under AddressSanitizer + UBSan in build/asan.
# TSAN=1 builds under ThreadSanitizer (gcc; never together with ASan) in build/tsan.
ifeq ($(TSAN),1)
OBJDIR   ?= build/tsan
BINDIR   ?= build/tsan/bin
OPTFLAGS := -O1 -g -fno-omit-frame-pointer -fsanitize=thread
LDSAN    := -fsanitize=thread
else ifeq ($(SAN),1)
OBJDIR   ?= build/asan
BINDIR   ?= build/asan/bin
OPTFLAGS := -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=all
LDSAN    := -fsanitize=address,undefined
else
OBJDIR   ?= build/obj
BINDIR   ?= bin
OPTFLAGS ?= -O2 -g
LDSAN    :=
endif
TESTDIR  := $(OBJDIR)/tests

# Warnings are errors; `make WERROR=` builds anyway with a compiler newer than the one the
# tree is tested with. make test and CI always build with -Werror.
WERROR   ?= -Werror
WARN     := -Wall -Wextra $(WERROR) -Wshadow -Wstrict-prototypes -Wmissing-prototypes -Wformat=2 \
            -Wno-format-nonliteral
CPPFLAGS += -Iinclude -D_GNU_SOURCE -DTW_VERSION='"$(VERSION)"'
CFLAGS   += -std=c11 $(WARN) $(OPTFLAGS) -MMD -MP -ffile-prefix-map=$(CURDIR)=. $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
LDLIBS   := $(shell pkg-config --libs $(PKGS) 2>/dev/null) -lpthread
TESTLIBS := $(shell pkg-config --libs $(TESTPKGS) 2>/dev/null)

LIB_SRC     := $(wildcard lib/*.c)
INIT_SRC    := $(wildcard initcontainer/*.c)
HOOK_SRC    := $(filter-out webhook/main.c,$(wildcard webhook/*.c))
STANDIN_SRC := $(wildcard tests/standin/*.c)
SUPPORT_SRC := $(wildcard tests/unit/support/*.c)
UNIT_SRC    := $(wildcard tests/unit/test_*.c)

obj = $(patsubst %.c,$(OBJDIR)/%.o,$(1))

LIB_A     := $(OBJDIR)/libtopowire.a
HOOK_A    := $(OBJDIR)/libwebhook.a
SUPPORT_A := $(OBJDIR)/libtestsupport.a
PROGS     := $(BINDIR)/topowire-init $(if $(wildcard webhook/main.c),$(BINDIR)/topowire-webhook)
UNIT_BINS := $(patsubst tests/unit/%.c,$(TESTDIR)/%,$(UNIT_SRC))
STANDIN   := $(if $(STANDIN_SRC),$(TESTDIR)/topowire-standin)

.PHONY: all deps test check-build demo bench clean lint fuzz fuzz-build soak image programs fresh \
	pkgs testpkgs
.DEFAULT_GOAL := all

all: programs

programs: $(PROGS)

# Everything the test suites run: programs, unit tests, stand-in servers.
check-build: $(PROGS) $(UNIT_BINS) $(STANDIN)

# Installs the Debian packages `make` needs (apt-get, through sudo when not root).
deps:
	@mk/deps.sh build

# Before anything compiles: every pkg-config module is there, or make names the missing ones.
pkgs:
	@mk/deps.sh --check lib
testpkgs:
	@mk/deps.sh --check lib test

# Only the unit tests see the test headers; cmocka is checked for before any of them compiles.
TEST_OBJS := $(call obj,$(UNIT_SRC) $(SUPPORT_SRC))
$(TEST_OBJS): CPPFLAGS += -Itests/unit
$(TEST_OBJS): | testpkgs

$(OBJDIR)/%.o: %.c | pkgs
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) -c -o $@ $<

$(LIB_A): $(call obj,$(LIB_SRC))
	@rm -f $@
	$(AR) rcs $@ $^

$(HOOK_A): $(call obj,$(HOOK_SRC)) | $(LIB_A)
	@rm -f $@
	$(AR) rcs $@ $^

$(SUPPORT_A): $(call obj,$(SUPPORT_SRC)) | $(LIB_A)
	@rm -f $@
	$(AR) rcs $@ $^

$(BINDIR)/topowire-init: $(call obj,$(INIT_SRC)) $(LIB_A)
	@mkdir -p $(dir $@)
	$(CC) $(LDSAN) -o $@ $^ $(LDLIBS)

$(BINDIR)/topowire-webhook: $(call obj,webhook/main.c) $(HOOK_A) $(LIB_A)
	@mkdir -p $(dir $@)
	$(CC) $(LDSAN) -o $@ $^ $(LDLIBS)

$(TESTDIR)/test_%: $(call obj,tests/unit/test_%.c) $(SUPPORT_A) $(HOOK_A) $(LIB_A)
	@mkdir -p $(dir $@)
	$(CC) $(LDSAN) -o $@ $^ $(LDLIBS) $(TESTLIBS)

$(TESTDIR)/topowire-standin: $(call obj,$(STANDIN_SRC)) $(LIB_A)
	@mkdir -p $(dir $@)
	$(CC) $(LDSAN) -o $@ $^ $(LDLIBS)

# libFuzzer targets: the library again with clang and the fuzzer instrumentation.
FUZZ_DIR   := build/fuzz
FUZZ_SRC   := $(wildcard fuzz/fuzz_*.c)
FUZZ_BINS  := $(patsubst fuzz/%.c,$(FUZZ_DIR)/bin/%,$(FUZZ_SRC))
FUZZ_FLAGS := -g -O1 -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=all
FUZZ_CFLAGS = -std=c11 $(WARN) $(FUZZ_FLAGS) $(shell pkg-config --cflags $(PKGS) 2>/dev/null)

$(FUZZ_DIR)/%.o: %.c | pkgs
	@mkdir -p $(dir $@)
	clang $(CPPFLAGS) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link -c -o $@ $<

$(FUZZ_DIR)/libtopowire.a: $(patsubst %.c,$(FUZZ_DIR)/%.o,$(LIB_SRC))
	@rm -f $@
	$(AR) rcs $@ $^

$(FUZZ_DIR)/bin/fuzz_%: $(FUZZ_DIR)/fuzz/fuzz_%.o $(FUZZ_DIR)/libtopowire.a
	@mkdir -p $(dir $@)
	clang $(FUZZ_FLAGS) -fsanitize=fuzzer -o $@ $^ $(LDLIBS)

fuzz-build: $(FUZZ_BINS)

FUZZ_SECONDS ?= 60
fuzz:
	@mk/deps.sh fuzz
	@$(MAKE) --no-print-directory -j$(shell nproc) fuzz-build
	@tests/fuzz.sh $(FUZZ_SECONDS)

# ThreadSanitizer: the unit tests that use one object from several threads at once, built
# into build/tsan and run with TAP output (tests/run-tsan.sh); run-all.sh counts them.
TSAN_TESTS := test_kubeconfig test_kube test_nodecache test_binding
.PHONY: tsan
tsan:
	@$(MAKE) --no-print-directory TSAN=1 $(addprefix build/tsan/tests/,$(TSAN_TESTS))
	@tests/run-tsan.sh $(TSAN_TESTS)

# The whole suite: plain build, then the same under ASan+UBSan, then lint and
# a short fuzz run; ends with one line "N passed, N failed".
test:
	@mk/deps.sh test image
	@tests/run-all.sh

demo:
	@mk/deps.sh test
	@$(MAKE) --no-print-directory programs
	@tests/demo.sh

# BASELINE=REV runs every benchmark against commit REV too, in the same run.
bench:
	@mk/deps.sh bench
	@BENCH_BASELINE=$(BASELINE) BENCH_ONLY="$(ONLY)" bench/run.sh

# A million mixed reviews against the webhook in binding mode, RSS sampled.
soak:
	@mk/deps.sh bench
	@$(MAKE) --no-print-directory check-build >/dev/null
	@tests/soak.sh

# The README's two commands on a brand-new Debian bookworm root (as root).
fresh:
	@tests/fresh-machine.sh

image:
	@mk/deps.sh build image
	@mk/image.sh

lint:
	@mk/deps.sh test
	@tests/lint.sh

clean:
	rm -rf build bin

-include $(shell find $(OBJDIR) $(FUZZ_DIR) -name '*.d' -type f 2>/dev/null)
