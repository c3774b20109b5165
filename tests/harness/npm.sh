# npm.sh -- npm packages for the interop tests (tfjs, onnxruntime), kept in
# the build directory: nothing is written outside the clone.
#
#   . "$(dirname "$0")/../harness/npm.sh"     (after harness/cli.sh)
#   npm_peers NAME PKG@VER...
#
# installs the packages (npm install $NPM_PEER_FLAGS PKG...: e.g.
# --ignore-scripts for packages whose install script would download more
# than the registry holds) into BUILD/npm/NAME (BUILD: the directory of $WV)
# with npm's cache in BUILD/npm-cache (npm_config_cache, so ~/.npm is never
# touched), reusing an earlier install of the same list, and exports
# NODE_PATH and NPM_DIR (that directory). When node/npm are missing, or the
# install fails and the registry cannot be reached, prints one "SKIP: ..."
# line and exits 77; an install that fails with the registry reachable is
# a failure (exit 1, npm's log printed).
npm_peers() {
    local name=$1 build want
    shift
    build=$(cd "$(dirname "$WV")" && pwd)
    NPM_DIR=$build/npm/$name
    export npm_config_cache=$build/npm-cache
    export npm_config_update_notifier=false
    if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
        echo "SKIP: node/npm not installed (scripts/deps.sh check)"
        exit 77
    fi
    want="${NPM_PEER_FLAGS:-} $*"
    mkdir -p "$NPM_DIR"
    # Tests sharing NAME may run at once (ctest -j): one installs while the
    # other waits, then finds the install done.
    local lockfd
    exec {lockfd}>"$build/npm/$name.lock"
    flock "$lockfd"
    if [ "$(cat "$NPM_DIR/.wv-installed" 2>/dev/null)" != "$want" ]; then
        if ! (cd "$NPM_DIR" && echo '{"private": true}' >package.json &&
              npm install --prefer-offline --no-audit --no-fund \
                  --loglevel=error ${NPM_PEER_FLAGS:-} "$@" \
                  >"$NPM_DIR/npm.log" 2>&1); then
            if ! (cd "$NPM_DIR" && timeout 60 npm ping >/dev/null 2>&1); then
                echo "SKIP: the npm registry cannot be reached"
                exit 77
            fi
            cat "$NPM_DIR/npm.log"
            echo "FAIL: npm install $* failed with the registry reachable"
            exit 1
        fi
        echo "$want" >"$NPM_DIR/.wv-installed"
    fi
    flock -u "$lockfd"
    exec {lockfd}>&-
    export NODE_PATH=$NPM_DIR/node_modules
}
