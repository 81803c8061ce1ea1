# drvctl: Docker task driver (C core + Lua).
#
#   make            build ./drvctl
#   make run        bootstrap this machine, build, run examples/hello.hcl
#   make test       bootstrap, build, run every test (C, Lua unit, CLI, Docker)
#   make install    PREFIX=/usr/local DESTDIR=
#   make lint       luacheck (lua/, policies/, spec/) and cppcheck (core/)
#
# Variables: WERROR=1 (warnings are errors), SANITIZE=address,undefined, V=1.

PREFIX     ?= /usr/local
BINDIR     ?= $(PREFIX)/bin
DATADIR    ?= $(PREFIX)/share/drvctl
MANDIR     ?= $(PREFIX)/share/man
LUADIR     ?= $(DATADIR)/lua
POLICYDIR  ?= $(DATADIR)/policies
DESTDIR    ?=

CC         ?= cc
PKG_CONFIG ?= pkg-config
LUA        ?= lua5.4
LUAC       ?= luac5.4
BUSTED     ?= $(LUA) /usr/bin/busted
LUA_PC     ?= $(firstword $(foreach p,lua5.4 lua-5.4 lua54,$(shell $(PKG_CONFIG) --exists $(p) 2>/dev/null && echo $(p))))

# libarchive is not linked: core/base/archive_dl.c loads it on first use
# (its dependencies cost 1.3 ms of every process start); only its headers
# and its soname are taken from the build machine.
DEP_PKGS    = $(LUA_PC) libcurl libuv libcrypto
DEP_CFLAGS := $(shell $(PKG_CONFIG) --cflags $(DEP_PKGS) libarchive 2>/dev/null)
DEP_LIBS   := $(shell $(PKG_CONFIG) --libs $(DEP_PKGS) 2>/dev/null)
ARCHIVE_SONAME := $(shell objdump -p $$($(PKG_CONFIG) --variable=libdir libarchive 2>/dev/null)/libarchive.so 2>/dev/null | awk '/SONAME/ { print $$2 }')

# Warnings: the usual set, plus the prototype and conversion checks that
# catch real bugs in a small C core.
WARNFLAGS  = -Wall -Wextra -Wshadow -Wundef -Wwrite-strings \
             -Wstrict-prototypes -Wmissing-prototypes -Wold-style-definition \
             -Wformat=2 -Wpointer-arith -Wcast-qual -Wvla -Wnull-dereference \
             -Wimplicit-fallthrough
WERROR    ?= 0
ifeq ($(WERROR),1)
WARNFLAGS += -Werror
endif

SANITIZE  ?=
ifneq ($(SANITIZE),)
SANFLAGS   = -fsanitize=$(SANITIZE) -fno-omit-frame-pointer -fno-sanitize-recover=all
endif

OPT       ?= -O2 -g
# core/ is grouped by what each noun serves (README: "Where things are");
# every folder is on the include path, so a header is named by its file.
CORE_DIRS  = base event docker host plan task image lua cmd
CORE_INC   = $(CORE_DIRS:%=-Icore/%)
DRV_CFLAGS = -std=c11 -D_GNU_SOURCE $(OPT) $(WARNFLAGS) $(SANFLAGS) $(DEP_CFLAGS) \
             -I$(BUILD) $(CORE_INC) -MMD -MP
ALL_CFLAGS = $(DRV_CFLAGS) $(CPPFLAGS) $(CFLAGS)
ALL_LDFLAGS = $(SANFLAGS) $(LDFLAGS)
LIBS       = $(DEP_LIBS) -lhttp_parser -lm -ldl -lpthread

