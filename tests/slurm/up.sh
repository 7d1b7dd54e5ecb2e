#!/usr/bin/env bash
# Bring up a one-node SLURM (Debian 12 packages, SLURM 22.05) on this machine, as root, without
# systemd or cgroups: munged, slurmctld and slurmd started directly. Idempotent: if SLURM is
# already up and healthy it does nothing. See /work/shared/SLURM.md for what this is based on.
#
# Output: timestamped progress, and as its last line `started: <daemons>` listing the daemons this
# run started (empty if none; printed on failure too), so callers can stop only those
# (`down.sh <daemons>`).
#
# Environment:
#   SLURM_UP_TIMEOUT   seconds to wait for the node to become idle (default 90)
#   SLURM_REAL_MEMORY  RealMemory in MB for the node (default: 90% of `free -m` available memory;
#                      not "free", which leaves out the page cache the kernel gives back)
#   SLURM_CPUS         CPUs for the node (default: nproc)
set -euo pipefail

T0=$(date +%s.%N)
elapsed() { awk -v t0="$T0" -v t1="$(date +%s.%N)" 'BEGIN { printf "%.1f", t1 - t0 }'; }
log() { echo "[up.sh $(elapsed)s] $*"; }
STARTED=()
# On failure the `started:` line is still printed, so a caller can stop what this run started.
die() { echo "[up.sh $(elapsed)s] ERROR: $*" >&2; echo "started: ${STARTED[*]}"; exit 1; }

TIMEOUT=${SLURM_UP_TIMEOUT:-90}
HOST=$(hostname -s)
CONF=/etc/slurm/slurm.conf
LOGDIR=/var/log/slurm
CTLD_PID=/run/slurmctld.pid
SLURMD_PID=/run/slurmd.pid
MUNGE_PID=/run/munge/munged.pid

[ "$(id -u)" = 0 ] || die "must run as root (it installs packages and starts daemons)"

# One up.sh at a time (two pytest sessions may start together).
exec 9>/run/alignlab-slurm-up.lock
flock -w 300 9 || die "another up.sh holds /run/alignlab-slurm-up.lock"

# --- helpers -----------------------------------------------------------------------------------
# start_daemon CMD...: run CMD with every file descriptor above 2 closed. Daemons keep inherited
# descriptors open for as long as they run (munged does): a lock held by a caller, e.g. up.sh's own
# or a `flock LOCKFILE pytest ...` around the test session, would otherwise never be released.
start_daemon() {
    (
        for fd in /proc/$BASHPID/fd/*; do
            fd=${fd##*/}
            [ "$fd" -gt 2 ] && eval "exec $fd>&-"
        done
        exec "$@"
    )
}

# alive NAME PIDFILE: the pid file names a live process called NAME.
alive() {
    local pid
    [ -s "$2" ] || return 1
    pid=$(cat "$2" 2>/dev/null) || return 1
    [[ "$pid" =~ ^[0-9]+$ ]] || return 1
    [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = "$1" ]
}

# running NAME PIDFILE: alive by pid file, or a process of that exact name exists anyway.
running() { alive "$1" "$2" || pgrep -x "$1" >/dev/null 2>&1; }

munge_ok() { command -v munge >/dev/null && munge -n 2>/dev/null | unmunge >/dev/null 2>&1; }

node_state() { sinfo -h -N -n "$HOST" -o '%T' 2>/dev/null | head -n1; }

healthy() {
    command -v sinfo >/dev/null || return 1
    [ -f "$CONF" ] || return 1
    munge_ok || return 1
    running slurmctld "$CTLD_PID" || return 1
    running slurmd "$SLURMD_PID" || return 1
    timeout 10 scontrol ping 2>/dev/null | grep -q 'is UP' || return 1
    case "$(node_state)" in idle|mixed|allocated|completing) return 0 ;; *) return 1 ;; esac
}

show_logs() {
    local f
    for f in "$LOGDIR/slurmctld.log" "$LOGDIR/slurmd.log" /var/log/munge/munged.log; do
        echo "----- last 40 lines of $f -----" >&2
        tail -n 40 "$f" >&2 2>/dev/null || echo "(missing)" >&2
    done
    echo "----- sinfo -N -l -----" >&2
    sinfo -N -l >&2 2>&1 || true
    echo "----- scontrol show node $HOST -----" >&2
    scontrol show node "$HOST" >&2 2>&1 || true
}

