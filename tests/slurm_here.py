"""Whether tests/test_slurm.py runs against a real SLURM on this machine.

Where scripts/install_slurm.sh ran (its marker file exists) and we are root,
tests/test_slurm.py must start a single-node cluster and run a sweep and a
comparison through it, or fail. The submitit_local tests of the same path
(a sweep in test_sweeps.py, a comparison in test_compare_folder.py) then add
nothing the real cluster does not check, and step aside, saying so; anywhere
else they are what tests the cluster path.
"""
from __future__ import annotations

import os
from pathlib import Path

INSTALLED_MARKER = Path("/var/lib/twosided-slurm/installed")   # written by scripts/install_slurm.sh
REAL_SLURM = INSTALLED_MARKER.exists() and os.geteuid() == 0
COVERED_BY_SLURM = "the same submitit path runs on a real SLURM here (tests/test_slurm.py checks it, and more)"
