# One command each for the two things a new user does first.
.PHONY: setup demo test lint

setup:
	bash scripts/setup.sh

demo: setup
	tinykd demo

test: setup
	python3 -m pytest -q

lint:
	ruff check . && ruff format --check .