finish() { log "done"; echo "started: ${STARTED[*]}"; }

# --- already up? --------------------------------------------------------------------------------
if healthy; then
    log "SLURM is already up and healthy (node $HOST: $(node_state)); nothing to do"
    finish
    exit 0
fi

# --- packages -------------------------------------------------------------------------------------
PKGS=(slurmctld slurmd slurm-client munge)
missing=()
for p in "${PKGS[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q '^install ok installed$' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    log "installing ${missing[*]}"
    command -v apt-get >/dev/null || die "apt-get not found; install ${missing[*]} yourself"
    apt_install() {
        DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 install -y -q \
            --no-install-recommends "${missing[@]}"
    }
    if ! apt_install >/tmp/alignlab-slurm-apt.log 2>&1; then
        log "apt-get install failed; running apt-get update and retrying"
        DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 update -q \
            >>/tmp/alignlab-slurm-apt.log 2>&1 || true
        apt_install >>/tmp/alignlab-slurm-apt.log 2>&1 || {
            tail -n 30 /tmp/alignlab-slurm-apt.log >&2
            die "apt-get install ${missing[*]} failed (log: /tmp/alignlab-slurm-apt.log)"
        }
    fi
    log "installed $(dpkg-query -W -f='slurmctld ${Version}' slurmctld)"
else
    log "packages present ($(dpkg-query -W -f='slurmctld ${Version}' slurmctld))"
fi

# --- munge -------------------------------------------------------------------------------------
if [ ! -s /etc/munge/munge.key ]; then
    log "creating /etc/munge/munge.key"
    install -d -o munge -g munge -m 700 /etc/munge
    if command -v mungekey >/dev/null; then
        mungekey --create --keyfile=/etc/munge/munge.key
    else
        dd if=/dev/urandom bs=1 count=1024 of=/etc/munge/munge.key status=none
    fi
fi
chown munge:munge /etc/munge/munge.key
chmod 400 /etc/munge/munge.key
install -d -o munge -g munge -m 755 /run/munge
install -d -o munge -g munge -m 700 /var/lib/munge /var/log/munge
if ! munge_ok; then
    if alive munged "$MUNGE_PID"; then
        die "munged (pid $(cat "$MUNGE_PID")) is running but 'munge -n | unmunge' fails"
    fi
    rm -f "$MUNGE_PID" /run/munge/munge.socket.2 /run/munge/munge.socket.2.lock
    log "starting munged"
    start_daemon runuser -u munge -- /usr/sbin/munged
    STARTED+=(munged)
    for _ in $(seq 50); do munge_ok && break; sleep 0.2; done
    munge_ok || { show_logs; die "munged started but 'munge -n | unmunge' fails"; }
fi
log "munge ok"

# --- directories ----------------------------------------------------------------------------------
id slurm >/dev/null 2>&1 || die "user 'slurm' missing (the slurmctld package should have created it)"
install -d -m 755 /etc/slurm
install -d -o slurm -g slurm -m 755 "$LOGDIR" /var/spool/slurmctld
install -d -m 755 /var/spool/slurmd