BUILD      = build
BIN       ?= drvctl
CORE_SRC   = $(filter-out core/cmd/drvctl.c,$(foreach d,$(CORE_DIRS),$(wildcard core/$(d)/*.c)))
CORE_OBJ   = $(CORE_SRC:core/%.c=$(BUILD)/obj/%.o)
MAIN_OBJ   = $(BUILD)/obj/cmd/drvctl.o
LUA_SRC    = $(wildcard lua/drv/*.lua)
# Lua modules are precompiled into build/lua (debug info kept, so tracebacks
# still name lines): a cold start then skips parsing about 7000 lines (5 ms).
# `make install` installs them; the source tree's binary loads build/lua when
# no module in lua/drv is newer than its precompiled copy, else lua/ as text,
# so an edit there needs no rebuild.
LUA_BC     = $(LUA_SRC:lua/drv/%.lua=$(BUILD)/lua/drv/%.lua)
# The shipped policies precompiled, each with the path and text it was
# compiled from (scripts/policy-bytecode.lua; core/plan/policyset.c uses an
# entry only for that exact path and text): loading them skips compiling
# 17 files per plan (about 1 ms). `make install` writes its own for POLICYDIR.
POLICY_SRC = $(sort $(wildcard policies/*.lua))
POLICY_BC  = $(BUILD)/policies.bc
TEST_SRC   = $(wildcard core/tests/test_*.c)
TEST_BIN   = $(TEST_SRC:core/tests/%.c=$(BUILD)/tests/%)

ifeq ($(V),1)
Q =
else
Q = @
endif

.PHONY: FORCE all run test test-c test-unit test-cli test-docker bootstrap install uninstall clean bench lint

all: $(BIN) $(LUA_BC) $(POLICY_BC) $(BUILD)/drvctl.1

# drvctl(1), from the text of --help and `drvctl help COMMAND`
$(BUILD)/drvctl.1: $(BIN) scripts/manpage | $(BUILD)
	@echo "  MAN     $@"
	$(Q)$(LUA) scripts/manpage $(BIN) $@ '$(DATADIR)'

$(BIN): $(MAIN_OBJ) $(CORE_OBJ)
	@echo "  LINK    $@"
	$(Q)$(CC) $(ALL_LDFLAGS) -o $@ $^ $(LIBS)

# Install paths the binary falls back to (after its own directory): rewritten
# only when PREFIX/LUADIR/POLICYDIR change, so `make install PREFIX=...`
# rebuilds exactly what depends on them.
$(BUILD)/paths.h: FORCE | $(BUILD)
	$(Q)printf '#define DRV_LUADIR "%s"\n#define DRV_POLICYDIR "%s"\n#define DRV_DATADIR "%s"\n' \
		'$(LUADIR)' '$(POLICYDIR)' '$(DATADIR)' > $@.tmp
	$(Q)if cmp -s $@.tmp $@; then rm -f $@.tmp; else mv $@.tmp $@; fi

$(BUILD)/obj/plan/conf.o $(BUILD)/obj/plan/policyset.o: $(BUILD)/paths.h

ifneq ($(ARCHIVE_SONAME),)
$(BUILD)/obj/base/archive_dl.o: CPPFLAGS += -DDRV_ARCHIVE_SONAME='"$(ARCHIVE_SONAME)"'
endif

FORCE:

$(BUILD)/obj/%.o: core/%.c | $(BUILD)
	@echo "  CC      $<"
	$(Q)mkdir -p $(@D)
	$(Q)$(CC) $(ALL_CFLAGS) -c -o $@ $<

$(BUILD)/tests/%: core/tests/%.c $(CORE_OBJ) | $(BUILD)/tests
	@echo "  CC      $<"
	$(Q)$(CC) $(ALL_CFLAGS) $(ALL_LDFLAGS) -o $@ $< $(CORE_OBJ) $(LIBS)

$(BUILD)/lua/drv/%.lua: lua/drv/%.lua | $(BUILD)/lua/drv
	@echo "  LUAC    $<"
	$(Q)$(LUAC) -o $@ $<

$(POLICY_BC): $(POLICY_SRC) scripts/policy-bytecode.lua | $(BUILD)
	@echo "  POLICYC policies"
	$(Q)$(LUA) scripts/policy-bytecode.lua $@ $(CURDIR)/policies $(POLICY_SRC)

$(BUILD) $(BUILD)/tests $(BUILD)/lua/drv:
	$(Q)mkdir -p $@

bootstrap:
	$(Q)scripts/bootstrap

# `all`, not just the binary: ./drvctl loads the Lua modules and policies
# precompiled into build/ (compiling them from text costs every run ~5 ms)
run: bootstrap
	$(Q)$(MAKE) --no-print-directory all
	./drvctl run examples/hello.hcl

# Everything: C unit tests, Lua unit specs, CLI specs, Docker specs; ends
# with one "N passed, N failed" line (scripts/run-tests).
test: bootstrap
	$(Q)$(MAKE) --no-print-directory all $(TEST_BIN)
	$(Q)LUA=$(LUA) scripts/run-tests c unit cli docker

test-c: $(TEST_BIN)
	$(Q)LUA=$(LUA) scripts/run-tests c

test-unit:
	$(Q)LUA=$(LUA) scripts/run-tests unit

test-cli: all
	$(Q)LUA=$(LUA) scripts/run-tests cli

test-docker: all $(BUILD)/tests/test_ports
	$(Q)LUA=$(LUA) scripts/run-tests docker

# Static checks; both must be silent. luacheck reads .luacheckrc (policy
# sandbox globals, busted globals, spec/fixtures excluded). cppcheck exits 1
# on any finding; suppress one only inline (// cppcheck-suppress id) with a
# reason, never here wholesale.
LUACHECK  ?= luacheck
CPPCHECK  ?= cppcheck
CPPCHECK_FLAGS = --quiet --error-exitcode=1 --inline-suppr --std=c11 -D_GNU_SOURCE $(CORE_INC) \
             --enable=warning,style,performance,portability \
             --template='{file}:{line}:{column}: {severity} {id}: {message}'

lint: bootstrap
	@echo "  LUACHECK lua policies spec"
	$(Q)$(LUACHECK) --quiet --no-color --formatter plain lua policies spec
	@echo "  CPPCHECK core"
	$(Q)$(CPPCHECK) $(CPPCHECK_FLAGS) core

bench: drvctl
	$(Q)bench/start_overhead
	$(Q)bench/plan
	$(Q)$(LUA) bench/policy_limits.lua

install: $(BIN) $(LUA_BC) $(POLICY_BC) $(POLICY_BC) $(BUILD)/drvctl.1
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(LUADIR)/drv $(DESTDIR)$(POLICYDIR) $(DESTDIR)$(MANDIR)/man1
	install -m 0755 $(BIN) $(DESTDIR)$(BINDIR)/drvctl
	install -m 0644 $(BUILD)/drvctl.1 $(DESTDIR)$(MANDIR)/man1/drvctl.1
	install -m 0644 $(LUA_BC) $(DESTDIR)$(LUADIR)/drv/
	if ls policies/*.lua >/dev/null 2>&1; then install -m 0644 policies/*.lua $(DESTDIR)$(POLICYDIR)/; fi
	if ls policies/*.lua >/dev/null 2>&1; then \
	  $(LUA) scripts/policy-bytecode.lua $(DESTDIR)$(DATADIR)/policies.bc $(POLICYDIR) $(POLICY_SRC) && \
	  chmod 0644 $(DESTDIR)$(DATADIR)/policies.bc; fi

uninstall:
	rm -f $(DESTDIR)$(BINDIR)/drvctl
	rm -f $(DESTDIR)$(MANDIR)/man1/drvctl.1
	rm -rf $(DESTDIR)$(LUADIR) $(DESTDIR)$(POLICYDIR)
	rm -f $(DESTDIR)$(DATADIR)/policies.bc

clean:
	rm -rf $(BUILD) $(BIN)

-include $(CORE_OBJ:.o=.d) $(MAIN_OBJ:.o=.d)

# --- fuzzing (not part of `make test`; see fuzz/README.md) -------------------
#   make fuzz                  build the libFuzzer harnesses into build/fuzz/,
#                              run each for FUZZ_SECONDS, then the Lua fuzzer
#   make fuzz-build            build only
#   make fuzz-c | fuzz-lua     one half
# Variables: FUZZ_SECONDS=60, FUZZ_TARGETS="frame lines artifact logs json httpd",
# FUZZ_LUA_GROUPS="hcl expr", FUZZ_CC=clang.
FUZZ_CC       ?= clang
FUZZ_SECONDS  ?= 60
FUZZ_TARGETS  ?= frame lines artifact logs json httpd
FUZZ_LUA_GROUPS ?= hcl expr
FUZZ_DIR       = $(BUILD)/fuzz
FUZZ_CFLAGS    = -std=c11 -D_GNU_SOURCE -g -O1 -fno-omit-frame-pointer \
                 -fsanitize=address,undefined -fno-sanitize-recover=all \
                 $(DEP_CFLAGS) -I$(BUILD) $(CORE_INC) -MMD -MP
FUZZ_OBJ       = $(CORE_SRC:core/%.c=$(FUZZ_DIR)/obj/%.o)
FUZZ_BIN       = $(FUZZ_TARGETS:%=$(FUZZ_DIR)/fuzz_%)

.PHONY: fuzz fuzz-build fuzz-c fuzz-lua

fuzz: fuzz-c fuzz-lua

fuzz-build: $(FUZZ_BIN)

$(FUZZ_DIR)/obj/%.o: core/%.c | $(FUZZ_DIR)/obj
	@echo "  FUZZCC  $<"
	$(Q)mkdir -p $(@D)
	$(Q)$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link -c -o $@ $<

$(FUZZ_DIR)/obj/plan/conf.o $(FUZZ_DIR)/obj/plan/policyset.o: $(BUILD)/paths.h

$(FUZZ_DIR)/libcore.a: $(FUZZ_OBJ)
	$(Q)rm -f $@ && ar rcs $@ $^

$(FUZZ_DIR)/fuzz_%: fuzz/c/fuzz_%.c $(FUZZ_DIR)/libcore.a
	@echo "  FUZZLD  $@"
	$(Q)$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer -o $@ $< $(FUZZ_DIR)/libcore.a $(LIBS)

$(FUZZ_DIR)/obj:
	$(Q)mkdir -p $@

fuzz-c: $(FUZZ_BIN)
	$(Q)for t in $(FUZZ_TARGETS); do \
	  FUZZ_SECONDS=$(FUZZ_SECONDS) fuzz/run-c $$t || exit $$?; \
	done

fuzz-lua:
	$(Q)for g in $(FUZZ_LUA_GROUPS); do \
	  $(LUA) fuzz/lua/mutate.lua --group $$g --seconds $(FUZZ_SECONDS) || exit $$?; \
	done

-include $(FUZZ_OBJ:.o=.d) $(FUZZ_BIN:=.d)

# The corpus replay test includes core/task/artifact.c and core/task/logs.c (through the
# harnesses), so it links the other objects from an archive.
$(BUILD)/libcore-test.a: $(CORE_OBJ)
	$(Q)rm -f $@ && ar rcs $@ $^

$(BUILD)/tests/test_fuzz_seeds: core/tests/test_fuzz_seeds.c fuzz/c/fuzz_frame.c fuzz/c/fuzz_lines.c \
		fuzz/c/fuzz_artifact.c fuzz/c/fuzz_logs.c fuzz/c/fuzz_json.c fuzz/c/fuzz_httpd.c \
		$(BUILD)/libcore-test.a | $(BUILD)/tests
	@echo "  CC      $<"
	$(Q)$(CC) $(ALL_CFLAGS) $(ALL_LDFLAGS) -o $@ $< $(BUILD)/libcore-test.a $(LIBS)
