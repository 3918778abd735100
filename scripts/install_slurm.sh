#!/usr/bin/env bash
# Install Debian's SLURM (slurmctld, slurmd, the client commands) and munge
# for tests/test_slurm.py, which starts a single-node cluster of its own
# (scripts/slurm_cluster.sh, conf/slurm/slurm.conf) and submits a sweep
# through hydra/launcher=submitit_slurm. Installs nothing when they are there.
# Needs root (or sudo) and apt. Writes /var/lib/twosided-slurm/installed,
# which tells the tests that a missing SLURM is a failure, not a skip.
set -euo pipefail
PATH="$PATH:/usr/sbin:/sbin"   # the daemons live in sbin, which a user's PATH may lack
MARKER=/var/lib/twosided-slurm/installed
missing=0
for cmd in slurmctld slurmd sbatch squeue scontrol munged mungekey; do
    command -v "$cmd" >/dev/null 2>&1 || missing=1
done
if [ "$missing" = "0" ] && [ -e "$MARKER" ]; then
    exit 0
fi
SUDO=""
if [ "$(id -u)" != "0" ]; then
    if command -v sudo >/dev/null 2>&1; then SUDO="sudo"; else
        if [ "$missing" = "0" ]; then exit 0; fi   # installed; the test skips without root anyway
        echo "install_slurm: slurm or munge is missing and we are neither root nor have sudo: install Debian's slurmctld slurmd slurm-client munge by hand" >&2
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
$SUDO mkdir -p "$(dirname "$MARKER")"
$SUDO touch "$MARKER"
