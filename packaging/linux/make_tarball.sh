#!/bin/sh
# Pack the one-folder app into the Linux download:
#   hearth-linux-<arch>/{hearth/ (the app), hearth.desktop, hearth.png, install.sh, README.txt}
#
# Usage: packaging/linux/make_tarball.sh [APP_DIR [OUT.tar.gz]]
#        (defaults: dist/hearth and dist/hearth-linux-$(uname -m).tar.gz)
set -eu

root=$(cd "$(dirname "$0")/../.." && pwd)
app=${1:-dist/hearth}
out=${2:-dist/hearth-linux-$(uname -m).tar.gz}
name=$(basename "$out" .tar.gz)

if [ ! -x "$app/hearth" ]; then
  echo "make_tarball.sh: $app/hearth is missing; build the app first (make bundle)." >&2
  exit 1
fi

stage=$(dirname "$out")/.stage-$name
rm -rf "$stage"
mkdir -p "$stage/$name"
# Hard links: the staging copy costs no disk space or time.
cp -al "$app" "$stage/$name/hearth" 2>/dev/null || cp -a "$app" "$stage/$name/hearth"
cp "$root/packaging/linux/hearth.desktop" "$root/assets/hearth.png" "$stage/$name/"
cp "$root/packaging/linux/install.sh" "$stage/$name/install.sh"
chmod 755 "$stage/$name/install.sh"
cat > "$stage/$name/README.txt" <<'TXT'
Hearth: chat with gpt-oss and other GGUF models privately on this computer.

Run it from here:     ./hearth/hearth
Install it for you:   ./install.sh            (menu entry + `hearth` command)
Remove it again:      ./install.sh --uninstall
Headless use:         ./hearth/hearth chat --model FILE.gguf "your question"
                      ./hearth/hearth --help
TXT
tar -C "$stage" -czf "$out.part" "$name"
mv "$out.part" "$out"
rm -rf "$stage"
echo "wrote $out ($(du -h "$out" | cut -f1))"
