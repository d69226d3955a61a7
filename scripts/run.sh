#!/usr/bin/env bash
# `make run`: the main job on this machine. Until the operator runs raftkv pods on the local control plane,
# it starts what does work end to end: a 3-member raftkv cluster on loopback (the command lines are the ones
# that start a 3-member etcd cluster, with `etcd` replaced by `raftkv`), prints how to use etcdctl against it,
# and stops every member on Ctrl-C. Data lives in .local/run/ and survives restarts; `make clean` removes it.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

data="$root/.local/run"
mkdir -p "$data"
cluster="infra1=http://127.0.0.1:12380,infra2=http://127.0.0.1:22380,infra3=http://127.0.0.1:32380"
state=new
[ -d "$data/infra1.etcd/member/wal" ] && state=existing

pids=()
stop() {
  trap - INT TERM EXIT
  [ "${#pids[@]}" -gt 0 ] || return 0
  echo
  echo "make run: stopping the members"
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
}
trap 'stop; exit 0' INT TERM
trap stop EXIT

if curl -fsS -o /dev/null "http://127.0.0.1:12379/health" 2>/dev/null; then
  echo "make run: something already serves 127.0.0.1:12379 (an earlier 'make run'?); stop it first" >&2
  exit 1
fi

for i in 1 2 3; do
  bin/raftkv --name "infra$i" --data-dir "$data/infra$i.etcd" \
    --listen-client-urls "http://127.0.0.1:${i}2379" --advertise-client-urls "http://127.0.0.1:${i}2379" \
    --listen-peer-urls "http://127.0.0.1:${i}2380" --initial-advertise-peer-urls "http://127.0.0.1:${i}2380" \
    --initial-cluster-token raftkv-run --initial-cluster "$cluster" --initial-cluster-state "$state" \
    >"$data/infra$i.log" 2>&1 &
  pids+=("$!")
done

endpoints="127.0.0.1:12379,127.0.0.1:22379,127.0.0.1:32379"
for _ in $(seq 1 100); do
  if curl -fsS "http://127.0.0.1:12379/health" 2>/dev/null | grep -q '"health":"true"'; then break; fi
  for pid in "${pids[@]}"; do
    kill -0 "$pid" 2>/dev/null || { echo "make run: a member exited; its log:"; tail -n 20 "$data"/infra*.log; exit 1; }
  done
  sleep 0.2
done

cat <<MSG
make run: a 3-member raftkv cluster is up (logs in .local/run/infra{1,2,3}.log).

  export ETCDCTL_API=3 ENDPOINTS=$endpoints
  etcdctl --endpoints=\$ENDPOINTS endpoint status -w table
  etcdctl --endpoints=\$ENDPOINTS put greeting hello
  etcdctl --endpoints=\$ENDPOINTS get greeting
  etcdctl --endpoints=\$ENDPOINTS watch greeting     # in another shell, then put again
  etcdctl --endpoints=\$ENDPOINTS member list -w table

(etcdctl comes with 'make deps': Debian's etcd-client.) Press Ctrl-C to stop every member.
MSG
wait -n "${pids[@]}" || true
echo "make run: a member exited; see .local/run/*.log" >&2
exit 1
