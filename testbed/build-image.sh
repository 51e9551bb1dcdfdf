#!/usr/bin/env bash
# Build a systemd-ready Debian image for the test bed and import it into podman.
#
# Usage: testbed/build-image.sh SUITE        (SUITE: bookworm or trixie)
#
# The image is tagged localhost/channels-deploy/debian:SUITE-HASH, where HASH covers
# this recipe, the suite and the host CA certificates copied in; the moving tag
# localhost/channels-deploy/debian:SUITE points at the newest build. An image whose
# hash tag exists already is not built again. Environment:
#   DEBIAN_MIRROR   package mirror for debootstrap (default http://deb.debian.org/debian)
#   IMAGE_REPO      image name without tag (default localhost/channels-deploy/debian)
set -euo pipefail

suite=${1:?usage: $0 SUITE (bookworm or trixie)}
case "$suite" in bookworm | trixie) ;; *) echo "unsupported suite: $suite" >&2; exit 2 ;; esac
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
repo=${IMAGE_REPO:-localhost/channels-deploy/debian}
# openssh-server: Ansible reaches the Molecule containers over SSH (podman-sshd.sh).
packages=systemd,systemd-sysv,python3,python3-apt,sudo,ca-certificates,iproute2,openssh-server

# Local CAs of the host (a proxy's or a company's) go into the image, so that
# pip and apt inside the containers trust what the host trusts.
shopt -s nullglob
local_cas=(/usr/local/share/ca-certificates/*.crt)
shopt -u nullglob

hash=$( { cat "$0"; echo "$suite $mirror $packages"; [ ${#local_cas[@]} -eq 0 ] || cat "${local_cas[@]}"; } |
  sha256sum | cut -c1-12)
tag="$repo:$suite-$hash"

if podman image exists "$tag"; then
  podman tag "$tag" "$repo:$suite"
  echo "image $tag is up to date"
  exit 0
fi

start=$(date +%s)
work=$(mktemp -d /var/tmp/channels-deploy-image.XXXXXX)
cleanup() {
  # debootstrap mounts proc and sys inside the tree; an interrupted run can leave
  # them there, and rm must never walk into them.
  grep -o " $work/[^ ]*" /proc/mounts | sort -r | xargs -r -n1 umount -l 2>/dev/null || true
  rm -rf --one-file-system "$work"
}
trap cleanup EXIT
root="$work/rootfs"

debootstrap --variant=minbase --include="$packages" "$suite" "$root" "$mirror" >"$work/debootstrap.log" 2>&1 || {
  tail -n 30 "$work/debootstrap.log" >&2
  exit 1
}

# systemd-modules-load cannot load modules inside a container and fails the boot
# of Debian 13 under podman; nothing in the test bed needs it.
ln -sf /dev/null "$root/etc/systemd/system/systemd-modules-load.service"
# Every container gets its own machine id at first boot.
: >"$root/etc/machine-id"
rm -f "$root/var/lib/dbus/machine-id"
if [ ${#local_cas[@]} -gt 0 ]; then
  cp "${local_cas[@]}" "$root/usr/local/share/ca-certificates/"
  chroot "$root" update-ca-certificates >/dev/null 2>&1
fi
chroot "$root" apt-get clean
rm -rf "$root"/var/lib/apt/lists/* "$root"/var/lib/apt/periodic/*
# Emptying the lists leaves a fresh mtime, which apt's cache_valid_time would
# take for a recent update: date it back so the first run updates.
touch -d @0 "$root/var/lib/apt/lists"

tar --numeric-owner -C "$root" -c . |
  podman import --change 'CMD ["/lib/systemd/systemd"]' --change 'STOPSIGNAL SIGRTMIN+3' - "$tag" >/dev/null
podman tag "$tag" "$repo:$suite"
# Drop superseded builds of this suite (their containers, if any, keep them).
podman images --format '{{.Repository}}:{{.Tag}}' --filter "reference=$repo" |
  grep -x "$repo:$suite-[0-9a-f]*" | grep -vx "$tag" | xargs -r podman rmi >/dev/null 2>&1 || true
echo "image $tag built in $(($(date +%s) - start)) s"
