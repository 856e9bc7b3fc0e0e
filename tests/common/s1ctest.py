"""Shared by the script-driven tests: the environment ctest sets and a tally of named checks
that ends with the plain "N passed, N failed" line CI reads."""
import os, sys

BIN = os.environ.get("S1C_BIN", "")
DATA = os.environ.get("S1C_DATA", "")
TMP = os.environ.get("S1C_TMP", "")
_counts = {"passed": 0, "failed": 0}


def check(name, ok, detail=""):
    """Records one named check; prints the detail when it fails."""
    _counts["passed" if ok else "failed"] += 1
    if not ok:
        print(f"FAIL {name}: {detail}")
    return bool(ok)


def finish():
    """Prints the tally and exits non-zero if anything failed."""
    print(f"{_counts['passed']} passed, {_counts['failed']} failed")
    sys.exit(1 if _counts["failed"] else 0)
