#!/usr/bin/env bash
# scripts/cross/apt-fetch.sh DEST PKG:ARCH…: downloads Debian packages of other architectures
# (armel, armhf, arm64) and unpacks each into DEST, with a private package list under
# target/cross/apt: the host's dpkg architectures and apt state are left alone, and nothing is
# installed. Uses the host's own apt sources. Downloaded .debs are kept in target/cross/apt/debs.
set -euo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
dest=${1:?usage: apt-fetch.sh DEST PKG:ARCH...}
shift
apt_dir="$top/target/cross/apt"
mkdir -p "$apt_dir/lists/partial" "$apt_dir/cache/archives/partial" "$apt_dir/debs" "$dest"
opts=(-q -o APT::Architecture=arm64 -o APT::Architectures::=arm64 -o APT::Architectures::=armhf
  -o APT::Architectures::=armel -o "Dir::State::Lists=$apt_dir/lists" -o "Dir::Cache=$apt_dir/cache"
  -o Dir::State::status=/dev/null)
if [ ! -e "$apt_dir/lists/updated" ]; then
  apt-get "${opts[@]}" update >/dev/null
  touch "$apt_dir/lists/updated"
fi
for want in "$@"; do
  # A metapackage (linux-image-armmp) stands for the versioned package it depends on.
  pkg=$want
  if [[ $want == linux-image-armmp:* || $want == linux-image-arm64:* ]]; then
    pkg=$(apt-cache "${opts[@]}" depends "$want" | sed -n 's/^ *Depends: \(linux-image-[0-9][^ ]*\).*/\1/p' | head -n1)
    [[ $pkg == *:* ]] || pkg="$pkg:${want##*:}"
  fi
  name=${pkg%%:*} arch=${pkg##*:}
  deb=$(ls "$apt_dir/debs/${name}_"*"_${arch}.deb" 2>/dev/null | tail -n1 || true)
  if [ -z "$deb" ]; then
    (cd "$apt_dir/debs" && apt-get "${opts[@]}" download "$pkg" >/dev/null 2>&1)
    deb=$(ls "$apt_dir/debs/${name}_"*"_${arch}.deb" | tail -n1)
  fi
  dpkg -x "$deb" "$dest"
done
