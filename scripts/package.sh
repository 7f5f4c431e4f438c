#!/usr/bin/env bash
# Builds the Debian packages: scripts/package.sh [amd64|arm64|armhf|all]…  (default: all)
#
#   target/package/stratum1_<version>_<arch>.deb    the package (binary stripped: a few MB)
#   target/package/stratum1_<version>_<arch>.debug  its split debug info, amd64 (gdb finds it
#                                                   through the binary's debuglink)
#
# amd64 and arm64 are glibc builds (x86_64-/aarch64-unknown-linux-gnu). armhf is a static musl
# build of ARMv6 code (arm-unknown-linux-musleabi, tuned for the ARM1176 of the Pi Zero/1): it
# runs on every board Raspberry Pi OS 32-bit supports, where Debian's own armhf (ARMv7) does not
# (README, "ARM builds"). Cross toolchains come from Debian's packages and rustup
# (scripts/cross/setup.sh). Each package is checked with lintian when it is installed
# (LINTIAN=0 skips it); lintian errors fail the build.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"

arches=("$@")
[ ${#arches[@]} -eq 0 ] || [ "${arches[0]}" = all ] && arches=(amd64 arm64 armhf)

version=$(sed -n '1s/^stratum1 (\([^)]*\)).*/\1/p' packaging/deb/changelog)
crate_version=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n1)
case "$version" in
  "$crate_version"-*) ;;
  *) echo "packaging/deb/changelog is at $version, Cargo.toml at $crate_version: add a changelog entry" >&2; exit 1 ;;
esac
out="$top/target/package"
mkdir -p "$out"

triple_of() {
  case "$1" in
    amd64) echo x86_64-unknown-linux-gnu ;;
    arm64) echo aarch64-unknown-linux-gnu ;;
    armhf) echo arm-unknown-linux-musleabi ;;
    *) echo "unknown architecture $1 (amd64, arm64, armhf)" >&2; exit 2 ;;
  esac
}

objcopy_of() {
  case "$1" in
    amd64) echo objcopy ;;
    arm64) echo aarch64-linux-gnu-objcopy ;;
    armhf) echo arm-linux-gnueabi-objcopy ;;
  esac
}

# The release binary for one architecture, built as scripts/cross/build.sh builds it.
build() {
  local arch=$1 triple
  triple=$(triple_of "$arch")
  if [ "$arch" = amd64 ] && [ "$(dpkg --print-architecture)" = amd64 ]; then
    cargo build --release --locked >&2
    echo "$top/target/release/stratum1"
  else
    "$top/scripts/cross/build.sh" "$triple" >&2
    echo "$top/target/$triple/release/stratum1"
  fi
}

# Depends: for a dynamic binary, the C library at the newest symbol version it uses.
depends_of() {
  local bin=$1 deps=() glibc
  if readelf -d "$bin" | grep -q 'NEEDED.*libc\.so\.6'; then
    glibc=$(readelf -W --dyn-syms "$bin" | grep -o 'GLIBC_[0-9.]*' | sed 's/GLIBC_//' | sort -V | tail -n1)
    deps+=("libc6 (>= $glibc)")
  fi
  if readelf -d "$bin" | grep -q 'NEEDED.*libgcc_s\.so\.1'; then
    deps+=("libgcc-s1")
  fi
  # systemd for the unit, sysusers and tmpfiles (deb-systemd-invoke and deb-systemd-helper come
  # from init-system-helpers, which is essential).
  deps+=(systemd)
  local IFS=','
  echo "${deps[*]}" | sed 's/,/, /g'
}

echo "generating man pages and completions" >&2
gen="$out/gen"
rm -rf "$gen"
cargo run --release --locked -q -p stratum1-gen-docs -- "$gen" >/dev/null

