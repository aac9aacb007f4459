"""`rasa run` with its JWT secret taken from RASA_JWT_SECRET instead of the command line: every local user can
read a process's arguments (`ps`, /proc/<pid>/cmdline), not its environment. Other arguments pass through."""
import os
import sys

secret = os.environ.get("RASA_JWT_SECRET", "")
if not secret:
    sys.exit("RASA_JWT_SECRET is not set: Rasa's HTTP API would run without authentication.")

from rasa.__main__ import main  # noqa: E402  (after the check: importing Rasa takes seconds)

sys.argv = ["rasa", "run", *sys.argv[1:], "--jwt-secret", secret, "--jwt-method", "HS256"]
main()
