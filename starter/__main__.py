"""`python -m starter ...`: the command line (see starter/cli.py)."""

import os
import sys
from contextlib import suppress

from starter.cli import main

code = main()
# Leave without interpreter teardown: the Temporal client's Rust threads can outlive the event
# loop and abort a finalizing interpreter now and then ("PyGILState_Release: thread state ...
# must be current", temporalio/sdk-python#300), turning a finished command into exit 134.
with suppress(BrokenPipeError):  # e.g. `... emails | head`
    sys.stdout.flush()
    sys.stderr.flush()
os._exit(code)
