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
# VERSION is stamped into every binary (package version); `ward version`
# prints it, and every JSON document and decision-log entry carries it.
VERSION  ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo devel)
LDFLAGS  := -X github.com/ward-runtime/ward/internal/version.stamped=$(VERSION)

.PHONY: all build test test-integration test-admission test-kyverno test-k8s installer-image escape-report test-workloads check bench fuzz demo lint deps clean release test-deb man manifests test-helm

all: build

## build: every binary into ./bin, static (CGO_ENABLED=0): ward-init runs
## inside containers, and for the others a static binary skips the dynamic
## loader on every container start (about 0.8 ms of ward-runtime's own time);
## containerd builds its shims the same way. ward needs no cgo. ward-init is
## also stripped: fewer pages to fault in at every container start.
build:
	@mkdir -p $(BIN)
	@for c in $(CMDS); do \
		ldflags='$(LDFLAGS)'; [ "$$c" = ward-init ] && ldflags="$$ldflags -s -w"; \
		CGO_ENABLED=0 $(GO) build -trimpath -ldflags "$$ldflags" -o $(BIN)/$$c ./cmd/$$c || exit 1; \
	done

## release: static binaries for linux/amd64 and linux/arm64, their tarballs,
## a .deb and an .rpm of each (nfpm, pinned, run with `go run`: binaries in
## /usr/bin, /etc/ward/policy.yaml extending the default as a conffile,
## containerd's systemd drop-in, man pages, completions) and SHA256SUMS, in
## ./dist. Package versions are $(VERSION) made valid for dpkg and rpm.
DIST        := $(CURDIR)/dist
ARCHES      := amd64 arm64
NFPM        := $(GO) run github.com/goreleaser/nfpm/v2/cmd/nfpm@v2.48.0
PKG_VERSION := $(shell echo '$(VERSION)' | sed -E 's/^v//; /^[0-9]+\.[0-9]+/!s/^/0.0.0+git/; s/-/./g')
release: build
	rm -rf $(DIST)
	@for a in $(ARCHES); do for c in $(CMDS); do \
		ldflags='$(LDFLAGS)'; [ "$$c" = ward-init ] && ldflags="$$ldflags -s -w"; \
		CGO_ENABLED=0 GOOS=linux GOARCH=$$a $(GO) build -trimpath -ldflags "$$ldflags" -o $(DIST)/$$a/$$c ./cmd/$$c || exit 1; \
	done; done
	$(MAKE) --no-print-directory man MANDIR=$(DIST)/share/man
	gzip -9n $(DIST)/share/man/*.1
	mkdir -p $(DIST)/share/completion
	$(BIN)/ward completion bash > $(DIST)/share/completion/ward.bash
	$(BIN)/ward completion zsh > $(DIST)/share/completion/_ward
	@for a in $(ARCHES); do \
		sed -e "s|\$${ARCH}|$$a|g; s|\$${VERSION}|$(PKG_VERSION)|g; s|\$${DIST}|$(DIST)|g" contrib/packaging/nfpm.yaml > $(DIST)/nfpm-$$a.yaml; \
		tar -C $(DIST)/$$a --sort=name --owner=0 --group=0 --numeric-owner --mtime=@0 -czf $(DIST)/ward-$(VERSION)-linux-$$a.tar.gz . || exit 1; \
		for p in deb rpm; do \
			$(NFPM) pkg --config $(DIST)/nfpm-$$a.yaml --packager $$p --target $(DIST)/ || exit 1; \
		done; \
	done
	cd $(DIST) && sha256sum *.tar.gz *.deb *.rpm > SHA256SUMS && cat SHA256SUMS

## man: man pages from the ward command's own definitions (MANDIR, default ./bin/man)
MANDIR ?= $(BIN)/man
man: build
	$(BIN)/ward man $(MANDIR)

## test-deb: install dist's amd64 .deb on this machine with dpkg, run
## `ward doctor`, remove it and check nothing is left (root; changes /usr/bin
## and /etc/ward for the duration; run `make release` first). Not part of check.
test-deb:
	contrib/packaging/test-deb.sh $(DIST)

## manifests: contrib/kubernetes's plain manifests, rendered from the Helm
## chart contrib/helm/ward (the one source; make test-helm checks they match)
HELM_VERSION := v3.22.0
HELM         := $(or $(WARD_CACHE),/var/tmp)/ward-helm-$(HELM_VERSION)/helm
$(HELM):
	GOBIN=$(dir $(HELM)) CGO_ENABLED=0 $(GO) install helm.sh/helm/v3/cmd/helm@$(HELM_VERSION)
manifests: $(HELM)
	contrib/helm/render.sh $(HELM) contrib/kubernetes

## test-helm: helm lint and helm template of the chart (helm built once from
## the Go module proxy, about 5 CPU-minutes, cached), every rendered object
## decoded strictly against k8s.io/api and validated against Kubernetes'
## OpenAPI schema (swagger.json of the k8s.io/kubernetes module, fetched by
## go mod download), the plain manifests compared with a fresh render; no
## root, no cluster
K8S_OPENAPI_VERSION := v1.37.2
test-helm: $(HELM)
	dir=$$(cd / && $(GO) mod download -json k8s.io/kubernetes@$(K8S_OPENAPI_VERSION) | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$$/\1/p') && \
	WARD_HELM=$(HELM) WARD_K8S_OPENAPI=$$dir/api/openapi-spec/swagger.json \
		$(GO) test -count=1 -v -run '^(TestChart|TestPlainManifests|TestValuesSchema|TestDecodeRefuses|TestOpenAPIRefuses)$$' ./contrib/helm

## test: unit, golden and fuzz-seed tests; no root, no runtimes
test:
	$(GO) test -count=1 $(PKGS)

## test-integration: real containerd, runc, runsc (root; run `make deps` first)
test-integration: build
	PATH=$(DEPS_BIN):$$PATH WARD_BIN=$(BIN) WARD_INTEGRATION=1 \
		$(GO) test -count=1 -p 1 -timeout 60m -v ./integration/...

## test-workloads: real Debian 12 software under runc and under ward through Docker, Podman and CRI pods (root; builds and caches an mmdebstrap root filesystem under /var/cache/ward-workloads the first time; WARD_WORKLOADS_DOOR=docker,podman,cri picks doors, WARD_WORKLOADS_RUN=substring checks)
test-workloads: build
	PATH=$(DEPS_BIN):$$PATH WARD_BIN=$(BIN) WARD_INTEGRATION=1 WARD_WORKLOADS=1 \
		$(GO) test -count=1 -timeout 60m -v -run '^TestWorkloads$$' ./integration/workloads
## test-admission: ward's exported ValidatingAdmissionPolicy in a real kube-apiserver and etcd (built once into /var/tmp/ward-k8s-v1.37.2, about 12 minutes; no root)
test-admission:
	bin=$$(integration/admission/build.sh) && WARD_K8S_BIN=$$bin \
		$(GO) test -count=1 -v -timeout 20m -run TestAPIServerAgreesWithScan ./integration/admission

## test-kyverno: ward's exported Kyverno ClusterPolicy and ValidatingAdmissionPolicy in Kyverno's own engine (the kyverno CLI v1.19.1, built once into /var/tmp/ward-kyverno-v1.19.1, 3,032 packages, a long build; no root)
test-kyverno:
	bin=$$(integration/kyverno/build.sh) && WARD_KYVERNO_BIN=$$bin \
		$(GO) test -count=1 -v -timeout 20m -run TestKyvernoAgreesWithScan ./integration/kyverno

## test-k8s: ward under a real single-node Kubernetes (kubelet, kubectl, RuntimeClasses, the installer DaemonSet and the Helm chart, admission); root; builds Kubernetes once like test-admission and helm once like test-helm (docs/kubernetes.md)
test-k8s: build $(HELM)
	bin=$$(integration/admission/build.sh) && PATH=$(DEPS_BIN):$$PATH WARD_BIN=$(BIN) WARD_INTEGRATION=1 WARD_K8S=1 WARD_K8S_BIN=$$bin WARD_HELM=$(HELM) \
		$(GO) test -count=1 -p 1 -v -timeout 30m ./integration/k8s

## installer-image: bin/ward-installer.tar, ward-deploy.yaml's image as an OCI archive built without a registry (KUBECTL=path, else the cached build's)
installer-image: build
	kubectl=$${KUBECTL:-$$(integration/admission/build.sh)/kubectl} && contrib/kubernetes/build-image.sh $(BIN)/ward-installer.tar $$kubectl

## escape-report: run the escape suite (integration/escape) and write docs/security-matrix.md from it (root)
escape-report: build
	PATH=$(DEPS_BIN):$$PATH WARD_BIN=$(BIN) WARD_INTEGRATION=1 WARD_ESCAPE_REPORT=$(CURDIR)/docs/security-matrix.md \
		$(GO) test -count=1 -timeout 20m -v -run '^TestEscapeSuite$$' ./integration/escape

## check: what CI runs, and the README's test command (root on a fresh Debian 12)
check: deps lint test test-integration bench-ci

## deps: install the pinned runtimes and tools the integration tests start
deps:
	integration/install-deps.sh

## bench-e2e: end-to-end medians of alternated pairs (root, after `make deps`): ward-runtime run against
## runc run with the seccomp baseline's cost split out, and pod start through ward's shim against runc's
BENCH_PAIRS ?= 30
bench-e2e: build
	PATH=$(DEPS_BIN):$$PATH WARD_BIN=$(BIN) WARD_INTEGRATION=1 WARD_BENCH=1 WARD_BENCH_PAIRS=$(BENCH_PAIRS) \
		$(GO) test -count=1 -p 1 -timeout 60m -v -run '^(TestBenchmarkRun|TestBenchmarkPods)$$' ./integration/runtime ./integration/shim

## bench-ci: pod start through ward's shim against runc's with a few pairs, so that every CI run prints
## the ratios and the shims' memory (a report, never a gate: 3 pairs are noisy; `make bench-e2e` measures)
bench-ci: build
	PATH=$(DEPS_BIN):$$PATH WARD_BIN=$(BIN) WARD_INTEGRATION=1 WARD_BENCH=1 WARD_BENCH_PAIRS=3 \
		$(GO) test -count=1 -p 1 -timeout 15m -v -run '^TestBenchmarkPods$$' ./integration/shim

## bench: the hot-path benchmarks
bench:
	$(GO) test -run '^$$' -bench . -benchmem -count=5 ./internal/judge ./bundle ./internal/profiles ./internal/seccompbpf

## fuzz: each fuzz target for FUZZTIME (default 30s)
FUZZTIME ?= 30s
fuzz:
	$(GO) test -run '^$$' -fuzz '^FuzzParse$$' -fuzztime $(FUZZTIME) ./bundle
	$(GO) test -run '^$$' -fuzz '^FuzzPipeline$$' -fuzztime $(FUZZTIME) ./internal/judge
	$(GO) test -run '^$$' -fuzz '^FuzzPolicy$$' -fuzztime $(FUZZTIME) ./policy
	$(GO) test -run '^$$' -fuzz '^FuzzLandlockSection$$' -fuzztime $(FUZZTIME) ./policy
	$(GO) test -run '^$$' -fuzz '^FuzzDecode$$' -fuzztime $(FUZZTIME) ./internal/landlock
	$(GO) test -run '^$$' -fuzz '^FuzzParse$$' -fuzztime $(FUZZTIME) ./internal/manifest
	$(GO) test -run '^$$' -fuzz '^FuzzFollow$$' -fuzztime $(FUZZTIME) ./internal/decisionlog

## demo: ward's main job on its embedded default policy
demo: build
	contrib/demo/demo.sh

## lint: formatting and vet; and the cross builds that keep shift-left working off Linux: the ward
## command for macOS and Windows (scan, explain and the policy exports run in CI and on developers'
## machines; node-only commands fail there with a *nodeonly.Error) and the public packages vetted
## for both (docs/ci.md)
lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet $(PKGS)
	CGO_ENABLED=0 GOOS=darwin GOARCH=arm64 $(GO) build -o /dev/null ./cmd/ward
	CGO_ENABLED=0 GOOS=windows $(GO) build -o /dev/null ./cmd/ward
	CGO_ENABLED=0 GOOS=darwin GOARCH=arm64 $(GO) vet ./bundle/... ./policy/...
	CGO_ENABLED=0 GOOS=windows $(GO) vet ./bundle/... ./policy/...

clean:
	rm -rf $(BIN) $(DIST)
