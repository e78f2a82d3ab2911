#!/usr/bin/env bash
# Vendors the dashboard's front-end libraries from npm into
# internal/dashboard/web/vendor/, at the versions pinned below, each with its
# LICENSE. The files are committed (they are build inputs, like go.sum), so
# building creek needs neither npm nor a network; run this script only to
# change a version, then commit what it wrote. See docs/dashboard.md.
set -euo pipefail

cd "$(dirname "$0")/.."
dest=internal/dashboard/web/vendor

# name@version  file in the package to copy
packages=(
  "chart.js@4.6.1 dist/chart.umd.min.js"
)

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
for entry in "${packages[@]}"; do
  read -r spec file <<<"$entry"
  name=${spec%@*}
  echo "vendor-web: $spec ($file)"
  (cd "$tmp" && npm pack --silent --ignore-scripts "$spec" >/dev/null)
  tarball=$(ls "$tmp"/*.tgz)
  mkdir -p "$tmp/$name"
  tar -xzf "$tarball" -C "$tmp/$name"
  rm "$tarball"
  rm -rf "${dest:?}/$name"
  mkdir -p "$dest/$name"
  cp "$tmp/$name/package/$file" "$dest/$name/"
  cp "$tmp/$name/package/LICENSE"* "$dest/$name/" 2>/dev/null || cp "$tmp/$name/package/LICENSE.md" "$dest/$name/"
  sha=$(sha256sum "$dest/$name/$(basename "$file")" | cut -d' ' -f1)
  echo "$spec $file sha256:$sha" >"$dest/$name/VERSION"
done
