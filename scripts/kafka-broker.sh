#!/usr/bin/env bash
# A real Kafka-protocol broker on loopback for `serve --kafka-bootstrap` and the end-to-end test:
# tansu (Apache-2.0, a Kafka-compatible broker written in Rust) from crates.io, with in-memory
# storage, so nothing is left on disk and every start is empty.
#
#   scripts/kafka-broker.sh install   # build tansu once (cached; skipped when already there)
#   scripts/kafka-broker.sh start     # install if needed, start on 127.0.0.1:<free port>,
#                                     # wait until it answers; prints HOST:PORT
#   scripts/kafka-broker.sh address   # HOST:PORT of the running broker
#   scripts/kafka-broker.sh stop      # stop the broker this script started
#
# The binary lives outside the worktree so every clone on the machine shares it:
#   ${TECTON_SIM_TOOLS:-$HOME/.cache/tecton-sim}/tansu-<version>/bin/tansu
# Building it takes a while on a small machine (see docs/kafka.md); later runs reuse it.
# The running broker's pid, port and log are kept in target/kafka-broker/.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

TANSU_VERSION=0.6.0
# `dynostore` brings the memory:// storage engine (tansu's default features have no engine).
TANSU_FEATURES=dynostore
TOOLS="${TECTON_SIM_TOOLS:-${HOME}/.cache/tecton-sim}"
ROOT="${TOOLS}/tansu-${TANSU_VERSION}"
BIN="${ROOT}/bin/tansu"
RUN="$(pwd)/target/kafka-broker"

say() { printf 'kafka-broker: %s\n' "$*" >&2; }

install() {
    if [[ -x "${BIN}" ]] && "${BIN}" --version >/dev/null 2>&1; then
        say "tansu ${TANSU_VERSION} already installed at ${BIN}"
        return
    fi
    say "building tansu ${TANSU_VERSION} from crates.io into ${ROOT} (once; this takes a while)"
    local started=${SECONDS}
    # A target directory of its own: the build never touches the workspace's.
    cargo install --locked "tansu@${TANSU_VERSION}" --features "${TANSU_FEATURES}" \
        --root "${ROOT}" --target-dir "${TOOLS}/tansu-build"
    rm -rf "${TOOLS}/tansu-build"
    say "tansu installed in $((SECONDS - started)) s"
}

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

running() {
    [[ -f "${RUN}/pid" ]] && kill -0 "$(cat "${RUN}/pid")" 2>/dev/null
}

start() {
    if running; then
        say "already running at $(cat "${RUN}/address")"
        cat "${RUN}/address"
        return
    fi
    install
    mkdir -p "${RUN}"
    local port
    port="$(free_port)"
    local url="tcp://127.0.0.1:${port}"
    # Started from its own directory: tansu reads a `.env` file in its working directory.
    (
        cd "${RUN}"
        exec "${BIN}" broker \
            --listener-url "${url}" \
            --advertised-listener-url "${url}" \
            --storage-engine "memory://tansu/" \
            >"${RUN}/log" 2>&1
    ) &
    echo $! >"${RUN}/pid"
    echo "127.0.0.1:${port}" >"${RUN}/address"
    for _ in $(seq 1 150); do
        if ! running; then
            say "tansu exited at start; its log:"
            cat "${RUN}/log" >&2
            rm -f "${RUN}/pid"
            return 1
        fi
        if (exec 3<>"/dev/tcp/127.0.0.1/${port}") 2>/dev/null; then
            say "tansu ${TANSU_VERSION} ready at 127.0.0.1:${port} (pid $(cat "${RUN}/pid"))"
            cat "${RUN}/address"
            return
        fi
        sleep 0.2
    done
    say "tansu did not listen on 127.0.0.1:${port} within 30 s; its log:"
    cat "${RUN}/log" >&2
    stop
    return 1
}

stop() {
    if running; then
        local pid
        pid="$(cat "${RUN}/pid")"
        kill "${pid}" 2>/dev/null || true
        for _ in $(seq 1 50); do
            kill -0 "${pid}" 2>/dev/null || break
            sleep 0.1
        done
        kill -9 "${pid}" 2>/dev/null || true
        say "stopped tansu (pid ${pid})"
    fi
    rm -f "${RUN}/pid" "${RUN}/address"
}

address() {
    if running; then
        cat "${RUN}/address"
    else
        say "not running (scripts/kafka-broker.sh start)"
        return 1
    fi
}

case "${1:-}" in
    install) install ;;
    start) start ;;
    stop) stop ;;
    address) address ;;
    *)
        echo "usage: $0 install|start|address|stop" >&2
        exit 2
        ;;
esac
