#!/usr/bin/env bash
# Crash safety: topowire-init is killed with SIGKILL at staggered points while
# it writes; every output file must always be absent, the complete old file or
# the complete new one, never a part. The kill points are spread evenly over
# the measured length of a run, with microsecond precision (perl Time::HiRes),
# and only kills that found the process still running are counted.
source "$(dirname "$0")/../lib.sh"
INIT=$TW_BIN_DIR/topowire-init
RUNS=${TW_CRASH_RUNS:-400}
export NODE_NAME=ip-10-0-41-17.ec2.internal

"$INIT" --sources downward --podinfo-dir "$TW_FIXTURES/podinfo" --rack region --out-dir "$TW_TMP/old" 2>/dev/null
"$INIT" --sources downward --podinfo-dir "$TW_FIXTURES/podinfo" --rack zone --out-dir "$TW_TMP/new" 2>/dev/null
cmp -s "$TW_TMP/old/rack.properties" "$TW_TMP/new/rack.properties"
tap $((1 - $?)) "old and new files differ (so a mix would show)"

perl -MTime::HiRes=usleep,time -MPOSIX=:sys_wait_h -e '
    my ($init, $fixtures, $tmp, $runs) = @ARGV;
    my @files = qw(topology.env rack.properties client.rack topology.json);
    my @args = ($init, "--sources", "downward", "--podinfo-dir", "$fixtures/podinfo",
                "--rack", "zone", "--log-level", "error", "--out-dir", "$tmp/out");
    sub slurp { my $f = shift; open(my $h, "<", $f) or return undef; local $/; my $d = <$h>; close $h; $d }
    my (%old, %new);
    for my $f (@files) { $old{$f} = slurp("$tmp/old/$f"); $new{$f} = slurp("$tmp/new/$f"); }
    sub run { my $pid = fork(); if ($pid == 0) { open(STDERR, ">", "/dev/null"); exec(@args) or POSIX::_exit(127); } $pid }
    sub reset_out { my $with_old = shift; system("rm", "-rf", "$tmp/out"); mkdir "$tmp/out";
        if ($with_old) { for my $f (@files) { open(my $h, ">", "$tmp/out/$f"); print $h $old{$f}; close $h; } } }
    # The length of an undisturbed run, median of 21.
    my @t;
    for (1..21) { reset_out(1); my $t0 = time; my $p = run(); waitpid($p, 0); push @t, time - $t0; }
    @t = sort { $a <=> $b } @t; my $len = $t[10];
    my ($landed, $bad, $report) = (0, 0, "");
    for my $i (1..$runs) {
        reset_out($i % 2);
        my $delay = $len * 1.2 * (($i * 7919) % $runs) / $runs;   # evenly spread, shuffled
        my $p = run();
        usleep($delay * 1e6);
        if (waitpid($p, WNOHANG) == 0) { kill 9, $p; $landed++; }
        waitpid($p, 0);
        for my $f (@files) {
            my $d = slurp("$tmp/out/$f");
            next unless defined $d;
            next if $d eq $new{$f} || $d eq $old{$f};
            $bad++; $report .= " run $i: $f (" . length($d) . " bytes)";
        }
    }
    printf "%s - SIGKILL at %d points over a %.1f ms run (%d found it running): no partial or mixed file%s\n",
        $bad ? "not ok 2" : "ok 2", $runs, $len * 1000, $landed, $bad ? " -$report" : "";
    printf "%s - the kills spread over the run: %d of %d landed while it ran\n",
        ($landed > $runs / 4 && $landed < $runs) ? "ok 3" : "not ok 3", $landed, $runs;
' "$INIT" "$TW_FIXTURES" "$TW_TMP" "$RUNS"
echo "1..3"
