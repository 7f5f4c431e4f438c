#!/usr/bin/env bash
# scripts/test-package-install.sh [DEB]: installs the amd64 package into a clean Debian root made
# with debootstrap under target/pkgtest (never into this machine's own root), checks what
# `dpkg -i` leaves (user and groups, udev rule, unit, config, state directory, man pages,
# completions; the service disabled, nothing started), then purges it and checks that what the
# package created is gone. Default DEB: target/package/stratum1_*_amd64.deb. With --base-only it
# only makes the clean root (CI starts that early, in the background: it is mostly download).
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
base_only=0
[ "${1:-}" = --base-only ] && { base_only=1; shift; }
[ "$(id -u)" = 0 ] || { echo "needs root (debootstrap, chroot)" >&2; exit 1; }

base="$top/target/pkgtest/base.tar"
if [ ! -f "$base" ]; then
  dpkg-query -W -f='${Status}' debootstrap 2>/dev/null | grep -q "install ok installed" || {
    apt-get install -y -qq --no-install-recommends -o DPkg::Lock::Timeout=600 debootstrap >/dev/null 2>&1 || {
      apt-get update -qq >/dev/null
      apt-get install -y -qq --no-install-recommends -o DPkg::Lock::Timeout=600 debootstrap >/dev/null
    }
  }
  fresh="$top/target/pkgtest/fresh"
  rm -rf "$fresh" && mkdir -p "$fresh"
  echo "debootstrap: a minimal bookworm with systemd and udev (the package's runtime)"
  # Downloaded .debs go to apt's own cache, so a later run on this machine fetches nothing.
  debootstrap --variant=minbase --include=systemd,udev --cache-dir=/var/cache/apt/archives \
    bookworm "$fresh" >"$top/target/pkgtest/debootstrap.log" 2>&1 \
    || { tail -n 20 "$top/target/pkgtest/debootstrap.log" >&2; exit 1; }
  tar -C "$fresh" -cf "$base.part" . && mv "$base.part" "$base"
  rm -rf "$fresh"
fi
[ "$base_only" = 1 ] && exit 0
deb=${1:-$(ls target/package/stratum1_*_amd64.deb | tail -n1)}
[ -f "$deb" ] || { echo "no package $deb: run scripts/package.sh amd64" >&2; exit 1; }
root="$top/target/pkgtest/root"
umount "$root/proc" 2>/dev/null || true
rm -rf --one-file-system "$root" && mkdir -p "$root"
tar -C "$root" -xf "$base"
# Nothing may start inside the chroot.
printf '#!/bin/sh\nexit 101\n' >"$root/usr/sbin/policy-rc.d"
chmod 755 "$root/usr/sbin/policy-rc.d"
cp "$deb" "$root/tmp/stratum1.deb"
# A running system has /proc (systemd-tmpfiles needs it); unmounted again on the way out.
mount -t proc proc "$root/proc"
trap 'umount "$root/proc" 2>/dev/null || true' EXIT
in_root() { chroot "$root" env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin LC_ALL=C "$@"; }
fail() { echo "FAIL: $*" >&2; exit 1; }

listing() { (cd "$root" && find . \( -path ./proc -o -path ./tmp -o -path ./var/cache -o -path ./var/log \) -prune -o -print | sort); }
before=$(listing)
in_root dpkg -i /tmp/stratum1.deb

echo "== after dpkg -i"
in_root getent passwd stratum1 | grep -q ':/var/lib/stratum1:/usr/sbin/nologin$' || fail "user stratum1"
groups=$(in_root id -nG stratum1)
for g in stratum1 dialout gpio; do grep -qw "$g" <<<"$groups" || fail "stratum1 not in group $g ($groups)"; done
for f in usr/bin/stratum1 usr/lib/udev/rules.d/60-stratum1.rules usr/lib/systemd/system/stratum1.service \
  usr/lib/sysusers.d/stratum1.conf usr/lib/tmpfiles.d/stratum1.conf etc/stratum1/stratum1.toml \
  usr/share/man/man1/stratum1.1.gz usr/share/man/man1/stratum1-refclock-test.1.gz \
  usr/share/bash-completion/completions/stratum1 usr/share/zsh/vendor-completions/_stratum1 \
  usr/share/fish/vendor_completions.d/stratum1.fish usr/share/doc/stratum1/copyright; do
  [ -e "$root/$f" ] || fail "/$f missing"
done
[ "$(in_root stat -c '%U %a' /var/lib/stratum1)" = "stratum1 750" ] || fail "/var/lib/stratum1 owner/mode"
state=$(systemctl --root="$root" is-enabled stratum1.service || true)
[ "$state" = disabled ] || fail "stratum1.service is $state, not disabled"
in_root stratum1 --version
in_root stratum1 config check /etc/stratum1/stratum1.toml
echo "user stratum1 ($groups), rules, unit ($state), config, state dir: ok"

in_root dpkg --purge stratum1
echo "== after dpkg --purge"
after=$(listing)
# What is left that was not there before: only the user's entries in the account databases
# (Debian keeps system users on purge), which live in files that existed before.
left=$(comm -13 <(echo "$before") <(echo "$after") | grep -v -E '^\./etc/(passwd|group|shadow|gshadow)-?$' || true)
[ -z "$left" ] || fail "left behind after purge: $left"
in_root dpkg -s stratum1 >/dev/null 2>&1 && fail "still known to dpkg"
echo "purge left nothing behind but the stratum1 user: ok"
