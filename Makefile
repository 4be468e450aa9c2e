# Distillery: `make demo` and `make test` do all the set-up on a fresh Debian machine.
SWIFT ?= swift
# Open MPI: data-parallel training of one stage over ranks (`mpirun -np N distill run ...`).
APT_PACKAGES := libyaml-dev libopenblas-dev libnifti-dev libsqlite3-dev pkg-config zlib1g-dev libopenmpi-dev openmpi-bin libssl-dev
# NIfTI volumes written by other tools, read by the tests.
# A single-node Slurm for the cluster integration test; a JSON Schema validator
# (Debian's Python) for the editor-schema tests; scipy and statsmodels for the
# independent reference of the report's statistics.
TEST_PACKAGES := mricron-data slurmd slurmctld slurm-client munge python3-jsonschema python3-yaml python3-scipy python3-statsmodels python3-nibabel python3-numpy
DISTILL := .build/debug/distill

.PHONY: all deps test-deps build test demo schema grammar bench-spec clean

all: build

# Installs the Debian packages the build needs when run as root; otherwise
# prints the exact command and stops.
deps:
	@missing=""; \
	for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "installing:$$missing"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	  else \
	    echo "missing Debian packages:$$missing"; \
	    echo "run:  sudo apt-get install -y$$missing"; \
	    exit 1; \
	  fi; \
	fi

test-deps:
	@$(MAKE) --no-print-directory deps APT_PACKAGES="$(TEST_PACKAGES)"

build: deps
	$(SWIFT) build

test: deps test-deps
	$(SWIFT) build --build-tests
	$(SWIFT) test

# The quickstart: check the specs, show the plan, run the sweep on the phantom
# (release build: training is arithmetic) and print the table. Rerunning reuses
# every finished stage from ./runs.
demo: deps
	$(SWIFT) build -c release --product distill
	.build/release/distill check specs
	@echo
	.build/release/distill plan specs/quickstart.yaml
	@echo
	.build/release/distill sweep specs/quickstart.yaml --store runs

# Regenerates grammar/distill.schema.json (a test fails when it is stale).
schema: build
	$(DISTILL) schema > grammar/distill.schema.json

# Regenerates grammar/README.md from the schema and the golden fixtures.
grammar: schema
	python3 grammar/tools/readme.py

bench-spec: deps
	$(SWIFT) build -c release --product distill-bench-spec
	.build/release/distill-bench-spec specs

clean:
	rm -rf .build
