# Two commands on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
# Override for another build, e.g. `make test TORCH_SPEC="torch --index-url ..."`.
TORCH_SPEC ?= torch==2.13.0
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test install bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install --quiet "$(TORCH_SPEC)"
	$(BIN)/python -m pip install --quiet -e ".[test,export]"
	touch $(STAMP)

install: $(STAMP)

# The headline: Gauss-Newton takes a small float64 SIREN to a few 1e-6 against the exact
# solution in about a minute (one thread: the CLI's default).
demo: $(STAMP)
	$(BIN)/pinn-sine solve poisson2d --activation siren --width 24 --depth 2 --dtype float64 --batch 800 \
		--steps 500 --gn-steps 1200 --out runs/demo --overwrite

# One OpenMP thread per test process: small tensors gain nothing from more, and two
# threads fighting over two shared cores were 50x slower on a loaded machine.
test: $(STAMP)
	OMP_NUM_THREADS=$${OMP_NUM_THREADS:-1} $(BIN)/python -m pytest -q

bench: $(STAMP)
	$(BIN)/python benchmarks/fd_poisson.py
	$(BIN)/python benchmarks/poisson_pinn.py

clean:
	rm -rf $(VENV) runs .pytest_cache
