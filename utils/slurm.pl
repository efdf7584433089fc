#!/usr/bin/env perl
# Runs a command (or an array of commands) as a Slurm job, with run.pl's interface:
#
#   slurm.pl [options] JOB=1:N <log-file> <command...>
#   slurm.pl [options] <log-file> <command...>
#
# Options: --config FILE       option mapping (default conf/slurm.conf; see that file)
#          --mem X, --num-threads N, --gpu N   mapped to sbatch options through the config
#          --max-jobs-run N    at most N array tasks at once (sbatch --array=1-N%max)
#          --dry-run true      print the sbatch command and the job script, submit nothing
#                              (also when SIDKD_SLURM_DRY_RUN=1)
#          --poll-interval S   seconds between checks for finished tasks (default 10)
#          --gone-grace S      a task that left the queue without its marker counts as failed
#                              after S seconds (default 60; shared file systems lag)
# The job script goes to <log-dir>/q/<name>.sh; Slurm's own output to <log-dir>/q/<name>.*.out.
# Each task writes its log like run.pl and, when it ends, a marker file
# <log-dir>/q/done.<name>.<task> holding its exit status; slurm.pl waits for all markers
# (and notices tasks that left the queue without one), then reports failures like run.pl.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::RealBin/lib";
use SidkdJobs;
use Cwd qw(getcwd);
use File::Basename qw(basename dirname);
use File::Path qw(make_path);

my $prog = 'slurm.pl';
my %options = (
  'config' => '', 'mem' => undef, 'num-threads' => undef, 'gpu' => undef,
  'max-jobs-run' => 0, 'dry-run' => 'false', 'poll-interval' => 10, 'gone-grace' => 60,
);
# Options not listed above must be mapped by the config file; collect them separately.
my @argv = @ARGV;
my %extra;
{
  my @keep;
  while (@argv && $argv[0] =~ m/^--/ && $argv[0] ne '--') {
    my $arg = shift @argv;
    my ($name, $value);
    if ($arg =~ m/^--([^=]+)=(.*)$/s) { ($name, $value) = ($1, $2); }
    else {
      $name = substr($arg, 2);
      if (!@argv) { print STDERR "$prog: option $arg needs a value\n"; exit 1; }
      $value = shift @argv;
    }
    (my $dashed = $name) =~ s/_/-/g;
    if (exists $options{$dashed}) { push @keep, "--$dashed", $value; }
    else { $extra{ $dashed =~ s/-/_/gr } = $value; }
  }
  @argv = (@keep, @argv);
}
my $job = eval { SidkdJobs::parse_command_line($prog, \%options, @argv) };
if ($@) { print STDERR $@; exit 1; }

my $config = $options{config};
if ($config eq '') { $config = -f 'conf/slurm.conf' ? 'conf/slurm.conf' : ''; }
my ($command, $map, $defaults) = read_config($config);

my %given = %extra;
$given{mem} = $options{mem} if defined $options{mem};
$given{num_threads} = $options{'num-threads'} if defined $options{'num-threads'};
$given{gpu} = $options{gpu} if defined $options{gpu};
for my $name (keys %$defaults) { $given{$name} = $defaults->{$name} unless exists $given{$name}; }

my @sbatch = split(' ', $command);
for my $name (sort keys %given) {
  my $value = $given{$name};
  my $flags;
  if (exists $map->{"$name=$value"}) { $flags = $map->{"$name=$value"}; }
  elsif (exists $map->{"$name=*"}) { ($flags = $map->{"$name=*"}) =~ s/\$0/$value/g; }
  else {
    my $where = $config eq '' ? 'the built-in default config' : $config;
    print STDERR "$prog: option --" . ($name =~ s/_/-/gr) . " is not mapped in $where\n";
    exit 1;
  }
  push @sbatch, split(' ', $flags);
}

