"""Fault injection from outside the product: killed workers, a stopped Temporal server, a
database that goes away, a failing SendGrid, duplicate deliveries (issue #6). `make soak` runs
the longer variants (SOAK=1)."""
