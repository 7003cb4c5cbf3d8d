#!/usr/bin/env bash
# The real applications the tests open published files with, from Debian's packages when missing:
# headless Chromium (report.html) with a CJK font (文泉驿正黑, so a screenshot shows Chinese), and
# LibreOffice Calc without a GUI (every published XLSX is opened and its code cells compared).
set -euo pipefail
need=()
command -v chromium >/dev/null 2>&1 || need+=(chromium)
command -v soffice >/dev/null 2>&1 || need+=(libreoffice-calc-nogui)
fc-list :lang=zh 2>/dev/null | grep -q . || need+=(fonts-wqy-zenhei)
[ ${#need[@]} -eq 0 ] && exit 0
sudo=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null 2>&1 || { echo "apps: need root or sudo to install ${need[*]} (apt-get)" >&2; exit 1; }
  sudo="sudo"
fi
echo "apps: installing ${need[*]} with apt-get"
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
