#!/usr/bin/env bash
# Installs what faultline needs on a fresh Debian machine that has only the
# Rust toolchain, cargo-nextest, gcc, iproute2 and tc. Idempotent.
set -euo pipefail
need=()
command -v ip >/dev/null || need+=(iproute2)
command -v chrt >/dev/null || need+=(util-linux)
# Headless Chromium opens report.html in the report tests (Debian's package).
command -v chromium >/dev/null || need+=(chromium)
# The partition and loss faults: nftables tables in the run's switch namespace.
command -v nft >/dev/null || need+=(nftables)
# The delay fault without netem: an iptables NFQUEUE rule in the node's
# namespace (iptables-nft reaches the xt target; the kernel has no nft_queue).
command -v iptables >/dev/null || need+=(iptables)
if [ ${#need[@]} -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq "${need[@]}"
fi
