# Signals processes of a boxshell session from outside it, through a second exec.
#
# Run as `SHELL -c SCRIPT reap MODE SHELL SIGNAL SHELL_SIGNALS INSTANCE MARK DIR [PIDS...]`, the
# arguments built in one place (`Reap::args`, src/session/signal.rs):
#   MODE           what to signal, one of:
#                  command  the running command: the children of SHELL that started after MARK,
#                           and all their descendants; SHELL itself gets SHELL_SIGNALS
#                  session  every process in SHELL's process group or session, and descendants
#                  pids     the PIDS still in SHELL's process group or session, and descendants
#                  tree     the descendants of the PIDS (each PID:START, a process counting only
#                           while its start time is START), not the PIDS themselves
#                  environ  every process whose environment holds MARK, and descendants
#   SHELL          the PID of the session's shell
#   SIGNAL         the signal for the targets: INT, KILL, ...
#   SHELL_SIGNALS  command mode: the signals for the shell itself (space-separated, may be empty)
#   INSTANCE       SHELL_START:INIT_START, the start times (clock ticks since boot) of the shell
#                  and of PID 1 when the session opened, either may be empty
#   MARK           command mode: LAST_JOB:SINCE (or LAST_JOB), see below; environ: NAME=VALUE
#   DIR            removed afterwards, if not empty (the session's temporary files)
#
# Prints one line: `signalled PID...`; or `gone` when the shell is not the session's any more
# (it exited: a running command has nothing left to signal); or `restarted` when PID 1 is not
# the one the session saw: the container was restarted (or re-created) since, PIDs name other
# processes now, and nothing is signalled. A PID is no identity across restarts; a PID and its
# start time are.
#
# Command mode tells the running command's processes from background jobs of earlier commands,
# which are spared, by their start time: LAST_JOB is the newest background job the session has
# seen, SINCE the boot time in centiseconds when the command that started it ended. The session
# writes no command within a clock tick of SINCE, so the children of SHELL that started after
# SINCE are the running command's. Without SINCE (or when this /proc/uptime is not the clock of
# process start times, as under lxcfs), a PID above LAST_JOB decides, which fails once PIDs wrap.
#
# The targets are first frozen with SIGSTOP, scanning again until no new one appears, so nothing
# can fork its way out between the scan and the signal; then they get SIGNAL (and SIGCONT,
# unless SIGNAL is KILL; after a KILL, the script waits until they have died, so that nothing
# they write comes after what the caller prints next). In command mode the shell is frozen
# before its children are looked for, so it starts nothing new meanwhile, and gets its signals
# while they are still frozen, so it has seen its own signal when it learns how they ended.
# After a KILL in session mode the scan runs again, to catch what forked while dying. The
# process running this script, and zombies, are never targets (it may run in a subshell of the
# session's shell, whose `$$` is not its own PID). Only shell built-ins and /proc are used (and
# rm for DIR), so it works in minimal images.
mode=$1 shell=$2 sig=$3 shell_sigs=$4 instance=$5 mark=$6 dir=$7 nl='
'
shift 7
roots=" $* "

