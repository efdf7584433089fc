# What run.pl and slurm.pl share: Kaldi's job-array command line, command quoting, the
# per-job log header/footer, and the failure report.
package SidkdJobs;
use strict;
use warnings;
use POSIX qw(strftime);
use File::Path qw(make_path);
use File::Basename qw(dirname);

# parse_command_line($prog, \%options, @ARGV) -> hash with
#   var, start, end (array form; var undef otherwise), log, cmd (list of words).
# %options maps option names (with dashes, no leading --) to default values; the caller's
# known options are filled in. Unknown options are accepted with a warning, as queue options
# differ between back-ends and scripts pass them blindly.
sub parse_command_line {
  my ($prog, $options, @args) = @_;
  while (@args && $args[0] =~ m/^--/) {
    my $arg = shift @args;
    last if $arg eq '--';
    my ($name, $value);
    if ($arg =~ m/^--([^=]+)=(.*)$/s) {
      ($name, $value) = ($1, $2);
    } else {
      $name = substr($arg, 2);
      die "$prog: option $arg needs a value\n" unless @args;
      $value = shift @args;
    }
    $name =~ s/_/-/g;
    if (exists $options->{$name}) {
      $options->{$name} = $value;
    } else {
      print STDERR "$prog: ignoring unknown option --$name\n";
    }
  }
  my %job = (var => undef, start => 1, end => 1);
  if (@args && $args[0] =~ m/^([A-Za-z_][A-Za-z0-9_]*)=(\d+)(?::(\d+))?$/) {
    shift @args;
    ($job{var}, $job{start}, $job{end}) = ($1, $2, defined $3 ? $3 : $2);
    die "$prog: empty job range $job{var}=$job{start}:$job{end}\n" if $job{end} < $job{start};
  } elsif (@args && $args[0] =~ m/^[A-Za-z_][A-Za-z0-9_]*=/) {
    die "$prog: bad job range '$args[0]' (expected like JOB=1:4)\n";
  }
  die "$prog: usage: $prog [options] [JOB=1:N] <log-file> <command...>\n" if @args < 2;
  $job{log} = shift @args;
  $job{cmd} = [@args];
  if (defined $job{var} && $job{end} > $job{start} && index($job{log}, $job{var}) < 0) {
    die "$prog: the log file '$job{log}' does not contain $job{var}: "
      . "the $job{var}s would overwrite one log\n";
  }
  return \%job;
}

# One argument is the whole command (it may hold pipes, as in: run.pl log 'a | b').
# Several arguments: words without whitespace are passed as they are (so a separate '|'
# stays a pipe, as in Kaldi); others are single-quoted so they stay one word.
sub command_string {
  my @words = @_;
  return $words[0] if @words == 1;
  my @out;
  for my $w (@words) {
    if ($w =~ m/^\S+$/) {
      push @out, $w;
    } else {
      (my $q = $w) =~ s/'/'\\''/g;
      push @out, "'$q'";
    }
  }
  return join(' ', @out);
}

# Replace every occurrence of the job variable by the job number (Kaldi does plain replacement).
sub substitute {
  my ($text, $var, $id) = @_;
  return $text unless defined $var;
  $text =~ s/\Q$var\E/$id/g;
  return $text;
}

sub now { return strftime('%a %b %e %H:%M:%S %Z %Y', localtime); }

sub make_log_dir {
  my ($prog, $log) = @_;
  my $dir = dirname($log);
  return if -d $dir;
  eval { make_path($dir); 1 } or die "$prog: cannot create log directory $dir: $@\n";
}

sub write_header {
  my ($prog, $log, $cmd) = @_;
  make_log_dir($prog, $log);
  open(my $fh, '>', $log) or die "$prog: cannot write log $log: $!\n";
  print $fh "# $cmd\n# Started at " . now() . "\n#\n";
  close($fh);
}

sub write_footer {
  my ($log, $seconds, $threads, $code) = @_;
  open(my $fh, '>>', $log) or return;
  print $fh "# Accounting: time=$seconds threads=$threads\n";
  print $fh "# Ended (code $code) at " . now() . "\n";
  close($fh);
}

# Prints the Kaldi-style summary for failed jobs and returns the exit status for the caller.
sub report {
  my ($prog, $job, $failed) = @_;    # $failed: list of job ids that failed
  my $n = $job->{end} - $job->{start} + 1;
  return 0 unless @$failed;
  my @logs = map { substitute($job->{log}, $job->{var}, $_) } @$failed;
  if (@$failed == 1) {
    print STDERR "$prog: job failed, log is in $logs[0]\n" if $n == 1;
    print STDERR "$prog: 1 / $n failed, log is in $logs[0]\n" if $n > 1;
  } else {
    my @shown = @logs > 10 ? (@logs[0 .. 9], '...') : @logs;
    print STDERR "$prog: " . scalar(@$failed) . " / $n failed, logs are in " . join(' ', @shown) . "\n";
  }
  print_tail($prog, $logs[0]);
  return 1;
}

# The last lines the (first) failed job wrote, less run.pl's own header and footer: the reason
# reaches the terminal, not only the log's path.
our $TAIL_LINES = 15;
sub print_tail {
  my ($prog, $log) = @_;
  open(my $fh, '<', $log) or return;
  my @lines = grep { !/^# (Accounting: |Ended \(code |Started at )/ && !/^#$/ } <$fh>;
  close($fh);
  shift @lines if @lines && $lines[0] =~ /^# /;  # the command line
  return unless @lines;
  my @tail = @lines > $TAIL_LINES ? @lines[-$TAIL_LINES .. -1] : @lines;
  print STDERR "$prog: the last lines of $log:\n";
  print STDERR "  | $_" for @tail;
  print STDERR "\n" unless $tail[-1] =~ /\n$/;
}

1;
