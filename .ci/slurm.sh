#!/usr/bin/env bash
# A one-node SLURM cluster on this machine, for the cluster tests (tests/test_slurm.py, marker
# `slurm`). Debian's SLURM 22.05 and munge; run as root.
#
#   .ci/slurm.sh up     install the packages if missing, write the config, start munged,
#                       slurmctld and slurmd, wait until the node is idle
#   .ci/slurm.sh down   stop the daemons `up` started (by their pid files), nothing else
#   .ci/slurm.sh status
#
# Both are idempotent. The cluster: partitions `main` (the default) and `gpu` on the one node,
# fake GPUs (GRES on character devices that work as /dev/null: SLURM counts and allocates
# them, nothing runs on them), no
# accounting database (the profile's status command is squeue), no cgroups.
#
# The node is declared larger than the machine (32 CPUs, 128 GiB, 4 GPUs; config_overrides) so
# that the requests of profiles/slurm as a user copies it (8 CPUs, 64 GB and a GPU for a sampling
# job) fit on it, four sampling jobs side by side (the tests keep some of them waiting).
# Nothing is enforced here (no cgroups, memory is not a consumable resource), and the tiny test
# configuration's jobs each use one core and well under a gigabyte.
#
# /etc/slurm/slurm.conf is where it must be: the plugin's job step clears SLURM_* variables
# (SLURM_CONF included), so an srun inside a job reads only the default path. A slurm.conf that
# this script did not write is never overwritten.
set -euo pipefail

DIR=${DIVTRACE_SLURM_DIR:-/var/lib/divtrace-slurm}
WAIT_S=${DIVTRACE_SLURM_WAIT:-60}
CONF_DIR=/etc/slurm
MARK="# Written by divtrace's .ci/slurm.sh (a one-node test cluster)."
PACKAGES=(slurmctld slurmd slurm-client munge)
NODE_CPUS=32
NODE_MEM_MB=131072
NODE_GPUS=4
MIN_JOB_AGE=300 # seconds a finished job stays visible to squeue: the status command needs >= 120
KILL_WAIT=5     # seconds between SIGTERM and SIGKILL at a time limit or scancel

log() { echo "slurm.sh: $*" >&2; }
die() {
    log "error: $*"
    exit 1
}

# The pid in a pid file, if that process is alive and is the named daemon.
running_pid() {
    local file=$1 name=$2 pid
    [[ -s $file ]] || return 1
    pid=$(<"$file")
    [[ $pid =~ ^[0-9]+$ ]] && [[ -r /proc/$pid/comm ]] || return 1
    [[ $(</proc/"$pid"/comm) == "$name" ]] || return 1
    echo "$pid"
}

install_packages() {
    local missing=0 cmd
    for cmd in munged slurmctld slurmd sbatch squeue scontrol; do
        command -v "$cmd" >/dev/null || missing=1
    done
    ((missing)) || return 0
    ((EUID == 0)) || die "SLURM is not installed and installing it needs root: apt-get install ${PACKAGES[*]}"
    log "installing ${PACKAGES[*]}"
    mkdir -p "$DIR/log"
    if ! { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
        --no-install-recommends "${PACKAGES[@]}"; } >"$DIR/log/apt.log" 2>&1; then
        tail -n 20 "$DIR/log/apt.log" >&2
        die "apt-get failed (all of it in $DIR/log/apt.log)"
    fi
}

# Writes slurm.conf and gres.conf; fails when they were already so.
write_config() {
    local host=$1 conf=$CONF_DIR/slurm.conf
    if [[ -e $conf ]] && ! grep -qF "$MARK" "$conf"; then
        die "$conf exists and was not written by this script; not touching it"
    fi
    local before
    before=$(cat "$conf" "$CONF_DIR/gres.conf" 2>/dev/null || true)
    mkdir -p "$CONF_DIR" "$DIR"/{pid,log,state,spool,dev}
    local gpus=()
    for ((i = 0; i < NODE_GPUS; i++)); do
        # a character device (slurmd accepts nothing else) that works as /dev/null does
        local dev=$DIR/dev/gpu$i
        if [[ ! -c $dev ]]; then
            rm -f "$dev"
            mknod -m 0666 "$dev" c 1 3 || die "cannot create the fake GPU device $dev (mknod)"
        fi
        gpus+=("$dev")
    done
    cat >"$conf" <<EOF
$MARK
ClusterName=divtrace
SlurmctldHost=$host(127.0.0.1)
SlurmUser=root
AuthType=auth/munge
StateSaveLocation=$DIR/state
SlurmdSpoolDir=$DIR/spool
SlurmctldPidFile=$DIR/pid/slurmctld.pid
SlurmdPidFile=$DIR/pid/slurmd.pid
SlurmctldLogFile=$DIR/log/slurmctld.log
SlurmdLogFile=$DIR/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
MpiDefault=none
MailProg=/bin/true
ReturnToService=2
SlurmdParameters=config_overrides
MinJobAge=$MIN_JOB_AGE
KillWait=$KILL_WAIT
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
GresTypes=gpu
NodeName=$host NodeAddr=127.0.0.1 CPUs=$NODE_CPUS RealMemory=$NODE_MEM_MB Gres=gpu:$NODE_GPUS State=UNKNOWN
PartitionName=main Nodes=$host Default=YES MaxTime=INFINITE State=UP
PartitionName=gpu Nodes=$host MaxTime=INFINITE State=UP
EOF
    cat >"$CONF_DIR/gres.conf" <<EOF
$MARK
AutoDetect=off
NodeName=$host Name=gpu File=$(
        IFS=,
        echo "${gpus[*]}"
    )
EOF
    [[ $(cat "$conf" "$CONF_DIR/gres.conf") != "$before" ]]
}

