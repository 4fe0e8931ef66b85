#!/usr/bin/env bash
# The local Apache Kafka broker: single node, KRaft (combined broker + controller), loopback only.
#
# Assumptions: java (17+) and mvn are installed (deploy/local/bootstrap.sh installs nothing Java-side;
# this machine kind has both); Maven resolves artifacts from its configured repository (Maven Central).
#
#   kafka.sh fetch                                    copy the jars into the cache (first use only)
#   kafka.sh format DATA_DIR PORT [CONTROLLER_PORT [SECURE_PORT]]   render server.properties, format once
#   kafka.sh start  DATA_DIR PORT [CONTROLLER_PORT [SECURE_PORT]]   fetch + format + start detached; prints the pid.
#                                                     Does not wait for clients: the caller does (touchpoint
#                                                     broker start waits with a Kafka AdminClient).
#   kafka.sh stop   DATA_DIR [TIMEOUT_SECONDS]        SIGTERM (controlled shutdown), wait, then SIGKILL
#   kafka.sh status DATA_DIR                          "running pid=N port=P version=V", exit 0; else exit 3
#   kafka.sh version                                  the Kafka version this script runs
#
# Layout of DATA_DIR: server.properties, kafka.pid, data/ (log.dirs), logs/server.log (log4j2), logs/kafka.out
# (JVM stdout/stderr). The controller listens on CONTROLLER_PORT (default PORT+1).
# Secured listener (tests of Kafka security): with SECURE_PORT, a second listener SECURE://127.0.0.1:SECURE_PORT
# speaks SASL_SSL with SCRAM-SHA-512 (the PLAINTEXT listener stays, loopback only, for the broker itself). It reads
# DATA_DIR/secure/: broker.pem (unencrypted PKCS#8 key + certificate chain, PEM), scram-users (one "name password"
# per line; the users are created when the storage is formatted, so they must be there before the first start;
# names and passwords without spaces, commas or brackets), and optionally client-ca.pem: then TLS client
# certificates signed by that CA are required too (mTLS).
# Jar cache: $TOUCHPOINT_KAFKA_CACHE, default ${XDG_CACHE_HOME:-~/.cache}/touchpoint/kafka-<version>; it is
# keyed by the pom's checksum, so editing pom.xml refetches.
# Java options: $TOUCHPOINT_KAFKA_JAVA_OPTS (default -Xmx512m -Xms128m).
set -euo pipefail

KAFKA_VERSION=4.1.1
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
POM=$HERE/pom.xml
CACHE_DIR=${TOUCHPOINT_KAFKA_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/touchpoint/kafka-$KAFKA_VERSION}
LIBS=$CACHE_DIR/libs
JAVA_OPTS=${TOUCHPOINT_KAFKA_JAVA_OPTS:--Xmx512m -Xms128m}

die() { echo "kafka.sh: $*" >&2; exit 1; }
say() { echo "$*" >&2; }

need() {
    command -v "$1" >/dev/null 2>&1 || die "$1 not found: $2"
}

pom_sum() { sha256sum "$POM" | cut -d' ' -f1; }

jars_ready() { [[ -f $LIBS/.complete && "$(cat "$LIBS/.complete")" == "$(pom_sum)" ]]; }

fetch() {
    jars_ready && return 0
    need java "install a Java 17+ runtime (apt-get install default-jre-headless)"
    need mvn "install Maven (apt-get install maven), or set KAFKA_BOOTSTRAP_SERVERS to an existing cluster"
    mkdir -p "$CACHE_DIR"
    # Two fetches at once (a test run and a bootstrap) must not interleave their copies.
    exec 9>"$CACHE_DIR/.lock"
    flock 9
    if jars_ready; then exec 9>&-; return 0; fi
    say "Fetching Apache Kafka $KAFKA_VERSION jars with Maven into $LIBS (first use only)..."
    local tmp=$CACHE_DIR/libs.tmp.$$ log=$CACHE_DIR/mvn.log
    rm -rf "$tmp"
    # Progress: one line per artifact downloaded; the full Maven log stays in mvn.log.
    if ! mvn -B -f "$POM" dependency:copy-dependencies -DoutputDirectory="$tmp" 2>&1 \
        | tee "$log" \
        | sed -nu -e 's#^.*Downloaded from [^:]*: .*/\([^/]*\.jar\) .*$#  downloaded \1#p' -e '/ERROR/p' >&2
    then
        rm -rf "$tmp"
        die "fetching the Kafka jars failed; Maven's log: $log"
    fi
    [[ -f $tmp/kafka_2.13-$KAFKA_VERSION.jar ]] || { rm -rf "$tmp"; die "Maven ran but kafka_2.13-$KAFKA_VERSION.jar is missing; see $log"; }
    rm -rf "$LIBS"
    mv "$tmp" "$LIBS"
    pom_sum >"$LIBS/.complete"
    say "  $(ls "$LIBS"/*.jar | wc -l) jars ready in $LIBS"
    exec 9>&-  # closing the lock file releases the lock (and keeps it out of the broker process)
}