for arch in "${arches[@]}"; do
  bin=$(build "$arch")
  root="$out/$arch/root"
  rm -rf "$out/$arch"
  install -d "$root/DEBIAN" "$root/usr/bin" "$root/usr/share/doc/stratum1/hardware" \
    "$root/usr/share/man/man1" "$root/usr/lib/systemd/system" "$root/usr/lib/sysusers.d" \
    "$root/usr/lib/tmpfiles.d" "$root/usr/lib/udev/rules.d" "$root/etc/stratum1" \
    "$root/usr/share/bash-completion/completions" "$root/usr/share/zsh/vendor-completions" \
    "$root/usr/share/fish/vendor_completions.d" "$root/usr/share/lintian/overrides"

  # Split the debug info off where there is some (the ARM builds have none): the package
  # carries a stripped binary, with a debuglink to the split file.
  objcopy=$(objcopy_of "$arch")
  debug="$out/stratum1_${version}_${arch}.debug"
  rm -f "$debug"
  if readelf -S "$bin" | grep -q '\.debug_info'; then
    "$objcopy" --only-keep-debug "$bin" "$debug"
    "$objcopy" --strip-all --remove-section=.comment --remove-section=.note \
      --add-gnu-debuglink="$debug" "$bin" "$root/usr/bin/stratum1"
  else
    "$objcopy" --strip-all --remove-section=.comment --remove-section=.note "$bin" "$root/usr/bin/stratum1"
  fi
  chmod 0755 "$root/usr/bin/stratum1"

  install -m 0644 systemd/stratum1.service "$root/usr/lib/systemd/system/stratum1.service"
  install -m 0644 systemd/stratum1.sysusers "$root/usr/lib/sysusers.d/stratum1.conf"
  install -m 0644 systemd/stratum1.tmpfiles "$root/usr/lib/tmpfiles.d/stratum1.conf"
  install -m 0644 udev/60-stratum1.rules "$root/usr/lib/udev/rules.d/60-stratum1.rules"
  install -m 0644 systemd/stratum1.toml "$root/etc/stratum1/stratum1.toml"
  install -m 0644 hardware/*.md hardware/*.toml hardware/*.svg "$root/usr/share/doc/stratum1/hardware/"
  install -m 0644 README.md "$root/usr/share/doc/stratum1/README.md"
  install -d "$root/usr/share/doc/stratum1/docs"
  install -m 0644 docs/*.md "$root/usr/share/doc/stratum1/docs/"
  install -m 0644 packaging/deb/copyright "$root/usr/share/doc/stratum1/copyright"
  gzip -9nc packaging/deb/changelog >"$root/usr/share/doc/stratum1/changelog.Debian.gz"
  for page in "$gen"/man/*.1; do
    gzip -9nc "$page" >"$root/usr/share/man/man1/$(basename "$page").gz"
  done
  install -m 0644 "$gen/completions/stratum1.bash" "$root/usr/share/bash-completion/completions/stratum1"
  install -m 0644 "$gen/completions/_stratum1" "$root/usr/share/zsh/vendor-completions/_stratum1"
  install -m 0644 "$gen/completions/stratum1.fish" "$root/usr/share/fish/vendor_completions.d/stratum1.fish"
  # The overrides keep their comments: each says why the tag does not apply.
  overrides=(packaging/deb/lintian-overrides)
  [ -f "packaging/deb/lintian-overrides.$arch" ] && overrides+=("packaging/deb/lintian-overrides.$arch")
  cat "${overrides[@]}" >"$root/usr/share/lintian/overrides/stratum1"
  chmod 0644 "$root/usr/share/lintian/overrides/stratum1"

  install -m 0755 packaging/deb/postinst packaging/deb/prerm packaging/deb/postrm "$root/DEBIAN/"
  echo /etc/stratum1/stratum1.toml >"$root/DEBIAN/conffiles"
  {
    sed -n '/^Package:/,/^Maintainer:/p' packaging/deb/control
    echo "Version: $version"
    echo "Architecture: $arch"
    echo "Installed-Size: $(du -sk --exclude=DEBIAN "$root" | cut -f1)"
    echo "Depends: $(depends_of "$bin")"
    sed -n '/^Maintainer:/,$p' packaging/deb/control | sed 1d
  } >"$root/DEBIAN/control"
  (cd "$root" && find . -path ./DEBIAN -prune -o -type f -printf '%P\0' | sort -z \
    | xargs -0 md5sum >DEBIAN/md5sums)
  chmod 0644 "$root/DEBIAN/md5sums" "$root/DEBIAN/conffiles" "$root/DEBIAN/control"
  find "$root" -type d -exec chmod 0755 {} +

  deb="$out/stratum1_${version}_${arch}.deb"
  SOURCE_DATE_EPOCH=$(git log -1 --format=%ct 2>/dev/null || date +%s) \
    dpkg-deb --root-owner-group -Zxz --build "$root" "$deb" >/dev/null
  echo "$deb ($(du -h "$deb" | cut -f1); binary $(du -h "$root/usr/bin/stratum1" | cut -f1))"
  if [ "${LINTIAN:-1}" != 0 ] && command -v lintian >/dev/null; then
    lintian --fail-on error --display-info "$deb"
  fi
done