start_munged() {
    if munge -n </dev/null 2>/dev/null | unmunge >/dev/null 2>&1; then
        running_pid "$DIR/pid/munged.pid" munged >/dev/null || log "using the munged already running"
        return 0
    fi
    if [[ ! -s /etc/munge/munge.key ]]; then
        mkdir -p /etc/munge
        dd if=/dev/urandom of=/etc/munge/munge.key bs=1024 count=1 status=none
    fi
    chown munge:munge /etc/munge /etc/munge/munge.key
    chmod 0700 /etc/munge
    chmod 0400 /etc/munge/munge.key
    mkdir -p /run/munge "$DIR/munge"
    chown munge:munge /run/munge "$DIR/munge"
    chmod 0755 /run/munge
    chmod 0700 "$DIR/munge"
    runuser -u munge -- munged --pid-file="$DIR/munge/munged.pid" \
        --log-file="$DIR/munge/munged.log" --seed-file="$DIR/munge/munged.seed"
    cp "$DIR/munge/munged.pid" "$DIR/pid/munged.pid"
    munge -n </dev/null | unmunge >/dev/null || die "munged does not answer (see $DIR/munge/munged.log)"
}

start_daemon() {
    local name=$1
    shift
    if running_pid "$DIR/pid/$name.pid" "$name" >/dev/null; then
        return 0
    fi
    "$@" || fail_with_logs "$name did not start"
    # it forks: the pid file comes a moment later
    for _ in $(seq 50); do
        running_pid "$DIR/pid/$name.pid" "$name" >/dev/null && return 0
        sleep 0.2
    done
    fail_with_logs "$name exited right after it started"
}

node_state() {
    { sinfo --noheader --nodes="$1" --format=%T 2>/dev/null || true; } | head -n 1
}

fail_with_logs() {
    tail -n 20 "$DIR/log/slurmctld.log" "$DIR/log/slurmd.log" >&2 || true
    die "$*"
}

up() {
    install_packages
    local host
    host=$(hostname -s)
    if write_config "$host" && running_pid "$DIR/pid/slurmctld.pid" slurmctld >/dev/null; then
        log "the config changed: restarting slurmctld and slurmd"
        stop_daemon slurmd
        stop_daemon slurmctld
    fi
    start_munged
    # -i: start even if state files from an earlier run are unreadable
    start_daemon slurmctld slurmctld -i
    start_daemon slurmd slurmd
    local start=$SECONDS state="" name
    while ((SECONDS - start < WAIT_S)); do
        for name in slurmctld slurmd; do
            running_pid "$DIR/pid/$name.pid" "$name" >/dev/null || fail_with_logs "$name exited"
        done
        state=$(node_state "$host")
        case $state in
        idle | mixed | allocated)
            log "up: node $host $state, partitions main (default) and gpu ($((SECONDS - start)) s)"
            return 0
            ;;
        down* | drain* | fail*)
            # a node left down by an earlier run comes back; a real problem stays below
            scontrol update nodename="$host" state=resume >/dev/null 2>&1 || true
            ;;
        esac
        sleep 1
    done
    fail_with_logs "node $host not idle after ${WAIT_S} s (state: ${state:-no answer from slurmctld})"
}

stop_daemon() {
    local name=$1 file=$DIR/pid/$1.pid pid
    if pid=$(running_pid "$file" "$name"); then
        kill "$pid"
        for _ in $(seq 50); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.2
        done
        if kill -0 "$pid" 2>/dev/null; then
            log "$name ($pid) ignored SIGTERM; killing it"
            kill -9 "$pid" || true
        fi
        log "stopped $name ($pid)"
    fi
    rm -f "$file"
}

down() {
    if running_pid "$DIR/pid/slurmctld.pid" slurmctld >/dev/null; then
        # jobs of this cluster only (it has no other users): their processes would outlive slurmd
        local jobs
        jobs=$(squeue --noheader --format=%A 2>/dev/null || true)
        if [[ -n $jobs ]]; then
            # shellcheck disable=SC2086 # one job id per word
            scancel $jobs || true
            sleep $((KILL_WAIT + 1))
        fi
    fi
    stop_daemon slurmd
    stop_daemon slurmctld
    stop_daemon munged
}

status() {
    local name pid
    for name in munged slurmctld slurmd; do
        if pid=$(running_pid "$DIR/pid/$name.pid" "$name"); then
            echo "$name: running ($pid)"
        else
            echo "$name: not running (from this script)"
        fi
    done
    sinfo 2>/dev/null || true
}

case ${1:-} in
up) up ;;
down) down ;;
status) status ;;
*)
    echo "usage: $0 up|down|status" >&2
    exit 2
    ;;
esac
