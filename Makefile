# drvctl: Docker task driver (C core + Lua).
#
#   make            build ./drvctl
#   make run        bootstrap this machine, build, run examples/hello.hcl
#   make test       bootstrap, build, run every test (C, Lua unit, CLI, Docker)
#   make install    PREFIX=/usr/local DESTDIR=
#
# Variables: WERROR=1 (warnings are errors), SANITIZE=address,undefined, V=1.

PREFIX     ?= /usr/local
BINDIR     ?= $(PREFIX)/bin
DATADIR    ?= $(PREFIX)/share/drvctl
LUADIR     ?= $(DATADIR)/lua
POLICYDIR  ?= $(DATADIR)/policies
DESTDIR    ?=

CC         ?= cc
PKG_CONFIG ?= pkg-config
LUA        ?= lua5.4
LUAC       ?= luac5.4
BUSTED     ?= $(LUA) /usr/bin/busted
LUA_PC     ?= $(firstword $(foreach p,lua5.4 lua-5.4 lua54,$(shell $(PKG_CONFIG) --exists $(p) 2>/dev/null && echo $(p))))

DEP_PKGS    = $(LUA_PC) libcurl libuv libcrypto libarchive
DEP_CFLAGS := $(shell $(PKG_CONFIG) --cflags $(DEP_PKGS) 2>/dev/null)
DEP_LIBS   := $(shell $(PKG_CONFIG) --libs $(DEP_PKGS) 2>/dev/null)

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
DRV_CFLAGS = -std=c11 -D_GNU_SOURCE $(OPT) $(WARNFLAGS) $(SANFLAGS) $(DEP_CFLAGS) \
             -I$(BUILD) -MMD -MP
ALL_CFLAGS = $(DRV_CFLAGS) $(CPPFLAGS) $(CFLAGS)
ALL_LDFLAGS = $(SANFLAGS) $(LDFLAGS)
LIBS       = $(DEP_LIBS) -lm

BUILD      = build
BIN       ?= drvctl
CORE_SRC   = $(filter-out core/drvctl.c,$(wildcard core/*.c))
CORE_OBJ   = $(CORE_SRC:core/%.c=$(BUILD)/%.o)
MAIN_OBJ   = $(BUILD)/drvctl.o
LUA_SRC    = $(wildcard lua/drv/*.lua)
# Lua modules are precompiled into build/lua (debug info kept, so tracebacks
# still name lines): a cold start then skips parsing about 7000 lines (5 ms).
# `make install` installs them; the source tree's binary loads build/lua when
# no module in lua/drv is newer than its precompiled copy, else lua/ as text,
# so an edit there needs no rebuild.
LUA_BC     = $(LUA_SRC:lua/drv/%.lua=$(BUILD)/lua/drv/%.lua)
TEST_SRC   = $(wildcard core/tests/test_*.c)
TEST_BIN   = $(TEST_SRC:core/tests/%.c=$(BUILD)/tests/%)

ifeq ($(V),1)
Q =
else
Q = @
endif

.PHONY: FORCE all run test test-c test-unit test-cli test-docker bootstrap install uninstall clean bench

all: $(BIN) $(LUA_BC)

$(BIN): $(MAIN_OBJ) $(CORE_OBJ)
	@echo "  LINK    $@"
	$(Q)$(CC) $(ALL_LDFLAGS) -o $@ $^ $(LIBS)

# Install paths the binary falls back to (after its own directory): rewritten
# only when PREFIX/LUADIR/POLICYDIR change, so `make install PREFIX=...`
# rebuilds exactly what depends on them.
$(BUILD)/paths.h: FORCE | $(BUILD)
	$(Q)printf '#define DRV_LUADIR "%s"\n#define DRV_POLICYDIR "%s"\n' '$(LUADIR)' '$(POLICYDIR)' > $@.tmp
	$(Q)if cmp -s $@.tmp $@; then rm -f $@.tmp; else mv $@.tmp $@; fi

$(BUILD)/conf.o $(BUILD)/policyset.o: $(BUILD)/paths.h

FORCE:

$(BUILD)/%.o: core/%.c | $(BUILD)
	@echo "  CC      $<"
	$(Q)$(CC) $(ALL_CFLAGS) -c -o $@ $<

$(BUILD)/tests/%: core/tests/%.c $(CORE_OBJ) | $(BUILD)/tests
	@echo "  CC      $<"
	$(Q)$(CC) $(ALL_CFLAGS) -Icore $(ALL_LDFLAGS) -o $@ $< $(CORE_OBJ) $(LIBS)

$(BUILD)/lua/drv/%.lua: lua/drv/%.lua | $(BUILD)/lua/drv
	@echo "  LUAC    $<"
	$(Q)$(LUAC) -o $@ $<

$(BUILD) $(BUILD)/tests $(BUILD)/lua/drv:
	$(Q)mkdir -p $@

bootstrap:
	$(Q)scripts/bootstrap

run: bootstrap
	$(Q)$(MAKE) --no-print-directory drvctl
	./drvctl run examples/hello.hcl

# Everything: C unit tests, Lua unit specs, CLI specs, Docker specs; ends
# with one "N passed, N failed" line (scripts/run-tests).
test: bootstrap
	$(Q)$(MAKE) --no-print-directory drvctl $(TEST_BIN)
	$(Q)LUA=$(LUA) scripts/run-tests c unit cli docker

test-c: $(TEST_BIN)
	$(Q)LUA=$(LUA) scripts/run-tests c

test-unit:
	$(Q)LUA=$(LUA) scripts/run-tests unit

test-cli: drvctl
	$(Q)LUA=$(LUA) scripts/run-tests cli

test-docker: drvctl $(BUILD)/tests/test_ports
	$(Q)LUA=$(LUA) scripts/run-tests docker

bench: drvctl
	$(Q)bench/start_overhead
	$(Q)bench/plan

install: $(BIN) $(LUA_BC)
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(LUADIR)/drv $(DESTDIR)$(POLICYDIR)
	install -m 0755 $(BIN) $(DESTDIR)$(BINDIR)/drvctl
	install -m 0644 $(LUA_BC) $(DESTDIR)$(LUADIR)/drv/
	if ls policies/*.lua >/dev/null 2>&1; then install -m 0644 policies/*.lua $(DESTDIR)$(POLICYDIR)/; fi

uninstall:
	rm -f $(DESTDIR)$(BINDIR)/drvctl
	rm -rf $(DESTDIR)$(LUADIR) $(DESTDIR)$(POLICYDIR)

clean:
	rm -rf $(BUILD) $(BIN)

-include $(CORE_OBJ:.o=.d) $(MAIN_OBJ:.o=.d)
