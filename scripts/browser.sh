#!/usr/bin/env bash
# The tests open report.html in headless Chromium: install Debian's chromium and a CJK font
# (文泉驿正黑, so the screenshot shows Chinese) from the system's package manager when missing.
set -euo pipefail
need=()
command -v chromium >/dev/null 2>&1 || need+=(chromium)
fc-list :lang=zh 2>/dev/null | grep -q . || need+=(fonts-wqy-zenhei)
[ ${#need[@]} -eq 0 ] && exit 0
sudo=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null 2>&1 || { echo "browser: need root or sudo to install ${need[*]} (apt-get)" >&2; exit 1; }
  sudo="sudo"
fi
echo "browser: installing ${need[*]} with apt-get"
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
