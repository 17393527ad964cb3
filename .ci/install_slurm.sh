#!/usr/bin/env bash
# Install and configure a single-node SLURM cluster (munge, slurmctld, slurmd) for tests/test_slurm.py; the test
# starts and stops the daemons itself. Idempotent, and never fails the CI: without root, apt or the packages it
# prints why and exits 0, and the test then skips. Debian/Ubuntu only (the recipe in docs/cluster.md).
set -u

say() { echo "install_slurm: $*"; }

if [ "$(id -u)" != 0 ]; then say "not root; skipping (tests/test_slurm.py will skip)"; exit 0; fi

if ! command -v slurmctld >/dev/null || ! command -v slurmd >/dev/null || ! command -v sbatch >/dev/null \
    || ! command -v munged >/dev/null; then
    if ! command -v apt-get >/dev/null; then say "no apt-get; skipping (tests/test_slurm.py will skip)"; exit 0; fi
    export DEBIAN_FRONTEND=noninteractive
    if ! { apt-get update -q && apt-get install -y -q --no-install-recommends slurmctld slurmd slurm-client munge; } \
        >/tmp/install_slurm.apt.log 2>&1; then
        say "apt-get failed (log: /tmp/install_slurm.apt.log); skipping (tests/test_slurm.py will skip)"
        exit 0
    fi
fi

# munge: one shared key; the daemon is started by the test.
mkdir -p /etc/munge /var/log/munge /run/munge /var/lib/munge
[ -s /etc/munge/munge.key ] || dd if=/dev/urandom bs=1 count=1024 of=/etc/munge/munge.key status=none
chown -R munge:munge /etc/munge /var/log/munge /run/munge /var/lib/munge
chmod 400 /etc/munge/munge.key
chmod 700 /etc/munge

# slurm.conf for this host. A slurm.conf that this script did not write (a real site) is left alone.
conf=/etc/slurm/slurm.conf
marker="# written by .ci/install_slurm.sh"
if [ -e "$conf" ] && ! head -n 1 "$conf" | grep -qF "$marker"; then
    say "$conf exists and is not ours; leaving it alone"
    exit 0
fi
host=$(hostname -s)
cpus=$(nproc)
mem_mb=$(awk '/MemTotal/ {printf "%d", $2 / 1024 * 0.8}' /proc/meminfo)
mkdir -p /etc/slurm /var/spool/slurmctld /var/spool/slurmd /var/log/slurm
cat >"$conf" <<EOF
$marker; single node, no accounting (jobs are polled with squeue)
ClusterName=local
SlurmctldHost=$host
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
StateSaveLocation=/var/spool/slurmctld
SlurmdSpoolDir=/var/spool/slurmd
SwitchType=switch/none
MpiDefault=none
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
ReturnToService=2
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
MinJobAge=600
SlurmctldLogFile=/var/log/slurm/slurmctld.log
SlurmdLogFile=/var/log/slurm/slurmd.log
NodeName=$host CPUs=$cpus RealMemory=$mem_mb State=UNKNOWN
PartitionName=main Nodes=$host Default=YES MaxTime=INFINITE State=UP
EOF
say "SLURM $(slurmctld -V 2>/dev/null | awk '{print $2}') configured for $host ($cpus CPUs, $mem_mb MB)"
