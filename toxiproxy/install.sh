#!/usr/bin/env bash
# Install Toxiproxy v2.12.0 as DEST_DIR/toxiproxy-server and DEST_DIR/toxiproxy-cli.
#
# Usage: bash toxiproxy/install.sh [DEST_DIR]     (default: toxiproxy/bin in this repo)
#        GO=/path/to/go bash toxiproxy/install.sh  (build with that Go toolchain)
#
# Pinned so every machine runs the toxics the tests were written against. Tries, in order:
# binaries already in DEST_DIR, binaries on PATH, then `go install` (static, CGO_ENABLED=0, so the
# same binary also runs in a FROM scratch image).
set -euo pipefail

VERSION="2.12.0"
MODULE="github.com/Shopify/toxiproxy/v2"
REPO_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DEST_DIR="${1:-${REPO_DIR}/toxiproxy/bin}"

# Print the version a toxiproxy binary reports ("toxiproxy-server version 2.12.0" -> "2.12.0").
version_of() {
    "$1" --version 2>/dev/null | awk '{print $NF}' || true
}

has_version() {
    [[ -x "$1" ]] && [[ "$(version_of "$1")" == "${VERSION}" ]]
}

if has_version "${DEST_DIR}/toxiproxy-server" && has_version "${DEST_DIR}/toxiproxy-cli"; then
    echo "toxiproxy ${VERSION} already installed in ${DEST_DIR}"
    exit 0
fi

on_path_server="$(command -v toxiproxy-server || true)"
if [[ -n "${on_path_server}" ]] && has_version "${on_path_server}"; then
    install -D -m 0755 "${on_path_server}" "${DEST_DIR}/toxiproxy-server"
    copied="toxiproxy-server"
    on_path_cli="$(command -v toxiproxy-cli || true)"
    if [[ -n "${on_path_cli}" ]] && has_version "${on_path_cli}"; then
        install -D -m 0755 "${on_path_cli}" "${DEST_DIR}/toxiproxy-cli"
        copied="${copied} and toxiproxy-cli"
    fi
    echo "toxiproxy ${VERSION}: copied ${copied} from PATH to ${DEST_DIR}"
    exit 0
fi

# GO picks a toolchain; Go's official installer puts it in /usr/local/go without touching PATH.
go_bin="${GO:-$(command -v go || echo /usr/local/go/bin/go)}"
if [[ ! -x "${go_bin}" ]]; then
    cat >&2 <<EOF
toxiproxy/install.sh: no toxiproxy-server ${VERSION} on PATH and no Go toolchain to build it.
Install Go and rerun, or use one of:
  - the release binary toxiproxy-server-linux-amd64 of v${VERSION}:
    https://github.com/Shopify/toxiproxy/releases/tag/v${VERSION}
    saved as ${DEST_DIR}/toxiproxy-server (chmod +x), or anywhere with WSCONN_TOXIPROXY_BIN=PATH
  - the image ghcr.io/shopify/toxiproxy:${VERSION}
EOF
    exit 1
fi

build_dir="$(mktemp -d)"
trap 'rm -rf "${build_dir}"' EXIT
# Without -X the binary reports version "git"; find_toxiproxy_binary callers check the version.
CGO_ENABLED=0 GOBIN="${build_dir}" "${go_bin}" install \
    -ldflags "-X ${MODULE}.Version=${VERSION}" \
    "${MODULE}/cmd/server@v${VERSION}" "${MODULE}/cmd/cli@v${VERSION}"
install -D -m 0755 "${build_dir}/server" "${DEST_DIR}/toxiproxy-server"
install -D -m 0755 "${build_dir}/cli" "${DEST_DIR}/toxiproxy-cli"
echo "toxiproxy ${VERSION}: built toxiproxy-server and toxiproxy-cli with go install into ${DEST_DIR}"
