#!/usr/bin/env bash
# `make run`: the whole system on this machine. Starts the local control plane (`localkube serve`, which writes
# .local/kubeconfig), the RaftCluster CRD, raftkv-operator, and applies config/samples/raftcluster.yaml (the
# 3-member RaftCluster `demo`, whose pods are raftkv processes); waits until `demo` is Available, prints how to
# use kubectl and etcdctl with it, and on Ctrl-C stops every process it started (localkube stops the pods).
# The control plane keeps its objects in memory, so each run starts a fresh cluster (.local/localkube is reset).
#
# `scripts/run.sh --no-kube` (`make run-local`): only a 3-member raftkv cluster on loopback, started with the
# command lines of a 3-member etcd cluster (`etcd` replaced by `raftkv`); its data stays in .local/run/.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

config="${CONFIG:-Release}"
localkube="tests/LocalKube/bin/$config/net10.0/localkube"
kubectl="$root/.tools/bin/kubectl"
port="${LOCALKUBE_PORT:-6443}"

pids=()
stop() {
  trap - INT TERM EXIT
  [ "${#pids[@]}" -gt 0 ] || return 0
  echo
  echo "make run: stopping everything it started"
  # Newest first: the operator before the control plane, which stops the pods.
  for ((i = ${#pids[@]} - 1; i >= 0; i--)); do
    kill -TERM "${pids[$i]}" 2>/dev/null || true
    wait "${pids[$i]}" 2>/dev/null || true
  done
}
trap 'stop; exit 0' INT TERM
trap stop EXIT

ms_since() { echo $(( ($(date +%s%N) - $1) / 1000000 )); }

run_kube() {
  for f in bin/raftkv bin/raftkv-operator "$localkube" "$kubectl"; do
    [ -x "$f" ] || { echo "make run: $f is missing; run 'make build' and 'make deps' (make run does both)" >&2; exit 1; }
  done
  if curl -fsS -o /dev/null "http://127.0.0.1:$port/healthz" 2>/dev/null; then
    echo "make run: something already serves 127.0.0.1:$port (an earlier 'make run'?); stop it first, or set LOCALKUBE_PORT" >&2
    exit 1
  fi

  mkdir -p .local
  rm -rf .local/localkube
  export KUBECONFIG="$root/.local/kubeconfig"
  local t0 t1
  t0=$(date +%s%N)
  "$localkube" serve --port "$port" --kubeconfig .local/kubeconfig --root .local/localkube \
    --nodes 5 --image raftkv=bin/raftkv --image raftkv-operator=bin/raftkv-operator --apply config/crd/raftkv.io_raftclusters.yaml >.local/localkube.log 2>&1 &
  pids+=("$!")
  for _ in $(seq 1 300); do
    if "$kubectl" get --raw /readyz >/dev/null 2>&1 && "$kubectl" get crd raftclusters.raftkv.io >/dev/null 2>&1; then break; fi
    kill -0 "${pids[0]}" 2>/dev/null || { echo "make run: localkube exited; its log:" >&2; tail -n 20 .local/localkube.log >&2; exit 1; }
    sleep 0.05
  done
  "$kubectl" get crd raftclusters.raftkv.io >/dev/null
  echo "make run: local control plane ready in $(ms_since "$t0") ms (API server at 127.0.0.1:$port, CRD applied; kubectl answering)"

  bin/raftkv-operator --kubeconfig .local/kubeconfig --metrics-address 127.0.0.1:0 >.local/operator.log 2>&1 &
  pids+=("$!")
  t1=$(date +%s%N)
  "$kubectl" apply -f config/samples/raftcluster.yaml
  echo "make run: waiting for RaftCluster demo to be Available (operator log: .local/operator.log)"
  local available=""
  for _ in $(seq 1 600); do
    available=$("$kubectl" get raftcluster demo -o jsonpath='{.status.conditions[?(@.type=="Available")].status}' 2>/dev/null || true)
    [ "$available" = True ] && break
    kill -0 "${pids[1]}" 2>/dev/null || { echo "make run: the operator exited; its log:" >&2; tail -n 20 .local/operator.log >&2; exit 1; }
    sleep 0.5
  done
  if [ "$available" != True ]; then
    echo "make run: demo is not Available after 5 minutes; what is there:" >&2
    "$kubectl" get raftcluster,pods -o wide >&2 || true
    exit 1
  fi
  local ip
  ip=$("$kubectl" get service demo-client -o jsonpath='{.spec.clusterIP}')
  echo "make run: demo Available $(ms_since "$t1") ms after it was applied"
  "$kubectl" get raftclusters
  cat <<MSG

make run: the local control plane, raftkv-operator and the 3-member RaftCluster demo are running.
Logs: .local/localkube.log, .local/operator.log, pods in .local/localkube/pods/*/raftkv.log.

  export KUBECONFIG=$root/.local/kubeconfig PATH=$root/.tools/bin:\$PATH
  kubectl get raftclusters                      # replicas, ready, leader, heartbeat, election
  kubectl get pods -o wide
  kubectl scale raftcluster demo --replicas=5   # then watch: kubectl get raftclusters -w
  kubectl delete pod \$(kubectl get raftcluster demo -o jsonpath='{.status.leader}')   # failover
  kubectl annotate pod demo-1 localkube.raftkv.io/delay=50ms   # slow links: tuning raises the timeouts

  export ETCDCTL_API=3 ENDPOINTS=$ip:2379          # the demo-client Service's ClusterIP
  etcdctl --endpoints=\$ENDPOINTS put greeting hello
  etcdctl --endpoints=\$ENDPOINTS get greeting
  etcdctl --endpoints=\$ENDPOINTS member list -w table

Press Ctrl-C to stop everything make run started.
MSG
  wait -n "${pids[@]}" || true
  echo "make run: a process it started exited; see .local/localkube.log and .local/operator.log" >&2
  exit 1
}

run_local() {
  data="$root/.local/run"
  mkdir -p "$data"
  cluster="infra1=http://127.0.0.1:12380,infra2=http://127.0.0.1:22380,infra3=http://127.0.0.1:32380"
  state=new
  [ -d "$data/infra1.etcd/member/wal" ] && state=existing

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
}

case "${1:-}" in
  --no-kube) run_local ;;
  "") run_kube ;;
  *) echo "usage: scripts/run.sh [--no-kube]" >&2; exit 2 ;;
esac
