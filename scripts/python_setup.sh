# Sourced by test.sh and demo.sh: get a pip that can install into python3.

# Debian's own python3 comes without pip, and marks itself "externally managed" (PEP 668).
# On a machine set up for this server, installing into it is what we want.
python_setup_pip() {
    if ! python3 -m pip --version >/dev/null 2>&1; then
        local sudo=()
        [[ $EUID -ne 0 ]] && sudo=(sudo)
        echo "+ apt-get install python3-pip"
        "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -q
        "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
            --no-install-recommends -o Dpkg::Use-Pty=0 python3-pip
    fi
    local stdlib
    stdlib="$(python3 -c 'import sysconfig; print(sysconfig.get_path("stdlib"))')"
    if [[ -f "$stdlib/EXTERNALLY-MANAGED" ]]; then
        echo "python3 is externally managed (PEP 668): setting PIP_BREAK_SYSTEM_PACKAGES=1"
        export PIP_BREAK_SYSTEM_PACKAGES=1
    fi
    export PIP_ROOT_USER_ACTION="${PIP_ROOT_USER_ACTION:-ignore}"
}
