# Signals processes of a boxshell session.
# Run as `SHELL -c SCRIPT reap MODE PID SIGNAL SHELLSIGS MARK DIR [PIDS...]`.
# MODE "command": the children of shell PID newer than MARK, and all their descendants. MARK is
#   `W:SINCE` (or just `W`): W the newest background job the session has seen, SINCE the boot
#   time in centiseconds when the command that started it ended. Children that started after
#   SINCE, or in the same clock tick with a PID above W, are the running command's; the others
#   are background jobs of earlier commands, which are spared. Without SINCE (or when this
#   /proc/uptime is not the clock of process start times), a PID above W decides. The shell
#   itself is frozen first (so it starts nothing new while they are found) and then gets each
#   of SHELLSIGS (a space-separated list, may be empty) while its children are still frozen,
#   so it has seen its own signal when it learns how they ended.
# MODE "session": every process in PID's process group or session and all their descendants.
# MODE "pids": the PIDS that are still in PID's process group or session, and their descendants.
# MODE "environ": every process whose environment holds MARK (PID is unused), and descendants.
# The process running this script, and zombies, are never targets. The targets are first
# frozen with SIGSTOP, waiting until each has stopped and scanning again until no new one
# appears, so nothing can fork its way out between the scan and the signal; then they get
# SIGNAL (and SIGCONT, unless SIGNAL is KILL). After a KILL the scan runs again, to catch what
# forked while dying. DIR, if not empty, is removed afterwards (the session's temporary files).
# Prints the PIDs it signalled. Uses only shell built-ins and /proc (and rm for DIR), so it
# works in minimal images.
m=$1 s=$2 g=$3 h=$4 w=$5 r=$6 n='
'
shift 6
roots=" $* "
u=
case $w in *:*) u=${w#*:} w=${w%%:*} ;; esac
if [ -n "$u" ]; then
    # Process start times are clock ticks since boot, the clock of /proc/uptime unless that is
    # virtualised (lxcfs): this script has just started, so the two must about agree.
    if read -r up x </proc/uptime && read -r l </proc/$$/stat; then
        set -- ${l##*) }
        up=${up%.*}${up#*.}
        [ $((up - ${20})) -lt 200 ] && [ $((${20} - up)) -lt 200 ] || u=
    else
        u=
    fi
fi
signalled=
round=0
# Waits until process $1 has stopped (or is gone).
stopped() {
    k=0
    while [ $k -lt 100 ]; do
        read -r l 2>/dev/null </proc/$1/stat || return 0
        set -- "$1" ${l##*) }
        case $2 in T | t | Z | X) return 0 ;; esac
        k=$((k + 1))
    done
}
[ "$m" = command ] && [ -n "$h" ] && kill -s STOP "$s" 2>/dev/null && stopped "$s"
while [ $round -lt 5 ]; do
    round=$((round + 1))
    done=' '
    i=0
    while [ $i -lt 20 ]; do
        i=$((i + 1))
        set +f
        all=
        for d in /proc/[1-9]*; do
            p=${d#/proc/}
            read -r l 2>/dev/null <"$d/stat" || continue
            IFS=' '
            set -- ${l##*) }
            [ "$1" = Z ] && continue
            e=0
            if [ "$m" = environ ]; then
                while IFS= read -r x || [ -n "$x" ]; do
                    case $x in *"$w"*) e=1 && break ;; esac
                done 2>/dev/null <"$d/environ"
            fi
            all="$all$p $2 $3 $4 $e ${20}$n"
        done
        set -f
        t=' '
        IFS=$n
        for l in $all; do
            IFS=' '
            set -- $l
            [ "$1" = "$$" ] && continue
            case $m in
            command)
                [ "$2" = "$s" ] || continue
                if [ -n "$u" ]; then
                    [ "$6" -gt "$u" ] || { [ "$6" -eq "$u" ] && [ "$1" -gt "$w" ]; }
                else
                    [ "$1" -gt "$w" ]
                fi && t="$t$1 "
                ;;
            session) { [ "$3" = "$s" ] || [ "$4" = "$s" ]; } && t="$t$1 " ;;
            pids) case $roots in *" $1 "*) { [ "$3" = "$s" ] || [ "$4" = "$s" ]; } && t="$t$1 " ;; esac ;;
            environ) [ "$5" = 1 ] && t="$t$1 " ;;
            esac
        done
        c=1
        while [ $c = 1 ]; do
            c=0
            IFS=$n
            for l in $all; do
                IFS=' '
                set -- $l
                case $t in *" $2 "*) case $t in *" $1 "*) ;; *) [ "$1" != "$$" ] && t="$t$1 " && c=1 ;; esac ;; esac
            done
        done
        new=
        IFS=' '
        for p in $t; do
            case $done in *" $p "*) ;; *) new="$new $p" ;; esac
        done
        [ -z "$new" ] && break
        kill -s STOP $new 2>/dev/null
        # A signal is delivered when its target next runs: wait until each has stopped, or it
        # could still fork after the next scan.
        for p in $new; do
            stopped "$p"
        done
        done="$done${new# } "
    done
    IFS=' '
    [ "$done" = ' ' ] && break
    kill -s "$g" $done 2>/dev/null
    [ "$g" = KILL ] || [ "$m" = command ] || kill -s CONT $done 2>/dev/null
    signalled="$signalled$done"
    [ "$g" = KILL ] && [ "$m" = session ] || break
done
if [ "$m" = command ]; then
    # The shell gets its signals while the command's processes are still frozen, then all go on.
    [ -z "$h" ] || { for x in $h; do kill -s "$x" "$s" 2>/dev/null; done; kill -s CONT "$s" 2>/dev/null; }
    [ "$g" = KILL ] || [ "$done" = ' ' ] || kill -s CONT $done 2>/dev/null
fi
[ -z "$r" ] || rm -rf -- "$r"
echo $signalled
