# Shared helpers for ferrostack's scripts. Source it; it changes nothing by itself.

say() { printf '\033[1m==> %s\033[0m  (%d:%02d)\n' "$*" $((SECONDS / 60)) $((SECONDS % 60)) >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

# ensure_packages PKG...: installs the Debian packages that are missing
# (one apt-get update, only when something is missing).
ensure_packages() {
    local missing=()
    for p in "$@"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    [ "$(id -u)" -eq 0 ] || die "missing packages (${missing[*]}); run as root or install them"
    say "installing ${missing[*]}"
    DEBIAN_FRONTEND=noninteractive apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

ensure_rust() {
    command -v cargo >/dev/null 2>&1 && return 0
    [ -x "$HOME/.cargo/bin/cargo" ] && export PATH="$HOME/.cargo/bin:$PATH" && return 0
    die "cargo is not installed: install a Rust toolchain (rustup, Rust >= 1.85) and run this again"
}

# The build ferrostack runs from.
build_release() {
    ensure_rust
    say "building ferrostack (release)"
    cargo build --release --locked -p ferrostack --bin ferrostack
}

# The python-openstackclient the tests drive, with its load-balancer and
# key-manager plugins (python-octaviaclient, python-barbicanclient), in a
# venv kept between runs. A venv that has the client but lacks a plugin pin
# gets the missing ones installed; one without the client is made anew.
OSC_VERSION=10.5.0
OCTAVIA_CLIENT_VERSION=3.15.0
BARBICAN_CLIENT_VERSION=7.6.0
ensure_venv() {
    FERRO_VENV=${FERRO_VENV:-/var/tmp/ferrostack-venv}
    local shown= missing=() pin name version
    # Read pip's whole answer first: `pip show | grep -q` can die of SIGPIPE under pipefail.
    [ -x "$FERRO_VENV/bin/pip" ] && shown=$("$FERRO_VENV/bin/pip" show python-openstackclient python-octaviaclient python-barbicanclient 2>/dev/null || true)
    if [ ! -x "$FERRO_VENV/bin/openstack" ] || ! printf '%s\n' "$shown" | grep -q "^Version: $OSC_VERSION$"; then
        say "creating the test venv with python-openstackclient $OSC_VERSION in $FERRO_VENV"
        rm -rf "$FERRO_VENV"
        if ! python3 -m venv "$FERRO_VENV" 2>/dev/null; then
            ensure_packages python3-venv
            python3 -m venv "$FERRO_VENV"
        fi
        shown=
        missing=("python-openstackclient==$OSC_VERSION")
    fi
    for pin in "python-octaviaclient==$OCTAVIA_CLIENT_VERSION" "python-barbicanclient==$BARBICAN_CLIENT_VERSION"; do
        name=${pin%%==*} version=${pin##*==}
        printf '%s\n' "$shown" | grep -A1 -x "Name: $name" | grep -q -x "Version: $version" || missing+=("$pin")
    done
    if [ ${#missing[@]} -gt 0 ]; then
        say "installing ${missing[*]} into $FERRO_VENV"
        "$FERRO_VENV/bin/pip" install -q --disable-pip-version-check "python-openstackclient==$OSC_VERSION" "${missing[@]}"
    fi
    export FERRO_VENV
}

# Ansible with the openstack.cloud collection (in the `ansible` package), in
# a venv of its own kept between runs. openstack.cloud 2.5.0 reads
# `openstack.version`, which openstacksdk 4.14 and later no longer import
# on their own: the SDK here is pinned to 4.13.0.
ANSIBLE_VERSION=11.13.0
ANSIBLE_SDK_VERSION=4.13.0
ensure_ansible() {
    FERRO_ANSIBLE_VENV=${FERRO_ANSIBLE_VENV:-/var/tmp/ferrostack-ansible}
    local want="ansible==$ANSIBLE_VERSION openstacksdk==$ANSIBLE_SDK_VERSION"
    if [ -x "$FERRO_ANSIBLE_VENV/bin/ansible-playbook" ] && [ "$(cat "$FERRO_ANSIBLE_VENV/.pinned" 2>/dev/null)" = "$want" ]; then
        export FERRO_ANSIBLE_VENV
        return 0
    fi
    say "creating the Ansible venv ($want) in $FERRO_ANSIBLE_VENV"
    rm -rf "$FERRO_ANSIBLE_VENV"
    python3 -m venv "$FERRO_ANSIBLE_VENV"
    # shellcheck disable=SC2086
    "$FERRO_ANSIBLE_VENV/bin/pip" install -q --disable-pip-version-check $want
    echo "$want" >"$FERRO_ANSIBLE_VENV/.pinned"
    export FERRO_ANSIBLE_VENV
}

# QEMU 10 from bookworm-backports: faster under TCG and half the memory of
# bookworm's 7.2, and it keeps the preinstalled qemu-utils 10 (bookworm's
# qemu-system 7.2 would remove it). The backports source is used through
# private apt options; /etc/apt is not edited.
ensure_qemu() {
    if command -v qemu-system-x86_64 >/dev/null 2>&1 && command -v qemu-img >/dev/null 2>&1; then
        return 0
    fi
    [ "$(id -u)" -eq 0 ] || die "qemu-system-x86 is missing; run as root to install it"
    local codename tmp
    codename=$(. /etc/os-release && echo "${VERSION_CODENAME:-}")
    if [ "$codename" = bookworm ]; then
        tmp=$(mktemp -d /var/tmp/ferrostack-apt.XXXXXX)
        chmod 755 "$tmp"
        mkdir -p "$tmp/parts" "$tmp/lists/partial"
        cp /etc/apt/sources.list.d/*.sources "$tmp/parts/" 2>/dev/null || true
        [ -f /etc/apt/sources.list ] && cp /etc/apt/sources.list "$tmp/parts/base.list"
        local uri
        uri=$(grep -h '^URIs:' /etc/apt/sources.list.d/debian.sources 2>/dev/null | head -n1 | awk '{print $2}')
        printf 'Types: deb\nURIs: %s\nSuites: bookworm-backports\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' \
            "${uri:-http://deb.debian.org/debian}" >"$tmp/parts/backports.sources"
        local opts=(-o "Dir::Etc::SourceParts=$tmp/parts" -o "Dir::Etc::SourceList=/dev/null" -o "Dir::State::Lists=$tmp/lists")
        say "installing qemu-system-x86 from bookworm-backports"
        DEBIAN_FRONTEND=noninteractive apt-get "${opts[@]}" update -qq
        DEBIAN_FRONTEND=noninteractive apt-get "${opts[@]}" install -y -qq --no-install-recommends \
            -t bookworm-backports qemu-system-x86 qemu-utils >/dev/null
        rm -rf "$tmp"
    else
        ensure_packages qemu-system-x86 qemu-utils
    fi
}

# The tiny guest image, built once per version of its sources and kept in
# /var/tmp/ferrostack-images (rebuilt when images/tiny changes).
ensure_tiny_image() {
    local key dir
    key=$(cat images/tiny/build $(find images/tiny/rootfs -type f | sort) | sha256sum | cut -c1-16)
    dir=${FERRO_IMAGE_CACHE:-/var/tmp/ferrostack-images}
    FERRO_TINY_IMAGE="$dir/tiny-$key.qcow2"
    if [ ! -s "$FERRO_TINY_IMAGE" ]; then
        say "building the tiny guest image"
        mkdir -p "$dir"
        images/tiny/build "$FERRO_TINY_IMAGE"
    fi
    export FERRO_TINY_IMAGE
}

# The Debian cloud image (cloud-init), built once per version of its
# sources and kept beside the tiny one; exports FERRO_DEBIAN_IMAGE.
ensure_debian_image() {
    local key dir
    key=$(cat images/debian/build images/debian/customize | sha256sum | cut -c1-16)
    dir=${FERRO_IMAGE_CACHE:-/var/tmp/ferrostack-images}
    FERRO_DEBIAN_IMAGE="$dir/debian-$key.qcow2"
    if [ ! -s "$FERRO_DEBIAN_IMAGE" ]; then
        say "building the Debian cloud image"
        mkdir -p "$dir"
        images/debian/build "$FERRO_DEBIAN_IMAGE"
    fi
    export FERRO_DEBIAN_IMAGE
}

# The quotes deploy's image (apps/quotes/image/build: the Debian image with
# PostgreSQL, nginx and the quotes API), cached by a hash of its sources;
# exports FERRO_QUOTES_IMAGE.
ensure_quotes_image() {
    local key dir
    key=$(cat images/debian/build images/debian/customize apps/quotes/image/* apps/quotes/Cargo.toml Cargo.lock \
        $(find apps/quotes/src -type f | sort) | sha256sum | cut -c1-16)
    dir=${FERRO_IMAGE_CACHE:-/var/tmp/ferrostack-images}
    FERRO_QUOTES_IMAGE="$dir/quotes-$key.qcow2"
    if [ ! -s "$FERRO_QUOTES_IMAGE" ]; then
        say "building the quotes image"
        mkdir -p "$dir"
        apps/quotes/image/build "$FERRO_QUOTES_IMAGE"
    fi
    export FERRO_QUOTES_IMAGE
}

# Debian's Chromium, and playwright-core (pinned by tests/browser's
# package-lock.json) in a folder kept between runs; exports PLAYWRIGHT_CORE.
# No browser is downloaded: playwright drives /usr/bin/chromium.
ensure_browser() {
    ensure_packages chromium fonts-dejavu-core
    if ! command -v node >/dev/null 2>&1; then
        ensure_packages nodejs npm
    fi
    local major
    major=$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)
    [ "$major" -ge 20 ] || die "the browser tests need Node.js 20 or newer (found $(node --version 2>/dev/null || echo none))"
    local dir key
    dir=${FERRO_NODE_DIR:-/var/tmp/ferrostack-node}
    key=$(cat tests/browser/package.json tests/browser/package-lock.json | sha256sum | cut -c1-16)
    if [ "$(cat "$dir/.key" 2>/dev/null)" != "$key" ] || [ ! -f "$dir/node_modules/playwright-core/index.mjs" ]; then
        say "installing playwright-core for the browser tests in $dir"
        rm -rf "$dir"
        mkdir -p "$dir"
        cp tests/browser/package.json tests/browser/package-lock.json "$dir/"
        (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
        echo "$key" >"$dir/.key"
    fi
    export PLAYWRIGHT_CORE="$dir/node_modules/playwright-core/index.mjs"
}
