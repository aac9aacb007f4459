"""`rasa run` with its JWT secret taken from RASA_JWT_SECRET instead of the command line: every local user can
read a process's arguments (`ps`, /proc/<pid>/cmdline), not its environment. Other arguments pass through."""
import os
import sys

secret = os.environ.get("RASA_JWT_SECRET", "")
if not secret:
    sys.exit("RASA_JWT_SECRET is not set: Rasa's HTTP API would run without authentication.")

# Run as a script (deploy/ is sys.path[0]): the project root must be importable for the channel and the
# speed-ups, as it is for `python -m` in the local Procfile.
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# The same explicit start-up steps as the local Procfile (connectors/rasa_start.py): known third-party
# warnings silenced, SQL parameters kept out of the tracker store's errors, the tested speed-ups installed
# (RASA_SPEEDUPS=0 turns them off), one line says which.
from connectors.rasa_start import start_up_steps  # noqa: E402  (after the check: importing Rasa takes seconds)

start_up_steps()

from rasa.__main__ import main  # noqa: E402

# `=`: a secret starting with "-" (token_urlsafe makes one in 32) would otherwise read as an option.
sys.argv = ["rasa", "run", *sys.argv[1:], f"--jwt-secret={secret}", "--jwt-method", "HS256"]
main()
