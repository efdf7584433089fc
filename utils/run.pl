#!/usr/bin/env perl
# Runs a command (or an array of commands) on this machine, logging each to its own file.
#
#   run.pl [options] JOB=1:N <log-file> <command...>   # JOB replaced by 1..N in log and command
#   run.pl [options] <log-file> <command...>
#
# Options: --max-jobs-run N   at most N jobs at once (default: all of them)
#          --num-threads N    only recorded in the log's Accounting line
#          --mem, --gpu, --config and other queue options are accepted and ignored, so
#          that "$cmd" can be run.pl or slurm.pl with the same arguments.
# Each command runs with "bash -c"; its stdout and stderr go to its log, which starts with
# "# <command>" and "# Started at <date>" and ends with "# Accounting: time=<s> threads=<n>"
# and "# Ended (code <status>) at <date>". Exits 0 if every job succeeded; otherwise prints
# "run.pl: F / N failed, log is in <log>" naming the failed logs and exits 1.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::RealBin/lib";
use SidkdJobs;
use POSIX ();

my $prog = 'run.pl';
my %options = ('max-jobs-run' => 0, 'mem' => '', 'num-threads' => 1, 'gpu' => 0, 'config' => '');
my $job = eval { SidkdJobs::parse_command_line($prog, \%options, @ARGV) };
if ($@) { print STDERR $@; exit 1; }
my $max = $options{'max-jobs-run'};
if ($max !~ m/^\d+$/) { print STDERR "$prog: --max-jobs-run must be a number, got '$max'\n"; exit 1; }
my $threads = $options{'num-threads'};
$threads = 1 unless $threads =~ m/^\d+$/ && $threads > 0;
my $n = $job->{end} - $job->{start} + 1;
$max = $n if $max <= 0 || $max > $n;

# Job id -> pid of the process that runs it and writes its log footer.
my %running;
my @failed;

sub run_one {
  my ($id) = @_;
  my $log = SidkdJobs::substitute($job->{log}, $job->{var}, $id);
  my $cmd = SidkdJobs::substitute(SidkdJobs::command_string(@{ $job->{cmd} }), $job->{var}, $id);
  SidkdJobs::write_header($prog, $log, $cmd);
  my $start = time();
  my $pid = fork();
  die "$prog: fork failed: $!\n" unless defined $pid;
  if ($pid == 0) {
    open(STDOUT, '>>', $log) or POSIX::_exit(127);
    open(STDERR, '>&', \*STDOUT) or POSIX::_exit(127);
    exec('bash', '-c', $cmd) or POSIX::_exit(127);
  }
  waitpid($pid, 0);
  my $status = $?;
  my $code = ($status & 127) ? 128 + ($status & 127) : $status >> 8;
  SidkdJobs::write_footer($log, time() - $start, $threads, $code);
  return $code;
}

my $next = $job->{start};
while ($next <= $job->{end} || %running) {
  while ($next <= $job->{end} && keys(%running) < $max) {
    my $id = $next++;
    my $pid = fork();
    die "$prog: fork failed: $!\n" unless defined $pid;
    if ($pid == 0) {
      my $code = eval { run_one($id) };
      if ($@) { print STDERR $@; POSIX::_exit(1); }
      POSIX::_exit($code > 255 ? 255 : $code);
    }
    $running{$pid} = $id;
  }
  my $pid = wait();
  last if $pid < 0;
  my $id = delete $running{$pid};
  next unless defined $id;
  push @failed, $id if $? != 0;
}
@failed = sort { $a <=> $b } @failed;
exit SidkdJobs::report($prog, $job, \@failed);
