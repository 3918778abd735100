#!/usr/bin/env bash
# A single-node SLURM cluster in a folder of its own, for tests/test_slurm.py
# and for trying the cluster path of docs/sweeps.md on one machine.
#
#   scripts/slurm_cluster.sh start DIR [CTLD_PORT SLURMD_PORT]   (default ports 16817 16818)
#   export SLURM_CONF=DIR/slurm.conf    # then sbatch, squeue, twosided run -m hydra/launcher=submitit_slurm ...
#   scripts/slurm_cluster.sh stop DIR
#
# start: a munge key and munged, slurmctld and slurmd (as root: slurmd starts
# jobs as their user), everything (config, state, logs, pid files, the munge
# socket) under DIR, from conf/slurm/slurm.conf; returns once the node
# accepts jobs, or fails after START_TIMEOUT_S seconds (default 60) with the
# daemons' logs. stop: cancels the cluster's jobs, then ends the daemons it
# started, by the pid files in DIR.
# Needs root and Debian's slurmctld, slurmd, slurm-client and munge
# (scripts/install_slurm.sh).
set -euo pipefail
PATH="$PATH:/usr/sbin:/sbin"
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
TEMPLATE="$HERE/../conf/slurm/slurm.conf"
NODE=twosided-node
usage() { echo "usage: $0 start DIR [CTLD_PORT SLURMD_PORT] | stop DIR" >&2; exit 2; }
[ $# -ge 2 ] || usage
action="$1"
dir="$(mkdir -p "$2" && cd "$2" && pwd)"

stop_pid_file() {  # end the process of one pid file, waiting up to 10 s for it to go
    local file="$1" pid
    [ -s "$file" ] || return 0
    pid="$(cat "$file")"
    if kill -0 "$pid" 2>/dev/null; then
        kill "$pid" 2>/dev/null || true
        for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -0 "$pid" 2>/dev/null && kill -9 "$pid" 2>/dev/null || true
    fi
    rm -f "$file"
}

case "$action" in
start)
    ctld_port="${3:-16817}"
    slurmd_port="${4:-16818}"
    timeout_s="${START_TIMEOUT_S:-60}"
    [ "$(id -u)" = "0" ] || { echo "slurm_cluster: start needs root (slurmd starts jobs as their user)" >&2; exit 1; }
    for cmd in munged mungekey slurmctld slurmd sinfo; do
        command -v "$cmd" >/dev/null || { echo "slurm_cluster: $cmd is missing: run scripts/install_slurm.sh" >&2; exit 1; }
    done
    mkdir -p "$dir/munge" "$dir/ctld" "$dir/slurmd"
    chmod 700 "$dir/munge"
    # the node as this machine has it (CPUs, memory): a node that claims more is drained
    read -r cpus memory_mb < <(slurmd -C | sed -n 's/.*CPUs=\([0-9]*\).*RealMemory=\([0-9]*\).*/\1 \2/p')
    sed -e "s|@STATE@|$dir|g" -e "s|@CTLD_PORT@|$ctld_port|" -e "s|@SLURMD_PORT@|$slurmd_port|" \
        -e "s|@CPUS@|$cpus|" -e "s|@MEMORY_MB@|$memory_mb|" "$TEMPLATE" > "$dir/slurm.conf"
    export SLURM_CONF="$dir/slurm.conf"
    [ -s "$dir/munge/munge.key" ] || mungekey --create --keyfile="$dir/munge/munge.key"
    # --force: munged refuses root otherwise; here root is the point (a throw-away test cluster)
    munged --force --socket="$dir/munge/munge.socket" --key-file="$dir/munge/munge.key" \
        --pid-file="$dir/munge/munged.pid" --log-file="$dir/munge/munged.log" --seed-file="$dir/munge/munged.seed"
    slurmctld -f "$SLURM_CONF"
    slurmd -f "$SLURM_CONF" -N "$NODE"
    deadline=$((SECONDS + timeout_s))
    until [ "$(sinfo -h -n "$NODE" -o %t 2>/dev/null)" = "idle" ]; do
        if [ $SECONDS -ge $deadline ]; then
            echo "slurm_cluster: the node is not idle after ${timeout_s} s (sinfo: $(sinfo -h -n "$NODE" -o %t 2>&1)); logs:" >&2
            tail -n 20 "$dir"/slurmctld.log "$dir"/slurmd.log "$dir"/munge/munged.log >&2 2>/dev/null || true
            exit 1
        fi
        sleep 0.5
    done
    echo "slurm_cluster: up in $dir (SLURM_CONF=$SLURM_CONF)"
    ;;
stop)
    # cancel what is still queued or running first: slurmstepd and the jobs outlive slurmd
    if [ -s "$dir/slurmctld.pid" ] && kill -0 "$(cat "$dir/slurmctld.pid")" 2>/dev/null; then
        export SLURM_CONF="$dir/slurm.conf"
        scancel --quiet --partition=test 2>/dev/null || true
        for _ in $(seq 50); do [ -z "$(squeue -h -o %i 2>/dev/null)" ] && break; sleep 0.2; done
    fi
    stop_pid_file "$dir/slurmd.pid"
    stop_pid_file "$dir/slurmctld.pid"
    stop_pid_file "$dir/munge/munged.pid"
    ;;
*) usage ;;
esac
