# resumed — plain Makefile. `make` builds build/resumed; `make run` and
# `make test` install missing Debian packages first (scripts/install-deps.sh).

PKGS        := libuv libcrypto
LLHTTP_DIR  := /usr/share/llhttp
LLHTTP_INC  := /usr/share/include/llhttp
# Strict mode: the default build skips the CRLF after chunk data (smuggling).
LLHTTP_DEFS := -DLLHTTP_STRICT_MODE=1

CC          ?= cc
PKG_CFLAGS   = $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS     = $(shell pkg-config --libs $(PKGS) 2>/dev/null)
WARN        := -Wall -Wextra -Werror -Wshadow -Wno-missing-field-initializers
CFLAGS      ?= -O2 -g
ALL_CFLAGS   = -std=c11 -D_GNU_SOURCE $(WARN) -I$(LLHTTP_INC) -Isrc $(PKG_CFLAGS) $(CFLAGS)
SAN_FLAGS   := -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=all
LDLIBS       = $(PKG_LIBS) -lpthread

SRC_LIB     := src/http.c src/router.c src/article.c src/endpoint.c src/cors.c src/tus.c \
               src/concat.c src/ietf.c src/sfv.c src/download.c src/metadata.c \
               src/upload_request.c src/static_files.c src/upload.c src/checksum.c \
               src/store.c src/store_fs.c src/config.c src/util.c src/log.c src/auth.c
LLHTTP_SRC  := $(LLHTTP_DIR)/llhttp.c $(LLHTTP_DIR)/api.c $(LLHTTP_DIR)/http.c
UNIT_SRC    := $(filter-out tests/unit/test_client.c,$(wildcard tests/unit/test_*.c))
# The command-line client shares the digests, Upload-Metadata writing and small helpers with the server.
CLIENT_SRC  := client/main.c client/options.c client/job.c client/http_client.c client/source.c \
               client/state.c client/progress.c client/tus_client.c client/ietf_client.c \
               client/article_client.c
CLIENT_SHARED := src/checksum.c src/util.c src/metadata.c
CLIENT_CFLAGS = $(shell pkg-config --cflags libcurl 2>/dev/null) -Iclient
CLIENT_LIBS  = $(shell pkg-config --libs libcurl libcrypto 2>/dev/null) -lpthread -lm

OBJ         := $(SRC_LIB:src/%.c=build/obj/%.o)
LLHTTP_OBJ  := build/obj/llhttp/llhttp.o build/obj/llhttp/api.o build/obj/llhttp/http.o
ASAN_OBJ    := $(SRC_LIB:src/%.c=build/asan/obj/%.o)
ASAN_LLHTTP := build/asan/obj/llhttp/llhttp.o build/asan/obj/llhttp/api.o build/asan/obj/llhttp/http.o
UNIT_BIN    := $(UNIT_SRC:tests/unit/%.c=build/unit/%) build/unit/test_client
ASAN_UNIT   := $(UNIT_SRC:tests/unit/%.c=build/asan/unit/%) build/asan/unit/test_client

CLIENT_OBJ  := $(CLIENT_SRC:client/%.c=build/client/%.o) $(CLIENT_SHARED:src/%.c=build/obj/%.o)
ASAN_CLIENT_OBJ := $(CLIENT_SRC:client/%.c=build/asan/client/%.o) $(CLIENT_SHARED:src/%.c=build/asan/obj/%.o)

.PHONY: all asan unit deps test-deps run test clean
all: build/resumed build/resumed-upload

deps:
	@scripts/install-deps.sh build

test-deps:
	@scripts/install-deps.sh test

