// install.sh of an agent package [EF-11.2]: checks the machine's
// architecture and Node.js before writing anything, then installs the
// package to PREFIX, the unit, and a config to fill in (never overwriting
// one). @ARCH@ is replaced with the package's arch when it is built.
// Overridable for tests and other layouts: PREFIX, CONF_DIR, UNIT_DIR,
// NO_SYSTEMD=1 (no systemctl), NO_USER=1 (no service user), EF_UNAME_M
// (the machine name uname -m would give).
export const INSTALL_SCRIPT = `#!/bin/sh
# Installs this EdgeFleet agent package (@ARCH@). Run as root from the unpacked folder:
#   sudo ./install.sh        then edit /etc/edgefleet/agent.json and: systemctl enable --now edgefleet-agent
set -eu
HERE=$(cd "$(dirname "$0")" && pwd)
PKG_ARCH=@ARCH@
PREFIX=\${PREFIX:-/opt/edgefleet-agent}
CONF_DIR=\${CONF_DIR:-/etc/edgefleet}
UNIT_DIR=\${UNIT_DIR:-/etc/systemd/system}

machine=\${EF_UNAME_M:-$(uname -m)}
case "$machine" in
  x86_64|amd64) arch=linux-x64 ;;
  aarch64|arm64) arch=linux-arm64 ;;
  armv7l|armv7|armhf|armv8l) arch=linux-armv7 ;;
  *) arch="unknown ($machine)" ;;
esac
if [ "$arch" != "$PKG_ARCH" ]; then
  echo "error EF_ERR_PACKAGE_ARCH: this package is for $PKG_ARCH, this machine is $arch; nothing was installed" >&2
  exit 3
fi
if ! command -v node >/dev/null 2>&1; then
  echo "error EF_ERR_PACKAGE_NODE: node (>= 20.19) is not on PATH; nothing was installed" >&2
  exit 3
fi
if ! node -e 'const [a,b]=process.versions.node.split(".").map(Number);process.exit(a>20||(a===20&&b>=19)?0:1)'; then
  echo "error EF_ERR_PACKAGE_NODE: node $(node -v) is older than 20.19; nothing was installed" >&2
  exit 3
fi

if [ "\${NO_USER:-0}" != 1 ] && ! id edgefleet >/dev/null 2>&1; then
  useradd --system --home-dir /var/lib/edgefleet-agent --shell /usr/sbin/nologin edgefleet
fi
mkdir -p "$PREFIX"
# A fresh copy: files of an older version must not linger next to the new ones.
rm -rf "$PREFIX/dist" "$PREFIX/node_modules" "$PREFIX/firmware-profiles"
cp -R "$HERE/dist" "$HERE/node_modules" "$HERE/firmware-profiles" "$HERE/edgefleet-package.json" "$PREFIX/"
mkdir -p "$CONF_DIR"
if [ ! -f "$CONF_DIR/agent.json" ]; then
  cp "$HERE/agent.example.json" "$CONF_DIR/agent.json"
  chmod 0600 "$CONF_DIR/agent.json"
  [ "\${NO_USER:-0}" = 1 ] || chown edgefleet:edgefleet "$CONF_DIR/agent.json"
  echo "wrote $CONF_DIR/agent.json: fill in hubUrl, deviceId, secret, hubKey, profile"
fi
mkdir -p "$UNIT_DIR"
sed "s#/opt/edgefleet-agent#$PREFIX#g; s#/etc/edgefleet/agent.json#$CONF_DIR/agent.json#g" \\
  "$HERE/edgefleet-agent.service" > "$UNIT_DIR/edgefleet-agent.service"
if [ "\${NO_SYSTEMD:-0}" != 1 ] && command -v systemctl >/dev/null 2>&1; then
  systemctl daemon-reload
  echo "installed; start with: systemctl enable --now edgefleet-agent"
else
  echo "installed to $PREFIX (no systemd: run node $PREFIX/dist/edgefleet-launch.mjs --supervise --config $CONF_DIR/agent.json)"
fi
`
