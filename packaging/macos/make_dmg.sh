#!/bin/sh
# Pack Hearth.app into a drag-to-Applications disk image (macOS only: hdiutil).
#
# Usage: packaging/macos/make_dmg.sh [APP [OUT.dmg]]
#        (defaults: dist/Hearth.app and dist/Hearth-macos-$(uname -m).dmg)
#
# The app is ad-hoc signed by PyInstaller, not notarized: on first start people
# right-click it and choose Open (see packaging/README.md).
set -eu

app=${1:-dist/Hearth.app}
out=${2:-dist/Hearth-macos-$(uname -m).dmg}

if [ ! -x "$app/Contents/MacOS/hearth" ]; then
  echo "make_dmg.sh: $app is missing or incomplete; build it first (pyinstaller packaging/hearth.spec)." >&2
  exit 1
fi

stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
# ditto keeps the bundle's symlinks, permissions and code signature intact.
ditto "$app" "$stage/Hearth.app"
ln -s /Applications "$stage/Applications"
rm -f "$out"
hdiutil create -volname "Hearth" -srcfolder "$stage" -fs HFS+ -format UDZO -ov "$out"
hdiutil verify "$out"
echo "wrote $out ($(du -h "$out" | cut -f1))"
