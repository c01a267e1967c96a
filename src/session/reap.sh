# Signals processes of a boxshell session.
# Run as `SHELL -c SCRIPT reap MODE PID SIGNAL MARK DIR [PIDS...]`.
# MODE "command": the children of shell PID newer than MARK (the highest $! the session has seen,
#   so background jobs of earlier commands are spared), and all their descendants.
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
m=$1 s=$2 g=$3 w=$4 r=$5 n='
'
shift 5
roots=" $* "
signalled=
round=0
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
            all="$all$p $2 $3 $4 $e$n"
        done
        set -f
        t=' '
        IFS=$n
        for l in $all; do
            IFS=' '
            set -- $l
            [ "$1" = "$$" ] && continue
            case $m in
            command) [ "$2" = "$s" ] && [ "$1" -gt "$w" ] && t="$t$1 " ;;
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
            k=0
            while [ $k -lt 100 ]; do
                read -r l 2>/dev/null </proc/$p/stat || break
                set -- ${l##*) }
                case $1 in T | t | Z | X) break ;; esac
                k=$((k + 1))
            done
        done
        done="$done${new# } "
    done
    IFS=' '
    [ "$done" = ' ' ] && break
    kill -s "$g" $done 2>/dev/null
    [ "$g" = KILL ] || kill -s CONT $done 2>/dev/null
    signalled="$signalled$done"
    [ "$g" = KILL ] && [ "$m" = session ] || break
done
[ -z "$r" ] || rm -rf -- "$r"
echo $signalled
