# SPDX-License-Identifier: Apache-2.0
# Thin wrapper over Meson. `make demo` and `make test` install missing Debian packages first.
MESON ?= meson
BUILD ?= build
ASAN_BUILD ?= build-asan
FUZZ_BUILD ?= build-fuzz

.PHONY: all build deps demo test test-normal test-asan bench fuzz clean format format-check guest-image \
	install sbom repro

all: build

deps:
	@./scripts/deps.sh

$(BUILD)/build.ninja:
	$(MESON) setup $(BUILD) --buildtype=debugoptimized

build: $(BUILD)/build.ninja
	$(MESON) compile -C $(BUILD)

$(ASAN_BUILD)/build.ninja:
	$(MESON) setup $(ASAN_BUILD) --buildtype=debug -Db_sanitize=address,undefined -Db_lundef=false

demo: deps build
	./scripts/demo.sh $(BUILD)

# Unit + integration + conformance + fuzz-corpus replay, in the normal build and again under
# ASan+UBSan. Ends with one summary line; exits non-zero if anything failed.
test: deps
	@./scripts/test.sh $(BUILD) $(ASAN_BUILD)

# Guest VM image: build/guest/{vmlinuz,initrd.img,runtime.toml} (docs/guest-image.md).
guest-image: build
	./scripts/guest-image.sh $(BUILD)

# Programs, systemd units, policies, example configurations (docs/install.md).
# DESTDIR=… is passed on; the prefix is the one the build was set up with (--prefix).
install: build
	$(MESON) install -C $(BUILD) $(if $(DESTDIR),--destdir $(DESTDIR))

# SPDX 2.3 SBOM of the built programs and the Debian packages they link (docs/operations.md).
sbom: build
	./scripts/sbom.sh -o $(BUILD)/cloister.spdx.json $(addprefix $(BUILD)/src/cmd/,cloister \
		cloister-kbs cloister-aa cloister-cdh cloister-agent containerd-shim-cloister-v2)

# Two release builds of HEAD in different folders must give identical programs (~10 min on
# two cores, so not part of `make test`).
repro:
	./scripts/repro.sh

bench: deps build
	./bench/run.sh $(BUILD)

fuzz: deps
	CC=clang $(MESON) setup $(FUZZ_BUILD) -Dfuzzing=true -Db_sanitize=address,undefined -Db_lundef=false || true
	$(MESON) compile -C $(FUZZ_BUILD)
	@echo "fuzzers are in $(FUZZ_BUILD)/tests/fuzz/ (run e.g. $(FUZZ_BUILD)/tests/fuzz/fuzz_toml tests/fuzz/corpus/toml)"

format:
	./scripts/format.sh

format-check:
	./scripts/format.sh --check

clean:
	rm -rf $(BUILD) $(ASAN_BUILD) $(FUZZ_BUILD)