# Absolute, physical path of a data dir (created if missing).
abs_dir() { mkdir -p "$1" && (cd "$1" && pwd -P); }

java_run() {
    local data=$1; shift
    # shellcheck disable=SC2086  # JAVA_OPTS is a list of options
    java $JAVA_OPTS -Djava.awt.headless=true -Dkafka.logs.dir="$data/logs" \
        -Dlog4j2.configurationFile="$HERE/log4j2.properties" -cp "$LIBS/*" "$@"
}

render() {
    local data=$1 port=$2 cport=$3 sport=${4:-}
    mkdir -p "$data/data" "$data/logs"
    sed -e "s#@PORT@#$port#g" -e "s#@CONTROLLER_PORT@#$cport#g" -e "s#@LOG_DIRS@#$data/data#g" \
        "$HERE/server.properties.template" >"$data/server.properties.new"
    if [[ -n $sport ]]; then secure_properties "$data" "$port" "$cport" "$sport" >>"$data/server.properties.new"; fi
    mv "$data/server.properties.new" "$data/server.properties"
}

# The SASL_SSL listener's settings (they override the listener lines of the template: later keys win).
secure_properties() {
    local port=$2 cport=$3 sport=$4 sec=$1/secure
    [[ -f $sec/broker.pem ]] || die "SECURE_PORT given but $sec/broker.pem (broker key + certificate) is missing"
    [[ -f $sec/scram-users ]] || die "SECURE_PORT given but $sec/scram-users is missing"
    cat <<EOF

# --- SASL_SSL listener (kafka.sh SECURE_PORT) ---
listeners=PLAINTEXT://127.0.0.1:$port,CONTROLLER://127.0.0.1:$cport,SECURE://127.0.0.1:$sport
advertised.listeners=PLAINTEXT://127.0.0.1:$port,SECURE://127.0.0.1:$sport
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT,SECURE:SASL_SSL
sasl.enabled.mechanisms=SCRAM-SHA-512
listener.name.secure.sasl.enabled.mechanisms=SCRAM-SHA-512
listener.name.secure.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;
listener.name.secure.ssl.keystore.type=PEM
listener.name.secure.ssl.keystore.location=$sec/broker.pem
EOF
    if [[ -f $sec/client-ca.pem ]]; then
        cat <<EOF
listener.name.secure.ssl.client.auth=required
listener.name.secure.ssl.truststore.type=PEM
listener.name.secure.ssl.truststore.location=$sec/client-ca.pem
EOF
    fi
}