# --- slurm.conf -------------------------------------------------------------------------------------
CPUS=${SLURM_CPUS:-$(nproc)}
AVAILABLE_MB=$(free -m | awk '/^Mem:/ { print $7 }')
REAL_MEMORY=${SLURM_REAL_MEMORY:-$((AVAILABLE_MB * 9 / 10))}
NEW_CONF=$(mktemp)
cat >"$NEW_CONF" <<EOF
# Written by alignlab tests/slurm/up.sh: one-node SLURM for tests, no systemd, no cgroups.
ClusterName=alignlab
SlurmctldHost=${HOST}(127.0.0.1)
SlurmUser=slurm
SlurmdUser=root
AuthType=auth/munge
CryptoType=crypto/munge
MpiDefault=none
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SwitchType=switch/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
# Jobs that ask for no memory get this per CPU instead of the whole node.
DefMemPerCPU=1000
ReturnToService=2
# Keep finished jobs visible to squeue/scontrol for 5 min: the Snakemake SLURM plugin's squeue
# status command needs MinJobAge >= 3x its first status-check delay (else it falls back to sacct).
MinJobAge=300
SchedulerType=sched/backfill
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
SlurmctldPidFile=${CTLD_PID}
SlurmdPidFile=${SLURMD_PID}
StateSaveLocation=/var/spool/slurmctld
SlurmdSpoolDir=/var/spool/slurmd
SlurmctldLogFile=${LOGDIR}/slurmctld.log
SlurmdLogFile=${LOGDIR}/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
SlurmctldTimeout=30
# Clients retry a refused controller connection once a second for MessageTimeout-1 s. With SLURM
# installed but stopped, the Snakemake SLURM plugin runs "scontrol show config" when it is
# imported (by every snakemake start, any executor): 9 s per start with the default 10, 2 s here.
MessageTimeout=3
SlurmdTimeout=60
InactiveLimit=0
MailProg=/bin/true
KillWait=10
Waittime=0
NodeName=${HOST} NodeAddr=127.0.0.1 CPUs=${CPUS} RealMemory=${REAL_MEMORY} State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
EOF
conf_changed=0
if ! cmp -s "$NEW_CONF" "$CONF"; then
    conf_changed=1
    install -m 644 "$NEW_CONF" "$CONF"
    log "wrote $CONF (CPUs=$CPUS RealMemory=${REAL_MEMORY}MB)"
fi
rm -f "$NEW_CONF"

# Daemons running on an older slurm.conf, or half-dead ones, are restarted (by pid file).
stop_pidfile() {  # NAME PIDFILE
    local pid
    alive "$1" "$2" || return 0
    pid=$(cat "$2")
    log "stopping $1 (pid $pid) to restart it"
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
    kill -0 "$pid" 2>/dev/null && die "$1 (pid $pid) did not stop on SIGTERM"
    rm -f "$2"
}
if [ "$conf_changed" = 1 ]; then
    stop_pidfile slurmd "$SLURMD_PID"
    stop_pidfile slurmctld "$CTLD_PID"
fi

# --- start the daemons ------------------------------------------------------------------------------
if ! running slurmctld "$CTLD_PID"; then
    # A stale pid file (left by a killed daemon) breaks the next start.
    rm -f "$CTLD_PID"
    log "starting slurmctld"
    start_daemon /usr/sbin/slurmctld || { show_logs; die "slurmctld failed to start"; }
    STARTED+=(slurmctld)
fi
for _ in $(seq 100); do timeout 5 scontrol ping 2>/dev/null | grep -q 'is UP' && break; sleep 0.3; done
timeout 5 scontrol ping 2>/dev/null | grep -q 'is UP' || { show_logs; die "slurmctld does not answer 'scontrol ping'"; }

if ! running slurmd "$SLURMD_PID"; then
    rm -f "$SLURMD_PID"
    log "starting slurmd"
    start_daemon /usr/sbin/slurmd || { show_logs; die "slurmd failed to start"; }
    STARTED+=(slurmd)
fi

# --- wait for the node --------------------------------------------------------------------------
log "waiting up to ${TIMEOUT}s for node $HOST to be idle"
deadline=$(( $(date +%s) + TIMEOUT ))
resumed=0
state=""
while :; do
    state=$(node_state)
    case "$state" in
        idle|mixed|allocated|completing) break ;;
        *drain*|down*)
            # A drain/down reason saved from an earlier run survives restarts; clear it once.
            if [ "$resumed" = 0 ]; then
                log "node is '$state' ($(sinfo -h -N -n "$HOST" -o '%E')); resuming it"
                scontrol update NodeName="$HOST" State=RESUME 2>/dev/null || true
                resumed=1
            fi ;;
    esac
    if [ "$(date +%s)" -ge "$deadline" ]; then
        show_logs
        die "node $HOST not idle after ${TIMEOUT}s (state: '${state:-none}')"
    fi
    sleep 0.5
done
log "node $HOST is $state"

# --- smoke test ---------------------------------------------------------------------------------
if ! out=$(cd /tmp && timeout 120 sbatch --wait --wrap true -J up-check -o /dev/null -e /dev/null 2>&1); then
    echo "$out" >&2
    show_logs
    die "'sbatch --wait --wrap true' failed"
fi
log "sbatch --wait --wrap true: ${out}"
finish
