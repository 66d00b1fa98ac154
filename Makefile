# trajops — one command per check, the same locally and in CI.
PYTHON ?= python3.11
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
DATA   ?= ../shared/data/eth_ucy
PYTEST_ARGS ?=

.PHONY: install demo test test-container test-stack test-unit test-integration test-e2e lint format bench bench-eth-ucy bench-serve bench-log-writer bench-drift bench-ab bench-batch bench-replicas bench-neural-device bench-flywheel clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip setuptools wheel
	$(BIN)/pip install --quiet -e '.[dev,dashboard,airflow]'
	touch $(STAMP)

install: $(STAMP) ## create .venv and install the project with its dev tools

demo: $(STAMP) ## the main job on embedded defaults: simulate, train, register, promote, serve
	$(BIN)/trajops demo

test: $(STAMP) ## every test but the image build (unit, integration, e2e, reliability)
	TRAJOPS_DATA_ROOT=$(DATA) $(BIN)/pytest -q -m "not container and not stack" $(PYTEST_ARGS)

test-container: $(STAMP) ## build the container image with podman and run it (3-11 min)
	$(BIN)/pytest -q -m container tests/container $(PYTEST_ARGS)

test-stack: $(STAMP) ## the compose stack up from local images, the lifecycle through nginx, a rollout under load, down -v (10-25 min)
	$(BIN)/pytest -q -s -m stack tests/stack $(PYTEST_ARGS)

test-unit: $(STAMP)
	$(BIN)/pytest -q tests/unit $(PYTEST_ARGS)

test-integration: $(STAMP)
	TRAJOPS_DATA_ROOT=$(DATA) $(BIN)/pytest -q tests/integration $(PYTEST_ARGS)

test-e2e: $(STAMP)
	$(BIN)/pytest -q tests/e2e $(PYTEST_ARGS)

lint: $(STAMP) ## ruff check + ruff format --check + mypy
	$(BIN)/ruff check src tests bench dags
	$(BIN)/ruff format --check src tests bench dags
	$(BIN)/mypy

format: $(STAMP)
	$(BIN)/ruff check --fix src tests bench dags
	$(BIN)/ruff format src tests bench dags

bench: bench-eth-ucy bench-flywheel bench-serve bench-serve-scene bench-log-writer bench-drift bench-ab bench-batch bench-replicas ## every benchmark (JSON under bench/results/)

bench-eth-ucy: $(STAMP)
	TRAJOPS_DATA_ROOT=$(DATA) $(BIN)/python bench/eth_ucy.py

bench-flywheel: $(STAMP) ## the production loop on a held-out site (stream, harvest, fine-tune, gate)
	TRAJOPS_DATA_ROOT=$(DATA) $(BIN)/python bench/flywheel.py --site hotel

bench-serve: $(STAMP)
	$(BIN)/python bench/serve.py

bench-serve-scene: $(STAMP) ## neural scenes: trajops vs BentoML vs mlflow models serve (installs the bench-bentoml extra)
	$(BIN)/pip install -q -e '.[bench-bentoml]'
	$(BIN)/python bench/serve_scene.py

bench-log-writer: $(STAMP)
	$(BIN)/python bench/log_writer.py

bench-drift: $(STAMP)
	TRAJOPS_DATA_ROOT=$(DATA) $(BIN)/python bench/drift.py

bench-ab: $(STAMP)
	TRAJOPS_DATA_ROOT=$(DATA) $(BIN)/python bench/ab_simulation.py

bench-batch: $(STAMP)
	$(BIN)/python bench/batch.py

bench-replicas: $(STAMP)
	$(BIN)/python bench/replicas.py

bench-neural-device: $(STAMP) ## neural forecaster on CPU vs CUDA (needs a CUDA GPU; not part of `bench`)
	$(BIN)/python bench/neural_device.py

clean:
	rm -rf $(VENV) .trajops .pytest_cache .mypy_cache .ruff_cache
