# Sourced by bin/run and bin/stop (after _venv.sh, from the project root): where bin/run keeps what it started, and
# how the two stop it.

VAR_DIR=${WORKFLOW_VAR_DIR:-var}
RUN_DIR=$VAR_DIR/run # pid files; also pgserver's runtime directory (workflow_project/embedded.py), hence mode 0700
mkdir -p "$RUN_DIR"
chmod 700 "$RUN_DIR"

# How long the services have, together, to finish what they are doing when asked to stop; then they are killed.
# gunicorn's own limit (bin/run: --graceful-timeout) is longer, so that it is this script that kills a worker still
# busy, saying so, rather than gunicorn ("Worker was sent SIGKILL! Perhaps out of memory?").
STOP_SECONDS=4
# How each service stops: gunicorn's INT is its quick shutdown (workers leave at once, finishing a request in
# progress); celery's TERM is its warm shutdown (running jobs are finished, beat stops with the worker).
WEB="web server|gunicorn|INT"
WORKER="Celery worker and beat|celery|TERM"

# Tenths of a second on a clock that runs in real time (bash 5's EPOCHREALTIME); else counts of 0.1 s sleeps, which a
# busy machine stretches.
now_tenths() {
    if [ -n "${EPOCHREALTIME:-}" ]; then
        local micros=${EPOCHREALTIME/[.,]/}
        echo $((micros / 100000))
    else
        echo $((${_ticks:=0}))
    fi
}

group_alive() {
    kill -0 -- "-$1" 2>/dev/null || kill -0 "$1" 2>/dev/null
}

# The service of a pid file, as "name|program|signal|pid", if the process it names runs and is that program (a pid
# file left by a process that died without removing it may name another program by now).
service_of_pid_file() {
    local service=$1 file=$2 name program sig pid
    IFS='|' read -r name program sig <<<"$service"
    pid=$(cat "$RUN_DIR/$file" 2>/dev/null) || return 0
    if [ -n "$pid" ] && ps -p "$pid" -o command= 2>/dev/null | grep -q "$program"; then
        echo "$service|$pid"
    fi
}

# Stop services given as "name|program|signal|pid": send each its signal, give them $1 seconds together, then kill
# what is left of their process groups (bin/run starts each in a group of its own). Prints one line per service.
services_stop() {
    local seconds=$1 name program sig pid alive entry deadline
    shift
    [ $# -gt 0 ] || return 0
    for entry in "$@"; do
        IFS='|' read -r name program sig pid <<<"$entry"
        kill "-$sig" "$pid" 2>/dev/null || true
    done
    _ticks=0
    deadline=$(($(now_tenths) + seconds * 10))
    while [ "$(now_tenths)" -lt "$deadline" ]; do
        alive=false
        for entry in "$@"; do
            IFS='|' read -r name program sig pid <<<"$entry"
            if group_alive "$pid"; then alive=true; fi
        done
        $alive || break
        sleep 0.1
        _ticks=$((_ticks + 1))
    done
    for entry in "$@"; do
        IFS='|' read -r name program sig pid <<<"$entry"
        if group_alive "$pid"; then
            kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
            echo "Killed the $name ($program, pid $pid): it had not stopped within $seconds s."
        else
            echo "Stopped the $name ($program, pid $pid)."
        fi
    done
    rm -f "$RUN_DIR/gunicorn.pid" "$RUN_DIR/celery.pid"
}
