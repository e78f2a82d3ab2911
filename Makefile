# creek: `make test` installs what the tests need and runs the whole suite.

GO        ?= go
STATICCHECK_VERSION ?= v0.8.2
FUZZTIME  ?= 10s

.PHONY: all build test test-deps compat fuzz lint docs clean

all: build

build:
	$(GO) build -o bin/creek ./cmd/creek

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

fuzz:
	$(GO) test -run '^$$' -fuzz '^FuzzRequestFraming$$' -fuzztime $(FUZZTIME) ./broker/
	$(GO) test -run '^$$' -fuzz '^FuzzHostileRequests$$' -fuzztime $(FUZZTIME) ./broker/
	$(GO) test -run '^$$' -fuzz '^FuzzRecovery$$' -fuzztime $(FUZZTIME) ./internal/storage/
	$(GO) test -run '^$$' -fuzz '^FuzzValidateBatch$$' -fuzztime $(FUZZTIME) ./internal/storage/
	$(GO) test -run '^$$' -fuzz '^FuzzQuickRecord$$' -fuzztime $(FUZZTIME) ./internal/storage/

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(GO) run honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION) ./...

# Regenerate documentation that is generated from the code.
docs:
	$(GO) test ./cmd/creek/ -run TestConfigurationReference -update-reference

clean:
	rm -rf bin
