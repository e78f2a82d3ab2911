# creek: `make test` installs what the tests need and runs the whole suite.

GO        ?= go
STATICCHECK_VERSION ?= v0.8.2

.PHONY: all build test test-deps compat fuzz lint docs clean

all: build

# The release binary: without the symbol table and DWARF (for debuggers and
# perf; Go's stack traces and pprof keep names and lines), 30 % smaller.
build:
	$(GO) build -trimpath -ldflags='-s -w' -o bin/creek ./cmd/creek

test-deps:
	./scripts/test-deps.sh

# The whole suite: vet, every package's tests (real clients over TCP, kill -9
# crash tests), the client compatibility suite (which prints its matrix),
# then each fuzz target briefly.
test: test-deps
	$(GO) vet ./...
	$(GO) test -count=1 -timeout 15m ./...
	$(MAKE) compat
	$(MAKE) fuzz

# Every Kafka client against the broker; prints the client × scenario matrix.
compat: test-deps
	cd test/compat && $(GO) vet ./... && COMPAT_MATRIX=$(CURDIR)/compat-matrix.txt $(GO) test -count=1 -timeout 10m ./... ; \
		status=$$?; cat $(CURDIR)/compat-matrix.txt; rm -f $(CURDIR)/compat-matrix.txt; exit $$status

# Each fuzz target runs a fixed number of inputs, about ten seconds' worth
# here, not for a fixed time: with -fuzztime as a duration, Go's fuzzing
# coordinator can fail a target with "context deadline exceeded" when the
# time runs out while a worker is busy (a slow input, or minimizing a new
# one), having found nothing. -fuzzminimizetime keeps minimizing a new input
# short, as these targets' inputs take up to 250 ms each.
FUZZ = $(GO) test -run '^$$' -fuzzminimizetime 20x
fuzz:
	$(FUZZ) -fuzz '^FuzzRequestFraming$$' -fuzztime 2000x ./broker/
	$(FUZZ) -fuzz '^FuzzHostileRequests$$' -fuzztime 500x ./broker/
	$(FUZZ) -fuzz '^FuzzRecovery$$' -fuzztime 1500x ./internal/storage/
	$(FUZZ) -fuzz '^FuzzValidateBatch$$' -fuzztime 30000x ./internal/storage/
	$(FUZZ) -fuzz '^FuzzQuickRecord$$' -fuzztime 100000x ./internal/storage/

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(GO) run honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION) ./...

# Regenerate documentation that is generated from the code.
docs:
	$(GO) test ./cmd/creek/ -run TestConfigurationReference -update-reference

clean:
	rm -rf bin
