#!/usr/bin/env bash
# Idempotent installer for what pollhttp's integration tests need on a fresh
# Debian 12 machine (run as root):
#   - nginx (Debian package), used by tests/src/nginx.rs (the system service
#     the package starts on port 80 is stopped and disabled)
#   - for the content-coding checks against real servers
#     (tests/tests/coding_servers.rs): nginx's brotli filter module
#     (libnginx-mod-http-brotli-filter), Apache (apache2: mod_brotli and
#     mod_deflate) and Caddy (caddy), all Debian packages, installed with
#     their services kept from starting (a policy-rc.d for the install,
#     then disabled): the tests run their own instances on 127.0.0.1
#   - a Python virtualenv at <workspace>/.ci-venv with httpbin + gunicorn,
#     used by tests/src/httpbin.rs (override the location with POLLHTTP_VENV)
#   - the Rust target thumbv7em-none-eabihf (rustup), for the no_std build of
#     pollhttp-proto (override with POLLHTTP_NO_STD_TARGET)
#   - node and npm (Debian packages nodejs, npm), for the HTTP cache-tests
#     suite of scripts/cache-conformance.sh (which installs the suite itself)
#   - for the C API's tests (ffi/tests/c_api.rs): gcc and g++ (the C cases,
#     the header as C and C++, ASan/UBSan runtimes come with gcc), valgrind,
#     and Mono (mono-mcs, mono-runtime) for the C# P/Invoke smoke test; all
#     Debian packages. The header's generator, cbindgen, is a dev-dependency
#     pinned in Cargo.lock: nothing to install.
# Re-running it is cheap: each step is skipped when already satisfied.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${POLLHTTP_VENV:-$ROOT/.ci-venv}"
export DEBIAN_FRONTEND=noninteractive

as_root() {
    if [ "$(id -u)" -eq 0 ]; then
        "$@"
    else
        sudo "$@"
    fi
}

# --- nginx -------------------------------------------------------------------
if [ -x /usr/sbin/nginx ] || command -v nginx >/dev/null 2>&1; then
    echo "install-deps: nginx already present: $(command -v nginx || echo /usr/sbin/nginx)"
else
    echo "install-deps: installing nginx (apt-get)"
    as_root apt-get update -q
    as_root apt-get install -y -q --no-install-recommends nginx
    # The package starts a system nginx on port 80 and enables it at boot;
    # the tests run their own nginx on free ports, so stop and disable it.
    if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
        as_root systemctl disable --now nginx >/dev/null 2>&1 || true
    elif command -v service >/dev/null 2>&1; then
        as_root service nginx stop >/dev/null 2>&1 || true
    fi
fi

# --- nginx's brotli filter, Apache and Caddy (content-coding checks) ---------
# Their packages would start system services on port 80 (apache2, caddy):
# a policy-rc.d that refuses every start holds them back during the
# install (kept if the machine has its own), and they are disabled after.
CODING_MISSING=()
[ -e /usr/lib/nginx/modules/ngx_http_brotli_filter_module.so ] ||
    CODING_MISSING+=(libnginx-mod-http-brotli-filter)
[ -x /usr/sbin/apache2 ] || CODING_MISSING+=(apache2)
command -v caddy >/dev/null 2>&1 || CODING_MISSING+=(caddy)
if [ "${#CODING_MISSING[@]}" -eq 0 ]; then
    echo "install-deps: nginx brotli filter, apache2 and caddy already present"
else
    echo "install-deps: installing ${CODING_MISSING[*]} (apt-get, services not started)"
    OWN_POLICY=0
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        printf '#!/bin/sh\nexit 101\n' | as_root tee /usr/sbin/policy-rc.d >/dev/null
        as_root chmod 755 /usr/sbin/policy-rc.d
        OWN_POLICY=1
    fi
    as_root apt-get update -q
    as_root apt-get install -y -q --no-install-recommends "${CODING_MISSING[@]}"
    if [ "$OWN_POLICY" -eq 1 ]; then
        as_root rm -f /usr/sbin/policy-rc.d
    fi
    for svc in apache2 caddy; do
        if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
            as_root systemctl disable --now "$svc" >/dev/null 2>&1 || true
        elif command -v service >/dev/null 2>&1; then
            as_root service "$svc" stop >/dev/null 2>&1 || true
        fi
    done
fi

# --- httpbin + gunicorn virtualenv --------------------------------------------
if [ -x "$VENV/bin/gunicorn" ] && "$VENV/bin/python" -c 'import httpbin' >/dev/null 2>&1; then
    echo "install-deps: httpbin venv already present: $VENV"
else
    if ! python3 -c 'import venv, ensurepip' >/dev/null 2>&1; then
        echo "install-deps: installing python3-venv (apt-get)"
        as_root apt-get update -q
        as_root apt-get install -y -q --no-install-recommends python3-venv
    fi
    echo "install-deps: creating virtualenv $VENV with httpbin + gunicorn (pip)"
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install -q --no-cache-dir --disable-pip-version-check httpbin gunicorn
fi

# --- a bare-metal Rust target, for the no_std build of pollhttp-proto -------
NO_STD_TARGET="${POLLHTTP_NO_STD_TARGET:-thumbv7em-none-eabihf}"
if rustup target list --installed 2>/dev/null | grep -qx "$NO_STD_TARGET"; then
    echo "install-deps: Rust target $NO_STD_TARGET already present"
else
    echo "install-deps: adding Rust target $NO_STD_TARGET (rustup)"
    rustup target add "$NO_STD_TARGET"
fi

# --- node + npm, for the HTTP cache-tests suite -------------------------------
if command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1; then
    echo "install-deps: node $(node --version) and npm already present"
else
    echo "install-deps: installing nodejs and npm (apt-get)"
    as_root apt-get update -q
    as_root apt-get install -y -q --no-install-recommends nodejs npm
fi

# --- C, C++, valgrind and Mono, for the C API's tests -------------------------
FFI_MISSING=()
command -v gcc >/dev/null 2>&1 || FFI_MISSING+=(gcc libc6-dev)
command -v g++ >/dev/null 2>&1 || FFI_MISSING+=(g++)
command -v valgrind >/dev/null 2>&1 || FFI_MISSING+=(valgrind)
command -v mcs >/dev/null 2>&1 || FFI_MISSING+=(mono-mcs)
command -v mono >/dev/null 2>&1 || FFI_MISSING+=(mono-runtime)
if [ "${#FFI_MISSING[@]}" -eq 0 ]; then
    echo "install-deps: gcc, g++, valgrind, mcs and mono already present"
else
    echo "install-deps: installing ${FFI_MISSING[*]} (apt-get)"
    as_root apt-get update -q
    as_root apt-get install -y -q --no-install-recommends "${FFI_MISSING[@]}"
fi

echo "install-deps: done"