# The start time of process $1, in `start` (empty when it is gone).
start_of() {
    start=
    read -r line 2>/dev/null </proc/$1/stat || return 0
    set -- ${line##*) }
    start=${20}
}

# This process.
me=$$
! read -r line 2>/dev/null </proc/self/stat || me=${line%% *}

# Is this still the session's container instance, and its shell still there?
start_of "$shell"
if [ -n "${instance%%:*}" ] && [ "$start" != "${instance%%:*}" ]; then
    [ "$mode" = command ] && { echo gone; exit 0; }
    start_of 1
    [ -n "${instance#*:}" ] && [ "$start" != "${instance#*:}" ] && { echo restarted; exit 0; }
fi

last_job=$mark since=
case $mark in *:*) since=${mark#*:} last_job=${mark%%:*} ;; esac
if [ "$mode" = command ] && [ -n "$since" ]; then
    # Process start times are clock ticks since boot, the clock of /proc/uptime unless that is
    # virtualised: this script has just started, so the two must about agree (within 2 s).
    start_of "$me"
    if read -r up _ </proc/uptime && [ -n "$start" ]; then
        up=${up%.*}${up#*.}
        [ $((up - start)) -lt 200 ] && [ $((start - up)) -lt 200 ] || since=
    else
        since=
    fi
fi

# Waits until process $1 is in a state the pattern $2 matches, or gone, looking at most $3
# times. A signal is delivered when its target next runs, which on a loaded machine takes a
# while.
reaches() {
    pid=$1 states=$2 looks=$3
    while [ $looks -gt 0 ]; do
        read -r line 2>/dev/null </proc/$pid/stat || return 0
        set -- ${line##*) }
        case $1 in $states) return 0 ;; esac
        looks=$((looks - 1))
    done
}
# A stopped process cannot fork.
stopped() { reaches "$1" '[TtZX]' 100; }

[ "$mode" = command ] && [ -n "$shell_sigs" ] && kill -s STOP "$shell" 2>/dev/null && stopped "$shell"
signalled=
kill_round=0
# Session mode with KILL: up to 5 rounds of freeze-and-kill, for what forks while dying.
while [ $kill_round -lt 5 ]; do
    kill_round=$((kill_round + 1))
    frozen=' '
    scan=0
    # Up to 20 scans: each freezes what the last one found, until a scan finds nothing new.
    while [ $scan -lt 20 ]; do
        scan=$((scan + 1))
        set +f
        # One line per process: PID PPID PGID SID IN_ENVIRON START
        table=
        for d in /proc/[1-9]*; do
            read -r line 2>/dev/null <"$d/stat" || continue
            IFS=' '
            set -- ${line##*) }
            [ "$1" = Z ] && continue
            in_environ=0
            if [ "$mode" = environ ]; then
                while IFS= read -r entry || [ -n "$entry" ]; do
                    case $entry in *"$mark"*) in_environ=1 && break ;; esac
                done 2>/dev/null <"$d/environ"
            fi
            table="$table${d#/proc/} $2 $3 $4 $in_environ ${20}$nl"
        done
        set -f
        targets=' ' parents=' '
        IFS=$nl
        for row in $table; do
            IFS=' '
            set -- $row
            [ "$1" = "$me" ] && continue
            case $mode in
            command)
                [ "$2" = "$shell" ] || continue
                if [ -n "$since" ]; then
                    [ "$6" -gt "$since" ]
                else
                    [ "$1" -gt "$last_job" ]
                fi && targets="$targets$1 "
                ;;
            session) { [ "$3" = "$shell" ] || [ "$4" = "$shell" ]; } && targets="$targets$1 " ;;
            pids) case $roots in *" $1 "*) { [ "$3" = "$shell" ] || [ "$4" = "$shell" ]; } && targets="$targets$1 " ;; esac ;;
            tree) case $roots in *" $1:$6 "*) { [ "$3" = "$shell" ] || [ "$4" = "$shell" ]; } && parents="$parents$1 " ;; esac ;;
            environ) [ "$5" = 1 ] && targets="$targets$1 " ;;
            esac
        done
        # Add the descendants of the targets, until none is added.
        added=1
        while [ $added = 1 ]; do
            added=0
            IFS=$nl
            for row in $table; do
                IFS=' '
                set -- $row
                case $targets$parents in *" $2 "*) case $targets in *" $1 "*) ;; *) [ "$1" != "$me" ] && targets="$targets$1 " && added=1 ;; esac ;; esac
            done
        done
        new=
        IFS=' '
        for p in $targets; do
            case $frozen in *" $p "*) ;; *) new="$new $p" ;; esac
        done
        [ -z "$new" ] && break
        kill -s STOP $new 2>/dev/null
        for p in $new; do
            stopped "$p"
        done
        frozen="$frozen${new# } "
    done
    IFS=' '
    [ "$frozen" = ' ' ] && break
    kill -s "$sig" $frozen 2>/dev/null
    # A process killed while it writes to a full pipe can still finish that write once it
    # runs: the caller's next line (a command's sentinel) must come after every byte it wrote.
    if [ "$sig" = KILL ]; then
        for p in $frozen; do
            reaches "$p" '[ZX]' 2000
        done
    fi
    [ "$sig" = KILL ] || [ "$mode" = command ] || kill -s CONT $frozen 2>/dev/null
    signalled="$signalled$frozen"
    [ "$sig" = KILL ] && [ "$mode" = session ] || break
done
if [ "$mode" = command ]; then
    # The shell gets its signals while the command's processes are still frozen, then all go on.
    [ -z "$shell_sigs" ] || { for s in $shell_sigs; do kill -s "$s" "$shell" 2>/dev/null; done; kill -s CONT "$shell" 2>/dev/null; }
    [ "$sig" = KILL ] || [ "$frozen" = ' ' ] || kill -s CONT $frozen 2>/dev/null
fi
[ -z "$dir" ] || rm -rf -- "$dir"
echo signalled $signalled
