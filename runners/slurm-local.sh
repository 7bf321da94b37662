#!/usr/bin/env bash
# A real single-node SLURM cluster on this machine (Debian's SLURM 22.05 and MUNGE), to try `--executor slurm`:
#   sudo bash runners/slurm-local.sh up       # install if missing, start munged, slurmctld, slurmd; wait for an idle node
#   export SLURM_CONF=$ARCVDM_SLURM_DIR/slurm.conf   # `up` prints the exact line; sbatch, squeue, arcvdm use it
#   sudo bash runners/slurm-local.sh down     # stop what `up` started (safe to repeat)
# Everything (slurm.conf, munge key and socket, spool, logs, pids) lives in $ARCVDM_SLURM_DIR
# (default ~/.cache/arcvdm/slurm-local): no file under /etc is written and a system SLURM or MUNGE is left alone.
# One node (this host, its CPUs and memory as `slurmd -C` reads them), one partition `debug`, no cgroups (containers),
# no accounting database. Jobs run as the user who submits them; the daemons run as root.
set -euo pipefail
STATE=${ARCVDM_SLURM_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/arcvdm/slurm-local}
PARTITION=debug
WAIT_S=${ARCVDM_SLURM_WAIT_S:-60}
DAEMONS=(munged slurmctld slurmd)  # started in this order, stopped in the reverse one

die() { echo "slurm-local: $*" >&2; exit 1; }

install_packages() {
  local tool
  for tool in munged mungekey slurmctld slurmd sbatch sinfo; do
    command -v "$tool" >/dev/null || break
  done
  command -v "$tool" >/dev/null && return
  echo "slurm-local: $tool is missing: installing Debian's slurm-wlm and munge (apt-get)"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends slurm-wlm munge >/dev/null
}

write_config() {
  # The node as slurmd reads the hardware ("NodeName=host CPUs=2 Boards=1 ... RealMemory=24105"), so it never drains.
  local node
  node=$(slurmd -C | head -n 1)
  [[ $node == NodeName=* ]] || die "slurmd -C did not describe this node: $node"
  cat >"$STATE/slurm.conf" <<EOF
# Written by runners/slurm-local.sh: a single-node cluster for trying arcvdm's SLURM path.
ClusterName=arcvdm-local
# Loopback addresses: a container's hostname need not resolve.
SlurmctldHost=$(hostname -s)(127.0.0.1)
SlurmUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$STATE/munge/munge.socket
StateSaveLocation=$STATE/ctld
SlurmdSpoolDir=$STATE/spool
SlurmctldPidFile=$STATE/slurmctld.pid
SlurmdPidFile=$STATE/slurmd.pid
SlurmctldLogFile=$STATE/log/slurmctld.log
SlurmdLogFile=$STATE/log/slurmd.log
# No cgroups in a container: track processes by parentage, bind no tasks, gather no usage.
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
MpiDefault=none
ReturnToService=2
# Refuse at submission what the node can never grant (more CPUs or memory) instead of leaving it pending.
EnforcePartLimits=ALL
KillWait=5
$node NodeAddr=127.0.0.1
PartitionName=$PARTITION Nodes=ALL Default=YES MaxTime=INFINITE State=UP
EOF
}

pid_of() { cat "$STATE/pids/$1" 2>/dev/null || true; }

# The pid still runs the daemon recorded under that name (not a process that reused the number).
running() {
  local pid
  pid=$(pid_of "$1")
  [ -n "$pid" ] && [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = "$1" ]
}

start() {
  local name=$1
  shift
  running "$name" && return
  # In the foreground of our own background process: $! is the daemon itself. No inherited descriptor keeps a
  # caller's pipe open after `up` returns.
  setsid "$name" "$@" </dev/null >>"$STATE/log/$name.out" 2>&1 &
  echo $! >"$STATE/pids/$name"
  sleep 1
  running "$name" || die "$name did not start: see $STATE/log/$name.out and $STATE/log/$name.log"
}

node_state() { sinfo --noheader --nodes "$(hostname -s)" --format %T 2>/dev/null | head -n 1; }

up() {
  # Root: apt-get, and slurmd starts each job as the user who submitted it.
  [ "$(id -u)" = 0 ] || die "needs root (to install packages and run slurmd): rerun with sudo"
  install_packages
  mkdir -p "$STATE"/{munge,ctld,spool,log,pids}
  chmod 755 "$STATE" "$STATE/munge"  # clients of any user read slurm.conf and reach the munge socket
  [ -s "$STATE/munge/munge.key" ] || mungekey --create --keyfile="$STATE/munge/munge.key"
  write_config
  export SLURM_CONF=$STATE/slurm.conf
  start munged --foreground --key-file="$STATE/munge/munge.key" --socket="$STATE/munge/munge.socket" \
    --pid-file="$STATE/munge/munged.pid" --seed-file="$STATE/munge/munged.seed" --log-file="$STATE/log/munged.log"
  start slurmctld -D -f "$SLURM_CONF"
  start slurmd -D -f "$SLURM_CONF"
  local waited=0 state name
  until [ "$(node_state)" = idle ]; do
    for name in "${DAEMONS[@]}"; do
      running "$name" || die "$name stopped: see $STATE/log/$name.out and $STATE/log/$name.log"
    done
    if [ "$waited" -ge "$WAIT_S" ]; then
      state=$(node_state)
      die "node $(hostname -s) not idle after ${WAIT_S} s (sinfo: ${state:-no answer}); logs in $STATE/log"
    fi
    sleep 1
    waited=$((waited + 1))
  done
  echo "slurm-local: node $(hostname -s) idle in partition $PARTITION; to use it: export SLURM_CONF=$SLURM_CONF"
}

down() {
  local i name pid
  export SLURM_CONF=$STATE/slurm.conf
  if running slurmctld && running slurmd; then
    # Jobs first: their processes (under slurmstepd) would outlive the daemons.
    scancel --partition="$PARTITION" 2>/dev/null || true
    for _ in $(seq 30); do [ -z "$(squeue --noheader 2>/dev/null)" ] && break; sleep 0.5; done
  fi
  for ((i = ${#DAEMONS[@]} - 1; i >= 0; i--)); do
    name=${DAEMONS[i]}
    if running "$name"; then
      pid=$(pid_of "$name")
      kill "$pid"
      for _ in $(seq 20); do running "$name" || break; sleep 0.5; done
      if running "$name"; then kill -KILL "$pid"; fi
      echo "slurm-local: stopped $name ($pid)"
    fi
    rm -f "$STATE/pids/$name"
  done
}

case "${1:-}" in
  up) up ;;
  down) down ;;
  *) echo "usage: $0 up|down   (state in $STATE)" >&2; exit 2 ;;
esac