build/obj/%.o: src/%.c src/*.h
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) -c $< -o $@

# llhttp is Debian's generated C, compiled as is; its warnings are not ours.
build/obj/llhttp/%.o: $(LLHTTP_DIR)/%.c Makefile
	@mkdir -p $(@D)
	$(CC) -O2 -g -w $(LLHTTP_DEFS) -I$(LLHTTP_INC) -c $< -o $@

build/resumed: build/obj/main.o $(OBJ) $(LLHTTP_OBJ)
	$(CC) $(CFLAGS) -o $@ $^ $(LDLIBS)

build/client/%.o: client/%.c client/*.h src/checksum.h src/util.h src/metadata.h
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) $(CLIENT_CFLAGS) -c $< -o $@

build/resumed-upload: $(CLIENT_OBJ)
	$(CC) $(CFLAGS) -o $@ $^ $(CLIENT_LIBS)

build/asan/client/%.o: client/%.c client/*.h src/checksum.h src/util.h src/metadata.h
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) $(CLIENT_CFLAGS) $(SAN_FLAGS) -c $< -o $@

build/asan/resumed-upload: $(ASAN_CLIENT_OBJ)
	$(CC) $(SAN_FLAGS) -o $@ $^ $(CLIENT_LIBS)

build/asan/obj/%.o: src/%.c src/*.h
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) $(SAN_FLAGS) -c $< -o $@

build/asan/obj/llhttp/%.o: $(LLHTTP_DIR)/%.c Makefile
	@mkdir -p $(@D)
	$(CC) -w $(LLHTTP_DEFS) -I$(LLHTTP_INC) $(SAN_FLAGS) -c $< -o $@

build/asan/resumed: build/asan/obj/main.o $(ASAN_OBJ) $(ASAN_LLHTTP)
	$(CC) $(SAN_FLAGS) -o $@ $^ $(LDLIBS)

asan: build/asan/resumed build/asan/resumed-upload $(ASAN_UNIT)

# Unit tests #include the module under test where they need its statics.
build/unit/%: tests/unit/%.c tests/unit/unit.h $(OBJ) $(LLHTTP_OBJ)
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) -Itests/unit -o $@ $< $(OBJ) $(LLHTTP_OBJ) $(LDLIBS)

build/asan/unit/%: tests/unit/%.c tests/unit/unit.h $(ASAN_OBJ) $(ASAN_LLHTTP)
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) $(SAN_FLAGS) -Itests/unit -o $@ $< $(ASAN_OBJ) $(ASAN_LLHTTP) $(LDLIBS)

# The client's unit test includes job.c for its statics.
CLIENT_UNIT_OBJ := $(filter-out build/client/main.o build/client/job.o,$(CLIENT_OBJ))
ASAN_CLIENT_UNIT_OBJ := $(filter-out build/asan/client/main.o build/asan/client/job.o,$(ASAN_CLIENT_OBJ))

build/unit/test_client: tests/unit/test_client.c tests/unit/unit.h client/*.c client/*.h $(CLIENT_UNIT_OBJ)
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) $(CLIENT_CFLAGS) -Itests/unit -o $@ $< $(CLIENT_UNIT_OBJ) $(CLIENT_LIBS)

build/asan/unit/test_client: tests/unit/test_client.c tests/unit/unit.h client/*.c client/*.h $(ASAN_CLIENT_UNIT_OBJ)
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) $(CLIENT_CFLAGS) $(SAN_FLAGS) -Itests/unit -o $@ $< $(ASAN_CLIENT_UNIT_OBJ) $(CLIENT_LIBS)

unit: $(UNIT_BIN)

run: deps
	@$(MAKE) --no-print-directory all
	./build/resumed $(ARGS)

test: test-deps
	@$(MAKE) --no-print-directory all unit asan
	@scripts/run-tests.sh

clean:
	rm -rf build

# Test tools: faultfs, an LD_PRELOAD shim that fails the store's writes on demand
# (tests/blackbox/test_resources.py). `make test` builds them first.
.PHONY: tools
tools: build/tools/faultfs.so
test: tools

build/tools/faultfs.so: tests/tools/faultfs.c
	@mkdir -p $(@D)
	$(CC) -std=c11 $(WARN) -O2 -g -shared -fPIC -o $@ $< -ldl -lpthread

# ---------- fuzzing (libFuzzer, clang; fuzz/README.md) ----------
# `make fuzz FUZZ_TIME=60` runs each target FUZZ_TIME seconds; `make fuzz-smoke` a few
# seconds each (run-tests.sh); `make valgrind` the black-box suite under valgrind.
FUZZ_CC      ?= clang
FUZZ_TIME    ?= 60
FUZZ_SMOKE_TIME ?= 8
FUZZ_TARGETS := fuzz_request fuzz_metadata fuzz_checksum fuzz_sfv fuzz_meta_file
FUZZ_SAN     := -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=all
FUZZ_CFLAGS   = -std=c11 -D_GNU_SOURCE -I$(LLHTTP_INC) -Isrc -Ifuzz $(PKG_CFLAGS) $(FUZZ_SAN)
FUZZ_LIB_OBJ := $(SRC_LIB:src/%.c=build/fuzz/obj/%.o) $(LLHTTP_SRC:$(LLHTTP_DIR)/%.c=build/fuzz/obj/llhttp/%.o)
FUZZ_BINS    := $(FUZZ_TARGETS:%=build/fuzz/%)
# fuzz_request's uploads get predictable keys, so one input can create and then append.
FUZZ_LDFLAGS_fuzz_request := -Wl,--wrap=store_new_key

.PHONY: fuzz fuzz-build fuzz-smoke valgrind
fuzz-build: $(FUZZ_BINS)

# The server's sources are instrumented for coverage; clang's extra warnings there
# are reported, not fatal (the gcc build is the one held to -Werror).
build/fuzz/obj/%.o: src/%.c src/*.h
	@mkdir -p $(@D)
	$(FUZZ_CC) $(FUZZ_CFLAGS) $(WARN) -Wno-error -fsanitize=fuzzer-no-link -c $< -o $@

build/fuzz/obj/llhttp/%.o: $(LLHTTP_DIR)/%.c Makefile
	@mkdir -p $(@D)
	$(FUZZ_CC) -w $(LLHTTP_DEFS) -I$(LLHTTP_INC) $(FUZZ_SAN) -fsanitize=fuzzer-no-link -c $< -o $@

# An archive: a target that #includes a module for its statics (tus.c) does not get
# that module's object linked a second time.
build/fuzz/libresumed.a: $(FUZZ_LIB_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(FUZZ_BINS): build/fuzz/%: fuzz/%.c fuzz/fuzz.h build/fuzz/libresumed.a
	$(FUZZ_CC) $(FUZZ_CFLAGS) $(WARN) -fsanitize=fuzzer $(FUZZ_LDFLAGS_$*) -o $@ $< build/fuzz/libresumed.a $(LDLIBS)

fuzz: $(FUZZ_BINS)
	@fuzz/run.sh $(FUZZ_TIME) $(FUZZ_TARGETS)

fuzz-smoke: $(FUZZ_BINS)
	@fuzz/run.sh $(FUZZ_SMOKE_TIME) $(FUZZ_TARGETS)

# The black-box suite with every server under valgrind (memcheck); an error or a definite
# leak on a server's stderr fails its test. VALGRIND_TESTS: name filters for run.py.
# --trace-children: servers started through env/unshare/prlimit (test_resources) are checked too.
VALGRIND_CMD ?= valgrind -q --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite \
                --show-leak-kinds=definite --track-fds=no --num-callers=30 --trace-children=yes
valgrind: build/resumed build/tools/faultfs.so
	RESUMED_BIN=build/resumed RESUMED_WRAPPER="$(VALGRIND_CMD)" BB_TEST_TIMEOUT=$${BB_TEST_TIMEOUT:-300} \
	  python3 tests/blackbox/run.py $(VALGRIND_TESTS)

# ---- crash-trials: kill -9 and simulated power loss under concurrent uploads (tests/crash) ----
# synctrack.so logs what each fsync/fdatasync made durable (LD_PRELOAD; not for the ASan build).
build/tools/synctrack.so: tests/tools/synctrack.c
	@mkdir -p $(@D)
	$(CC) -std=c11 -D_GNU_SOURCE $(WARN) -O2 -g -shared -fPIC -o $@ $< -ldl -lpthread

.PHONY: crash-trials
crash-trials: build/resumed build/tools/synctrack.so
	python3 tests/crash/trials.py --both --selftest --trials $(if $(N),$(N),50)
