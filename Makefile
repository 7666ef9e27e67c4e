# Outpost: the agent of a rapid-deployment CCTV unit and its control-room tool.
# `make demo` shows a simulated unit working; `make test` runs every test.

GO        ?= go
VERSION   ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT    ?= $(shell git rev-parse --short=12 HEAD 2>/dev/null || echo unknown)
# The commit's own date, so that two builds of one commit are identical.
DATE      ?= $(shell git log -1 --format=%cI 2>/dev/null || echo unknown)
PKG       := github.com/outpost-cctv/outpost/internal/version
LDFLAGS   := -s -w -X $(PKG).Version=$(VERSION) -X $(PKG).Commit=$(COMMIT) -X $(PKG).Date=$(DATE)
BUILD     := CGO_ENABLED=0 $(GO) build -trimpath -ldflags "$(LDFLAGS)"
BINARIES  := outpost outpostctl

.PHONY: all build demo test deps fmt-check vet cross repro bench clean

all: build

build:
	@mkdir -p bin
	$(BUILD) -o bin/ ./cmd/...

demo: build
	bin/outpost demo $(DEMO_FLAGS)

# The tests need mosquitto (a real broker) and ffprobe (to check exported
# clips); scripts/test-deps.sh installs them as root or says what is missing.
deps:
	@scripts/test-deps.sh

fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt would change these files (run gofmt -w):"; echo "$$out"; exit 1; fi

vet:
	$(GO) vet ./...

test: deps fmt-check vet
	CGO_ENABLED=1 $(GO) test -race -count=1 -timeout 8m ./...

cross:
	@mkdir -p bin/cross
	@for t in arm64: arm:7 arm:6; do \
		arch=$${t%%:*}; arm=$${t#*:}; \
		name=linux-$$arch$${arm:+v$$arm}; \
		for b in $(BINARIES); do \
			GOOS=linux GOARCH=$$arch GOARM=$$arm $(BUILD) -o bin/cross/$$b-$$name ./cmd/$$b || exit 1; \
		done; \
		printf '%-28s %10s bytes\n' "outpost-$$name" "$$(stat -c %s bin/cross/outpost-$$name)"; \
	done

# Two builds of the unit binary for arm64, each with an empty build cache,
# must be byte-identical: what runs on a unit can be rebuilt and checked.
repro:
	@d=$$(mktemp -d); \
	for i in 1 2; do \
		GOCACHE=$$d/cache$$i GOOS=linux GOARCH=arm64 $(BUILD) -o $$d/outpost-$$i ./cmd/outpost || exit 1; \
	done; \
	if cmp -s $$d/outpost-1 $$d/outpost-2; then \
		echo "reproducible: two clean builds of outpost for linux/arm64 are identical (sha256 $$(sha256sum < $$d/outpost-1 | cut -c1-16)...)"; \
		chmod -R u+w $$d; rm -rf $$d; \
	else \
		echo "NOT reproducible: $$d/outpost-1 and $$d/outpost-2 differ"; exit 1; \
	fi

# Outpost against its peers (dd, ffmpeg, tjbench, bsdiff, xdelta3, zstd,
# Motion) on this machine: writes docs/performance.md and
# bin/bench/results.json in under 15 minutes. BENCH_QUICK=1 is a trial run
# of about 2 minutes; BENCH_FLAGS passes more flags (go run ./scripts/bench -h).
bench:
	$(GO) run ./scripts/bench $(if $(BENCH_QUICK),-quick) $(BENCH_FLAGS)

clean:
	rm -rf bin

.PHONY: deb deb-test test-emulated

# Debian packages of the agent for the boards, bin/deb/outpost_VERSION_arm64.deb
# and _armhf.deb (docs/deploy.md installs one); deb-test checks them without
# installing them here. Both are reproducible from the commit.
deb:
	@VERSION='$(VERSION)' COMMIT='$(COMMIT)' DATE='$(DATE)' LDFLAGS='$(LDFLAGS)' GO='$(GO)' scripts/build-deb.sh

deb-test:
	@GO='$(GO)' scripts/deb-test.sh

# The tests of the byte, time and concurrency code as ARM binaries (arm64,
# armv7, armv6) under qemu's user-mode emulation; installs qemu-user-static
# from Debian's packages when run as root.
test-emulated: deps
	@GO='$(GO)' scripts/test-emulated.sh
