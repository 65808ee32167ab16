#!/bin/sh
# Install Hearth from this folder (the unpacked hearth-linux-*.tar.gz).
#
#   ./install.sh               for this user: ~/.local/lib/hearth, the `hearth`
#                              command in ~/.local/bin, a menu entry and its icon
#   sudo ./install.sh --system for everyone: /opt/hearth, /usr/local/bin/hearth,
#                              /usr/share/applications, /usr/share/icons
#   ./install.sh --uninstall   remove it again (add --system for a system install)
#
# Chats, settings and models live elsewhere (~/.local/share/Hearth) and are
# never touched. Nothing here needs a network connection.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
mode=user
action=install
for arg in "$@"; do
  case "$arg" in
    --system) mode=system ;;
    --uninstall) action=uninstall ;;
    -h|--help) sed -n '2,12p' "$0"; exit 0 ;;
    *) echo "install.sh: unknown option $arg (try --help)" >&2; exit 2 ;;
  esac
done

if [ "$mode" = system ]; then
  app_dir=/opt/hearth
  bin_dir=/usr/local/bin
  share=/usr/share
else
  app_dir=${HEARTH_INSTALL_DIR:-$HOME/.local/lib/hearth}
  bin_dir=${HEARTH_BIN_DIR:-$HOME/.local/bin}
  share=${XDG_DATA_HOME:-$HOME/.local/share}
fi
desktop_file=$share/applications/hearth.desktop
icon_file=$share/icons/hicolor/256x256/apps/hearth.png

refresh_menus() {
  # Desktop environments notice new entries on their own; these only speed it up.
  command -v update-desktop-database >/dev/null 2>&1 && update-desktop-database -q "$share/applications" 2>/dev/null || true
  command -v gtk-update-icon-cache >/dev/null 2>&1 && gtk-update-icon-cache -q -t "$share/icons/hicolor" 2>/dev/null || true
}

if [ "$action" = uninstall ]; then
  rm -rf "$app_dir"
  rm -f "$bin_dir/hearth" "$desktop_file" "$icon_file"
  refresh_menus
  echo "Hearth was removed. Your chats and models are still in ~/.local/share/Hearth."
  exit 0
fi

if [ ! -x "$here/hearth/hearth" ]; then
  echo "install.sh: $here/hearth/hearth is missing; run this script from the unpacked Hearth folder." >&2
  exit 1
fi

mkdir -p "$(dirname "$app_dir")" "$bin_dir" "$(dirname "$desktop_file")" "$(dirname "$icon_file")"
# Replace an older version completely: stale libraries must not linger.
rm -rf "$app_dir.new"
cp -R "$here/hearth" "$app_dir.new"
rm -rf "$app_dir"
mv "$app_dir.new" "$app_dir"
ln -sf "$app_dir/hearth" "$bin_dir/hearth"
cp "$here/hearth.png" "$icon_file"
# The menu entry names the executable by its full path: ~/.local/bin is not on
# every desktop session's PATH.
sed -e "s|^Exec=.*|Exec=$app_dir/hearth|" -e "s|^TryExec=.*|TryExec=$app_dir/hearth|" \
  "$here/hearth.desktop" > "$desktop_file"
chmod 644 "$desktop_file" "$icon_file"
refresh_menus

echo "Hearth $("$app_dir/hearth" --version 2>/dev/null | sed 's/^hearth //') is installed in $app_dir."
echo "Start it from your applications menu, or run: $bin_dir/hearth"
case ":$PATH:" in
  *":$bin_dir:"*) ;;
  *) echo "($bin_dir is not on your PATH; add it to run plain 'hearth'.)" ;;
esac