my $threads = defined $given{num_threads} ? $given{num_threads} : 1;
my $log = $job->{log};
my $logdir = dirname($log);
my $qdir = "$logdir/q";
my $name = basename($log);
$name =~ s/\.log$//;
$name = SidkdJobs::substitute($name, $job->{var}, '') if defined $job->{var};
$name =~ s/\.+/./g; $name =~ s/^\.|\.$//g;
$name = 'job' if $name eq '';
my $script = "$qdir/$name.sh";
my $array = defined $job->{var};
my $n = $job->{end} - $job->{start} + 1;
push @sbatch, "--job-name=$name";
if ($array) {
  my $range = "$job->{start}-$job->{end}";
  $range .= "%$options{'max-jobs-run'}" if $options{'max-jobs-run'} > 0 && $options{'max-jobs-run'} < $n;
  push @sbatch, "--array=$range", "--output=$qdir/$name.%a.out";
} else {
  push @sbatch, "--output=$qdir/$name.out";
}
push @sbatch, $script;

my $text = job_script();
my $dry = $options{'dry-run'} =~ m/^(true|1|yes)$/i || ($ENV{SIDKD_SLURM_DRY_RUN} // '') eq '1';
if ($dry) {
  print join(' ', map { shell_quote($_) } @sbatch), "\n";
  print $text;
  exit 0;
}

make_path($qdir) unless -d $qdir;
my @ids = $array ? ($job->{start} .. $job->{end}) : ('');
for my $id (@ids) {
  my $marker = marker($id);
  unlink($marker) if -e $marker;
  SidkdJobs::make_log_dir($prog, SidkdJobs::substitute($log, $job->{var}, $id)) if $array;
}
SidkdJobs::make_log_dir($prog, $log) unless $array;
open(my $fh, '>', $script) or do { print STDERR "$prog: cannot write $script: $!\n"; exit 1; };
print $fh $text;
close($fh);
chmod(0755, $script);

my $out = `@{[ join(' ', map { shell_quote($_) } (@sbatch[0 .. 0], '--parsable', @sbatch[1 .. $#sbatch])) ]} 2>&1`;
if ($? != 0) {
  print STDERR "$prog: sbatch failed (status " . ($? >> 8) . "): $out";
  exit 1;
}
my ($slurm_id) = $out =~ m/^(\d+)/m;
if (!defined $slurm_id) { print STDERR "$prog: could not read the job id from sbatch's output: $out"; exit 1; }

# Wait for every task's marker. A task that has left the queue without a marker was killed
# (time limit, memory, node failure): after a grace period (shared file systems lag) it fails.
my %pending = map { $_ => 1 } @ids;
my %code;
my $gone_since;
while (%pending) {
  for my $id (keys %pending) {
    my $marker = marker($id);
    if (-e $marker) {
      open(my $m, '<', $marker) or next;
      my $line = <$m>;
      close($m);
      next unless defined $line && $line =~ m/^(\d+)/;
      $code{$id} = $1;
      delete $pending{$id};
    }
  }
  last unless %pending;
  sleep($options{'poll-interval'});
  # Gone: squeue lists none of its tasks, or no longer knows the job (its record is purged
  # MinJobAge seconds after it ends; squeue then fails with "Invalid job id"). Any other squeue
  # failure (controller busy or restarting) says nothing either way.
  my $queued = `squeue -h -j $slurm_id 2>&1`;
  my $gone = $? == 0 ? $queued =~ m/^\s*$/ : $queued =~ m/invalid job id/i;
  if ($gone) {
    $gone_since //= time();
    if (time() - $gone_since >= $options{'gone-grace'}) {
      for my $id (keys %pending) {
        my $l = SidkdJobs::substitute($log, $job->{var}, $id);
        print STDERR "$prog: task $id of Slurm job $slurm_id ended without reporting a status "
          . "(killed?); see $l and $qdir/$name" . ($array ? ".$id" : '') . ".out\n";
        $code{$id} = 255;
      }
      %pending = ();
    }
  }
}
my @failed = sort { $a <=> $b } grep { $code{$_} != 0 } map { $_ eq '' ? () : $_ } keys %code;
@failed = (1) if !$array && $code{''} != 0;
exit SidkdJobs::report($prog, $job, \@failed);

sub marker { my ($id) = @_; return "$qdir/done.$name" . ($id eq '' ? '' : ".$id"); }

sub shell_quote {
  my ($w) = @_;
  return $w if $w =~ m/^[\w\-.,:\/=%+@]+$/;
  $w =~ s/'/'\\''/g;
  return "'$w'";
}

sub read_config {
  my ($file) = @_;
  my @lines;
  if ($file eq '') {
    @lines = ('command sbatch --export=PATH --ntasks-per-node=1', 'option mem=* --mem=$0',
      'option mem=0', 'option num_threads=* --cpus-per-task=$0', 'option gpu=* --gres=gpu:$0',
      'option gpu=0', 'default gpu=0');
  } else {
    open(my $fh, '<', $file) or do { print STDERR "$prog: cannot read config $file: $!\n"; exit 1; };
    @lines = <$fh>;
    close($fh);
  }
  my ($command, %map, %defaults);
  my $number = 0;
  for my $line (@lines) {
    $number++;
    chomp $line;
    $line =~ s/#.*//;
    next if $line =~ m/^\s*$/;
    if ($line =~ m/^\s*command\s+(.+?)\s*$/) { $command = $1; }
    elsif ($line =~ m/^\s*option\s+(\w+)=(\S+)\s*(.*?)\s*$/) { $map{"$1=$2"} = $3; }
    elsif ($line =~ m/^\s*default\s+(\w+)=(\S+)\s*$/) { $defaults{$1} = $2; }
    else { print STDERR "$prog: $file:$number: cannot parse: $line\n"; exit 1; }
  }
  if (!defined $command) { print STDERR "$prog: $file has no 'command' line\n"; exit 1; }
  return ($command, \%map, \%defaults);
}

# The script each task runs: the same log format as run.pl, then the status marker.
sub job_script {
  my $cwd = getcwd();
  my $cmd = SidkdJobs::command_string(@{ $job->{cmd} });
  my $var = $job->{var} // '';
  my $q = sub { my $s = shift; $s =~ s/'/'\\''/g; return "'$s'"; };
  my $s = "#!/usr/bin/env bash\n# Written by slurm.pl; submitted with sbatch.\n";
  $s .= "cd " . $q->($cwd) . " || exit 1\n";
  $s .= "[ -f ./path.sh ] && . ./path.sh\n";
  if ($array) {
    $s .= "id=\$SLURM_ARRAY_TASK_ID\n";
    $s .= "var=" . $q->($var) . "\n";
    $s .= "log_template=" . $q->($log) . "\n";
    $s .= "cmd_template=" . $q->($cmd) . "\n";
    $s .= "log=\${log_template//\"\$var\"/\$id}\n";
    $s .= "cmd=\${cmd_template//\"\$var\"/\$id}\n";
    $s .= "marker=" . $q->("$qdir/done.$name.") . "\$id\n";
  } else {
    $s .= "log=" . $q->($log) . "\n";
    $s .= "cmd=" . $q->($cmd) . "\n";
    $s .= "marker=" . $q->("$qdir/done.$name") . "\n";
  }
  $s .= <<'BODY';
mkdir -p "$(dirname "$log")"
{ printf '# %s\n' "$cmd"; echo "# Started at $(date)"; echo '#'; } > "$log"
start=$(date +%s)
bash -c "$cmd" >> "$log" 2>&1
status=$?
BODY
  $s .= "echo \"# Accounting: time=\$((\$(date +%s) - start)) threads=$threads\" >> \"\$log\"\n";
  $s .= <<'BODY';
echo "# Ended (code $status) at $(date)" >> "$log"
echo "$status" > "$marker.tmp" && mv "$marker.tmp" "$marker"
exit "$status"
BODY
  return $s;
}
