#!/usr/bin/env bash
# A single-node SLURM cluster for the tests, from Debian's packages (slurm-wlm, munge), all of its
# state in one folder:
#   scripts/slurm-test-cluster.sh start DIR   start munged, slurmctld and slurmd; print SLURM_CONF=…
#                                             once the node takes jobs; exit non-zero saying why not
#   scripts/slurm-test-cluster.sh stop DIR    stop the three daemons by the process ids kept in DIR
# Needs root (munged runs as the munge user, slurmd as root). Nothing outside DIR is written.
set -euo pipefail
cmd="${1:-}"
dir="${2:-}"
if [ -z "$cmd" ] || [ -z "$dir" ]; then
  echo "usage: $0 start|stop DIR" >&2
  exit 2
fi

stop() {
  for name in slurmd slurmctld munged; do
    if [ -f "$dir/$name.pid" ]; then
      pid="$(cat "$dir/$name.pid")"
      kill "$pid" 2>/dev/null || true
      for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      kill -9 "$pid" 2>/dev/null || true
      rm -f "$dir/$name.pid"
    fi
  done
}

if [ "$cmd" = stop ]; then
  stop
  exit 0
fi
[ "$cmd" = start ] || { echo "unknown command $cmd: use start or stop" >&2; exit 2; }

for prog in munged slurmctld slurmd sbatch; do
  command -v "$prog" >/dev/null || { echo "$prog is not installed: apt-get install -y slurm-wlm munge" >&2; exit 1; }
done
[ "$(id -u)" = 0 ] || { echo "starting slurmd and munged needs root" >&2; exit 1; }
id munge >/dev/null 2>&1 || { echo "no munge user: apt-get install -y munge" >&2; exit 1; }

mkdir -p "$dir"
dir="$(cd "$dir" && pwd)"
chmod 755 "$dir"
mkdir -p "$dir/munge" "$dir/state" "$dir/spool" "$dir/log"
chown munge:munge "$dir/munge"
chmod 755 "$dir/munge"   # the socket lives here: every user must reach it
head -c 1024 /dev/urandom > "$dir/munge/munge.key"
chown munge:munge "$dir/munge/munge.key"
chmod 400 "$dir/munge/munge.key"
# A fixed socket path would collide with a system munged; this one is the cluster's own.
runuser -u munge -- munged --key-file="$dir/munge/munge.key" --socket="$dir/munge/munge.sock" \
  --pid-file="$dir/munge/munged.pid" --log-file="$dir/munge/munged.log" \
  --seed-file="$dir/munge/munged.seed" --foreground > "$dir/log/munged.out" 2>&1 < /dev/null &
echo $! > "$dir/munged.pid"
for _ in $(seq 50); do [ -S "$dir/munge/munge.sock" ] && break; sleep 0.1; done
[ -S "$dir/munge/munge.sock" ] || { echo "munged did not start: $(tail -n 3 "$dir/log/munged.out" 2>/dev/null)" >&2; stop; exit 1; }

host="$(hostname -s)"
# Ports picked per cluster, so that two clusters on one machine do not meet.
port=$(( 20000 + ($$ % 20000) ))
cat > "$dir/slurm.conf" <<EOF
ClusterName=symclone-test
SlurmctldHost=$host
SlurmUser=root
SlurmdUser=root
SlurmctldPort=$port
SlurmdPort=$((port + 1))
AuthType=auth/munge
AuthInfo=socket=$dir/munge/munge.sock
CredType=cred/munge
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
MpiDefault=none
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
SlurmctldPidFile=$dir/state/slurmctld.pid
SlurmdPidFile=$dir/spool/slurmd.pid
SlurmctldLogFile=$dir/log/slurmctld.log
SlurmdLogFile=$dir/log/slurmd.log
ReturnToService=2
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SchedulerParameters=sched_interval=1
MessageTimeout=30
NodeName=$host CPUs=$(nproc) RealMemory=8000 State=UNKNOWN
PartitionName=debug Nodes=$host Default=YES State=UP MaxTime=INFINITE
EOF
export SLURM_CONF="$dir/slurm.conf"
slurmctld -D -c -f "$SLURM_CONF" > "$dir/log/slurmctld.out" 2>&1 < /dev/null &
echo $! > "$dir/slurmctld.pid"
slurmd -D -f "$SLURM_CONF" > "$dir/log/slurmd.out" 2>&1 < /dev/null &
echo $! > "$dir/slurmd.pid"
for _ in $(seq 300); do
  if sinfo -h -o '%t' 2>/dev/null | grep -qE '^(idle|mix|alloc)'; then
    echo "SLURM_CONF=$SLURM_CONF"
    exit 0
  fi
  sleep 0.1
done
echo "SLURM did not come up in 30 s: $(tail -n 2 "$dir/log/slurmctld.log" "$dir/log/slurmd.log" 2>/dev/null | tr '\n' ' ')" >&2
stop
exit 1
