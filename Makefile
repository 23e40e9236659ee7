# isol8 build, test and benchmark entry points. Everything runs as root on a
# Debian/Ubuntu host; `make demo` and `make test` install what they need.
GO      ?= $(shell command -v go 2>/dev/null || echo /usr/local/go/bin/go)
BIN     := bin
INITBIN := internal/initbin/bin/isol8-init
export PATH := $(dir $(GO)):$(PATH)

.PHONY: all build deps images demo test test-unit test-race bench vet staticcheck fmt clean

all: build

# isol8-init is static (it runs inside every sandbox); isol8 embeds it.
$(INITBIN): $(shell find agent cmd/isol8-init -name '*.go') go.mod go.sum
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags "-s -w" -o $@ ./cmd/isol8-init

# isol8 is a fully static binary too, so it runs on any Linux host of its
# architecture without shared libraries: cgo is needed for libseccomp (it
# validates seccomp profiles before any sandbox starts), which is linked
# from libseccomp.a; netgo and osusergo keep out glibc's resolver and user
# lookup, which would load glibc's shared NSS modules at run time even from
# a static binary. isol8 dials only containerd's unix socket, so the
# pure-Go resolver changes nothing.
ISOL8_TAGS    := netgo,osusergo
ISOL8_LDFLAGS := -linkmode=external -extldflags=-static

build: deps $(INITBIN)
	CGO_ENABLED=1 $(GO) build -trimpath -tags $(ISOL8_TAGS) -ldflags '$(ISOL8_LDFLAGS)' -o $(BIN)/isol8 ./cmd/isol8
	cp $(INITBIN) $(BIN)/isol8-init

deps:
	@scripts/install-deps.sh

# Builds the six runtime images (python, node, bun, deno, bash, agent) from the
# host's Debian mirror and the npm registry; a no-op when they are current.
images: build
	$(BIN)/isol8 setup

demo: images
	$(BIN)/isol8 run -e 'import platform; print(f"Hello from isol8: Python {platform.python_version()} in a sandbox")'

# The whole suite: unit tests plus integration tests against a real
# containerd, runc and the runtime images. ISOL8_TEST_STRICT makes a missing
# requirement fail instead of skip. -p 1 runs one package's test binary at a
# time: the packages share one containerd, and a real `cleanup` in one
# package (it removes sandboxes whose creator has exited) must not remove a
# container another package's test has just kept on purpose; on two cores
# it also keeps the timing-sensitive tests away from each other's load.
test: images
	ISOL8_TEST_STRICT=1 ISOL8_INIT_PATH=$(CURDIR)/$(BIN)/isol8-init ISOL8_BIN=$(CURDIR)/$(BIN)/isol8 \
		$(GO) test -p 1 -count=1 -timeout 40m ./...

# Unit tests only: no root, no containerd.
test-unit:
	$(GO) test -count=1 -short ./...

# Unit tests under the race detector (cgo, so libseccomp headers: deps).
test-race: deps
	$(GO) test -count=1 -short -race ./...

bench: images
	$(GO) run ./bench -isol8 $(CURDIR)/$(BIN)/isol8

vet:
	$(GO) vet ./...
	GOOS=darwin $(GO) vet ./...

STATICCHECK_VERSION := v0.8.2
staticcheck:
	$(GO) install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)
	$$($(GO) env GOPATH)/bin/staticcheck ./...

fmt:
	gofmt -l -w $$(git ls-files '*.go')

clean:
	rm -rf $(BIN) $(INITBIN)
