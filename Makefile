# ward's build. Every target runs on a fresh Debian 12 machine; the ones that
# need root and real runtimes say so.

# Go from the Debian image's /usr/local/go, also under sudo's reset PATH.
export PATH := /usr/local/go/bin:$(PATH)
GO       ?= go
BIN      := $(CURDIR)/bin
DEPS_BIN ?= /opt/ward-deps/bin
PKGS     := ./...
# Binaries: one folder each under cmd/.
CMDS     := $(notdir $(wildcard cmd/*))

.PHONY: all build test test-integration test-admission escape-report check bench fuzz demo lint deps clean

all: build

## build: every binary into ./bin, static (CGO_ENABLED=0): ward-init runs
## inside containers, and for the others a static binary skips the dynamic
## loader on every container start (about 0.8 ms of ward-runtime's own time);
## containerd builds its shims the same way. ward needs no cgo. ward-init is
## also stripped: fewer pages to fault in at every container start.
build:
	@mkdir -p $(BIN)
	@for c in $(CMDS); do \
		ldflags=; [ "$$c" = ward-init ] && ldflags='-s -w'; \
		CGO_ENABLED=0 $(GO) build -trimpath -ldflags "$$ldflags" -o $(BIN)/$$c ./cmd/$$c || exit 1; \
	done

## test: unit, golden and fuzz-seed tests; no root, no runtimes
test:
	$(GO) test -count=1 $(PKGS)

## test-integration: real containerd, runc, runsc (root; run `make deps` first)
test-integration: build
	PATH=$(DEPS_BIN):$$PATH WARD_BIN=$(BIN) WARD_INTEGRATION=1 \
		$(GO) test -count=1 -p 1 -timeout 60m -v ./integration/...

## test-admission: ward's exported ValidatingAdmissionPolicy in a real kube-apiserver and etcd (built once into /var/tmp/ward-k8s-v1.37.2, about 12 minutes; no root)
test-admission:
	bin=$$(integration/admission/build.sh) && WARD_K8S_BIN=$$bin \
		$(GO) test -count=1 -v -timeout 20m -run TestAPIServerAgreesWithScan ./integration/admission

## escape-report: run the escape suite (integration/escape) and write docs/security-matrix.md from it (root)
escape-report: build
	PATH=$(DEPS_BIN):$$PATH WARD_BIN=$(BIN) WARD_INTEGRATION=1 WARD_ESCAPE_REPORT=$(CURDIR)/docs/security-matrix.md \
		$(GO) test -count=1 -timeout 20m -v -run '^TestEscapeSuite$$' ./integration/escape

## check: what CI runs, and the README's test command (root on a fresh Debian 12)
check: deps lint test test-integration

## deps: install the pinned runtimes and tools the integration tests start
deps:
	integration/install-deps.sh

## bench: the hot-path benchmarks
bench:
	$(GO) test -run '^$$' -bench . -benchmem -count=5 ./judge ./bundle ./profiles

## fuzz: each fuzz target for FUZZTIME (default 30s)
FUZZTIME ?= 30s
fuzz:
	$(GO) test -run '^$$' -fuzz '^FuzzParse$$' -fuzztime $(FUZZTIME) ./bundle
	$(GO) test -run '^$$' -fuzz '^FuzzPipeline$$' -fuzztime $(FUZZTIME) ./judge
	$(GO) test -run '^$$' -fuzz '^FuzzPolicy$$' -fuzztime $(FUZZTIME) ./policy
	$(GO) test -run '^$$' -fuzz '^FuzzLandlockSection$$' -fuzztime $(FUZZTIME) ./policy
	$(GO) test -run '^$$' -fuzz '^FuzzDecode$$' -fuzztime $(FUZZTIME) ./landlock
	$(GO) test -run '^$$' -fuzz '^FuzzParse$$' -fuzztime $(FUZZTIME) ./manifest

## demo: ward's main job on its embedded default policy
demo: build
	contrib/demo/demo.sh

## lint: formatting and vet
lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet $(PKGS)

clean:
	rm -rf $(BIN)
