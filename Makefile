# Distillery: `make demo` and `make test` do all the set-up on a fresh Debian machine.
SWIFT ?= swift
# Open MPI: data-parallel training of one stage over ranks (`mpirun -np N distill run ...`).
APT_PACKAGES := libyaml-dev libopenblas-dev libnifti-dev libsqlite3-dev pkg-config zlib1g-dev libopenmpi-dev openmpi-bin libssl-dev
# NIfTI volumes written by other tools, read by the tests.
# A single-node Slurm for the cluster integration test; a JSON Schema validator
# (Debian's Python) for the editor-schema tests; scipy and statsmodels for the
# independent reference of the report's statistics.
TEST_PACKAGES := mricron-data slurmd slurmctld slurm-client munge python3-jsonschema python3-yaml python3-scipy python3-statsmodels python3-nibabel python3-numpy python3-venv
DISTILL := .build/debug/distill
# ONNX's checker, ONNX Runtime and TensorBoard's event reader, which the tests run
# against Distillery's files: pinned in Tests/python-requirements.txt, installed
# into a virtual environment of the build (Debian's Python and python3-venv).
VENV := .build/venv
# nnU-Net's planner needs PyTorch: its CPU build (a wheel folder of pip's, else PyTorch's own index).
TORCH := 2.13.0

.PHONY: all deps test-deps venv build test demo install install-files uninstall schema grammar bench-spec bench-onnx bench-plan clean protos

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

$(VENV)/.installed: Tests/python-requirements.txt
	@$(MAKE) --no-print-directory test-deps
	rm -rf $(VENV)
	/usr/bin/python3 -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check 'torch==$(TORCH)+cpu' \
	  || $(VENV)/bin/pip install --quiet --disable-pip-version-check --index-url https://download.pytorch.org/whl/cpu 'torch==$(TORCH)'
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -r Tests/python-requirements.txt
	touch $@

venv: $(VENV)/.installed

test: deps test-deps $(VENV)/.installed
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

# The release `distill` on the PATH with bash, zsh and fish completions
# (swift-argument-parser writes them): `make install [PREFIX=~/.local]`.
PREFIX ?= /usr/local
BINARY ?= .build/release/distill
BASH_COMPLETIONS = $(DESTDIR)$(PREFIX)/share/bash-completion/completions
ZSH_COMPLETIONS = $(DESTDIR)$(PREFIX)/share/zsh/site-functions
FISH_COMPLETIONS = $(DESTDIR)$(PREFIX)/share/fish/vendor_completions.d

install: deps
	$(SWIFT) build -c release --product distill
	@$(MAKE) --no-print-directory install-files

# Installs $(BINARY) as built (the tests install a debug build into a temporary prefix).
install-files:
	install -d $(DESTDIR)$(PREFIX)/bin $(BASH_COMPLETIONS) $(ZSH_COMPLETIONS) $(FISH_COMPLETIONS)
	install -m 755 $(BINARY) $(DESTDIR)$(PREFIX)/bin/distill
	$(BINARY) --generate-completion-script bash > $(BASH_COMPLETIONS)/distill
	$(BINARY) --generate-completion-script zsh > $(ZSH_COMPLETIONS)/_distill
	$(BINARY) --generate-completion-script fish > $(FISH_COMPLETIONS)/distill.fish
	@echo "installed $(DESTDIR)$(PREFIX)/bin/distill and its bash, zsh and fish completions"

uninstall:
	rm -f $(DESTDIR)$(PREFIX)/bin/distill $(BASH_COMPLETIONS)/distill $(ZSH_COMPLETIONS)/_distill $(FISH_COMPLETIONS)/distill.fish

# The exported S1 and S2 students on one 256x256 slice: Distillery's forward pass,
# then ONNX Runtime's on the same files (release build; 2 threads each).
bench-onnx: deps $(VENV)/.installed
	$(SWIFT) build -c release --product distill
	.build/release/distill bench --onnx .build/bench-onnx
	$(VENV)/bin/python Benchmarks/onnx_latency.py .build/bench-onnx

# Regenerates the Swift code of the ONNX and TensorBoard formats from
# Sources/Results/Interchange/Protos (committed: the build needs neither protoc nor the plugin).
# Needs protoc (Debian's protobuf-compiler) and swift-protobuf's protoc-gen-swift
# on the PATH, the version of Package.swift's swift-protobuf.
protos:
	cd Sources/Results/Interchange && protoc --swift_out=Generated --swift_opt=Visibility=Internal -IProtos Protos/onnx.proto Protos/tensorboard.proto

# Regenerates grammar/distill.schema.json (a test fails when it is stale).
schema: build
	$(DISTILL) schema > grammar/distill.schema.json

# Regenerates grammar/README.md from the schema and the golden fixtures.
grammar: schema
	python3 grammar/tools/readme.py

# The plan's times and memory against a sweep of each spec on a fresh store (issue 45).
bench-plan: deps
	$(SWIFT) build -c release --product distill
	Benchmarks/plan-accuracy.sh

bench-spec: deps
	$(SWIFT) build -c release --product distill-bench-spec
	.build/release/distill-bench-spec specs

clean:
	rm -rf .build
