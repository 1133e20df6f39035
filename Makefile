# berth: build, test, demo, bench, lint. Targets that touch the kernel
# (test, demo, bench) run as root; `make deps` installs what they need.
SHELL := /bin/bash
export PATH := /usr/local/go/bin:$(PATH)
GO ?= go
VERSION := $(shell git describe --always --dirty 2>/dev/null || echo dev)
CNI := $(CURDIR)/bin/cni
# libcontainer applies the containers' seccomp profile only when built with
# the seccomp tag (cgo and libseccomp-dev, from `make deps`); without it
# berth refuses to create containers. Every build, test and vet uses it.
TAGS := seccomp

.PHONY: all build cni deps test demo bench lint clean

all: build

build:
	$(GO) build -tags $(TAGS) -ldflags "-X main.version=$(VERSION)" -o bin/berth ./cmd/berth
	CGO_ENABLED=0 $(GO) build -ldflags "-s -w" -o bin/berth-monitor ./cmd/berth-monitor

cni:
	scripts/build-cni.sh $(CNI)

deps:
	scripts/deps.sh

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	$(GO) vet -tags $(TAGS) ./...

test: deps build cni lint
	BERTH_CNI_PATH=$(CNI) $(GO) test -tags $(TAGS) -count=1 -timeout 30m ./...

demo: deps build cni
	scripts/demo.sh

bench: deps build cni
	scripts/deps.sh bench
	BERTH_CNI_PATH=$(CNI) $(GO) test -tags $(TAGS) -count=1 -run '^$$' -bench . -benchtime 20x ./... | grep -E '^(Benchmark|ok|FAIL|---)'
	bench/apply.sh 10
	bench/build.sh
	bench/memory.sh 50

clean:
	rm -rf bin examples/*/rootfs
