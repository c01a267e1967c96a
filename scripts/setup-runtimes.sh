#!/usr/bin/env bash
# Installs and starts the real container engines boxshell's tests run against, and builds
# the small local test image (no registry is reachable). Idempotent; run as root on Debian.
#
#   sudo scripts/setup-runtimes.sh
#
# Result: `docker info` and `podman info` answer, tmux and a kubectl client are installed, both
# engines hold the image `boxshell-test:latest` (busybox + bash, static), and an sshd on
# 127.0.0.1:22 lets root in with a throwaway key only (`ssh root@127.0.0.1` works without a
# prompt: /etc/ssh/ssh_config.d/boxshell-test.conf names the key for 127.0.0.1).
set -euo pipefail

IMAGE=${BOXSHELL_TEST_IMAGE:-boxshell-test:latest}
log() { printf 'setup-runtimes: %s\n' "$*" >&2; }

if [ "$(id -u)" -ne 0 ]; then
    log "must run as root (sudo scripts/setup-runtimes.sh)"
    exit 1
fi

need=()
command -v dockerd >/dev/null 2>&1 || need+=(docker.io)
command -v podman >/dev/null 2>&1 || need+=(podman)
command -v runc >/dev/null 2>&1 || need+=(runc)
command -v tmux >/dev/null 2>&1 || need+=(tmux)
# The real kubectl client (no cluster), for the tests of the argv boxshell builds for it; any
# kubectl on PATH will do, else Debian's.
command -v kubectl >/dev/null 2>&1 || need+=(kubernetes-client)
[ -x /usr/libexec/podman/catatonit ] || need+=(catatonit)
[ -x /bin/busybox ] || need+=(busybox-static)
[ -x /bin/bash-static ] || need+=(bash-static)
command -v ps >/dev/null 2>&1 || need+=(procps)
# A real REPL for the tests of interactive commands on the local runtime.
command -v python3 >/dev/null 2>&1 || need+=(python3-minimal)
# A real sshd for the remote tests: sessions over `ssh -T`, and docker's `ssh://` transport.
[ -x /usr/sbin/sshd ] || need+=(openssh-server)
command -v ssh >/dev/null 2>&1 || need+=(openssh-client)
# zsh and fish parse the completion scripts of the `boxshell` command in its tests.
command -v zsh >/dev/null 2>&1 || need+=(zsh)
command -v fish >/dev/null 2>&1 || need+=(fish)
if [ ${#need[@]} -gt 0 ]; then
    log "installing ${need[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

# Podman: crun cannot set rlimits here and rejects hybrid cgroups (RUNTIMES.md). A drop-in
# file leaves any containers.conf of the machine's own alone.
conf=/etc/containers/containers.conf.d/boxshell.conf
if [ ! -f "$conf" ]; then
    log "writing $conf"
    mkdir -p "$(dirname "$conf")"
    cat >"$conf" <<'CONF'
# boxshell: settings that make rootful podman work on these machines (see RUNTIMES.md)
[containers]
default_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]
[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
CONF
fi

# Docker engine: start dockerd unless one already answers.
if ! timeout 10 docker info >/dev/null 2>&1; then
    log "starting dockerd"
    nohup dockerd >/tmp/dockerd.log 2>&1 &
    for _ in $(seq 1 60); do
        timeout 5 docker info >/dev/null 2>&1 && break
        sleep 0.5
    done
    if ! timeout 10 docker info >/dev/null 2>&1; then
        log "dockerd did not answer; last lines of /tmp/dockerd.log:"
        tail -n 20 /tmp/dockerd.log >&2 || true
        exit 1
    fi
fi
timeout 30 podman info >/dev/null

# sshd on loopback, key-only, with a host key and a client key of its own made here: nothing of
# the machine's own ssh set-up is used or changed but the client snippet for 127.0.0.1.
ssh_dir=/etc/boxshell-test/ssh
if [ ! -f "$ssh_dir/sshd_config" ]; then
    log "writing $ssh_dir (throwaway keys, sshd_config)"
    mkdir -p "$ssh_dir"
    chmod 700 "$ssh_dir"
    rm -f "$ssh_dir"/id_ed25519* "$ssh_dir"/host_ed25519*
    ssh-keygen -q -t ed25519 -N '' -C boxshell-test -f "$ssh_dir/id_ed25519"
    ssh-keygen -q -t ed25519 -N '' -C boxshell-test-host -f "$ssh_dir/host_ed25519"
    cp "$ssh_dir/id_ed25519.pub" "$ssh_dir/authorized_keys"
    printf '127.0.0.1,localhost %s\n' "$(cut -d' ' -f1,2 "$ssh_dir/host_ed25519.pub")" >"$ssh_dir/known_hosts"
    cat >"$ssh_dir/sshd_config" <<CONF
# boxshell's test sshd: loopback only, keys only.
Port 22
ListenAddress 127.0.0.1
HostKey $ssh_dir/host_ed25519
AuthorizedKeysFile $ssh_dir/authorized_keys
PermitRootLogin prohibit-password
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM yes
PrintMotd no
# The tests open many sessions at once.
MaxStartups 200
MaxSessions 200
PidFile /run/boxshell-sshd.pid
CONF
    mkdir -p /etc/ssh/ssh_config.d
    cat >/etc/ssh/ssh_config.d/boxshell-test.conf <<CONF
# boxshell's test sshd (scripts/setup-runtimes.sh): its throwaway key and host key.
Host 127.0.0.1 localhost
    IdentityFile $ssh_dir/id_ed25519
    UserKnownHostsFile $ssh_dir/known_hosts
    StrictHostKeyChecking yes
    BatchMode yes
CONF
fi
if ! timeout 10 ssh root@127.0.0.1 true >/dev/null 2>&1; then
    log "starting sshd on 127.0.0.1:22"
    mkdir -p /run/sshd
    /usr/sbin/sshd -f "$ssh_dir/sshd_config" -E /tmp/boxshell-sshd.log
    for _ in $(seq 1 40); do
        timeout 10 ssh root@127.0.0.1 true >/dev/null 2>&1 && break
        sleep 0.25
    done
    if ! timeout 10 ssh root@127.0.0.1 true; then
        log "ssh root@127.0.0.1 does not answer; last lines of /tmp/boxshell-sshd.log:"
        tail -n 20 /tmp/boxshell-sshd.log >&2 || true
        exit 1
    fi
fi

# Test image: busybox with its applets, plus bash, imported into both engines.
if ! docker image inspect "$IMAGE" >/dev/null 2>&1 || ! podman image exists "$IMAGE"; then
    log "building $IMAGE"
    root=$(mktemp -d)
    trap 'rm -rf "$root"' EXIT
    mkdir -p "$root"/{bin,tmp,root,etc,proc,sys,dev,app}
    chmod 1777 "$root/tmp"
    cp /bin/busybox "$root/bin/busybox"
    cp /bin/bash-static "$root/bin/bash"
    for applet in $(/bin/busybox --list); do
        [ -e "$root/bin/$applet" ] || ln -s busybox "$root/bin/$applet"
    done
    printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/sh\n' >"$root/etc/passwd"
    printf 'root:x:0:\nnogroup:x:65534:\n' >"$root/etc/group"
    tar -C "$root" -cf "$root.tar" .
    docker image inspect "$IMAGE" >/dev/null 2>&1 ||
        docker import -c 'CMD ["/bin/sh"]' "$root.tar" "$IMAGE" >/dev/null
    podman image exists "$IMAGE" ||
        podman import -q -c 'CMD ["/bin/sh"]' "$root.tar" "$IMAGE" >/dev/null
    rm -f "$root.tar"
fi
log "ready: docker $(docker version --format '{{.Server.Version}}'), podman $(podman version --format '{{.Version}}'), tmux $(tmux -V), image $IMAGE, sshd on 127.0.0.1:22"
