# A one-node Slurm cluster on this machine, for CI (Debian 12's slurm-wlm 22.05 and munge 0.5),
# with no systemd and no cgroups: munged, slurmctld and slurmd run as the current user (root in
# CI), with every file (key, config, state, logs, pid files, munge socket) under one folder.
# A library, to be sourced:
#   source scripts/slurm_local.sh
#   slurm_local_install                 # apt-get install slurm-wlm munge, if they are missing
#   dir=$(mktemp -d); trap 'slurm_local_stop "$dir"' EXIT
#   slurm_local_start "$dir"            # exports SLURM_CONF; returns once the node is idle
#   sbatch --array=0-2 --wait --wrap '...'
#   slurm_local_stop "$dir"             # safe to call twice, or after a failed start
# SLURM_LOCAL_PORT (default 6817) picks slurmctld's port; slurmd uses the next one.

slurm_local_install() {
  command -v slurmctld >/dev/null && command -v slurmd >/dev/null && command -v munged >/dev/null \
    && return 0
  local sudo=""; [ "$(id -u)" -eq 0 ] || sudo=sudo
  local install=($sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq
    --no-install-recommends slurm-wlm munge)
  "${install[@]}" || { $sudo apt-get update -qq && "${install[@]}"; }
}

# slurm_local_alive PID: the process exists and is not a zombie.
slurm_local_alive() {
  [ -r "/proc/$1/stat" ] && ! grep -q '^[^)]*) Z' "/proc/$1/stat" 2>/dev/null
}

slurm_local_start() {
  local dir=${1:?usage: slurm_local_start DIR} host user mem port=${SLURM_LOCAL_PORT:-6817}
  mkdir -p "$dir" && dir=$(cd "$dir" && pwd) || return 1
  host=$(hostname -s) user=$(id -un)
  # Slurm drains a node whose RealMemory exceeds what slurmd finds: leave a margin.
  mem=$(awk '/^MemTotal:/ { m = int($2 / 1024); print (m > 2048 ? m - 1024 : int(m / 2)) }' /proc/meminfo)
  mkdir -p "$dir/munge" "$dir/state" "$dir/spool" "$dir/log" "$dir/run"
  chmod 0700 "$dir/munge"
  # munged checks that its key belongs to the user it runs as (here: us) and is not readable by others.
  if [ ! -s "$dir/munge/munge.key" ]; then
    dd if=/dev/urandom of="$dir/munge/munge.key" bs=1024 count=1 status=none || return 1
  fi
  chmod 0400 "$dir/munge/munge.key"
  cat > "$dir/slurm.conf" <<EOF
ClusterName=local
SlurmctldHost=$host
SlurmctldPort=$port
SlurmdPort=$((port + 1))
SlurmUser=$user
SlurmdUser=$user
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$dir/munge/munge.socket
MpiDefault=none
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
SwitchType=switch/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
ReturnToService=2
# sbatch --wait polls after 2 s, then every 8 s, then every 32 s, unless MinJobAge/2 <= 2: with 5 it
# polls every 2 s (a finished job's record is then kept only 5 s or more, not 300 s).
MinJobAge=5
MailProg=/bin/true
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
SlurmctldPidFile=$dir/run/slurmctld.pid
SlurmdPidFile=$dir/run/slurmd.pid
SlurmctldLogFile=$dir/log/slurmctld.log
SlurmdLogFile=$dir/log/slurmd.log
PlugStackConfig=$dir/plugstack.conf
NodeName=$host NodeAddr=127.0.0.1 CPUs=$(nproc) RealMemory=$mem State=UNKNOWN
PartitionName=local Nodes=$host Default=YES MaxTime=INFINITE State=UP
EOF
  : > "$dir/plugstack.conf"   # not /etc/slurm's, which may name SPANK plugins
  export SLURM_CONF=$dir/slurm.conf
  # All three stay in the foreground (-F, -D): they are our children, whose pids we remember,
  # and whom we reap (a daemon that forks is left to PID 1, which may not reap it: a zombie).
  munged -F --force --key-file="$dir/munge/munge.key" --socket="$dir/munge/munge.socket" \
    --pid-file="$dir/munge/munged.pid" --log-file="$dir/log/munged.log" \
    --seed-file="$dir/munge/munged.seed" </dev/null >>"$dir/log/munged.out" 2>&1 &
  echo $! > "$dir/run/munged.bgpid"
  local i state=""
  for i in $(seq 50); do [ -S "$dir/munge/munge.socket" ] && break; sleep 0.1; done
  slurmctld -D -f "$SLURM_CONF" </dev/null >>"$dir/log/slurmctld.out" 2>&1 &
  echo $! > "$dir/run/slurmctld.bgpid"
  slurmd -D -f "$SLURM_CONF" -N "$host" </dev/null >>"$dir/log/slurmd.out" 2>&1 &
  echo $! > "$dir/run/slurmd.bgpid"
  local d why="the node is not idle after 60 s"
  for i in $(seq 60); do
    state=$(sinfo -h -o %t 2>/dev/null) || true
    [ "$state" = idle ] && return 0
    for d in munged slurmctld slurmd; do
      slurm_local_alive "$(cat "$dir/run/$d.bgpid")" || why="$d exited"
    done
    [ "$why" != "${why% exited}" ] && break
    sleep 1
  done
  echo "slurm_local_start: $why (node state '$state'); logs:" >&2
  tail -n 40 "$dir"/log/* >&2
  return 1
}

slurm_local_stop() {
  local dir=${1:?usage: slurm_local_stop DIR} name f pid i
  [ -f "$dir/slurm.conf" ] || return 0
  # Cancel what is left (its slurmstepd processes would outlive slurmd), while slurmctld is up.
  if [ -s "$dir/run/slurmctld.bgpid" ] && slurm_local_alive "$(cat "$dir/run/slurmctld.bgpid")"; then
    SLURM_CONF=$dir/slurm.conf timeout 10 scancel --user="$(id -un)" 2>/dev/null || true
    for i in $(seq 20); do
      pgrep -x slurmstepd >/dev/null || break   # (a coarse test: any slurmstepd at all)
      sleep 0.5
    done
  fi
  for name in slurmd slurmctld munged; do
    for f in "$dir/run/$name.bgpid" "$dir/run/$name.pid" "$dir/munge/$name.pid"; do
      [ -s "$f" ] || continue
      pid=$(cat "$f")
      if slurm_local_alive "$pid"; then
        kill -TERM "$pid" 2>/dev/null || true
        for i in $(seq 100); do slurm_local_alive "$pid" || break; sleep 0.1; done
        slurm_local_alive "$pid" && kill -KILL "$pid" 2>/dev/null
      fi
      wait "$pid" 2>/dev/null || true   # reap it if it is our child
      rm -f "$f"
    done
  done
  return 0
}
