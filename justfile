# toolgate tasks. `just serve` runs the daemon on the embedded default configuration;
# `just test` runs every test. Each recipe installs what it needs.

set shell := ["bash", "-euo", "pipefail", "-c"]

wasm_target := "wasm32-wasip2"
plugins := "terrascan prowler checkov"
# The MCP client the black-box MCP tests drive toolgate with (tests/tests/daemon_mcp.rs).
mcp_python_sdk := "mcp==2.3.0"
# The real scanners from PyPI, each in its own virtual environment under target/: checkov is
# what `just serve` runs out of the box (the embedded default finds target/venv-checkov); the
# end-to-end tests (tests/tests/real_scanners.rs) run all three.
checkov_pin := "checkov==3.2.445"
prowler_pin := "prowler==5.46.0"
# The local AWS emulator the prowler test scans; its own venv, as its boto pins clash with prowler's.
moto_pin := "moto[server]==5.1.22"

# List the recipes.
default:
    @just --list

# Build the daemon (release) and every plugin.
build: build-plugins
    cargo build --release -p toolgate

# Build the tool plugins into target/plugins/<tool>.wasm (the default plugin directory).
build-plugins: _wasm-target
    cargo build --release --target {{wasm_target}} {{ prepend("-p toolgate-plugin-", plugins) }}
    mkdir -p target/plugins
    for p in {{plugins}}; do cp "target/{{wasm_target}}/release/toolgate_plugin_${p}.wasm" "target/plugins/${p}.wasm"; done

# Build the deliberately hostile plugins the runtime tests load, into target/test-plugins/.
build-test-plugins: _wasm-target
    mkdir -p target/test-plugins
    cargo build --release --target {{wasm_target}} -p toolgate-hostile-plugin
    cp target/{{wasm_target}}/release/toolgate_hostile_plugin.wasm target/test-plugins/hostile.wasm
    cargo build --release --target {{wasm_target}} -p toolgate-hostile-plugin --features trap-at-load
    cp target/{{wasm_target}}/release/toolgate_hostile_plugin.wasm target/test-plugins/trap-at-load.wasm
    cargo build --release --target {{wasm_target}} -p toolgate-plugin-template
    cp target/{{wasm_target}}/release/toolgate_plugin_template.wasm target/test-plugins/template.wasm

# Scaffold plugins/NAME from the plugin template (see docs/plugins.md).
new-plugin NAME:
    cargo run -q -p toolgate -- plugin new {{NAME}}

# Build one plugin (e.g. one made by `just new-plugin`) into target/plugins/NAME.wasm.
build-plugin NAME: _wasm-target
    cargo build --release --target {{wasm_target}} -p toolgate-plugin-{{NAME}}
    mkdir -p target/plugins
    cp "target/{{wasm_target}}/release/toolgate_plugin_$(echo {{NAME}} | tr - _).wasm" "target/plugins/{{NAME}}.wasm"

# Run the daemon with the embedded default configuration (listens on 127.0.0.1:8888), with a
# real checkov (pinned, installed into target/venv-checkov the first time: about a minute).
serve *ARGS: build _checkov-venv
    ./target/release/toolgate serve {{ARGS}}

# Run the daemon with stand-in scanners (the tests' fake terrascan and prowler, fixed reports),
# to try every call of the README without installing the real ones.
demo: build
    cargo build --release -p toolgate-tests --bin toolgate-fake-tool
    mkdir -p target/demo-tools
    for tool in terrascan prowler; do cp target/release/toolgate-fake-tool "target/demo-tools/$tool"; done
    ./target/release/toolgate serve --config toolgate.demo.toml

# Run every test: unit, plugin, sandbox and black-box daemon tests (MCP ones included).
test: build-plugins build-test-plugins _mcp-venv _postgres
    cargo build --workspace --all-targets
    cargo test --workspace

