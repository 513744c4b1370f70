# recpol: call-recording policy as code.
GO       ?= go
BIN      ?= bin/recpol
PKGS     ?= ./...

.PHONY: all build test vet fmt-check bench demo clean fuzz soak hostile

all: build

# The commit and its time, passed by -ldflags so that a build the Go
# toolchain cannot stamp (-buildvcs=false, a copy of the tree without .git
# but a git beside it) still names its commit; empty without git.
VERSION_PKG := github.com/recpol/recpol/internal/version
REVISION    := $(shell git rev-parse HEAD 2>/dev/null)$(shell git status --porcelain 2>/dev/null | grep -q . && echo +dirty)
REV_TIME    := $(shell TZ=UTC git log -1 --format=%cd --date=format-local:%Y-%m-%dT%H:%M:%SZ 2>/dev/null)
LDFLAGS     := $(if $(REVISION),-X $(VERSION_PKG).revision=$(REVISION) -X $(VERSION_PKG).time=$(REV_TIME))

## build: bin/recpol, naming its commit (bin/recpol version)
build:
	@test -x $(BIN) || echo "building recpol (first build downloads and compiles CUE: about a minute)"
	$(GO) build -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/recpol

## test: vet, formatting and the whole test suite under the race detector
test: vet fmt-check
	$(GO) test -race -count=1 $(PKGS)

vet:
	$(GO) vet $(PKGS)

fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi

## bench: measure recpol against its performance goals and write BENCHMARKS.md
## (takes a long while; not part of test). The Go benchmarks go to
## bin/gobench.txt for benchstat; the CUE CLI of the library's version is
## installed into bin/ as the peer of the cold compile. A smoke run of the
## harness that leaves BENCHMARKS.md alone: BENCH_FLAGS='-quick -o /tmp/bench.md'
## (or go run ./internal/bench/cmd/benchall -quick -o - after make build).
CUE_VERSION = $(shell $(GO) list -m -f '{{.Version}}' cuelang.org/go)
BENCH_FLAGS ?=
bench: build
	GOBIN=$(CURDIR)/bin $(GO) install cuelang.org/go/cmd/cue@$(CUE_VERSION)
	$(GO) test -run='^$$' -bench=. -benchmem -count=1 $(PKGS) | tee bin/gobench.txt
	$(GO) run ./internal/bench/cmd/benchall -recpol $(BIN) -cue bin/cue -o BENCHMARKS.md $(BENCH_FLAGS)

EXAMPLE := testdata/policies/example

## demo: vet, compile and simulate the example policy, check the documented matrix,
## then run it: fake switch, runtime, recordings, a hot reload, the summary
demo: build
	$(BIN) vet $(EXAMPLE)
	$(BIN) compile $(EXAMPLE) -o bin/example-table.json
	$(BIN) compile $(EXAMPLE) --summary
	$(BIN) simulate --matrix
	$(BIN) simulate $(EXAMPLE)
	$(BIN) simulate $(EXAMPLE) --expect $(EXAMPLE).expect.cue
	$(BIN) demo --dir bin/demo --policies $(EXAMPLE)

clean:
	rm -rf bin

FUZZTIME ?= 1m
FUZZMINIMIZETIME ?= 5s
# package:target, one per fuzz target
FUZZ_TARGETS := \
	./compiler:FuzzCompile \
	./compiler:FuzzCheckURL \
	./compiler/isolate:FuzzCompile \
	./runtime:FuzzEngineEvents \
	./runtime:FuzzIntentLog \
	./runtime:FuzzLoadConfig \
	./runtime:FuzzAPI \
	./table:FuzzDecode \
	./table:FuzzCollector \
	./scenario:FuzzParse \
	./runtime/store:FuzzValidName \
	./runtime/store:FuzzInspectAudio \
	./runtime/store:FuzzCheckJournal \
	./runtime/eslwire:FuzzParseEventPlain \
	./runtime/esl:FuzzSession \
	./fakeswitch:FuzzReadFrame \
	./fakeswitch:FuzzHandle

## fuzz: run every fuzz target for FUZZTIME (default 1m) each, all of them even
## when one fails (the run fails at the end, naming them); crashers land in
## the package's testdata/fuzz/<target> and become regression seeds
fuzz:
	@failed=""; for t in $(FUZZ_TARGETS); do \
		pkg=$${t%%:*}; name=$${t##*:}; \
		echo "== $$name ($$pkg) for $(FUZZTIME)"; \
		$(GO) test -run='^$$' -fuzz="^$$name$$" -fuzztime=$(FUZZTIME) -fuzzminimizetime=$(FUZZMINIMIZETIME) $$pkg || failed="$$failed $$name"; \
	done; \
	if [ -n "$$failed" ]; then echo "fuzz: failed:$$failed"; exit 1; fi

SOAK_DURATION ?= 30m
SOAK_RATE     ?= 200
## hostile: issue 20's hostile inputs at scale against $(BIN): a poisoned WAV
## found by start-up recovery, 300,000 originated legs that never bridge,
## 20,000 idle HTTP connections; writes the section "Hostile inputs at scale"
## of RELIABILITY.md (about 10 minutes). HOSTILE_FLAGS='-checks wav -out /tmp/h.md'
HOSTILE_FLAGS ?=
hostile: build
	nice -n 10 $(GO) run ./internal/hostile -recpol $(BIN) -out RELIABILITY.md $(HOSTILE_FLAGS)

## soak: kill -9 of the runtime at random moments during 1,000 calls, then
## SOAK_DURATION (default 30m) at SOAK_RATE call setups/s against the fake switch,
## the policy reloaded every minute, an upload server failing 10% of requests;
## writes RELIABILITY.md (lost and duplicated recordings must be 0)
soak:
	$(GO) run ./internal/soak -duration=$(SOAK_DURATION) -rate=$(SOAK_RATE) -out RELIABILITY.md
