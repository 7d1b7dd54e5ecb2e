#!/usr/bin/env bash
# Stop the one-node SLURM started by up.sh: each daemon by its pid file (SIGTERM, wait, SIGKILL
# only if it ignores SIGTERM for 30 s), then remove the pid file (slurmctld leaves a stale one that
# breaks the next start). Idempotent: daemons not running are skipped.
#
# Usage: down.sh [slurmd] [slurmctld] [munged]   (default: all three, in that order)
set -euo pipefail

T0=$(date +%s.%N)
log() { echo "[down.sh $(awk -v t0="$T0" -v t1="$(date +%s.%N)" 'BEGIN { printf "%.1f", t1 - t0 }')s] $*"; }

[ "$(id -u)" = 0 ] || { echo "down.sh: must run as root" >&2; exit 1; }

pidfile_of() {
    case "$1" in
        slurmd) echo /run/slurmd.pid ;;
        slurmctld) echo /run/slurmctld.pid ;;
        munged) echo /run/munge/munged.pid ;;
        *) echo "down.sh: unknown daemon '$1' (slurmd, slurmctld, munged)" >&2; exit 2 ;;
    esac
}

# Stop in dependency order whatever was asked for.
want=("$@")
[ ${#want[@]} -gt 0 ] || want=(slurmd slurmctld munged)
for name in slurmd slurmctld munged; do
    [[ " ${want[*]} " == *" $name "* ]] || continue
    pidfile=$(pidfile_of "$name")
    pid=$(cat "$pidfile" 2>/dev/null || true)
    if [[ "$pid" =~ ^[0-9]+$ ]] && [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = "$name" ]; then
        log "stopping $name (pid $pid)"
        kill -TERM "$pid" 2>/dev/null || true
        for _ in $(seq 150); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
        if kill -0 "$pid" 2>/dev/null; then
            log "$name (pid $pid) ignored SIGTERM for 30 s; sending SIGKILL"
            kill -KILL "$pid" 2>/dev/null || true
            sleep 0.5
        fi
    else
        log "$name not running (by $pidfile)"
    fi
    if [ -e "$pidfile" ]; then
        rm -f "$pidfile"
        log "removed $pidfile"
    fi
done
log "done"
