"""Running the service locally: binaries shipped in the venv, demo data, and `make run`."""
