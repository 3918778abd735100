#!/usr/bin/env bash
# Install Debian's SLURM (slurmctld, slurmd, the client commands) and munge
# for tests/test_slurm.py, which starts a single-node cluster of its own
# (scripts/slurm_cluster.sh, conf/slurm/slurm.conf) and submits a sweep
# through hydra/launcher=submitit_slurm. Does nothing when they are there.
# Needs root (or sudo) and apt. Writes /var/lib/twosided-slurm/installed,
# which tells the tests that a missing SLURM is a failure, not a skip.
set -euo pipefail
MARKER_DIR=/var/lib/twosided-slurm
NEEDED=(slurmctld slurmd sbatch squeue munged)
missing=0
for cmd in "${NEEDED[@]}"; do
    command -v "$cmd" >/dev/null 2>&1 || PATH="$PATH:/usr/sbin" command -v "$cmd" >/dev/null 2>&1 || missing=1
done
SUDO=""
if [ "$(id -u)" != "0" ]; then
    if command -v sudo >/dev/null 2>&1; then SUDO="sudo"; else
        echo "install_slurm: slurm and munge are missing or partial and we are neither root nor have sudo: install Debian's slurmctld slurmd slurm-client munge by hand" >&2
        exit 1
    fi
fi
if [ "$missing" = "1" ]; then
    if ! command -v apt-get >/dev/null 2>&1; then
        echo "install_slurm: no apt-get here: install slurmctld, slurmd, slurm-client and munge by hand (tests/test_slurm.py needs them)" >&2
        exit 1
    fi
    export DEBIAN_FRONTEND=noninteractive
    # other installs (chromium for the browser tests) may hold the dpkg lock: wait for it
    $SUDO apt-get -o DPkg::Lock::Timeout=600 update -q
    $SUDO apt-get -o DPkg::Lock::Timeout=600 install -y -q --no-install-recommends slurmctld slurmd slurm-client munge
fi
$SUDO mkdir -p "$MARKER_DIR"
$SUDO touch "$MARKER_DIR/installed"