format() {
    local data port cport sport
    [[ $# -ge 2 ]] || die "usage: kafka.sh format DATA_DIR PORT [CONTROLLER_PORT [SECURE_PORT]]"
    data=$(abs_dir "$1"); port=$2; cport=${3:-$(($2 + 1))}; sport=${4:-}
    fetch
    render "$data" "$port" "$cport" "$sport"
    if [[ ! -f $data/data/meta.properties ]]; then
        local uuid name password scram=()
        uuid=$(java_run "$data" kafka.tools.StorageTool random-uuid)
        if [[ -n $sport ]]; then
            while read -r name password; do
                [[ -n $name ]] && scram+=(--add-scram "SCRAM-SHA-512=[name=$name,password=$password]")
            done <"$data/secure/scram-users"
        fi
        # No --standalone: controller.quorum.voters already names the (static) quorum.
        java_run "$data" kafka.tools.StorageTool format -t "$uuid" -c "$data/server.properties" "${scram[@]}" \
            >"$data/logs/format.log" 2>&1 || die "formatting $data/data failed; see $data/logs/format.log"
        say "Formatted $data/data (cluster id $uuid)"
    fi
}

# The pid of the broker that runs on DATA_DIR, or nothing. A pid counts only while its command line is
# this broker's (pids are reused; a zombie has an empty command line).
running_pid() {
    local data=$1 pid cmd
    [[ -d $data ]] || return 1
    if [[ -f $data/kafka.pid ]]; then
        pid=$(cat "$data/kafka.pid")
        if [[ $pid =~ ^[0-9]+$ && -r /proc/$pid/cmdline ]]; then
            cmd=$(tr '\0' ' ' </proc/"$pid"/cmdline)
            if [[ $cmd == *"kafka.Kafka $data/server.properties"* ]]; then
                echo "$pid"
                return 0
            fi
        fi
    fi
    return 1
}

port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

start() {
    local data port cport sport pid
    [[ $# -ge 2 ]] || die "usage: kafka.sh start DATA_DIR PORT [CONTROLLER_PORT [SECURE_PORT]]"
    data=$(abs_dir "$1"); port=$2; cport=${3:-$(($2 + 1))}; sport=${4:-}
    if pid=$(running_pid "$data"); then
        say "Kafka already running on $data (pid $pid)"
        echo "$pid"
        return 0
    fi
    for p in "$port" "$cport" $sport; do
        port_in_use "$p" && die "port $p on 127.0.0.1 is already in use (another broker?); choose another with TOUCHPOINT_LOCAL_BROKER_PORT or stop it"
    done
    format "$data" "$port" "$cport" "$sport"
    : >"$data/logs/kafka.out"
    # setsid: the broker outlives the command that started it and ignores the terminal's Ctrl-C.
    setsid java $JAVA_OPTS -Djava.awt.headless=true -Dkafka.logs.dir="$data/logs" \
        -Dlog4j2.configurationFile="$HERE/log4j2.properties" -cp "$LIBS/*" \
        kafka.Kafka "$data/server.properties" >"$data/logs/kafka.out" 2>&1 </dev/null &
    pid=$!
    echo "$pid" >"$data/kafka.pid"
    echo "$pid"
}

stop() {
    local data timeout pid i
    [[ $# -ge 1 ]] || die "usage: kafka.sh stop DATA_DIR [TIMEOUT_SECONDS]"
    [[ -d $1 ]] || { say "Kafka not running ($1 does not exist)"; return 0; }
    data=$(abs_dir "$1"); timeout=${2:-30}
    if ! pid=$(running_pid "$data"); then
        rm -f "$data/kafka.pid"
        say "Kafka not running on $data"
        return 0
    fi
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < timeout * 10; i++)); do
        running_pid "$data" >/dev/null || break
        sleep 0.1
    done
    if running_pid "$data" >/dev/null; then
        say "Kafka (pid $pid) did not stop within ${timeout}s; killing it"
        kill -KILL "$pid" 2>/dev/null || true
        for ((i = 0; i < 50; i++)); do running_pid "$data" >/dev/null || break; sleep 0.1; done
    fi
    rm -f "$data/kafka.pid"
    say "Kafka stopped (pid $pid)"
}

status() {
    local data pid port
    [[ $# -ge 1 ]] || die "usage: kafka.sh status DATA_DIR"
    [[ -d $1 ]] || { echo "not running"; return 3; }
    data=$(abs_dir "$1")
    if pid=$(running_pid "$data"); then
        port=$(sed -n 's#^listeners=PLAINTEXT://[^:]*:\([0-9]*\).*#\1#p' "$data/server.properties" | head -n1)
        echo "running pid=$pid port=$port version=$KAFKA_VERSION"
        return 0
    fi
    echo "not running"
    return 3
}

cmd=${1:-}
[[ $# -gt 0 ]] && shift
case $cmd in
    fetch) fetch ;;
    format) format "$@" ;;
    start) start "$@" ;;
    stop) stop "$@" ;;
    status) status "$@" ;;
    version) echo "$KAFKA_VERSION" ;;
    *) sed -n '2,26s/^# \{0,1\}//p' "${BASH_SOURCE[0]}" >&2; exit 2 ;;
esac