# Run the benchmarks (numbers go in the README): plugin calls, sandbox overhead, daemon
# throughput against a naive server, MCP against the HTTP API, the job store's cost per job,
# scan listing, asynchronous scans against synchronous calls, upload extraction against unzip.
bench: build-plugins _postgres
    cargo build --release -p toolgate -p toolgate-tests --bins
    cargo build --release -p toolgate --example naive_server
    cargo bench -p toolgate-plugin-runtime --bench runtime
    cargo bench -p toolgate-sandbox --bench overhead
    cargo bench -p toolgate --bench daemon
    cargo bench -p toolgate --bench mcp
    cargo bench -p toolgate-store --bench store
    cargo bench -p toolgate-store --bench scans
    cargo bench -p toolgate-store --bench claim
    cargo bench -p toolgate --bench scans
    cargo bench -p toolgate --bench daemons
    cargo bench -p toolgate-uploads --bench extract
    cargo bench -p toolgate-uploads --bench receive_rss

# Format the code.
fmt:
    cargo fmt --all

# Lint: formatting, clippy on the host crates and on the guest crates.
lint: _wasm-target
    cargo fmt --all --check
    cargo clippy --workspace --all-targets -- -D warnings
    cargo clippy --target {{wasm_target}} {{ prepend("-p toolgate-plugin-", plugins) }} -p toolgate-hostile-plugin -- -D warnings

# Install the real scanners the end-to-end tests run (checkov, prowler, and the moto AWS
# emulator), pinned, each into its venv under target/ (about 4 minutes once; nothing after).
# CI runs this before `just test`; without it those tests skip locally, loudly.
real-scanners: _checkov-venv (_venv "target/venv-prowler" prowler_pin) (_venv "target/venv-moto" moto_pin)

# PostgreSQL's server programs, which the PostgreSQL store tests and the claim benchmark start a
# throwaway cluster with (host/store/testing/pg_cluster.rs): installed from the system's packages
# when initdb is neither on PATH nor under /usr/lib/postgresql/*/bin, and not needed when
# TOOLGATE_TEST_DATABASE_URL names a server; silent when present. Without it, the tests skip
# locally (loudly) and fail under CI. The TLS test makes its certificates with `openssl`
# (which Debian's postgresql package brings along).
_postgres:
    #!/usr/bin/env bash
    set -euo pipefail
    if ! command -v openssl >/dev/null && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        apt-get update -qq && apt-get install -y -qq openssl >/dev/null
    fi
    if [ -n "${TOOLGATE_TEST_DATABASE_URL:-}" ] || command -v initdb >/dev/null \
        || compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null; then exit 0; fi
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        echo "installing PostgreSQL for the store tests (apt-get install postgresql)" >&2
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
    else
        echo "PostgreSQL's initdb is needed for the PostgreSQL store tests; install the" \
            "postgresql package (Debian/Ubuntu: apt-get install postgresql) or set" \
            "TOOLGATE_TEST_DATABASE_URL" >&2
        if [ -n "${CI:-}" ]; then exit 1; fi
    fi

# The official Python MCP SDK, pinned, in target/venv-mcp (about 20 s once; nothing after).
_mcp-venv: (_venv "target/venv-mcp" mcp_python_sdk)

# checkov, pinned, in target/venv-checkov: what the embedded default configuration runs.
_checkov-venv: (_venv "target/venv-checkov" checkov_pin)

# A virtual environment holding exactly PIN: installed only when missing or when the pin
# changed, so a second run costs nothing.
_venv VENV PIN:
    #!/usr/bin/env bash
    set -euo pipefail
    venv="{{VENV}}"
    if [ -x "$venv/bin/python" ] && [ "$(cat "$venv/.pinned" 2>/dev/null)" = "{{PIN}}" ]; then exit 0; fi
    if ! python3 -c 'import venv, ensurepip' 2>/dev/null; then
        # Debian splits venv's pip bootstrap into its own package.
        if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
            apt-get update -qq && apt-get install -y -qq python3-venv
        else
            echo "python3 with venv is needed for $venv (Debian: apt-get install python3-venv)" >&2
            exit 1
        fi
    fi
    echo "installing {{PIN}} into $venv" >&2
    rm -rf "$venv"
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check "{{PIN}}"
    echo "{{PIN}}" > "$venv/.pinned"

_wasm-target:
    @rustup target list --installed | grep -qx {{wasm_target}} || rustup target add {{wasm_target}}
